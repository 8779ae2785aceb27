"""`boxnet port` output, compared with the Docker CLI's runPort."""

from __future__ import annotations

import pytest

from boxnet.errors import InvalidArgument
from boxnet.parsing.portfmt import format_port

PORTS = {
    "443/tcp": None,
    "8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}],
    "80/udp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
    "80/tcp": [
        {"HostIp": "::", "HostPort": "8080"},
        {"HostIp": "0.0.0.0", "HostPort": "8080"},
    ],
    "9/tcp": [{"HostIp": "127.0.0.1", "HostPort": "10000"}],
    "53/sctp": [],
}


def test_list_all_sorted_like_docker() -> None:
    assert format_port(PORTS, container="web") == (
        "9/tcp -> 127.0.0.1:10000\n"
        "80/tcp -> 0.0.0.0:8080\n"
        "80/tcp -> [::]:8080\n"
        "80/udp -> 0.0.0.0:8080\n"
        "8080/tcp -> 0.0.0.0:32768\n"
    )


def test_query() -> None:
    assert format_port(PORTS, "80", container="web") == "0.0.0.0:8080\n[::]:8080\n"
    assert format_port(PORTS, "80/udp", container="web") == "0.0.0.0:8080\n"
    assert format_port(PORTS, "80/UDP", container="web") == "0.0.0.0:8080\n"


@pytest.mark.parametrize("query", ["81", "81/tcp", "443", "53/sctp", "9/udp"])
def test_query_not_published(query: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        format_port(PORTS, query, container="web")
    assert info.value.render().splitlines()[0] == (
        f"Error: No public port '{query}' published for web"
    )


@pytest.mark.parametrize("query", ["abc", "", "70000", "-1", "/tcp"])
def test_query_invalid(query: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid port"):
        format_port(PORTS, query, container="web")


def test_nothing_published() -> None:
    assert format_port({}, container="web") == ""
    assert format_port(None, container="web") == ""
    assert format_port({"80/tcp": None}, container="web") == ""


def test_empty_host_ip() -> None:
    assert format_port({"80/tcp": [{"HostIp": "", "HostPort": "80"}]}) == "80/tcp -> :80\n"
