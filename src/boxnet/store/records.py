"""Typed access to the records: model objects in, model objects out (JSON documents inside)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface, ip_network
from typing import Any, TypeVar

from boxnet.errors import Conflict
from boxnet.model import (
    BindMount,
    Container,
    ContainerSpec,
    Endpoint,
    EndpointRequest,
    IPAddress,
    IPAMConfig,
    Network,
    PortBinding,
    PortRequest,
    State,
)
from boxnet.store.db import Store
from boxnet.store.intents import Intents
from boxnet.store.plain import plain

T = TypeVar("T")


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def network_doc(net: Network) -> str:
    doc = plain(net)
    doc["ipam"] = [
        {
            "subnet": str(cfg.subnet),
            "gateway": _text(cfg.gateway),
            "ip_range": _text(cfg.ip_range),
            "aux_addresses": dict(cfg.aux_addresses),
        }
        for cfg in net.ipam
    ]
    doc["host_binding"] = str(net.host_binding)
    doc["driver"] = str(net.driver)
    return json.dumps(doc)


def _ipam_from(d: dict[str, Any]) -> IPAMConfig:
    return IPAMConfig(
        subnet=ip_network(d["subnet"]),
        gateway=ip_address(d["gateway"]) if d.get("gateway") else None,
        ip_range=ip_network(d["ip_range"]) if d.get("ip_range") else None,
        aux_addresses=dict(d.get("aux_addresses") or {}),
    )


def network_from_doc(doc: str) -> Network:
    d: dict[str, Any] = json.loads(doc)
    if "ipam" in d:
        d["ipam"] = tuple(_ipam_from(cfg) for cfg in d["ipam"])
    else:  # a record from before address families: one IPv4 configuration, inline
        old = {k: d.pop(k, None) for k in ("subnet", "gateway", "ip_range", "aux_addresses")}
        d["ipam"] = (_ipam_from(old),) if old["subnet"] else ()
    d["host_binding"] = IPv4Address(d["host_binding"])
    return Network(**d)


def _spec_from(d: dict[str, Any]) -> ContainerSpec:
    d = dict(d)
    d["cmd"] = tuple(d["cmd"])
    for key in ("env", "dns", "dns_search", "dns_options", "extra_hosts"):
        d[key] = tuple(d[key])
    d["endpoints"] = tuple(
        EndpointRequest(
            network=e["network"],
            ipv4=IPv4Address(e["ipv4"]) if e["ipv4"] else None,
            ipv6=IPv6Address(e["ipv6"]) if e.get("ipv6") else None,
            aliases=tuple(e["aliases"]),
            mac=str(e.get("mac") or ""),
            link_local=tuple(e.get("link_local") or ()),
        )
        for e in d["endpoints"]
    )
    d["ports"] = tuple(
        PortRequest(
            container_port=p["container_port"],
            proto=p["proto"],
            host_ip=ip_address(p["host_ip"]) if p["host_ip"] else None,
            host_port_start=p["host_port_start"],
            host_port_end=p["host_port_end"],
        )
        for p in d["ports"]
    )
    d["exposed"] = tuple((int(p), str(proto)) for p, proto in d["exposed"])
    d["binds"] = tuple(BindMount(**b) for b in d.get("binds", ()))
    d["links"] = tuple((str(n), str(a)) for n, a in d.get("links", ()))
    return ContainerSpec(**d)


def _container_doc(c: Container) -> str:
    def default(value: object) -> str:
        return str(value)

    doc = plain(c)
    doc["state"] = str(c.state)
    return json.dumps(doc, default=default)


def _container_from(doc: str) -> Container:
    d: dict[str, Any] = json.loads(doc)
    d["spec"] = _spec_from(d["spec"])
    d["state"] = State(d["state"])
    return Container(**d)


def _endpoint_doc(e: Endpoint) -> str:
    doc = plain(e)
    doc["addresses"] = [str(a) for a in e.addresses]
    doc["gateways"] = [str(g) for g in e.gateways]
    return json.dumps(doc)


def _endpoint_from(doc: str) -> Endpoint:
    d: dict[str, Any] = json.loads(doc)
    if "addresses" not in d:  # a record from before address families: one IPv4 address
        ip, prefixlen, gateway = d.pop("ip"), d.pop("prefixlen"), d.pop("gateway")
        d["addresses"], d["gateways"] = [f"{ip}/{prefixlen}"], [gateway] if gateway else []
    d["addresses"] = tuple(ip_interface(a) for a in d["addresses"])
    d["gateways"] = tuple(ip_address(g) for g in d["gateways"])
    d["aliases"] = tuple(d["aliases"])
    return Endpoint(**d)


class Records:
    """The daemon's record book. Every method is one SQLite transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._parsed: dict[str, tuple[int, tuple[object, ...]]] = {}  # see _whole_table
        self._by_doc: dict[str, dict[str, Any]] = {}  # table -> document -> its parsed row
        self.intents = Intents(store)  # the journal of changes in flight
        # network id -> its leased addresses, read once and then kept in step by lease() and
        # the releases: re-reading every lease on each start grew with the population (~1 ms
        # at 300 containers). Only a hint: lease() still checks the row, so a stale entry
        # costs a retry or skips an address, never a double lease.
        self._leased: dict[str, set[IPAddress]] = {}
        # (network id, IP version) -> an address (int) below which every dynamic address is
        # leased: raised by the allocator after a pick, lowered by every release. The same kind
        # of hint: it lets the lowest-free scan start there instead of at the 1st of 1,000 leases.
        self._floor: dict[tuple[str, int], int] = {}
        # protocol -> host port -> host ips reserved on it: the same kind of hint for the port
        # allocator (reading a window of every published port grew with the population too).
        self._host_ports: dict[str, dict[int, set[str]]] | None = None

    # -- networks -------------------------------------------------------------------------------
    def put_network(self, net: Network) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO networks (id, name, doc) VALUES (?, ?, ?)",
            (net.id, net.name, network_doc(net)),
        )

    def delete_network(self, network_id: str) -> None:
        self.store.execute("DELETE FROM networks WHERE id = ?", (network_id,))

    def networks(self) -> list[Network]:
        return list(self._whole_table("networks", network_from_doc))

    def _whole_table(self, table: str, parse: Callable[[str], T]) -> tuple[T, ...]:
        """Every row of `table` parsed, kept until the next write to the store: a restart
        reads every container five times over (adoption, names, repair, collection), and
        parsing 1,000 of them costs ~0.15 ms each. The records are frozen dataclasses, so
        callers share them safely."""
        with self.store.lock:  # no write between reading the generation and the rows
            generation = self.store.generation
            cached = self._parsed.get(table)
            if cached is not None and cached[0] == generation:
                return cached[1]  # type: ignore[return-value]
            # Any write bumps the generation, but most rows are unchanged since the last read:
            # their parsed form is reused by document (network create at 100 networks parsed
            # all 100 four times over, ~8 ms).
            known = self._by_doc.get(table, {})
            fresh: dict[str, Any] = {}
            parsed = []
            for r in self.store.query(f"SELECT doc FROM {table}"):
                doc = r["doc"]
                row = fresh[doc] = known[doc] if doc in known else parse(doc)
                parsed.append(row)
            rows = tuple(parsed)
            self._by_doc[table] = fresh
            self._parsed[table] = (generation, rows)
            return rows

    # -- containers -----------------------------------------------------------------------------
    def put_container(self, c: Container) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO containers (id, name, doc) VALUES (?, ?, ?)",
            (c.id, c.name, _container_doc(c)),
        )

    def insert_container(self, c: Container) -> None:
        try:
            self.store.execute(
                "INSERT INTO containers (id, name, doc) VALUES (?, ?, ?)",
                (c.id, c.name, _container_doc(c)),
            )
        except Exception as exc:  # sqlite3.IntegrityError: the name is taken
            raise Conflict(
                f'Conflict. The container name "/{c.name}" is already in use',
                hint="remove that container (boxnet rm -f NAME) or choose another --name",
            ) from exc

    def update_container(self, c: Container, **changes: object) -> Container:
        new = replace(c, **changes)  # type: ignore[arg-type]
        self.put_container(new)
        return new

    def delete_container(self, container_id: str) -> None:
        with self.store.transaction() as conn:  # the releases below join this transaction
            conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))
            self.release_leases(container_id)
            conn.execute("DELETE FROM endpoints WHERE container_id = ?", (container_id,))
            self.release_ports(container_id)

    def containers(self) -> list[Container]:
        return list(self._whole_table("containers", _container_from))

    def find_containers(self, ref: str) -> list[Container]:
        """By exact id or name (indexed), else every container whose id starts with ref."""
        rows = self.store.query("SELECT doc FROM containers WHERE id = ? OR name = ?", (ref, ref))
        if not rows and ref and all(ch in "0123456789abcdef" for ch in ref):
            rows = self.store.query(
                "SELECT doc FROM containers WHERE id >= ? AND id < ?", (ref, ref + "g")
            )
        return [_container_from(r["doc"]) for r in rows]

    def container(self, container_id: str) -> Container | None:
        rows = self.store.query("SELECT doc FROM containers WHERE id = ?", (container_id,))
        return _container_from(rows[0]["doc"]) if rows else None

    # -- leases (IP reservations) ---------------------------------------------------------------
    def lease_holders(self) -> list[str]:
        """The containers holding at least one lease."""
        rows = self.store.query("SELECT DISTINCT container_id FROM leases")
        return [str(r["container_id"]) for r in rows]

    def leased_ips(self, network_id: str) -> set[IPAddress]:
        """A copy (callers add to it) of the addresses leased on the network."""
        cached = self._leased.get(network_id)
        if cached is None:
            rows = self.store.query("SELECT ip FROM leases WHERE network_id = ?", (network_id,))
            cached = self._leased[network_id] = {ip_address(r["ip"]) for r in rows}
        return set(cached)

    def leased_view(self, network_id: str) -> AbstractSet[IPAddress]:
        """The addresses leased on the network, not copied: read it, never keep it."""
        cached = self._leased.get(network_id)
        if cached is None:
            self.leased_ips(network_id)
            cached = self._leased[network_id]
        return cached

    def lease_floor(self, network_id: str, version: int) -> int | None:
        return self._floor.get((network_id, version))

    def raise_lease_floor(self, network_id: str, version: int, value: int) -> None:
        """Every dynamic address of the network below `value` is leased (the allocator knows)."""
        self._floor[(network_id, version)] = value

    def _forget_leases(self, rows: list[sqlite3.Row]) -> None:
        for row in rows:
            ip = ip_address(row["ip"])
            cached = self._leased.get(row["network_id"])
            if cached is not None:
                cached.discard(ip)
            key = (row["network_id"], ip.version)
            if key in self._floor and int(ip) < self._floor[key]:
                self._floor[key] = int(ip)  # free again: the next scan starts there

    def lease(self, network_id: str, ip: IPAddress, container_id: str, static: bool) -> bool:
        """Reserve one address; False when somebody else holds it."""
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT container_id FROM leases WHERE network_id = ? AND ip = ?",
                (network_id, str(ip)),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO leases (network_id, ip, container_id, static) VALUES (?, ?, ?, ?)",
                    (network_id, str(ip), container_id, int(static)),
                )
            cached = self._leased.get(network_id)
            if cached is not None:
                cached.add(ip)
            return row is None or bool(row["container_id"] == container_id)

    def release_leases(
        self, container_id: str, network_id: str | None = None, keep_static: bool = False
    ) -> None:
        sql = "DELETE FROM leases WHERE container_id = ?"
        args: tuple[object, ...] = (container_id,)
        if network_id is not None:
            sql += " AND network_id = ?"
            args += (network_id,)
        if keep_static:
            sql += " AND static = 0"
        with self.store.transaction() as conn:
            self._forget_leases(conn.execute(sql + " RETURNING network_id, ip", args).fetchall())

    def count_leases(self, network_id: str) -> int:
        rows = self.store.query(
            "SELECT COUNT(*) AS n FROM leases WHERE network_id = ?", (network_id,)
        )
        return int(rows[0]["n"])

    # -- endpoints ------------------------------------------------------------------------------
    def put_endpoint(self, e: Endpoint) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO endpoints (id, container_id, network_id, doc)"
            " VALUES (?, ?, ?, ?)",
            (e.id, e.container_id, e.network_id, _endpoint_doc(e)),
        )

    def delete_endpoint(self, endpoint_id: str) -> None:
        self.store.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))

    def endpoints(
        self, container_id: str | None = None, network_id: str | None = None
    ) -> list[Endpoint]:
        if container_id is None and network_id is None:
            return list(self._whole_table("endpoints", _endpoint_from))
        sql, args = "SELECT doc FROM endpoints WHERE 1=1", ()  # type: tuple[str, tuple[object, ...]]
        if container_id is not None:
            sql += " AND container_id = ?"
            args += (container_id,)
        if network_id is not None:
            sql += " AND network_id = ?"
            args += (network_id,)
        return [_endpoint_from(r["doc"]) for r in self.store.query(sql, args)]

    # -- ports ----------------------------------------------------------------------------------
    def ports(self, container_id: str | None = None) -> list[tuple[str, PortBinding, str]]:
        """(container_id, binding, container_ip) triples."""
        sql = "SELECT * FROM ports"
        args: tuple[object, ...] = ()
        if container_id is not None:
            sql += " WHERE container_id = ?"
            args = (container_id,)
        return [
            (
                r["container_id"],
                PortBinding(
                    container_port=r["container_port"],
                    proto=r["proto"],
                    host_ip=ip_address(r["host_ip"]),
                    host_port=r["host_port"],
                ),
                r["container_ip"],
            )
            for r in self.store.query(sql, args)
        ]

    def used_host_ports(self, proto: str, low: int = 1, high: int = 65535) -> set[tuple[str, int]]:
        """Reserved (host ip, port) pairs of proto with low <= port <= high (a window keeps the
        allocator's work proportional to what it asks for, not to every published port)."""
        by_port = self._ports_of(proto)
        if high - low + 1 < len(by_port):  # a narrow window (an explicit port or range)
            found = ((port, by_port.get(port, ())) for port in range(low, high + 1))
        else:
            found = ((port, ips) for port, ips in by_port.items() if low <= port <= high)
        return {(ip, port) for port, ips in found for ip in ips}

    def host_ports_index(self, proto: str) -> Mapping[int, AbstractSet[str]]:
        """Reserved host ips of proto by host port, not copied: read it, never keep it."""
        return self._ports_of(proto)

    def _ports_of(self, proto: str) -> dict[int, set[str]]:
        if self._host_ports is None:
            self._host_ports = {}
            for r in self.store.query("SELECT proto, host_ip, host_port FROM ports"):
                self._reserve_port(r["proto"], r["host_ip"], r["host_port"])
        return self._host_ports.setdefault(proto, {})

    def _reserve_port(self, proto: str, host_ip: str, port: int) -> None:
        if self._host_ports is not None:
            self._host_ports.setdefault(proto, {}).setdefault(port, set()).add(host_ip)

    def _forget_ports(self, rows: list[sqlite3.Row]) -> None:
        if self._host_ports is None:
            return
        for r in rows:
            by_port = self._host_ports.get(r["proto"], {})
            ips = by_port.get(r["host_port"])
            if ips is not None:
                ips.discard(r["host_ip"])
                if not ips:
                    del by_port[r["host_port"]]

    def add_ports(self, container_id: str, bindings: list[tuple[PortBinding, str]]) -> None:
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO ports (container_id, host_ip, proto, host_port, container_ip,"
                " container_port) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (container_id, str(b.host_ip), b.proto, b.host_port, ip, b.container_port)
                    for b, ip in bindings
                ],
            )
        for b, _ip in bindings:  # written: now they count as taken
            self._reserve_port(b.proto, str(b.host_ip), b.host_port)

    def release_ports(self, container_id: str) -> None:
        with self.store.transaction() as conn:
            self._forget_ports(
                conn.execute(
                    "DELETE FROM ports WHERE container_id = ? RETURNING proto, host_ip, host_port",
                    (container_id,),
                ).fetchall()
            )
