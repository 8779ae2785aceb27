"""What /proc tells about a container's processes: who they are (top), what they use (stats).

A container's processes are those in its PID namespace (its PID 1's, which execs join too), found
by comparing /proc/<pid>/ns/pid links. Without cgroups, usage is summed over the live processes:
CPU time from /proc/<pid>/stat (children that already exited are not counted), memory as the
sum of their RSS (shared pages counted once per process), network counters from the container's
netns as /proc/<pid>/net/dev shows them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
NS_PER_TICK = 10**9 // TICKS


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    uid: int
    tty_nr: int
    utime: int  # ticks
    stime: int
    start_ticks: int  # since boot
    rss_pages: int
    cmdline: str


def namespace_pids(init_pid: int) -> list[int]:
    """Every process in init_pid's PID namespace (init_pid first); [] if it is gone."""
    try:
        ns = os.readlink(PROC / str(init_pid) / "ns" / "pid")
    except OSError:
        return []
    out = [init_pid]
    for entry in os.scandir(PROC):
        if not entry.name.isdigit() or int(entry.name) == init_pid:
            continue
        try:
            if os.readlink(f"{entry.path}/ns/pid") == ns:
                out.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return out


def read_stat(pid: int) -> ProcStat | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        uid = (PROC / str(pid)).stat().st_uid
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    comm_end = stat.rfind(")")
    comm = stat[stat.find("(") + 1 : comm_end]
    fields = stat[comm_end + 2 :].split()
    # fields[0] is the state (field 3 of proc(5)): index = proc(5) field number - 3
    cmdline = " ".join(x.decode(errors="replace") for x in raw.split(b"\0") if x) or f"[{comm}]"
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        uid=uid,
        tty_nr=int(fields[4]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        start_ticks=int(fields[19]),
        rss_pages=int(fields[21]),
        cmdline=cmdline,
    )


def processes(init_pid: int) -> list[ProcStat]:
    found = (read_stat(pid) for pid in namespace_pids(init_pid))
    return sorted((p for p in found if p is not None), key=lambda p: p.pid)


# -- top --------------------------------------------------------------------------------------
TOP_TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]  # `ps -ef`'s


def top_rows(procs: list[ProcStat]) -> list[list[str]]:
    """`ps -ef` columns for procs, as Docker's default top shows them."""
    boot = _boot_time()
    uptime = time.time() - boot
    rows = []
    for p in procs:
        cpu_seconds = (p.utime + p.stime) / TICKS
        age = max(uptime - p.start_ticks / TICKS, 1e-9)
        started = time.localtime(boot + p.start_ticks / TICKS)
        same_day = started[:3] == time.localtime()[:3]
        rows.append(
            [
                _user(p.uid),
                str(p.pid),
                str(p.ppid),
                str(int(100 * cpu_seconds / age)),
                time.strftime("%H:%M" if same_day else "%b%d", started),
                _tty(p.tty_nr),
                _clock(int(cpu_seconds)),
                p.cmdline,
            ]
        )
    return rows


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _tty(tty_nr: int) -> str:
    if tty_nr == 0:
        return "?"
    major, minor = os.major(tty_nr), os.minor(tty_nr)
    return f"pts/{minor}" if 136 <= major <= 143 else f"tty{minor}"


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _boot_time() -> float:
    for line in (PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


# -- stats ------------------------------------------------------------------------------------
def system_cpu_ns() -> int:
    """All CPUs' time since boot (the first line of /proc/stat), Docker's system_cpu_usage."""
    first = (PROC / "stat").read_text().splitlines()[0].split()
    return sum(int(x) for x in first[1:8]) * NS_PER_TICK


def memory_total() -> int:
    for line in (PROC / "meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


NET_FIELDS = ("bytes", "packets", "errors", "dropped")


def net_dev(pid: int) -> dict[str, dict[str, int]]:
    """{interface: {rx_bytes, rx_packets, rx_errors, rx_dropped, tx_...}} of pid's netns,
    loopback left out (Docker reports the container's own interfaces)."""
    try:
        lines = (PROC / str(pid) / "net" / "dev").read_text().splitlines()[2:]
    except OSError:
        return {}
    out: dict[str, dict[str, int]] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        values = [int(x) for x in rest.split()]
        if name == "lo" or len(values) < 12:
            continue
        counters = {f"rx_{f}": values[i] for i, f in enumerate(NET_FIELDS)}
        counters.update({f"tx_{f}": values[8 + i] for i, f in enumerate(NET_FIELDS)})
        out[name] = counters
    return out


# -- signals ----------------------------------------------------------------------------------
def signal_namespace(init_pid: int, sig: int, rounds: int = 5) -> list[int]:
    """Send sig to every process of init_pid's PID namespace; returns the PIDs signalled.
    SIGSTOP is repeated (a few rounds, bounded) until no process is left running: one may have
    forked while the others were being stopped."""
    signalled: set[int] = set()
    for _ in range(rounds):
        fresh = [p for p in namespace_pids(init_pid) if p not in signalled]
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                signalled.add(pid)
        if not fresh or sig != signal.SIGSTOP:
            break
    return sorted(signalled)


def state(pid: int) -> str:
    """The process state letter of proc(5) (R, S, T, Z...), '' if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2 :].split(maxsplit=1)[0]
