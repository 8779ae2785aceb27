"""top/stats from /proc (runtime/procfs.py) and how the CLI shows events and stats."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from boxnet.cli.observe import format_event, stats_row
from boxnet.runtime import procfs


def test_read_stat_of_a_known_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for _ in range(100):  # bounded: until the child has exec'd (its cmdline is its own)
            stat = procfs.read_stat(child.pid)  # and touched memory: right after exec, RSS is 0
            if stat is not None and stat.cmdline.endswith("time.sleep(30)") and stat.rss_pages:
                break
            time.sleep(0.02)
        assert stat is not None and stat.ppid == os.getpid() and stat.uid == os.getuid()
        assert stat.cmdline.endswith("import time; time.sleep(30)") and stat.rss_pages > 0
        row = procfs.top_rows([stat])[0]
        assert row[1:3] == [str(child.pid), str(os.getpid())] and row[-1] == stat.cmdline
        assert procfs.state(child.pid) in ("S", "R")
    finally:
        child.kill()
        child.wait()
    assert procfs.read_stat(child.pid) is None and procfs.state(child.pid) == ""


def test_namespace_pids_share_the_init_pids_namespace() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine = procfs.namespace_pids(os.getpid())
        assert mine[0] == os.getpid() and child.pid in mine  # a child shares our namespace
    finally:
        child.kill()
        child.wait()
    assert procfs.namespace_pids(2**22 + 1) == []  # no such process


def test_stats_row_computes_cpu_and_memory_like_the_docker_cli() -> None:
    doc = {
        "id": "a" * 64,
        "name": "/web",
        "cpu_stats": {
            "cpu_usage": {"total_usage": 300},
            "system_cpu_usage": 2000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        "memory_stats": {"usage": 50_000_000, "limit": 1_000_000_000},
        "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 700}},
        "pids_stats": {"current": 3},
    }
    row = stats_row(doc)
    assert row == ["aaaaaaaaaaaa", "web", "40.00%", "50MB / 1GB", "5.00%", "1.5kB / 700B", "3"]


def test_event_line_like_docker_events() -> None:
    event = {
        "Type": "container",
        "Action": "start",
        "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
        "timeNano": 1_700_000_000_000_000_001,
    }
    assert format_event(event, None) == (
        "2023-11-14T22:13:20.000000001Z container start abc (image=busybox, name=web)"
    )
    assert format_event(event, "json").startswith('{"Type": "container"')
