"""store/plain.py: the documents written to SQLite are the ones dataclasses.asdict gave."""

from __future__ import annotations

import json
from dataclasses import asdict
from ipaddress import IPv4Address, IPv6Address

from topology_scene import CONTAINERS, ENDPOINTS, NETWORKS

from boxnet.model import BindMount, Container, ContainerSpec, EndpointRequest, PortRequest, State
from boxnet.store import records
from boxnet.store.plain import plain

FULL = Container(
    id="c" * 64,
    name="web",
    spec=ContainerSpec(
        "busybox:1.36", ("sh", "-c", "echo"), env=("A=1",), hostname="h",
        endpoints=(EndpointRequest("n1", IPv4Address("10.1.0.5"), IPv6Address("2001:db8::5"),
                                   ("db",), "02:42:0a:01:00:05", ("169.254.1.1",)),),
        ports=(PortRequest(80, "tcp", IPv6Address("::1"), 8080, 8080),
               PortRequest(53, "udp", None, None, None)),
        exposed=((80, "tcp"),), binds=(BindMount("/a", "/b", True),), labels={"k": "v"},
        links=(("db", "database"),), tmpfs={"/run": "size=1m"}, stop_timeout=3,
        raw={"Image": "busybox:1.36", "HostConfig": {"Dns": []}},
    ),
    created="2026-12-05T00:00:00Z",
    state=State.RUNNING,
)  # fmt: skip


def test_documents_are_unchanged() -> None:
    for record in [FULL, *CONTAINERS, *ENDPOINTS, *NETWORKS]:
        assert json.dumps(plain(record), default=str) == json.dumps(asdict(record), default=str)


def test_a_container_survives_its_document() -> None:
    doc = records._container_doc(FULL)
    assert records._container_from(doc) == FULL
