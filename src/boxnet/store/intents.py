"""The intent journal: a row written before a multi-step change touches the kernel, deleted when
the change is complete or rolled back.

A row that outlives its daemon marks a change cut short (a crash, a kill -9, a power cut); its
payload says what is needed to undo or finish it (for hostbridge: the NIC's addresses, routes, MAC
and MTU before the move, which nothing in the kernel remembers once they are gone). The next daemon
resolves every such row at start and on `boxnet system gc` (core/reconcile.resolve_intents).

Each daemon tags its rows with a fresh owner token, so a gc running next to live changes only
touches the rows of daemons that are gone. Cost: one INSERT and one DELETE per change (~35 us).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from boxnet.store.db import Store


class Closer(Protocol):
    """txn.Undo, seen from here (the store imports nothing above it)."""

    def always(self, description: str, fn: Callable[[], object]) -> None: ...


@dataclass(frozen=True)
class Intent:
    id: int
    kind: str  # "hostbridge.create", "pipework.attach", "container.start", ...
    subject: str  # what it is about: a bridge name, a container id, "<id>/<ifname>"
    payload: dict[str, Any]
    created: str

    def describe(self) -> str:
        return f"{self.kind} {self.subject}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Intents:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.owner = secrets.token_hex(8)  # this daemon's rows, not a predecessor's

    def begin(
        self,
        kind: str,
        subject: str,
        payload: dict[str, Any] | None = None,
        undo: Closer | None = None,
    ) -> int:
        """Record the intent (before any kernel change). With `undo`, the row is deleted when that
        Undo block ends, committed or rolled back; else the caller calls done()."""
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO intents (kind, subject, owner, payload, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, subject, self.owner, json.dumps(payload or {}), _now()),
            )
            intent_id = int(cursor.lastrowid or 0)
        if undo is not None:
            undo.always(f"close intent {kind}", lambda: self.done(intent_id))
        return intent_id

    def done(self, intent_id: int) -> None:
        self.store.execute("DELETE FROM intents WHERE id = ?", (intent_id,))

    def pending(self, include_own: bool = False) -> list[Intent]:
        """Rows left by earlier daemons (oldest first); with include_own, this daemon's too."""
        sql = "SELECT * FROM intents"
        args: tuple[object, ...] = ()
        if not include_own:
            sql += " WHERE owner != ?"
            args = (self.owner,)
        rows = self.store.query(sql + " ORDER BY id", args)
        return [
            Intent(
                id=int(r["id"]),
                kind=str(r["kind"]),
                subject=str(r["subject"]),
                payload=json.loads(r["payload"]),
                created=str(r["created"]),
            )
            for r in rows
        ]
