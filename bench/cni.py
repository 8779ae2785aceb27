"""Benchmark: CNI ADD and DEL latency of boxnet-cni, next to the reference bridge plugin.

    .venv/bin/python -m bench.cni [--rounds 50]

Own lab (basic_lab; boxnetd in "host"). Each round: ADD of one namespace to a boxnet network
through the plugin exactly as a runtime execs it (CNI_* variables, configuration on stdin), then
DEL; the wall time of each process is one sample (what a runtime waits for). Also measured:
VERSION (the plugin's process start with no request: the floor under ADD) and, as reference,
containernetworking-plugins' `bridge` with `host-local` IPAM (its data dir in the lab's temp
dir), run inside the lab's host namespace so its bridge and iptables rules stay there. Goal
(issue 18): ADD under 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.report import Row, med
from boxnet.lab import Daemon, Lab, Netns, basic_lab, venv_bin
from boxnet.lab.daemon import unix_get

CONSOLE_SCRIPT = venv_bin() / "boxnet-cni"
REFERENCE = Path("/usr/lib/cni/bridge")


def timed(argv: list[str], env: dict[str, str], conf: dict[str, Any]) -> tuple[float, str]:
    began = time.perf_counter()
    proc = subprocess.run(argv, input=json.dumps(conf), env=env, capture_output=True, text=True)
    took = (time.perf_counter() - began) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[-1]} {env['CNI_COMMAND']}: {proc.stdout} {proc.stderr}")
    return took, proc.stdout


def cni_env(command: str, ns: Netns, cid: str, path: str) -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": ns.path,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": path,
    }


def stats(samples: list[float]) -> str:
    return f"median {med(samples):.1f} ms, min {min(samples):.1f} (n={len(samples)})"


def rounds(argv: list[str], ns: Netns, conf: dict[str, Any], n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ADD": [], "DEL": []}
    path = str(Path(argv[-1]).parent)
    for i in range(n):
        for command in ("ADD", "DEL"):
            took, _ = timed(argv, cni_env(command, ns, f"bench{i}", path), conf)
            out[command].append(took)
    return out


def daemon_metrics(d: Daemon) -> dict[str, list[float]]:
    status, body = unix_get(d.socket, "/boxnet/metrics")
    if status != 200:
        return {}
    return {kind: list(v["RecentMs"]) for kind, v in json.loads(body).items()}


def run(quick: bool = False, n: int | None = None) -> list[Row]:
    n = n or (20 if quick else 50)
    with Lab("bench-cni") as lab:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host)
        ns = lab.netns("cni")
        # What a runtime execs: the wrapper `boxnet-cni install` writes (python -IS).
        plugins = lab.tmpdir / "plugins"
        install = [str(CONSOLE_SCRIPT), "install", str(plugins)]
        subprocess.run(install, check=True, capture_output=True)
        plugin = plugins / "boxnet"
        conf = {
            "cniVersion": "1.1.0",
            "name": "benchcni",
            "type": "boxnet",
            "boxnetHost": f"unix://{d.socket}",
            "ipam": {"subnet": "10.99.5.0/24"},
        }
        rounds([str(plugin)], ns, conf, 1)  # warm-up: creates the network
        ours = rounds([str(plugin)], ns, conf, n)
        env = cni_env("VERSION", ns, "x", str(plugins))
        version = [timed([str(plugin)], env, {"cniVersion": "1.1.0"})[0] for _ in range(n)]
        rows = [
            Row("CNI", f"  in boxnetd: {kind}", stats(ms[-n:]))
            for kind, ms in daemon_metrics(d).items()
            if kind.startswith(("cni.", "external."))
        ] + [
            Row("CNI", "boxnet-cni ADD (exec -> boxnetd -> result), wall", stats(ours["ADD"]),
                goal="< 10 ms", verdict="met" if med(ours["ADD"]) < 10 else "MISSED"),
            Row("CNI", "boxnet-cni DEL, wall", stats(ours["DEL"])),
            Row("CNI", "boxnet-cni VERSION (process start, no request)", stats(version)),
        ]  # fmt: skip
        if REFERENCE.exists():
            data_dir = lab.tmpdir / "host-local"
            ref_conf = {
                "cniVersion": "1.0.0",
                "name": "benchref",
                "type": "bridge",
                "bridge": "cniref0",
                "isGateway": True,
                "ipMasq": True,
                "ipam": {"type": "host-local", "subnet": "10.99.6.0/24", "dataDir": str(data_dir)},
            }
            ref = rounds(basic.host.argv([str(REFERENCE)]), ns, ref_conf, n)
            rows += [
                Row("CNI", "reference: bridge + host-local ADD, wall", stats(ref["ADD"])),
                Row("CNI", "reference: bridge + host-local DEL, wall", stats(ref["DEL"])),
            ]
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 500:
        parser.error("bounded: --rounds 1..500")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| Section | Measure | Result | Goal | Verdict |\n|---|---|---|---|---|")
    for row in run(n=args.rounds):
        print(f"| {row.section} | {row.measure} | {row.result} | {row.goal} | {row.verdict} |")


if __name__ == "__main__":
    main()
