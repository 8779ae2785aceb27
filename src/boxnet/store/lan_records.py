"""Records of LAN attachments: host bridges (what was moved off the uplink) and pipework
attachments (re-applied when their container starts again)."""

from __future__ import annotations

import json
from typing import Any

from boxnet.store.db import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS lan_hostbridges (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lan_attachments (
    container_id TEXT NOT NULL,
    ifname TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (container_id, ifname)
);
"""


class LanRecords:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.transaction() as conn:
            # One statement at a time: executescript() would COMMIT our open transaction.
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    # -- host bridges -----------------------------------------------------------------------------
    def put_hostbridge(self, name: str, doc: dict[str, Any]) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO lan_hostbridges (name, doc) VALUES (?, ?)",
            (name, json.dumps(doc, sort_keys=True)),
        )

    def delete_hostbridge(self, name: str) -> None:
        self.store.execute("DELETE FROM lan_hostbridges WHERE name = ?", (name,))

    def hostbridges(self) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT doc FROM lan_hostbridges ORDER BY name")
        return [json.loads(r["doc"]) for r in rows]

    # -- pipework attachments ---------------------------------------------------------------------
    def put_attachment(self, container_id: str, ifname: str, doc: dict[str, Any]) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO lan_attachments (container_id, ifname, doc) VALUES (?, ?, ?)",
            (container_id, ifname, json.dumps(doc, sort_keys=True)),
        )

    def delete_attachment(self, container_id: str, ifname: str) -> None:
        self.store.execute(
            "DELETE FROM lan_attachments WHERE container_id = ? AND ifname = ?",
            (container_id, ifname),
        )

    def delete_attachments(self, container_id: str) -> None:
        self.store.execute("DELETE FROM lan_attachments WHERE container_id = ?", (container_id,))

    def attachments(self, container_id: str | None = None) -> list[dict[str, Any]]:
        if container_id is None:
            rows = self.store.query("SELECT doc FROM lan_attachments ORDER BY container_id, ifname")
        else:
            rows = self.store.query(
                "SELECT doc FROM lan_attachments WHERE container_id = ? ORDER BY ifname",
                (container_id,),
            )
        return [json.loads(r["doc"]) for r in rows]
