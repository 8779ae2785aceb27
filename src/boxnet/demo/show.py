"""Printing for the demo: each step shows the command a user would type and its real output."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence

from boxnet.lab import Daemon, Netns

BOLD = "\033[1m" if sys.stdout.isatty() else ""
DIM = "\033[2m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""


def section(title: str) -> None:
    print(f"\n{BOLD}== {title} =={RESET}", flush=True)


def note(text: str) -> None:
    print(f"{DIM}# {text}{RESET}", flush=True)


def _shown(arg: str) -> str:
    """Lab scripts travel as `python -c SOURCE`: print a placeholder, not the whole source."""
    if "\n" in arg and len(arg) > 120:
        first = arg.strip().splitlines()[0].strip('"').split(":")[0]
        return f"<{first} ({arg.count(chr(10))} lines)>"
    return shlex.quote(arg)


def _show(prompt: str, argv: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
    print(f"{BOLD}{prompt}${RESET} {' '.join(_shown(a) for a in argv)}", flush=True)
    out = (result.stdout or "") + (result.stderr or "")
    if out.strip():
        print(out.rstrip())
    if result.returncode != 0:
        print(f"{DIM}(exit code {result.returncode}){RESET}")


def boxnet(
    d: Daemon, *args: str, expect_ok: bool = True, role: str = "host"
) -> subprocess.CompletedProcess[str]:
    """Run `boxnet ARGS` against the lab's daemon and print it as the user would see it."""
    result = d.cli(*args, check=False)
    _show(role, ["boxnet", *args], result)
    if expect_ok and result.returncode != 0:
        raise SystemExit(f"demo step failed: boxnet {shlex.join(args)}")
    return result


def on(ns: Netns, argv: Sequence[str], role: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in one of the lab's machines (host, outside, ...) and print it."""
    result = ns.run(list(argv), check=False)
    _show(role or ns.role, argv, result)
    return result
