"""boxnet-cni's pure side (boxnet.cni.codec): the spec's environment, configurations, results
and error codes, without a daemon."""

from __future__ import annotations

import json
from typing import Any

import pytest

from boxnet.cni import codec
from boxnet.cni.codec import CniError

BASE_ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "abc123",
    "CNI_NETNS": "/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin:/usr/lib/cni",
}

ANSWER: dict[str, Any] = {
    "HostInterface": {"Name": "veth1234567", "Mac": "aa:aa:aa:aa:aa:aa"},
    "Interface": {"Name": "eth0", "Mac": "02:42:0a:63:07:02", "Sandbox": "/run/netns/x"},
    "IPs": [
        {"Address": "10.99.7.2/24", "Gateway": "10.99.7.1"},
        {"Address": "fd00::2/64", "Gateway": "fd00::1"},
    ],
    "Routes": [{"Dst": "0.0.0.0/0", "Gw": "10.99.7.1"}, {"Dst": "::/0", "Gw": "fd00::1"}],
    "DNS": {"Nameservers": ["127.0.0.11"], "Search": []},
}


def code_of(fn: Any, *args: Any) -> int:
    with pytest.raises(CniError) as info:
        fn(*args)
    return info.value.code


def conf(**extra: Any) -> bytes:
    return json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "boxnet", **extra}).encode()


def test_env_for_add() -> None:
    env = codec.parse_env({**BASE_ENV, "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web"})
    assert (env.command, env.container_id, env.netns, env.ifname) == (
        "ADD",
        "abc123",
        "/run/netns/x",
        "eth0",
    )
    assert env.args == {"IgnoreUnknown": "1", "K8S_POD_NAME": "web"}
    assert env.path == ("/opt/cni/bin", "/usr/lib/cni")


@pytest.mark.parametrize(
    "change",
    [
        {"CNI_COMMAND": ""},
        {"CNI_COMMAND": "ATTACH"},
        {"CNI_CONTAINERID": ""},
        {"CNI_CONTAINERID": "has space"},
        {"CNI_NETNS": ""},
        {"CNI_IFNAME": ""},
        {"CNI_IFNAME": "a-name-of-16-byt"},
        {"CNI_IFNAME": "eth:0"},
        {"CNI_PATH": ""},
        {"CNI_ARGS": "novalue"},
    ],
)
def test_env_errors_are_code_4(change: dict[str, str]) -> None:
    assert code_of(codec.parse_env, {**BASE_ENV, **change}) == codec.INVALID_ENV


def test_del_needs_no_netns_and_version_needs_nothing() -> None:
    assert codec.parse_env({**BASE_ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": ""}).netns == ""
    assert codec.parse_env({"CNI_COMMAND": "VERSION"}).command == "VERSION"


def test_config_errors() -> None:
    assert code_of(codec.decode_config, b"{nope") == codec.DECODE_FAILURE
    assert code_of(codec.decode_config, b"[1]") == codec.DECODE_FAILURE
    assert code_of(codec.decode_config, b"\xff") == codec.DECODE_FAILURE
    assert code_of(codec.decode_config, b'{"name": "n", "type": "t"}') == codec.INVALID_CONFIG
    bad_version = b'{"cniVersion": "0.2.0", "name": "n", "type": "t"}'
    assert code_of(codec.decode_config, bad_version) == codec.INCOMPATIBLE_VERSION
    assert code_of(codec.decode_config, b'{"cniVersion": "1.0.0", "type": "t"}') == 7


def test_version_info() -> None:
    assert codec.version_info(b"")["cniVersion"] == codec.LATEST
    assert codec.version_info(b'{"cniVersion": "0.4.0"}')["cniVersion"] == "0.4.0"
    assert code_of(codec.version_info, b'{"cniVersion": "3.0.0"}') == 1


def test_verbs_newer_than_the_config() -> None:
    assert code_of(codec.requires, "1.0.0", "1.1.0", "GC") == codec.INCOMPATIBLE_VERSION
    codec.requires("1.1.0", "1.1.0", "GC")


def test_attach_body_reads_ipam_capabilities_and_args() -> None:
    config = codec.decode_config(
        conf(
            network="boxnet-net",
            ipam={"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24", "gateway": ""}]]},
            runtimeConfig={
                "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
                "aliases": {"n": ["web", "www"], "other": ["nope"]},
                "ips": ["fd00::5/64", "10.1.0.5/24"],
            },
        )
    )
    env = codec.parse_env({**BASE_ENV, "CNI_ARGS": "K8S_POD_NAME=pod1"})
    body = codec.attach_body(config, env)
    assert body["Network"] == "boxnet-net"
    assert (body["Subnet"], body["Gateway"]) == ("10.1.0.0/24", "")
    assert body["Aliases"] == ["web", "www"]
    assert body["Name"] == "pod1"
    assert body["IP"] == "10.1.0.5"
    assert body["PortMappings"][0]["hostPort"] == 8080
    assert body["NoDNS"] is False
    assert codec.identity(config, env) == {
        "ContainerID": "abc123",
        "IfName": "eth0",
        "Network": "boxnet-net",
    }


def test_attach_body_refuses_a_delegated_ipam() -> None:
    config = codec.decode_config(conf(ipam={"type": "dhcp"}))
    env = codec.parse_env(BASE_ENV)
    assert code_of(codec.attach_body, config, env) == codec.INVALID_CONFIG


def test_result_shape_per_version() -> None:
    new = codec.result("1.0.0", ANSWER)
    assert new["interfaces"][1] == {
        "name": "eth0",
        "mac": "02:42:0a:63:07:02",
        "sandbox": "/run/netns/x",
    }
    assert "sandbox" not in new["interfaces"][0]
    assert new["ips"][0] == {"address": "10.99.7.2/24", "gateway": "10.99.7.1", "interface": 1}
    assert new["routes"][1] == {"dst": "::/0", "gw": "fd00::1"}
    assert new["dns"] == {"nameservers": ["127.0.0.11"]}
    old = codec.result("0.4.0", ANSWER)
    assert [ip["version"] for ip in old["ips"]] == ["4", "6"]
    assert old["cniVersion"] == "0.4.0"


def test_result_without_host_interface_points_at_index_0() -> None:
    answer = {**ANSWER, "HostInterface": None}
    assert codec.result("1.1.0", answer)["ips"][0]["interface"] == 0


def test_gc_body_and_prev_result() -> None:
    config = codec.decode_config(
        conf(**{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]})
    )
    assert codec.gc_body(config) == {
        "Network": "n",
        "Valid": [{"ContainerID": "a", "IfName": "eth0"}],
    }
    prev = {"prevResult": {"ips": [{"address": "10.99.7.3/24"}]}}
    assert codec.check_prev_result({**config, **prev}, ANSWER) == [
        "address 10.99.7.3/24 of prevResult is not attached"
    ]


def test_daemon_errors_map_to_spec_codes() -> None:
    body = json.dumps({"message": "network x not found", "hint": "create it"}).encode()
    err = codec.error_from_daemon(400, body)
    assert (err.code, err.msg, err.details) == (7, "boxnetd: network x not found", "create it")
    assert codec.error_from_daemon(404, body).code == codec.UNKNOWN_CONTAINER
    assert codec.error_from_daemon(503, b"down").code == codec.TRY_AGAIN_LATER
    assert codec.error_from_daemon(409, b"{}").code == codec.BOXNET_FAILED
    assert err.to_json("1.0.0") == {
        "cniVersion": "1.0.0",
        "code": 7,
        "msg": "boxnetd: network x not found",
        "details": "create it",
    }
