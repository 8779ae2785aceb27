"""Benchmark: CNI ADD and DEL latency of boxnet-cni (C and Python), next to the reference plugins.

    .venv/bin/python -m bench.cni [--rounds 50]

Own lab (basic_lab; boxnetd in "host"). Each round, for each of three plugins in turn (so all
three share the machine's load of the moment): a fresh namespace, as a runtime makes one per
container, then ADD of it to a network through the plugin exactly as a runtime execs it (CNI_*
variables, configuration on stdin), then DEL; the wall time of each process is one sample
(what a runtime waits for). The plugins:
- boxnet-cni (C): the executable `make install` builds, copied by `boxnet-cni install DIR`;
- boxnet-cni (Python): the reference, as `boxnet-cni install DIR --python` writes it (a
  `python -IS` wrapper); both send boxnetd the same request (cni/verbs.py);
- containernetworking-plugins' `bridge` with `host-local` IPAM (its data dir in the lab's temp
  dir), run through nsenter in the lab's host namespace so its bridge and iptables rules stay
  there (nsenter's exec is in its samples: ~1 ms).
Also: VERSION of both boxnet plugins (answered by boxnetd: the floor under ADD) and the
`in boxnetd` rows (GET /boxnet/metrics). Goal (issue 18): ADD under 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.report import Row, lat, med
from boxnet.lab import Daemon, Lab, Netns, basic_lab, venv_bin
from boxnet.lab.daemon import unix_get

CONSOLE_SCRIPT = venv_bin() / "boxnet-cni"
REFERENCE = Path("/usr/lib/cni/bridge")


def timed(argv: list[str], env: dict[str, str], conf: dict[str, Any]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(argv, input=json.dumps(conf), env=env, capture_output=True, text=True)
    took = (time.perf_counter() - began) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[-1]} {env['CNI_COMMAND']}: {proc.stdout} {proc.stderr}")
    return took


def cni_env(command: str, ns: Netns | None, cid: str, path: str) -> dict[str, str]:
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": ns.path if ns is not None else "",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": path,
    }


class Plugin:
    """One plugin under test: its argv, its configuration, its samples."""

    def __init__(self, name: str, argv: list[str], conf: dict[str, Any]) -> None:
        self.name = name
        self.argv = argv
        self.conf = conf
        self.path = str(Path(argv[-1]).parent)
        self.samples: dict[str, list[float]] = {"ADD": [], "DEL": []}

    def round(self, ns: Netns, cid: str, keep: bool = True) -> None:
        for command in ("ADD", "DEL"):
            took = timed(self.argv, cni_env(command, ns, cid, self.path), self.conf)
            if keep:
                self.samples[command].append(took)


def daemon_metrics(d: Daemon) -> dict[str, list[float]]:
    status, body = unix_get(d.socket, "/boxnet/metrics")
    if status != 200:
        return {}
    return {kind: list(v["RecentMs"]) for kind, v in json.loads(body).items()}


def plugins(lab: Lab, d: Daemon, host: Netns) -> list[Plugin]:
    """The C and Python boxnet-cni, as `boxnet-cni install` puts them into a plugin directory,
    and the reference bridge + host-local when containernetworking-plugins is there."""
    out = []
    for name, extra in (("boxnet-cni (C)", []), ("boxnet-cni (Python)", ["--python"])):
        directory = lab.tmpdir / ("plugins-py" if extra else "plugins-c")
        install = [str(CONSOLE_SCRIPT), "install", str(directory), *extra]
        subprocess.run(install, check=True, capture_output=True)
        conf = {
            "cniVersion": "1.1.0",
            "name": "benchcni",
            "type": "boxnet",
            "boxnetHost": f"unix://{d.socket}",
            "ipam": {"subnet": "10.99.5.0/24"},
        }
        out.append(Plugin(name, [str(directory / "boxnet")], conf))
    if REFERENCE.exists():
        ref_conf = {
            "cniVersion": "1.0.0",
            "name": "benchref",
            "type": "bridge",
            "bridge": "cniref0",
            "isGateway": True,
            "ipMasq": True,
            "ipam": {
                "type": "host-local",
                "subnet": "10.99.6.0/24",
                "dataDir": str(lab.tmpdir / "host-local"),
            },
        }
        out.append(Plugin("reference: bridge + host-local", host.argv([str(REFERENCE)]), ref_conf))
    return out


def run(quick: bool = False, n: int | None = None) -> list[Row]:
    n = n or (20 if quick else 50)
    with Lab("bench-cni") as lab:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host)
        tested = plugins(lab, d, basic.host)
        for p in tested:  # warm-up: creates the networks, loads the page cache
            p.round(lab.netns(f"warm{tested.index(p)}"), "warm", keep=False)
        before = {kind: len(ms) for kind, ms in daemon_metrics(d).items()}
        for i in range(n):
            for j, p in enumerate(tested):
                p.round(lab.netns(f"r{i}-{j}"), f"bench{i}")
        rows = [
            Row("CNI", f"  in boxnetd: {kind}", lat(ms[before.get(kind, 0) :]))
            for kind, ms in daemon_metrics(d).items()
            if kind.startswith(("cni.", "external."))
        ]
        for p in tested:
            add = Row("CNI", f"{p.name} ADD, wall", lat(p.samples["ADD"]))
            if p.name.endswith("(C)"):
                add.goal, add.verdict = "< 10 ms", "met" if med(p.samples["ADD"]) < 10 else "MISSED"
            rows += [add, Row("CNI", f"{p.name} DEL, wall", lat(p.samples["DEL"]))]
        for p in tested[:2]:
            env = cni_env("VERSION", None, "", p.path)
            conf = {"cniVersion": "1.1.0", "boxnetHost": p.conf["boxnetHost"]}
            version = [timed(p.argv, env, conf) for _ in range(n)]
            rows.append(Row("CNI", f"{p.name} VERSION (start + one request)", lat(version)))
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 200:
        parser.error("bounded: --rounds 1..200")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| Section | Measure | Result | Goal | Verdict |\n|---|---|---|---|---|")
    for row in run(n=args.rounds):
        print(f"| {row.section} | {row.measure} | {row.result} | {row.goal} | {row.verdict} |")


if __name__ == "__main__":
    main()
