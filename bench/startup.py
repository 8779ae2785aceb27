"""Start-up times: the CLI (`boxnet version`, `boxnet --help`) and boxnetd until /_ping answers."""

from __future__ import annotations

import os
import subprocess
import time

from bench.report import Row, goal_row, lat, med
from boxnet.lab import Daemon, venv_bin

CLI_GOAL_MS = 50.0


def cli_rows(d: Daemon, repeats: int = 20) -> list[Row]:
    boxnet = str(venv_bin() / "boxnet")
    cases = [
        ("boxnet version (client + one GET /version)", [boxnet, "-H", f"unix://{d.socket}",
                                                        "version"]),
        ("boxnet --help (client only)", [boxnet, "--help"]),
    ]  # fmt: skip
    out = []
    for label, argv in cases:
        samples = []
        for _ in range(repeats):
            began = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True, timeout=30)
            samples.append((time.perf_counter() - began) * 1000)
        row = Row("CLI start-up", label, lat(samples), "", f"<= {CLI_GOAL_MS:g} ms")
        out.append(goal_row(row, med(samples), CLI_GOAL_MS))
    # What a bare interpreter costs here: the floor under any Python CLI.
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run([str(venv_bin() / "python"), "-c", "pass"], check=True, timeout=30)
        samples.append((time.perf_counter() - began) * 1000)
    out.append(Row("CLI start-up", "floor: python -c pass (same venv)", lat(samples)))
    return out


def timed_restart(d: Daemon, timeout: float = 120.0) -> float:
    """Stop boxnetd (containers keep running), start it again and return the seconds until
    /_ping answers, polled every 5 ms (the lab's own start polls every 50 ms)."""
    d.stop()
    with d.log_path.open("ab") as log:
        began = time.perf_counter()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # The lab's Daemon keeps its Popen privately; set it so that stop() and the lab's
        # cleanup still own this process.
        d._proc = subprocess.Popen(
            d.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d._proc.poll() is not None:
            raise RuntimeError(f"boxnetd exited with {d._proc.returncode}; see {d.log_path}")
        if d.ping():
            return time.perf_counter() - began
        time.sleep(0.005)
    raise RuntimeError(f"boxnetd did not answer /_ping within {timeout:.0f} s")


def daemon_row(d: Daemon, containers: int) -> Row:
    seconds = timed_restart(d)
    return Row("daemon start-up", f"boxnetd until /_ping, {containers} running containers to adopt",
               f"{seconds * 1000:.0f} ms")  # fmt: skip
