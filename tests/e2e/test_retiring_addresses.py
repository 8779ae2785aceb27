"""A removed container's addresses retire with its interface (core/leasing.py, issue 20).

`rm -f` no longer takes the kernel's routing lock: the host veth is deleted after the answer,
on the daemon's slow netlink lane, and a start that gets one of its addresses (the lowest free
one, or `--ip`) waits until it is gone. To see that window, this daemon's slow lane waits 1.5 s
before each deferred deletion (the wrapper below; everything else is boxnetd as shipped).

Observers: `ip -j link` and `ip -j addr` in the daemon's namespace and in the containers',
ping between containers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from boxnet.lab import Daemon, Lab, Netns, venv_bin

pytestmark = pytest.mark.e2e

DELAY = 1.5
SLOW_DELETIONS = f"""
import sys, time
from boxnet.kernel import iproute
_run_deferred = iproute.OwnedIPRoute._run_deferred
def _slowly(self, name, args, kwargs, then):
    if name == "link" and args[:1] == ("del",):
        time.sleep({DELAY})
    return _run_deferred(self, name, args, kwargs, then)
iproute.OwnedIPRoute._run_deferred = _slowly
from boxnet.daemon import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    lab = Lab("retiring")
    try:
        d = lab.boxnetd(lab.netns("host"), exe=[str(venv_bin() / "python"), "-c", SLOW_DELETIONS])
        d.cli("network", "create", "--subnet", "10.99.7.0/24", "rt")
        yield d
    finally:
        lab.close()


def start(d: Daemon, name: str, *args: str) -> tuple[str, str]:
    """Run a container on network rt; (its address, its host veth)."""
    d.cli("run", "-d", "--network", "rt", "--name", name, *args, "busybox", "sleep", "600")
    doc = json.loads(d.cli("inspect", name).stdout)[0]
    ip = doc["NetworkSettings"]["Networks"]["rt"]["IPAddress"]
    return ip, veth_of(d, name)


def pid_of(d: Daemon, name: str) -> int:
    return int(json.loads(d.cli("inspect", name).stdout)[0]["State"]["Pid"])


def veth_of(d: Daemon, name: str) -> str:
    """The host end of name's eth0: the link whose index is eth0's peer (ip -j, inside)."""
    argv = ["nsenter", "-t", str(pid_of(d, name)), "-n", "ip", "-j", "link", "show", "eth0"]
    peer = json.loads(d.ns.run(argv).stdout)[0]["link_index"]
    return next(str(x["ifname"]) for x in d.ns.ip_json("link") if x["ifindex"] == peer)


def links(host: Netns) -> set[str]:
    return {str(x["ifname"]) for x in host.ip_json("link")}


def test_rm_answers_before_the_deletion_and_the_address_waits(daemon: Daemon) -> None:
    d, host = daemon, daemon.ns
    old_ip, old_veth = start(d, "old")
    # Something still holds the removed container's network namespace (a tool nsenter'd in,
    # say): its interface outlives the container until boxnetd deletes it.
    held = os.open(f"/proc/{pid_of(d, 'old')}/ns/net", os.O_RDONLY)
    try:
        check_window(d, host, old_ip, old_veth)
    finally:
        os.close(held)


def check_window(d: Daemon, host: Netns, old_ip: str, old_veth: str) -> None:
    d.cli("rm", "-f", "old")
    # rm answered; the slowed deletion has not run yet: the veth is still there, up.
    assert old_veth in links(host)
    # The next container gets the lowest free address, the old one, once that veth is gone.
    ip, veth = start(d, "next")
    assert ip == old_ip and old_veth not in links(host) and veth in links(host)
    # Asked for by --ip: the same wait (its namespace held open too, as above).
    held = os.open(f"/proc/{pid_of(d, 'next')}/ns/net", os.O_RDONLY)
    try:
        d.cli("rm", "-f", "next")
        assert veth in links(host)
        again_ip, again_veth = start(d, "again", "--ip", old_ip)
        assert again_ip == old_ip and veth not in links(host) and again_veth in links(host)
    finally:
        os.close(held)
    # Nothing else answers for it: another container reaches the new one there.
    d.cli("run", "-d", "--network", "rt", "--name", "other", "busybox", "sleep", "600")
    d.cli("exec", "other", "ping", "-c", "1", "-W", "2", old_ip)
    holders = [
        a
        for a in host.ip_json("-4", "addr")
        for i in a.get("addr_info", ())
        if i.get("local") == old_ip
    ]
    assert holders == []  # only the new container's namespace has it
    for name in ("other", "again"):
        d.cli("rm", "-f", name)


def test_a_restart_gets_its_own_address_back(daemon: Daemon) -> None:
    d = daemon
    ip, veth = start(d, "rs")
    d.cli("restart", "-t", "0", "rs")  # the old veth is still being deleted (slowed) meanwhile
    again = json.loads(d.cli("inspect", "rs").stdout)[0]["NetworkSettings"]["Networks"]["rt"]
    assert again["IPAddress"] == ip
    assert veth not in links(d.ns)  # it waited for its old interface: one holder only
    d.cli("rm", "-f", "rs")
