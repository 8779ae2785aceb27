"""`make bench` / `make bench-quick`: boxnet's speed, scale and data plane against the raw kernel.

    .venv/bin/python -m bench.run [--quick] [--levels 1,10,100,300] [--probes 15]

Builds its own lab (boxnet.lab.basic_lab), starts boxnetd in the lab's host namespace, measures,
prints ONE markdown table (with the machine's description) and writes it to
bench/results/<YYYY-MM-DD>.md. The lab is removed at the end, also on failure or Ctrl-C.
Everything is bounded in count and time: --quick < 3 minutes, the full run < ~15 minutes.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib
import inspect
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import attach, dataplane, profile, raw, scale, startup
from bench.report import Row, from_foreign, render, write
from boxnet.lab import Daemon, Lab, basic_lab, install_signal_cleanup, venv_bin

# Other engineers' standalone benchmarks, included when present (see include_foreign).
FOREIGN = ("ports", "networks", "dns", "iptables", "cni", "dockerplugin")
FOREIGN_TIMEOUT = 300


def section(rows: list[Row], name: str, fn: Callable[[], list[Row]]) -> None:
    """Run one part; a failure becomes a row (the rest of the bench still runs)."""
    began = time.monotonic()
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    try:
        rows.extend(fn())
    except Exception as exc:
        traceback.print_exc()
        rows.append(Row(name, "FAILED", f"{type(exc).__name__}: {str(exc)[:300]}"))
    print(f"bench: {name} done in {time.monotonic() - began:.1f} s", file=sys.stderr, flush=True)


def boxnet_parts(args: argparse.Namespace, rows: list[Row], deadline: float) -> None:
    with Lab("bench") as lab:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host)
        # Warm-up: builds the busybox image once, so no sample pays for it.
        d.cli("run", "--rm", "busybox", "true", timeout=120)
        section(rows, "daemon start-up", lambda: [startup.daemon_row(d, 0)])
        section(rows, "CLI start-up", lambda: startup.cli_rows(d))
        medians: dict[str, float] = {}

        def raw_part() -> list[Row]:
            found, out = raw.measure(basic.host, lab.tmpdir, 30 if args.quick else 100)
            medians.update(found)
            return out

        section(rows, "raw kernel", raw_part)
        section(
            rows,
            "data plane",
            lambda: dataplane.measure(basic, d, 1 if args.quick else 3, 1 if args.quick else 2),
        )
        pop = attach.Population(d)
        levels: list[attach.Level] = []
        adopt_rows: list[Row] = []
        for n in args.levels:
            level = attach.measure_level(pop, n, args.probes, deadline)
            if level is None:
                rows.append(Row(f"attach, N={n}", "not reached", pop.failure))
                break
            levels.append(level)
            print(f"bench: N={n} measured ({time.monotonic() - START:.0f} s)", file=sys.stderr)
            if n >= 300:
                section(adopt_rows, "daemon start-up", functools.partial(adopt, d, n))
        rows.extend(attach.rows(levels, medians))
        rows.extend(attach.growth_rows(pop.growth))
        rows.extend(attach.usage_rows(levels))
        rows.extend(adopt_rows)
        if not args.quick:
            section(rows, "scale", lambda: scale.bridge_limit(pop, basic, deadline + 120))
            section(rows, "scale", lambda: scale.networks(d, 100))
        began = time.monotonic()
        count = len(pop.names)
        for i in range(0, count, 50):  # bounded batches: one CLI call each
            d.cli("rm", "-f", *pop.names[i : i + 50], check=False, timeout=300)
        rows.append(Row("scale", f"boxnet rm -f of all {count} containers (batches of 50)",
                        f"{time.monotonic() - began:.1f} s"))  # fmt: skip


def adopt(d: Daemon, n: int) -> list[Row]:
    return [startup.daemon_row(d, n)]


def foreign_rows(name: str, entry: Callable[..., Any], quick: bool) -> list[Row]:
    return [from_foreign(name, x) for x in entry(quick=quick)]


def foreign_main(name: str, appendix: list[str]) -> list[Row]:
    """`python -m bench.<name>` with its defaults, bounded: on timeout it gets SIGTERM (boxnet.lab
    then removes its lab) and a minute to finish before SIGKILL."""
    argv = [str(venv_bin() / "python"), "-m", f"bench.{name}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    began = time.monotonic()
    try:
        out, err = proc.communicate(timeout=FOREIGN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return [Row(name, "FAILED", f"bench.{name} timed out after {FOREIGN_TIMEOUT} s")]
    appendix.append(f"## bench.{name} (exit {proc.returncode})\n\n{out}")
    if proc.returncode != 0:
        return [Row(name, "FAILED", f"exit {proc.returncode}: {err.strip()[-300:]}")]
    took = time.monotonic() - began
    return [Row(name, f"bench.{name}", f"ran in {took:.0f} s; its tables follow the main table")]


def include_foreign(quick: bool, rows: list[Row]) -> str:
    """Modules with `run(quick)` are called in-process and give rows; modules with only `main()`
    run as `python -m bench.<name>` in the full run, their output appended under the table."""
    appendix: list[str] = []
    for name in FOREIGN:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ImportError:
            continue
        entry = getattr(module, "run", None)
        if callable(entry) and "quick" in inspect.signature(entry).parameters:
            section(rows, name, functools.partial(foreign_rows, name, entry, quick))
        elif hasattr(module, "main") and not quick:
            section(rows, name, functools.partial(foreign_main, name, appendix))
        elif hasattr(module, "main"):
            rows.append(Row(name, f"bench.{name}", "not run in --quick (no run(quick) entry)"))
    return "\n".join(appendix)


START = time.monotonic()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="under 3 minutes: N up to 300, 1 s iperf")
    p.add_argument("--levels", help="container counts, e.g. 1,10,100,300")
    p.add_argument("--probes", type=int, help="containers run and removed at each level")
    p.add_argument("--no-foreign", action="store_true", help="skip bench.ports/networks/dns/…")
    p.add_argument("--output", help="write here instead of bench/results/<YYYY-MM-DD>.md")
    args = p.parse_args(argv)
    levels = args.levels or ("1,10,100,300" if args.quick else "1,10,100,300,1000")
    args.levels = [int(x) for x in levels.split(",")]
    args.probes = args.probes or (10 if args.quick else 25)
    install_signal_cleanup()
    started = datetime.datetime.now(datetime.UTC)
    deadline = time.monotonic() + (150 if args.quick else 720)
    rows: list[Row] = []
    boxnet_parts(args, rows, deadline)
    # Where the attach time goes (its own lab and an instrumented boxnetd): see bench/profile.py.
    section(rows, "attach profile", lambda: profile.measure(20 if args.quick else 50))
    if not args.quick:  # the same with 300 containers running: what grows with N
        section(rows, "attach profile", lambda: profile.measure(30, behind=300))
    appendix = "" if args.no_foreign else include_foreign(args.quick, rows)
    mode = "--quick" if args.quick else "full"
    text = render(rows, mode, started, time.monotonic() - START)
    path = write(text, started, appendix, args.output)
    print(text)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
