"""Concurrency: many parallel `run -d -p 80` and `rm -f` all succeed with unique addresses and
ports, and leave nothing behind (issue 8 §5)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from boxnet.lab import Lab, basic_lab

pytestmark = pytest.mark.e2e

PARALLEL = 50


def test_parallel_runs_and_removals(lab: Lab) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)

    def start(i: int) -> str:
        res = d.cli(
            "run",
            "-d",
            "--name",
            f"par{i}",
            "-p",
            "80",
            "busybox",
            "sleep",
            "1000",
            check=False,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        return str(res.stdout.strip())

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(start, range(PARALLEL)))
    assert len(set(ids)) == PARALLEL
    infos = [json.loads(d.cli("inspect", "--format", "json", cid).stdout)[0] for cid in ids]
    addresses = [i["NetworkSettings"]["IPAddress"] for i in infos]
    ports = [i["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"] for i in infos]
    assert len(set(addresses)) == PARALLEL and len(set(ports)) == PARALLEL
    # The kernel agrees: one veth per container on boxnet0, one DNAT element per port.
    veths = [x for x in basic.host.ip_json("link") if x.get("master") == "boxnet0"]
    assert len(veths) == PARALLEL
    pub = json.loads(
        basic.host.run(["nft", "-j", "list", "map", "inet", "boxnet", "pub_any"]).stdout
    )
    elements = next(x["map"].get("elem", []) for x in pub["nftables"] if "map" in x)
    assert len(elements) == PARALLEL

    def remove(cid: str) -> None:
        res = d.cli("rm", "-f", cid, check=False, timeout=120)
        assert res.returncode == 0, res.stderr

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(remove, ids))
    assert d.cli("ps", "-aq").stdout.strip() == ""
    pub = json.loads(
        basic.host.run(["nft", "-j", "list", "map", "inet", "boxnet", "pub_any"]).stdout
    )
    assert next(x["map"].get("elem", []) for x in pub["nftables"] if "map" in x) == []
    log = d.log_path.read_text()
    assert "File exists" not in log and "database is locked" not in log
