"""Scale (full run only): the bridge's port limit and 100 user networks, with the daemon's RSS/CPU.

Linux bridges take at most BR_MAX_PORTS = 1024 ports (numbers 1..1023 in practice); the bench
keeps adding containers past 1,000 until boxnet refuses one, and reports the message, what the
refused container was left as, and whether a veth was left behind.
"""

from __future__ import annotations

import time

from bench.attach import Population, proc_usage, timed_cli
from bench.report import Row, lat
from boxnet.lab import BasicLab, Daemon

LIMIT_TRIES = 40


def bridge_limit(pop: Population, lab: BasicLab, deadline: float) -> list[Row]:
    start = len(pop.names)
    pop.grow_to(start + LIMIT_TRIES, deadline)
    reached = len(pop.names)
    if not pop.failure:
        return [Row("scale", f"bridge limit: {reached} containers on boxnet0", "no refusal seen")]
    ports = sum(1 for x in lab.host.ip_json("link", "show", "master", "boxnet0"))
    state = pop.left_behind or "unknown"
    return [
        Row("scale", f"bridge limit: refused container #{reached + 1}",
            pop.failure.replace("\n", " "), "", "a clear error, nothing half-created"),
        Row("scale", "bridge limit: boxnet0 ports after the refusal",
            f"{ports} veths enslaved for {reached} containers; the refused one was {state}"),
    ]  # fmt: skip


def networks(d: Daemon, count: int) -> list[Row]:
    create_ms, rm_ms = [], []
    rss0, cpu0 = proc_usage(d.pid)
    began = time.monotonic()
    made = []
    for i in range(count):
        name = f"bnet{i}"
        ms, done = timed_cli(d, "network", "create", "--subnet", f"10.200.{i}.0/24", name)
        if done.returncode != 0:
            return [Row("scale", f"network create #{i + 1} failed", done.stderr.strip()[-300:])]
        create_ms.append(ms)
        made.append(name)
    rss1, cpu1 = proc_usage(d.pid)
    grow = time.monotonic() - began
    for name in made:
        ms, _done = timed_cli(d, "network", "rm", name)
        rm_ms.append(ms)
    return [
        Row("scale", f"{count} networks: network create (end to end)", lat(create_ms)),
        Row("scale", f"{count} networks: network rm (end to end)", lat(rm_ms)),
        Row("scale", f"daemon with {count} more networks",
            f"RSS {rss0:.0f} -> {rss1:.0f} MiB, CPU +{cpu1 - cpu0:.1f} s, {grow:.1f} s to create"),
    ]  # fmt: skip
