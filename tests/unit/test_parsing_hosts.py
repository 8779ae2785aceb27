"""--add-host, compared with Docker's opts.ValidateExtraHost."""

from __future__ import annotations

import contextlib
from ipaddress import ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxnet.errors import InvalidArgument
from boxnet.parsing.hosts import parse_add_host

OK = [
    ("db:10.0.0.5", ("db", ip_address("10.0.0.5"))),
    ("db=10.0.0.5", ("db", ip_address("10.0.0.5"))),
    ("db:::1", ("db", ip_address("::1"))),  # split on the first ':' only
    ("db=::1", ("db", ip_address("::1"))),
    ("db:[::1]", ("db", ip_address("::1"))),
    ("db=[2001:db8::1]", ("db", ip_address("2001:db8::1"))),
    ("db:[10.0.0.5]", ("db", ip_address("10.0.0.5"))),
    ("host.docker.internal:host-gateway", ("host.docker.internal", "host-gateway")),
    ("My_DB.local:10.0.0.5", ("My_DB.local", ip_address("10.0.0.5"))),
]

BAD = [
    ("db", "missing HOST:IP separator"),
    (":10.0.0.5", "missing HOST:IP separator"),
    ("=10.0.0.5", "missing HOST:IP separator"),
    ("db:", "no IP address"),
    ("db:10.0.0.300", '"10.0.0.300" is not an IP address'),
    ("db:host-gw", '"host-gw" is not an IP address'),
    ("db:[::1", '"[::1" is not an IP address'),
    ("db:fe80::1%eth0", "not an IP address"),
    ("d b:10.0.0.5", "invalid hostname"),
    ("-db:10.0.0.5", "invalid hostname"),
    ("db#x=10.0.0.5", "invalid hostname"),
]


@pytest.mark.parametrize(("text", "expected"), OK)
def test_ok(text: str, expected: tuple[str, object]) -> None:
    assert parse_add_host(text) == expected


@pytest.mark.parametrize(("text", "words"), BAD)
def test_bad(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_add_host(text)
    assert info.value.message.startswith(f'invalid add-host "{text}": ')
    assert words in info.value.message
    assert info.value.hint


@given(st.text(max_size=40))
def test_only_invalid_argument(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        parse_add_host(text)
