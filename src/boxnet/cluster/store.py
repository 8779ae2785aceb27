"""What boxnet needs from a cluster store: keys with revisions, atomic create and compare-and-put,
leases that expire with a dead host, and watches that resume from a revision."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from boxnet.errors import BoxnetError, Unavailable

KEY_ROOT = "/boxnet/"


class ClusterStoreError(BoxnetError):
    """The store answered, but refused the request (a bad key, an expired lease, ...)."""

    status = 500


class ClusterStoreUnavailable(Unavailable):
    """No endpoint of the store answered after retries with backoff."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int  # 0: no lease


@dataclass(frozen=True)
class WatchEvent:
    kind: Literal["put", "delete"]
    key: str
    value: bytes  # empty for a delete
    mod_revision: int


class ClusterStore(Protocol):
    def get(self, key: str) -> KeyValue | None: ...

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under prefix and the store revision they were read at."""
        ...

    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        """Write unconditionally; returns the new revision."""
        ...

    def create(self, key: str, value: bytes, lease: int = 0) -> bool:
        """Write only if key does not exist (atomically); False when it does."""
        ...

    def compare_and_put(self, key: str, mod_revision: int, value: bytes) -> bool:
        """Write only if key was last modified at mod_revision (0: does not exist)."""
        ...

    def delete(self, key: str) -> bool: ...

    def compare_and_delete(self, key: str, mod_revision: int) -> bool:
        """Delete only if key was last modified at mod_revision; False when it was not."""
        ...

    def grant_lease(self, ttl: int) -> int: ...

    def keep_alive(self, lease: int) -> int:
        """Refresh lease once; its remaining TTL (0 or less: it has expired)."""
        ...

    def revoke_lease(self, lease: int) -> None: ...

    def watch(self, prefix: str, start_revision: int) -> Iterator[WatchEvent]:
        """Changes under prefix from start_revision on, until the connection ends."""
        ...
