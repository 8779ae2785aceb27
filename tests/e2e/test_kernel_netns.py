"""kernel.netns and kernel.ifctl on real namespaces made by the test (under a temp dir).

Observers: `nsenter --net=<file> ip -j link` / `nft list tables` and the sockets' own namespace
inode.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from boxnet.kernel import ifctl, netns

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)"),
    pytest.mark.skipif(not shutil.which("nsenter"), reason="needs nsenter"),
]


def ip_json(path: Path, *args: str) -> list[dict[str, object]]:
    argv = ["nsenter", f"--net={path}", "ip", "-j", *args]
    return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def test_a_new_namespace_has_lo_up_and_hands_out_its_prepared_sockets(tmp_path: Path) -> None:
    path = tmp_path / "ns1"
    netns.create_netns(path, prepare=[netns.NETLINK, netns.UDP])
    try:
        (lo,) = ip_json(path, "link", "show", "lo")
        assert "UP" in lo["flags"]
        udp = netns.socket_in(path, socket.AF_INET, socket.SOCK_DGRAM)
        with udp:
            # Bound to 127.0.0.1 of the new namespace: only possible there with lo up.
            udp.bind(("127.0.0.1", 0))
            assert ifctl.index(udp.fileno(), "lo") == 1
        nl = netns.netlink_socket_in(path)  # the prepared one, then fresh ones
        nl.close()
        again = netns.netlink_socket_in(path)
        again.close()
    finally:
        netns.delete_netns(path)
    assert not path.exists()


def test_ifctl_brings_an_interface_up_in_the_sockets_namespace(tmp_path: Path) -> None:
    path = tmp_path / "ns2"
    netns.create_netns(path)
    try:
        subprocess.run(
            ["nsenter", f"--net={path}", "ip", "link", "add", "bxt0", "type", "veth",
             "peer", "name", "bxt1"],
            check=True,
        )  # fmt: skip
        sock = netns.socket_in(path, socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            index = ifctl.index(sock.fileno(), "bxt0")
            ifctl.set_up(sock.fileno(), "bxt0")
            ifctl.set_up(sock.fileno(), "bxt0")  # already up: nothing to do
            with pytest.raises(OSError):
                ifctl.index(sock.fileno(), "bx-none")
        (link,) = ip_json(path, "link", "show", "bxt0")
        assert link["ifindex"] == index
        assert "UP" in link["flags"]
        (peer,) = ip_json(path, "link", "show", "bxt1")
        assert "UP" not in peer["flags"]  # only the one asked for
    finally:
        netns.delete_netns(path)


# Run under `unshare -n`: should a context act on its caller's namespace after all, the stray
# table lands in a throwaway namespace, never in the one the tests run in.
NFT_PROBE = r"""
import json, subprocess, sys
from pathlib import Path
from boxnet.kernel import netns, netns_nft
path = Path(sys.argv[1])
netns.create_netns(path, nftables=True)
try:
    for name in ("prepared", "fresh"):  # the context made at creation, then one made on demand
        rc, _out, err = netns_nft.nftables_in(path).cmd(f"add table ip bxt-{name}")
        assert rc == 0, err
    inner = subprocess.run(["nsenter", f"--net={path}", "nft", "list", "tables"],
                           check=True, capture_output=True, text=True).stdout
    caller = subprocess.run(["nft", "list", "tables"], check=True, capture_output=True,
                            text=True).stdout
    print(json.dumps([inner, caller]))
finally:
    netns.delete_netns(path)
"""


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare")
def test_an_nftables_context_acts_on_the_namespace_it_was_made_in(tmp_path: Path) -> None:
    r = subprocess.run(
        ["unshare", "-n", sys.executable, "-I", "-c", NFT_PROBE, str(tmp_path / "ns3")],
        check=True, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(netns.__file__).parents[2])},
    )  # fmt: skip
    inner, caller = json.loads(r.stdout)
    assert "table ip bxt-prepared" in inner and "table ip bxt-fresh" in inner, inner
    assert caller == "", caller


def test_address_dumps_of_one_link_match_ip_addr(tmp_path: Path) -> None:
    # kernel.dump.addresses(family, index): filtered by the kernel (strict dump), parsed by
    # hand; addressing.addresses / global_ipv6_addresses read a bridge's own through it.
    path = tmp_path / "ns3"
    netns.create_netns(path)
    enter = ["nsenter", f"--net={path}"]
    try:
        for cmd in (
            "link add bxt0 type veth peer name bxt1",
            "sysctl -qw net.ipv6.conf.bxt0.disable_ipv6=0",
            "addr add 10.99.3.1/24 dev bxt0",
            "addr add 10.99.4.1/25 dev bxt0",
            "addr add 10.99.5.1/24 dev bxt1",
            "addr add 2001:db8:3::1/64 dev bxt0 nodad",
            "link set bxt0 up",
            "link set bxt1 up",
        ):
            argv = cmd.split() if cmd.startswith("sysctl") else ["ip", *cmd.split()]
            subprocess.run([*enter, *argv], check=True)
        code = (
            "import json, socket; from boxnet.kernel import addressing;"
            "i = socket.if_nametoindex('bxt0');"
            "print(json.dumps([[str(a) for a in addressing.addresses(i)],"
            " [str(a) for a in addressing.global_ipv6_addresses(i)]]))"
        )
        out = subprocess.run(
            [*enter, sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
        v4, v6 = json.loads(out)
        (shown,) = ip_json(path, "addr", "show", "dev", "bxt0")
        infos = shown["addr_info"]  # type: ignore[index]
        assert (
            sorted(v4)
            == sorted(f"{a['local']}/{a['prefixlen']}" for a in infos if a["family"] == "inet")
            == ["10.99.3.1/24", "10.99.4.1/25"]
        )
        # the kernel's link-local fe80:: (bxt0 is up) is left out
        assert v6 == ["2001:db8:3::1/64"]
        assert any(a["family"] == "inet6" and a["scope"] == "link" for a in infos)
    finally:
        netns.delete_netns(path)
