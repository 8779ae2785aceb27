"""Which boxnet network serves which Docker network (the Docker network plugin, issue 18).

dockerd names a network by its own id alone (CreateNetwork carries no name), so the plugin keeps
the pairing here: Docker's network id -> boxnet's network id, and whether the plugin created the
boxnet network (then DeleteNetwork removes it) or adopted an existing one (then it stays).
"""

from __future__ import annotations

from dataclasses import dataclass

from boxnet.store.db import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS docker_networks (
    docker_id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL,
    created INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class DockerNetwork:
    docker_id: str
    network_id: str
    created: bool  # made for Docker (removed with it), else adopted


class DockerNetworks:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.transaction() as conn:
            conn.execute(SCHEMA)

    def put(self, row: DockerNetwork) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO docker_networks (docker_id, network_id, created)"
            " VALUES (?, ?, ?)",
            (row.docker_id, row.network_id, int(row.created)),
        )

    def get(self, docker_id: str) -> DockerNetwork | None:
        rows = self.store.query(
            "SELECT network_id, created FROM docker_networks WHERE docker_id = ?", (docker_id,)
        )
        if not rows:
            return None
        return DockerNetwork(docker_id, rows[0]["network_id"], bool(rows[0]["created"]))

    def delete(self, docker_id: str) -> None:
        self.store.execute("DELETE FROM docker_networks WHERE docker_id = ?", (docker_id,))
