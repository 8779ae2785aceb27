"""Glue between the container lifecycle and the embedded resolver (boxnet.dns).

The resolver gets a new name table after every change, so answers follow start, stop, rm,
connect and disconnect at once. A start, an exit, a connect or a disconnect re-reads only that
container's endpoints and derives the new table from the old one (NameTable.with_container):
re-reading every record and rebuilding the table cost ~10 ms at 300 containers and was the
largest part of `run -d` growing with the population. Only adopting after a restart re-reads
everything (`refresh()`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from boxnet.core.etcfiles import host_resolvers
from boxnet.core.sandbox import mode_kind
from boxnet.dns import NameEntry, NameTable, Resolver
from boxnet.dns import sockets as dns_sockets
from boxnet.model import Container, Endpoint, State

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from boxnet.config import DaemonConfig
    from boxnet.store.records import Records
    from boxnet.txn import Undo

log = logging.getLogger("boxnet.dns")


def uses_resolver(c: Container) -> bool:
    """Containers with a namespace of their own on networks; host, none and container:X
    modes keep plain resolv.conf files (container:X shares X's, and so X's resolver)."""
    return mode_kind(c.spec.network_mode) == "network"


class NameService:
    def __init__(self, records: Records, config: DaemonConfig, ports_dir: Path | None) -> None:
        self.records = records
        self.config = config
        self.resolver = Resolver(ports_dir)
        self._table = NameTable()  # what the resolver serves; endpoints exist while c runs

    def upstreams(self, c: Container) -> tuple[str, ...]:
        """--dns first, then the daemon's dns, then the host's resolv.conf servers; loopback
        ones (127.0.0.53) included, since forwarding happens in the daemon's namespace."""
        if c.spec.dns:
            return tuple(c.spec.dns)
        if self.config.dns:
            return tuple(str(s) for s in self.config.dns)
        return tuple(host_resolvers()[0])

    def default_upstreams(self) -> tuple[str, ...]:
        """The daemon's dns, else the host's resolv.conf servers (no container --dns)."""
        if self.config.dns:
            return tuple(str(s) for s in self.config.dns)
        return tuple(host_resolvers()[0])

    def _publish(self, table: NameTable) -> None:
        self._table = table
        self.resolver.set_table(table)

    @staticmethod
    def _entries(c: Container, e: Endpoint, internal: set[str]) -> list[NameEntry]:
        """One entry per address of the endpoint (A and AAAA records)."""
        return [
            NameEntry(
                container_id=c.id,
                network_id=e.network_id,
                ip=address.ip,
                names=(c.name, c.short_id, *e.aliases),
                internal=e.network_id in internal,
            )
            for address in e.addresses
        ]

    def _internal_networks(self) -> set[str]:
        return {n.id for n in self.records.networks() if n.internal}

    def update(self, c: Container) -> None:
        """c's endpoints changed (start, connect, disconnect): re-read its entries only."""
        internal = self._internal_networks()
        entries = [
            entry
            for e in self.records.endpoints(container_id=c.id)
            for entry in self._entries(c, e, internal)
        ]
        self._publish(self._table.with_container(c.id, entries, c.spec.links))

    def refresh(self) -> None:
        """Re-read every container's entries from the records."""
        internal = self._internal_networks()
        containers = {c.id: c for c in self.records.containers()}
        table = NameTable(
            entry
            for e in self.records.endpoints()
            if e.container_id in containers
            for entry in self._entries(containers[e.container_id], e, internal)
        )
        for c in containers.values():  # links: only the few containers that have some
            if c.spec.links and table.knows(c.id):
                own = [x for e in self.records.endpoints(container_id=c.id)
                       for x in self._entries(c, e, internal)]  # fmt: skip
                table = table.with_container(c.id, own, c.spec.links)
        self._publish(table)

    def set_remote(self, container_id: str, entries: Sequence[NameEntry]) -> None:
        """A container on another host (an overlay network's endpoint record): its entries
        replace the ones it had; none = it is gone."""
        if entries:
            self._publish(self._table.with_container(container_id, entries))
        else:
            self._publish(self._table.without_container(container_id))

    def attach(self, c: Container, netns_path: str, undo: Undo) -> Callable[[], None]:
        """Serve c, called before its first process starts: its resolver sockets now (bound,
        127.0.0.11:53 redirected to them: a query is never refused). Returns what finishes the
        job, c's names in the table and its sockets in the resolver's loop, for the caller to
        run while the shim finishes starting c (a query that comes first waits in its socket)."""
        if not uses_resolver(c) or not netns_path:
            return lambda: None
        slots, failed = self.resolver.open_many([(c.id, netns_path, self.upstreams(c))])
        for _container_id, error in failed:
            raise error

        def stop() -> None:
            self.detach(c.id)  # registered: unregistered and closed
            for slot in slots:
                slot.close()  # not registered yet: closed here (again is harmless)

        undo.push("stop serving DNS", stop)

        def serve() -> None:
            self.update(c)
            self.resolver.register(slots)

        return serve

    def serve_external(
        self,
        owner: str,
        names: tuple[str, ...],
        endpoint: Endpoint,
        netns_path: str,
        resolver: bool,
    ) -> None:
        """An external attachment (core/external.py): its names answer on its network, and,
        when `resolver`, 127.0.0.11 inside its namespace is served like a container's."""
        internal = self._internal_networks()
        entries = [
            NameEntry(
                container_id=owner,
                network_id=endpoint.network_id,
                ip=address.ip,
                names=names,
                internal=endpoint.network_id in internal,
            )
            for address in endpoint.addresses
        ]
        self._publish(self._table.with_container(owner, entries))
        if resolver:
            self.resolver.add(owner, netns_path, self.default_upstreams())

    def detach(self, container_id: str) -> None:
        self.resolver.forget(container_id)
        self._publish(self._table.without_container(container_id))

    def adopt(self) -> int:
        """After a daemon restart: serve again every running container (the old daemon's
        sockets died with it). Returns how many."""
        self.refresh()
        adopted = [
            c
            for c in self.records.containers()
            if c.state == State.RUNNING and uses_resolver(c) and c.netns_path
        ]
        dns_sockets.prepare([c.netns_path for c in adopted])
        failed = self.resolver.add_many([(c.id, c.netns_path, self.upstreams(c)) for c in adopted])
        for container_id, exc in failed:
            log.warning("dns: cannot serve adopted container %s: %s", container_id[:12], exc)
        return len(adopted) - len(failed)

    def close(self) -> None:
        self.resolver.close()
