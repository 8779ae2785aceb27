"""Name validators and id helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxnet.errors import InvalidArgument
from boxnet.parsing import names


@pytest.mark.parametrize("name", ["web", "web-1", "a.b_c", "0x", "Web.2"])
def test_container_name_ok(name: str) -> None:
    assert names.validate_container_name(name) == name
    assert names.validate_container_name("/" + name) == name


@pytest.mark.parametrize(
    "name", ["", "a", "/", "-web", "_web", ".web", "we b", "wéb", "web/1", "//web"]
)
def test_container_name_bad(name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid container name") as info:
        names.validate_container_name(name)
    assert "[a-zA-Z0-9_.-]" in info.value.message


def test_network_name() -> None:
    assert names.validate_network_name("n") == "n"
    assert names.validate_network_name("my_net.v2-x") == "my_net.v2-x"
    names.validate_network_name("a" * 128)
    assert names.validate_network_name("my net") == "my net"  # Docker accepts spaces
    for bad in ["", "a" * 129, "-net", "net/1", "net\n", " net", "net ", "n\x00"]:
        with pytest.raises(InvalidArgument, match="invalid network name"):
            names.validate_network_name(bad)


def test_dns_names() -> None:
    assert names.validate_dns_label("Db-1") == "db-1"
    assert names.validate_dns_name("DB.Example.internal.") == "db.example.internal"
    assert names.validate_dns_name("a" * 63 + "." + "b" * 63) == "a" * 63 + "." + "b" * 63
    assert names.validate_dns_name("my_db", allow_underscore=True) == "my_db"
    for bad in ["", ".", "a..b", "-a", "a-", "a" * 64, "my_db", "a b", "é", ("a" * 60 + ".") * 5]:
        with pytest.raises(InvalidArgument, match="DNS name"):
            names.validate_dns_name(bad)
    for bad in ["a.b", "a" * 64, "_x", ""]:
        with pytest.raises(InvalidArgument, match="DNS label"):
            names.validate_dns_label(bad)


def test_hostname() -> None:
    assert names.validate_hostname("Web-1.local") == "Web-1.local"
    for bad in ["a" * 64, "web_1", "web.", "-web", "", "we b"]:
        with pytest.raises(InvalidArgument, match="invalid hostname"):
            names.validate_hostname(bad)


def test_ifname() -> None:
    for ok in ["br0", "br-0123456789ab", "a" * 15, "boxnet0"]:
        assert names.validate_ifname(ok) == ok
    for bad in [
        "",
        "a" * 16,
        ".",
        "..",
        "br/0",
        "br:0",
        "br%d",
        "br 0",
        "br\t0",
        "br\x00",
        "éééééééé",
    ]:
        with pytest.raises(InvalidArgument, match="invalid interface name"):
            names.validate_ifname(bad)


def test_image_name() -> None:
    for ok in [
        "busybox",
        "host",
        "library/busybox:1.36",
        "registry.example:5000/team/app:v1",
        "localhost/a__b/c-d.e",
        "app@sha256:" + "a" * 64,
    ]:
        assert names.validate_image_name(ok) == ok
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        names.validate_image_name("BusyBox")
    for bad in ["", "busy box", "a:b:c", "a/", "/a", "a:" + "t" * 129, "a" * 256, "a@sha256:xyz"]:
        with pytest.raises(InvalidArgument, match="invalid image name"):
            names.validate_image_name(bad)


def test_ids() -> None:
    a, b = names.new_id(), names.new_id()
    assert a != b and len(a) == 64 and names.is_id_prefix(a)
    assert names.short_id(a) == a[:12]
    assert names.short_id("sha256:" + a) == a[:12]
    assert names.short_id("abc") == "abc"
    assert names.is_id_prefix("0f")
    for bad in ["", "xyz", "ABC", "a" * 65, "0f "]:
        assert not names.is_id_prefix(bad)


VALIDATORS = [
    names.validate_container_name,
    names.validate_network_name,
    names.validate_dns_label,
    names.validate_dns_name,
    names.validate_hostname,
    names.validate_ifname,
    names.validate_image_name,
]


@given(st.text(max_size=70))
def test_validators_raise_only_invalid_argument(text: str) -> None:
    for validate in VALIDATORS:
        try:
            assert validate(text)
        except InvalidArgument as err:
            assert text in err.message
