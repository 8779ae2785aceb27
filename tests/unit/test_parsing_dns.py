"""--dns, --dns-search, --dns-option and the files rendered from them."""

from __future__ import annotations

import contextlib
from ipaddress import ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxnet.errors import InvalidArgument
from boxnet.parsing import dns


def test_parse_dns() -> None:
    assert dns.parse_dns("1.1.1.1") == ip_address("1.1.1.1")
    assert dns.parse_dns("2606:4700::1111") == ip_address("2606:4700::1111")
    for bad, hint in [
        ("1.1.1.1:53", "port 53"),
        ("[::1]:53", "port 53"),
        ("[::1]", "port 53"),
        ("dns.google", "IPv4 or IPv6"),
        ("", "IPv4 or IPv6"),
        ("fe80::1%eth0", "IPv4 or IPv6"),
    ]:
        with pytest.raises(InvalidArgument, match="invalid --dns") as info:
            dns.parse_dns(bad)
        assert hint in (info.value.hint or "")


def test_parse_dns_search() -> None:
    assert dns.parse_dns_search("Example.Internal.") == "example.internal"
    assert dns.parse_dns_search(".") == "."
    for bad in ["", "a..b", "exa mple.com", "-x.com", "x_y.com"]:
        with pytest.raises(InvalidArgument, match="invalid --dns-search") as info:
            dns.parse_dns_search(bad)
        assert '"."' in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("ndots:0", "ndots:0"),
        ("ndots:15", "ndots:15"),
        ("ndots:05", "ndots:5"),
        ("timeout:30", "timeout:30"),
        ("attempts:5", "attempts:5"),
        *((flag, flag) for flag in dns.FLAG_OPTIONS),
    ],
)
def test_dns_option_ok(text: str, normal: str) -> None:
    assert dns.parse_dns_option(text) == normal


@pytest.mark.parametrize(
    ("text", "words", "hint"),
    [
        ("ndots:16", "ndots must be a number from 0 to 15", "ndots:1"),
        ("ndots:-1", "ndots must be a number from 0 to 15", "ndots:1"),
        ("ndots", "ndots needs a value", "ndots:1"),
        ("ndots:", "ndots needs a value", "ndots:1"),
        ("timeout:0", "timeout must be a number from 1 to 30", "timeout:2"),
        ("attempts:6", "attempts must be a number from 1 to 5", "attempts:2"),
        ("rotate:1", "rotate takes no value", "write just rotate"),
        ("ndot:2", "unknown option 'ndot'", "did you mean ndots?"),
        ("edns", "unknown option 'edns'", "did you mean edns0?"),
        ("", "unknown option ''", "known: ndots:N"),
    ],
)
def test_dns_option_bad(text: str, words: str, hint: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        dns.parse_dns_option(text)
    assert info.value.message == f'invalid --dns-option "{text}": {words}'
    assert hint in (info.value.hint or "")


def test_render_resolv_conf() -> None:
    text = dns.render_resolv_conf(
        [ip_address("10.0.0.2"), "2001:db8::53"], ["a.example", "b.example"], ["ndots:2", "rotate"]
    )
    assert text == (
        "nameserver 10.0.0.2\nnameserver 2001:db8::53\n"
        "search a.example b.example\noptions ndots:2 rotate\n"
    )
    assert dns.render_resolv_conf(["1.1.1.1"], ["."]) == "nameserver 1.1.1.1\n"
    assert dns.render_resolv_conf([]) == ""
    with pytest.raises(InvalidArgument):
        dns.render_resolv_conf(["1.1.1.1\nnameserver 6.6.6.6"])


LOCALHOST = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def test_render_hosts() -> None:
    assert dns.render_hosts([]) == LOCALHOST
    text = dns.render_hosts([(ip_address("172.18.0.2"), "web", "web.net"), ("10.0.0.5", "db")])
    assert text == LOCALHOST + "172.18.0.2\tweb web.net\n10.0.0.5\tdb\n"
    assert dns.render_hosts([], ipv6=False) == "127.0.0.1\tlocalhost\n"
    for bad in [("10.0.0.5",), ("10.0.0.5", "a b")]:
        with pytest.raises(InvalidArgument, match="hosts entry"):
            dns.render_hosts([bad])


@given(st.text(max_size=30))
def test_parsers_raise_only_invalid_argument(text: str) -> None:
    for parse in (dns.parse_dns, dns.parse_dns_search, dns.parse_dns_option):
        with contextlib.suppress(InvalidArgument):
            parse(text)
