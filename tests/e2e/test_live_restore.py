"""Live restore (issue 8 §1) and a bounded soak: the daemon is killed with SIGKILL at random
moments of parallel churn, and the invariants hold afterwards (issue 8 §5)."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e

SOAK_ROUNDS = 4
SOAK_WORKERS = 4
SOAK_ROUND_SECONDS = 4.0


def inspect(d: Daemon, name: str) -> dict[str, Any]:
    return dict(json.loads(d.cli("inspect", "--format", "json", name).stdout)[0])


def fetch_from_outside(basic: BasicLab, url: str) -> dict[str, Any] | None:
    res = basic.outside.run(["curl", "-s", "-m", "3", url], check=False)
    return json.loads(res.stdout) if res.returncode == 0 and res.stdout else None


def echo_command() -> list[str]:
    from boxnet.lab import echo_server_argv

    return echo_server_argv(80)


def test_kill_9_keeps_containers_and_their_ports_working(lab: Lab) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)
    d.cli("run", "-d", "--name", "web", "-p", "8080:80", "host", *echo_command())
    deadline = time.monotonic() + 10
    while fetch_from_outside(basic, "http://203.0.113.2:8080/") is None:
        assert time.monotonic() < deadline, "the published port never answered"
        time.sleep(0.2)
    pid = inspect(d, "web")["State"]["Pid"]
    d.kill(signal.SIGKILL)
    d.wait(10)
    # Daemon gone: the container and its published port keep working (kernel data path).
    seen = fetch_from_outside(basic, "http://203.0.113.2:8080/")
    assert seen is not None and seen["client"] == "203.0.113.1"
    d.start()
    state = inspect(d, "web")["State"]
    assert state["Running"] and state["Pid"] == pid
    assert "web" in d.cli("ps").stdout
    assert d.cli("port", "web").stdout.strip() == "80/tcp -> 0.0.0.0:8080"
    assert fetch_from_outside(basic, "http://203.0.113.2:8080/") is not None
    d.cli("logs", "web")
    d.cli("rm", "-f", "web")
    assert fetch_from_outside(basic, "http://203.0.113.2:8080/") is None


def invariants(basic: BasicLab, d: Daemon) -> list[str]:
    """Everything the kernel has is owned by a record and vice versa (empty list = holds)."""
    problems = []
    running = [x for x in d.cli("ps", "-q", "--no-trunc").stdout.split()]
    infos = [inspect(d, cid) for cid in running]
    owned_veths = {
        n["HostInterfaceName"]
        for i in infos
        for n in i["NetworkSettings"]["Networks"].values()
        if n.get("HostInterfaceName")
    }
    veths = {x["ifname"] for x in basic.host.ip_json("link") if x.get("master") == "boxnet0"}
    if veths - owned_veths:
        problems.append(f"veths {sorted(veths - owned_veths)} without an owner")
    if owned_veths - veths:
        problems.append(f"veths {sorted(owned_veths - veths)} owned but missing in the kernel")
    addresses = [i["NetworkSettings"]["IPAddress"] for i in infos]
    if len(addresses) != len(set(addresses)):
        problems.append(f"duplicate addresses {addresses}")
    pub = json.loads(
        basic.host.run(["nft", "-j", "list", "map", "inet", "boxnet", "pub_any"]).stdout
    )
    elements = next(x["map"].get("elem", []) for x in pub["nftables"] if "map" in x)
    published = sum(len(i["NetworkSettings"]["Ports"].get("80/tcp") or []) for i in infos)
    if len(elements) != published:
        problems.append(f"{len(elements)} DNAT elements for {published} published ports")
    netns = {p.name for p in (d.exec_root / "netns").glob("*")}
    if netns != {cid[:12] for cid in running}:
        problems.append(f"netns files {sorted(netns)} vs running {running}")
    return problems


def settled_invariants(basic: BasicLab, d: Daemon, seconds: float = 5.0) -> list[str]:
    """The kernel frees a dead namespace's veth asynchronously: give it a moment, then judge.
    A real leak outlives the wait and is reported."""
    deadline = time.monotonic() + seconds
    while True:
        problems = invariants(basic, d)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.2)


def test_soak_with_random_daemon_crashes(lab: Lab) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)
    rng = random.Random(20261128)
    counter = iter(range(1_000_000))
    violations: list[str] = []
    for _round in range(SOAK_ROUNDS):
        stop = threading.Event()

        def churn(stop: threading.Event = stop) -> None:
            while not stop.is_set():
                name = f"soak{next(counter)}"
                d.cli(
                    "run",
                    "-d",
                    "--name",
                    name,
                    "-p",
                    "80",
                    "busybox",
                    "sleep",
                    "1000",
                    check=False,
                    timeout=30,
                )
                if rng.random() < 0.6:
                    d.cli("rm", "-f", name, check=False, timeout=30)

        workers = [threading.Thread(target=churn) for _ in range(SOAK_WORKERS)]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.5, SOAK_ROUND_SECONDS))
        d.kill(signal.SIGKILL)
        d.wait(10)
        stop.set()
        for w in workers:
            w.join(60)
        d.start()
        violations += settled_invariants(basic, d)
    assert violations == []
    # Finally everything can be removed and nothing stays behind.
    for cid in d.cli("ps", "-aq", "--no-trunc").stdout.split():
        d.cli("rm", "-f", cid)
    assert settled_invariants(basic, d) == []
