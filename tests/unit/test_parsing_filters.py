"""Docker's list filters: both JSON encodings, label rules, ports, refusals (parsing/filters.py),
and the run flags' parsers (parsing/runflags.py)."""

from __future__ import annotations

import json

import pytest

from boxnet.errors import InvalidArgument
from boxnet.model import BindMount
from boxnet.parsing import filters as F
from boxnet.parsing import runflags


def test_both_encodings_give_the_same_filters() -> None:
    cli = json.dumps({"name": {"web": True}, "label": {"a=1": True, "b": True}})
    sdk = json.dumps({"name": ["web"], "label": ["a=1", "b"]})
    assert F.parse(cli, {"name", "label"}) == F.parse(sdk, {"name", "label"})
    assert F.parse(cli, {"name", "label"}) == {"name": ["web"], "label": ["a=1", "b"]}
    assert F.parse(json.dumps({"name": {"off": False}}), {"name"}) == {}
    assert F.parse(None, ()) == {} and F.parse("", ()) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ("[1]", "expected a JSON object"),
        ('{"name": [1]}', "expected a list of strings"),
        ('{"colour": ["red"]}', "invalid filter 'colour'"),
    ],
)
def test_bad_filters_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        F.parse(text, {"name"})


def test_cli_flags_encode_as_the_docker_cli_does() -> None:
    assert F.from_cli(["label=a=1", "label=b", "Name=web"]) == {
        "label": {"a=1": True, "b": True},
        "name": {"web": True},
    }
    with pytest.raises(InvalidArgument, match="expected name=value"):
        F.from_cli(["status"])


def test_labels_must_all_hold() -> None:
    labels = {"com.docker.compose.project": "a", "tier": "front"}
    assert F.labels_match(labels, ["com.docker.compose.project=a", "tier"])
    assert not F.labels_match(labels, ["com.docker.compose.project=ab"])
    assert not F.labels_match(labels, ["com.docker.compose.project=a", "missing"])
    assert F.labels_match(labels, ["tier!=back"]) and not F.labels_match(labels, ["tier!=front"])
    assert F.labels_match({}, [])


def test_names_match_as_regular_expressions_and_values_are_alternatives() -> None:
    assert F.name_matches("web", "my-web-1") and F.name_matches("^/web$", "web")
    assert not F.name_matches("^web2", "web")
    with pytest.raises(InvalidArgument, match="invalid name filter"):
        F.name_matches("(", "web")
    f = {"status": ["running", "exited"]}
    assert F.any_value(f, "status", "exited".__eq__) and not F.any_value(f, "status", "x".__eq__)
    assert F.any_value(f, "name", lambda v: False)  # not filtered on


def test_ports_and_booleans() -> None:
    assert F.port_set("publish", "80") == {"80/tcp"}
    assert F.port_set("expose", "53-54/udp") == {"53/udp", "54/udp"}
    for bad in ("x", "0", "80/icmp", "9-8"):
        with pytest.raises(InvalidArgument, match="invalid filter"):
            F.port_set("publish", bad)
    assert F.boolean("dangling", "1") and not F.boolean("dangling", "false")
    with pytest.raises(InvalidArgument):
        F.boolean("dangling", "maybe")


def test_binds_and_mounts() -> None:
    assert runflags.parse_bind("/srv:/data:ro") == BindMount("/srv", "/data", True)
    assert runflags.parse_bind("/srv:/data//x/") == BindMount("/srv", "/data/x", False)
    # a source that is not a path names a volume; no source: an anonymous volume
    assert runflags.parse_bind("data:/x") == BindMount("data", "/x", False)
    assert runflags.parse_bind("/x") == BindMount("", "/x", False)
    for spec, message in (
        ("/a:b", "mount path must be absolute"),
        ("/a:/", "destination can't be '/'"),
        ("/a:/b:rx", "invalid mode: rx"),
        ("/a:/b:ro,rw", "invalid mode"),
        ("/a:/b:rshared", "bind propagation 'rshared' is not supported"),
    ):
        with pytest.raises(InvalidArgument, match=message):
            runflags.parse_bind(spec)
    mount = runflags.parse_mount_flag("type=bind,src=/a,dst=/b,readonly")
    assert mount == {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True}
    assert runflags.parse_mount_flag("type=volume,target=/x")["Type"] == "volume"
    assert runflags.mount_to_bind("volume", "", "/x", False) == BindMount("", "/x", False)
    assert runflags.mount_to_bind("volume", "v", "/x", True, "sub") == BindMount(
        "v:sub", "/x", True
    )
    with pytest.raises(InvalidArgument, match="invalid volume subpath"):
        runflags.mount_to_bind("volume", "v", "/x", False, "../up")
    with pytest.raises(InvalidArgument, match='mount type "npipe"'):
        runflags.mount_to_bind("npipe", "", "/x", False)
    with pytest.raises(InvalidArgument, match="unexpected key 'size'"):
        runflags.parse_mount_flag("type=bind,source=/a,target=/b,size=1")


def test_restart_user_link_workdir() -> None:
    assert runflags.parse_restart("on-failure:3") == ("on-failure", 3)
    assert runflags.parse_restart("unless-stopped") == ("unless-stopped", 0)
    assert runflags.parse_restart("") == ("no", 0)
    for bad, message in (
        ("sometimes", "unknown policy 'sometimes'"),
        ("always:2", "can only be used with 'on-failure'"),
        ("on-failure:x", "must be an integer"),
    ):
        with pytest.raises(InvalidArgument, match=message):
            runflags.parse_restart(bad)
    assert runflags.parse_user("1000:1000") == "1000:1000"
    for bad in ("", ":1", "a:", "a:b:c", "a b"):
        with pytest.raises(InvalidArgument, match="invalid user"):
            runflags.parse_user(bad)
    assert runflags.parse_link("db") == ("db", "db")
    assert runflags.parse_link("/my_db:dbalias") == ("my_db", "dbalias")
    with pytest.raises(InvalidArgument, match="working directory 'w' is invalid"):
        runflags.parse_workdir("w")


def test_tmpfs_options() -> None:
    assert runflags.parse_tmpfs("/run/", "rw,size=64m") == ("/run", "rw,size=64m")
    assert runflags.parse_tmpfs("/x", "") == ("/x", "")
    with pytest.raises(InvalidArgument, match="invalid tmpfs option 'bogus'"):
        runflags.parse_tmpfs("/x", "bogus")
    with pytest.raises(InvalidArgument, match="must be absolute"):
        runflags.parse_tmpfs("x", "")


def test_tmpfs_mount_flag() -> None:
    mount = runflags.parse_mount_flag("type=tmpfs,target=/t,tmpfs-size=1g,tmpfs-mode=700")
    assert mount["TmpfsOptions"] == {"SizeBytes": 1 << 30, "Mode": 0o700}
    for bad, message in (("tmpfs-size=lots", "invalid size"), ("tmpfs-mode=9", "invalid mode")):
        with pytest.raises(InvalidArgument, match=message):
            runflags.parse_mount_flag(f"type=tmpfs,target=/t,{bad}")
