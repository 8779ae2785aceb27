"""The check that `make install` provides every program the suite, demo and benchmarks run."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from boxnet.lab.execwatch import ExecWatch, available
from boxnet.lab.programs import (
    check_executed,
    check_static,
    makefile_packages,
    owners,
    programs_in_source,
)

ROOT = Path(__file__).resolve().parents[2]

# The line that slipped through once: nslookup, installed by hand on the CI machine only.
SLIPPED = """
def test_x(host):
    host.run(["nslookup", "-port=53", "anything.test", "127.0.0.1"], check=False)
    subprocess.run([tool("ip"), "-j", "link"])
    ns.run(["sh", "-c", "echo"]); argv = ["not", "a", "run"]
"""


def test_sources_name_the_programs_they_run() -> None:
    found = sorted((u.program, u.where) for u in programs_in_source(SLIPPED, "t.py"))
    assert found == [("ip", "t.py:4"), ("nslookup", "t.py:3"), ("sh", "t.py:5")]


def test_a_program_from_no_listed_package_is_named_with_its_package() -> None:
    uses = list(programs_in_source(SLIPPED, "t.py"))
    problems = check_static(uses, allowed={"iproute2", "dash"})
    assert len(problems) == 1, problems
    # Installed here or not, the message names the program, where it runs and what to add.
    assert problems[0].startswith("nslookup (")
    assert "t.py:3" in problems[0] and "bind9-dnsutils" in problems[0]


def test_listed_packages_pass_and_unlisted_ones_do_not() -> None:
    uses = [u for u in programs_in_source(SLIPPED, "t.py") if u.program == "ip"]
    assert check_static(uses, allowed={"iproute2"}) == []
    [problem] = check_static(uses, allowed=set())
    assert "iproute2" in problem and "DEB_PACKAGES" in problem


def test_executed_files_are_judged_by_their_package() -> None:
    executed = {"/usr/sbin/ip": "ip -V", "/work/x/.venv/bin/boxnetd": "boxnetd"}
    assert check_executed(executed, allowed={"iproute2"}) == []
    [problem] = check_executed(executed, allowed=set())
    assert "ip -V" in problem and "iproute2" in problem


def test_merged_usr_paths_find_their_package() -> None:
    # dpkg ships /sbin/ip; the kernel reports /usr/sbin/ip.
    assert owners(["/usr/sbin/ip"]) == {"/usr/sbin/ip": "iproute2"}


def test_the_makefile_lists_its_packages() -> None:
    packages = makefile_packages(ROOT / "Makefile")
    assert {"iproute2", "nftables", "busybox-static", "curl"} <= packages


@pytest.mark.skipif(available() is not None, reason=str(available()))
def test_the_watch_sees_programs_run_by_programs() -> None:
    watch = ExecWatch().start()
    try:
        subprocess.run(["sh", "-c", "ip -V >/dev/null; exec nft -v"], check=True, stdout=-3)
    finally:
        seen = watch.stop()
    names = {os.path.basename(p) for p in seen}
    assert {"ip", "nft"} <= names, sorted(names)


@pytest.mark.skipif(available() is not None, reason=str(available()))
def test_the_watch_leaves_out_other_peoples_programs() -> None:
    # A process that is neither our descendant nor carries the watch's token in its environment
    # (setsid -f: reparented to init; env -i: no token) is someone else's work on the machine.
    watch = ExecWatch().start()
    try:
        subprocess.run(
            ["setsid", "-f", "env", "-i", "/bin/sh", "-c", "sleep 0.3; exec /usr/sbin/nft -v"],
            check=True,
            stdout=-3,
        )
        subprocess.run(["ip", "-V"], check=True, stdout=-3)
        time.sleep(1.0)
    finally:
        seen = watch.stop()
    names = {os.path.basename(p) for p in seen}
    assert "ip" in names and "nft" not in names, sorted(names)
