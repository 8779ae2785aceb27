"""What boxnet's nftables rules cost a forwarded flow: the same container -> outside path, the
same host, with boxnet's tables and with one bare masquerade rule instead, interleaved.

    .venv/bin/python -m bench.rules_cost [--rounds 9] [--seconds 3]

Starts boxnetd in a lab, runs one container, then stops boxnetd (SIGSTOP, so its firewall guard
does not restore the tables meanwhile) and, each round, loads each ruleset in turn into the
lab's host namespace and runs iperf3 from the container's namespace to the outside. boxnetd gets
its tables back and SIGCONT at the end, also on failure. Prints the median, min and max of each.
This is how the forward chain's cost was found (README, issue 20): one iperf3 run varies by
+-15% here, so only interleaved medians tell a few percent apart.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import statistics
import subprocess

from bench.attach import api
from bench.dataplane import gbps, wait_listening
from bench.report import stolen_share
from boxnet.lab import Lab, basic_lab, install_signal_cleanup

OUTSIDE_IP = "203.0.113.1"  # basic_lab's outside namespace
BARE = (
    "table ip bare { chain post { type nat hook postrouting priority srcnat;"
    ' ip saddr 172.17.0.0/16 oifname "eth0" masquerade; }; }'
)


def measure(rounds: int, seconds: int) -> dict[str, list[float]]:
    with Lab("bench-rules-cost") as lab:
        basic = basic_lab(lab)
        host, outside = basic.host, basic.outside
        d = lab.boxnetd(host)
        d.cli("run", "--rm", "busybox", "true", timeout=120)  # builds the image
        d.cli("run", "-d", "--name", "client", "host", "sleep", "100000")
        _status, body = api(d.socket, "GET", "/containers/client/json")
        netns = body["NetworkSettings"]["SandboxKey"]
        outside.popen(["iperf3", "-s", "-p", "5301"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)  # fmt: skip
        wait_listening(functools.partial(outside.run, check=False), 5301)
        boxnet_rules = host.run(["nft", "list", "ruleset"]).stdout
        rulesets = {"boxnet's rules": boxnet_rules, "one bare masquerade rule": BARE}
        iperf = ["nsenter", f"--net={netns}", "iperf3", "-J", "-t", str(seconds)]
        iperf += ["-c", OUTSIDE_IP, "-p", "5301"]

        def client() -> subprocess.CompletedProcess[str]:
            return subprocess.run(iperf, capture_output=True, text=True, timeout=seconds + 30)

        def load(text: str) -> None:
            host.run(["nft", "flush", "ruleset"])
            host.run(["nft", "-f", "-"], input=text)

        samples: dict[str, list[float]] = {name: [] for name in rulesets}
        os.kill(d.pid, signal.SIGSTOP)
        try:
            for _ in range(rounds):
                for name, text in rulesets.items():
                    load(text)
                    samples[name].append(gbps(client))
        finally:
            load(boxnet_rules)
            os.kill(d.pid, signal.SIGCONT)
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rules_cost")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    install_signal_cleanup()
    samples = measure(min(args.rounds, 50), min(args.seconds, 30))  # bounded
    bare = statistics.median(samples["one bare masquerade rule"])
    for name, runs in samples.items():
        median = statistics.median(runs)
        print(
            f"container -> outside, {name:26s} median {median:6.2f} Gbit/s"
            f" (min {min(runs):.2f}, max {max(runs):.2f}, n={len(runs)})"
            f"  {100 * median / bare:.0f}% of the bare rule"
        )
    # Above a few percent the hypervisor's neighbours halve throughput now and then: rerun.
    print(f"CPU time taken by the hypervisor (steal) during the run: {stolen_share():.1f}%")


if __name__ == "__main__":
    main()
