"""Rows, statistics, the machine's description and the one markdown table bench.run prints."""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


@dataclass
class Row:
    """One line of the table. `result` is already formatted ("median 3.1 ms, p90 4.0 (n=15)")."""

    section: str
    measure: str
    result: str
    vs_raw: str = ""
    goal: str = ""
    verdict: str = ""  # "met", "MISSED" or "" (no goal)


def pct(values: list[float], q: float) -> float:
    """The q-quantile by nearest rank (no interpolation: every figure is a real sample)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def lat(ms: list[float]) -> str:
    """'median 3.1 / p90 4.0 / min 2.2 ms (n=15)' for samples in milliseconds (the minimum is
    the closest to the unloaded cost on a shared machine)."""
    if not ms:
        return "no samples"
    return f"median {med(ms):.1f} / p90 {pct(ms, 0.9):.1f} / min {min(ms):.1f} ms (n={len(ms)})"


def ratio(value: float, raw: float) -> str:
    return f"{value / raw:.1f}x raw" if raw > 0 and value == value else ""


def goal_row(row: Row, value: float, limit: float, higher_is_better: bool = False) -> Row:
    ok = value >= limit if higher_is_better else value <= limit
    row.verdict = "met" if ok else "MISSED"
    return row


def slope_per_100(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of (containers, ms) in ms per 100 containers."""
    if len(points) < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return 100 * sum((x - mx) * (y - my) for x, y in points) / den if den else float("nan")


def from_foreign(section: str, item: Any) -> Row:
    """A row from another engineer's bench module, whatever shape it chose."""
    if isinstance(item, Row):
        return item
    if isinstance(item, dict):
        values = [str(v) for v in item.values()]
    elif isinstance(item, (tuple, list)):
        values = [str(v) for v in item]
    elif hasattr(item, "__dict__"):
        values = [str(v) for v in vars(item).values()]
    else:
        values = [str(item)]
    values = [v.replace("|", "/") for v in values]
    return Row(section, values[0] if values else "", " · ".join(values[1:]))


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat's first line: user nice system idle iowait
    irq softirq steal ...), in ticks."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


# Taken when the bench starts (bench.run imports this module first): on a virtual machine the
# hypervisor's "steal" (time our vCPUs were runnable but not running) moves every figure.
_CPU_AT_START = cpu_times()
_LOAD_AT_START = Path("/proc/loadavg").read_text().split()[:3]


def stolen_share() -> float:
    """Percent of the CPU time since the bench started that the hypervisor took."""
    delta = [b - a for a, b in zip(_CPU_AT_START, cpu_times(), strict=False)]
    total = sum(delta[:8])
    return 100 * delta[7] / total if total and len(delta) > 7 else 0.0


def machine() -> list[str]:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    load = _LOAD_AT_START
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM {mem_kb / 1024 / 1024:.1f} GiB",
        f"- Kernel {platform.release()}; Python {platform.python_version()}",
        f"- Load average at start: {' '.join(load)} (other work on the machine skews figures)",
        f"- CPU time taken by the hypervisor (steal) during the run: {stolen_share():.1f}% (a"
        " virtual machine's neighbours)",
    ]


def render(rows: list[Row], mode: str, started: datetime.datetime, seconds: float) -> str:
    lines = [
        f"# boxnet benchmark, {started:%Y-%m-%d %H:%M} UTC ({mode}, {seconds:.0f} s)",
        "",
        *machine(),
        "",
        "| Section | Measure | Result | vs raw | Goal | Verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r.section, r.measure, r.result, r.vs_raw, r.goal, r.verdict]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write(
    text: str, started: datetime.datetime, extra: str = "", output: str | None = None
) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = Path(output) if output else RESULTS / f"{started:%Y-%m-%d}.md"
    path.write_text(text + (("\n" + extra) if extra else ""))
    return path
