"""Process helpers of the container lifecycle: signal names as users give them, and telling a
container's PID 1 from a recycled PID."""

from __future__ import annotations

import signal
from pathlib import Path

from boxnet.errors import InvalidArgument


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
