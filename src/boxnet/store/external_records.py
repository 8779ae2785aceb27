"""Records of external attachments: endpoints boxnet plugged into a namespace it does not own
(a CNI runtime's, later a Docker network plugin's). core/external.py makes and removes them.

The endpoint, its leases and its ports are ordinary rows of store/records.py owned by the
attachment's `owner` id (in the place of a container id); this table says who asked for them and
where the namespace is, so reconcile keeps them while the namespace lives.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from boxnet.store.db import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS external_attachments (
    owner TEXT PRIMARY KEY,
    network_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS external_by_network ON external_attachments (network_id)
"""


@dataclass(frozen=True)
class ExternalRecord:
    owner: str  # 64 hex: the id its endpoint, leases and ports are recorded under
    kind: str  # who asked: "cni"
    container_id: str  # the runtime's id for the container (CNI_CONTAINERID)
    ifname: str
    netns: str  # the namespace's path, owned by the runtime
    network_id: str
    endpoint_id: str
    name: str = ""  # a DNS name the runtime gave (K8S_POD_NAME), "" = none
    aliases: tuple[str, ...] = ()
    dns: bool = False  # the embedded resolver serves the namespace
    created: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_doc(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_doc(doc: str) -> ExternalRecord:
        d: dict[str, Any] = json.loads(doc)
        d["aliases"] = tuple(d.get("aliases", ()))
        return ExternalRecord(**d)


class ExternalRecords:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.transaction() as conn:
            # One statement at a time: executescript() would COMMIT our open transaction.
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def put(self, record: ExternalRecord) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO external_attachments (owner, network_id, doc) VALUES (?, ?, ?)",
            (record.owner, record.network_id, record.to_doc()),
        )

    def delete(self, owner: str) -> None:
        self.store.execute("DELETE FROM external_attachments WHERE owner = ?", (owner,))

    def get(self, owner: str) -> ExternalRecord | None:
        rows = self.store.query("SELECT doc FROM external_attachments WHERE owner = ?", (owner,))
        return ExternalRecord.from_doc(rows[0]["doc"]) if rows else None

    def all(self, network_id: str | None = None) -> list[ExternalRecord]:
        if network_id is None:
            rows = self.store.query("SELECT doc FROM external_attachments ORDER BY owner")
        else:
            rows = self.store.query(
                "SELECT doc FROM external_attachments WHERE network_id = ? ORDER BY owner",
                (network_id,),
            )
        return [ExternalRecord.from_doc(r["doc"]) for r in rows]
