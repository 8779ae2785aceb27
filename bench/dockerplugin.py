"""Benchmark: Docker's `run -d` with the boxnet network plugin, next to Docker's own bridge driver.

    .venv/bin/python -m bench.dockerplugin [--rounds 20]

Own lab (basic_lab): boxnetd serving the plugin socket and a real dockerd 20.10 (boxnet.lab.dockerd:
lab netns, private mount namespace, --iptables=false) in the "host" namespace. Two networks on
that dockerd: `-d boxnet` and `-d bridge` (Docker's own driver), each a /24. Each round runs
`docker run -d --network NET busybox sleep` on one, then on the other (alternating, so both see
the same load), then `docker rm -f` of both; one sample = the wall time of one docker CLI process
(what a user waits for). Also the plugin's own time in boxnetd (GET /boxnet/metrics:
docker.create_endpoint = IPAM lease + veth pair on the bridge + records; delete_endpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.report import Row, med
from boxnet.lab import Lab, basic_lab
from boxnet.lab.daemon import unix_get
from boxnet.lab.dockerd import DockerEngine


def stats(samples: list[float]) -> str:
    return f"median {med(samples):.1f} ms, min {min(samples):.1f} (n={len(samples)})"


def run(quick: bool = False, n: int | None = None) -> list[Row]:
    n = n or (8 if quick else 20)
    with Lab("bench-dockerplugin") as lab:
        basic = basic_lab(lab)
        engine = DockerEngine(basic.host, lab.tmpdir / "docker")
        d = lab.boxnetd(basic.host, "--docker-plugin-socket", str(engine.plugins / "boxnet.sock"))
        try:
            engine.start()
            image = engine.load_busybox()
            engine.cli("network", "create", "-d", "boxnet", "--subnet", "10.99.70.0/24", "bxnet")
            engine.cli("network", "create", "-d", "bridge", "--subnet", "10.99.71.0/24", "dknet")
            times: dict[str, list[float]] = {"bxnet": [], "dknet": []}
            removal: dict[str, list[float]] = {"bxnet": [], "dknet": []}
            for i in range(n + 1):  # round 0 warms up (image, first endpoint)
                names = {}
                for net in ("bxnet", "dknet") if i % 2 else ("dknet", "bxnet"):
                    began = time.perf_counter()
                    engine.cli("run", "-d", "--name", f"{net}{i}", "--network", net, image,
                               "sleep", "600")  # fmt: skip
                    if i:
                        times[net].append((time.perf_counter() - began) * 1000)
                    names[net] = f"{net}{i}"
                for net, name in names.items():
                    began = time.perf_counter()
                    engine.cli("rm", "-f", name)
                    if i:
                        removal[net].append((time.perf_counter() - began) * 1000)
            status, body = unix_get(d.socket, "/boxnet/metrics")
            metrics = json.loads(body) if status == 200 else {}
        finally:
            engine.close()
    rows = [
        Row("Docker plugin", "docker run -d, network -d boxnet (boxnetd's plugin)",
            stats(times["bxnet"])),
        Row("Docker plugin", "docker run -d, network -d bridge (Docker's own driver)",
            stats(times["dknet"])),
        Row("Docker plugin", "docker rm -f, boxnet", stats(removal["bxnet"])),
        Row("Docker plugin", "docker rm -f, bridge", stats(removal["dknet"])),
    ]  # fmt: skip
    for kind in ("docker.create_endpoint", "docker.delete_endpoint"):
        samples = metrics.get(kind, {}).get("RecentMs", [])
        if samples:
            rows.append(Row("Docker plugin", f"  in boxnetd: {kind}", stats(samples[-n:])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 200:
        parser.error("bounded: --rounds 1..200")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print("| Section | Measure | Result | Goal | Verdict |\n|---|---|---|---|---|")
    for row in run(n=args.rounds):
        print(f"| {row.section} | {row.measure} | {row.result} | {row.goal} | {row.verdict} |")


if __name__ == "__main__":
    main()
