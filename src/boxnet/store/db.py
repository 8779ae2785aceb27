"""SQLite persistence: the records boxnet keeps about networks, containers, leases and ports.

The UNIQUE constraints are the safety net of the allocators: two endpoints can never hold one
address of a network, and two bindings can never hold one (host ip, proto, port), whatever races
happen above. The `intents` table is the journal of changes in flight (store/intents.py); adding
a table with CREATE ... IF NOT EXISTS is how the schema grows, so an older database just gains it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    network_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    container_id TEXT NOT NULL,
    static INTEGER NOT NULL DEFAULT 0,
    UNIQUE (network_id, ip)
);
CREATE INDEX IF NOT EXISTS leases_by_container ON leases (container_id);
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY,
    container_id TEXT NOT NULL,
    network_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (container_id, network_id)
);
CREATE TABLE IF NOT EXISTS ports (
    container_id TEXT NOT NULL,
    host_ip TEXT NOT NULL,
    proto TEXT NOT NULL,
    host_port INTEGER NOT NULL,
    container_ip TEXT NOT NULL,
    container_port INTEGER NOT NULL,
    UNIQUE (host_ip, proto, host_port)
);
CREATE INDEX IF NOT EXISTS ports_by_container ON ports (container_id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    owner TEXT NOT NULL,
    payload TEXT NOT NULL,
    created TEXT NOT NULL
);
"""


class Store:
    """One connection shared by the daemon's threads, serialised by a lock.

    Writes are short and the daemon serialises kernel changes anyway, so one connection keeps
    transactions simple; WAL keeps readers (inspect, ps) off the writer's back.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        # Bumped when an outermost transaction ends (commit or rollback): readers that keep
        # parsed rows (Records' whole-table reads) know them current while it is unchanged.
        self.generation = 0
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)

    @property
    def lock(self) -> threading.RLock:
        """Held by every query and transaction: hold it to read several things at one moment."""
        return self._lock

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0
                self.generation += 1

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, args))

    def execute(self, sql: str, args: tuple[object, ...] = ()) -> int:
        with self.transaction() as conn:
            return conn.execute(sql, args).rowcount

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
