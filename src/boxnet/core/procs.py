"""Helpers of the container lifecycle: signal names as users give them, telling a container's
PID 1 from a recycled PID, the process environment and spec, generated names."""

from __future__ import annotations

import secrets
import signal
from pathlib import Path

from boxnet.errors import InvalidArgument
from boxnet.model import Container
from boxnet.runtime import cgroups, launcher


def is_shim_of(pid: int, container_id: str) -> bool:
    """True when pid's parent is the shim of this container (it names itself bx-<short id>,
    see shim.serve), so a recycled PID is never killed by mistake."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        ppid = int(next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1])
        return Path(f"/proc/{ppid}/comm").read_text().strip() == "bx-" + container_id[:12]
    except (OSError, StopIteration, ValueError):
        return False


def signal_number(sig: str | int) -> int:
    if isinstance(sig, int):
        return sig
    text = sig.upper()
    if text.isascii() and text.isdigit():
        number = int(text)
        if not 1 <= number <= signal.SIGRTMAX:
            raise InvalidArgument(
                f"invalid signal: {sig}", hint=f"a name like SIGTERM or 1-{int(signal.SIGRTMAX)}"
            )
        return number
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError as exc:
        raise InvalidArgument(f"invalid signal: {sig}") from exc


def env_dict(env: tuple[str, ...], tty: bool = False) -> dict[str, str]:
    """["K=V", "FLAG"] -> {"K": "V", "FLAG": ""}; TERM=xterm with a terminal, as Docker does."""
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    if tty:
        out.setdefault("TERM", "xterm")
    return out


def generated_name(taken: set[str]) -> str:
    """A free container name in Docker's adjective_noun style, for a create without --name."""
    adjectives = ("brave", "calm", "eager", "fervent", "gentle", "happy", "keen", "lucid")
    nouns = ("turing", "hopper", "lovelace", "ritchie", "thompson", "knuth", "dijkstra")
    while True:
        name = (
            f"{adjectives[secrets.randbelow(len(adjectives))]}_"
            f"{nouns[secrets.randbelow(len(nouns))]}{secrets.randbelow(100)}"
        )
        if name not in taken:
            return name


def process_spec(
    c: Container,
    rootfs: Path | None,
    state_dir: Path,
    log_path: Path,
    stdio_fds: tuple[int, int, int] | None,
) -> launcher.ProcessSpec:
    """What the shim runs for c, but its network namespace, /etc files and legacy links'
    variables: those come with launcher's go(), once the network is built (containers.start)."""
    hc = c.spec.raw.get("HostConfig") or {}
    return launcher.ProcessSpec(
        container_id=c.id,
        argv=tuple(c.spec.cmd),
        env=env_dict(c.spec.env, tty=c.spec.tty),
        hostname=c.hostname,
        workdir=c.spec.workdir or "/",
        binds=tuple((b.source, b.target, b.read_only) for b in c.spec.binds),
        user=c.spec.user,
        group_add=tuple(str(g) for g in hc.get("GroupAdd") or ()),
        read_only=c.spec.read_only,
        domainname=c.spec.domainname,
        uts_host=hc.get("UTSMode") == "host",
        init=bool(hc.get("Init")),
        cgroups=cgroups.setup(c.id, hc),  # resource limits (runtime/cgroups.py)
        tmpfs=c.spec.tmpfs,
        rootfs=str(rootfs) if rootfs is not None else None,
        upper_dir=str(state_dir / "upper") if rootfs is not None else None,
        work_dir=str(state_dir / "work") if rootfs is not None else None,
        state_dir=str(state_dir),
        log_path="" if c.spec.log_max_size < 0 else str(log_path),
        log_max_size=c.spec.log_max_size,
        log_max_files=c.spec.log_max_files,
        tty=c.spec.tty,
        stdio=stdio_fds is not None,
        open_stdin=c.spec.open_stdin,
    )
