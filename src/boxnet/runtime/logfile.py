"""Reading a container's json-file log (written by the shim, runtime/shimio.py).

Records come back oldest first across the rotated files (container.log.N ... .1, container.log),
with Docker's filters: tail (the last N records), since/until (by record time), follow (new
records until the container stops, across rotations).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from boxnet.runtime.shimio import rfc3339

FOLLOW_POLL = 0.1  # seconds between looks at a followed log
ZERO_TIME = "0001-01-01T00:00:00.000000000Z"  # Go's zero time, as Docker shows an unknown one


@dataclass(frozen=True)
class Record:
    stream: str  # "stdout" | "stderr"
    data: bytes
    time: str  # RFC 3339, nanoseconds, UTC, as written (Docker's timestamps format)


@dataclass(frozen=True)
class Query:
    tail: int | None = None  # None: all
    since_ns: int | None = None  # records at or after
    until_ns: int | None = None  # records at or before
    follow: bool = False


def rfc3339_ns(text: str) -> int:
    """Unix nanoseconds of `2026-12-04T16:53:58.123456789Z` (the fraction may be shorter)."""
    stamp, _, frac = text.rstrip("Z").partition(".")
    whole = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(whole.timestamp()) * 10**9 + int((frac + "000000000")[:9])


def parse_record(line: bytes) -> Record | None:
    """One json-file line. A line that is not a record is a log written by an older shim (raw
    output; its container still runs after a daemon upgrade): shown as stdout, with the zero
    time. A damaged record (a crash mid-write) is None: skipped."""
    if not line.startswith(b'{"log"'):
        return Record("stdout", line + b"\n", ZERO_TIME)
    try:
        obj = json.loads(line)
        return Record(
            str(obj["stream"]), obj["log"].encode("utf-8", "surrogateescape"), str(obj["time"])
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def files(path: Path) -> list[Path]:
    """The log's files, oldest first."""
    rotated = []
    n = 1
    while (older := path.with_name(f"{path.name}.{n}")).exists():
        rotated.append(older)
        n += 1
    return [*reversed(rotated), path]


def _lines(fh: BinaryIO) -> tuple[list[bytes], bytes]:
    """Complete lines from fh's position on, and an unfinished last one (being written)."""
    data = fh.read()
    lines = data.split(b"\n")
    return lines[:-1], lines[-1]


def _filtered(records: Iterator[Record], query: Query) -> Iterator[Record]:
    # Fixed-width UTC times sort as strings: no date parsing per record.
    since = rfc3339(query.since_ns) if query.since_ns is not None else None
    until = rfc3339(query.until_ns) if query.until_ns is not None else None
    for record in records:
        if since is not None and record.time < since:
            continue
        if until is not None and record.time > until:
            return
        yield record


def read(path: Path, query: Query, running: Callable[[], bool] = lambda: False) -> Iterator[Record]:
    """The records the query asks for; with follow, waits for more while running() is true."""
    try:
        current = open(path, "rb")
    except FileNotFoundError:
        return
    with current:
        earlier: list[bytes] = []
        for older in files(path)[:-1]:
            try:
                earlier += older.read_bytes().split(b"\n")[:-1]
            except FileNotFoundError:  # rotated away meanwhile
                continue
        lines, pending = _lines(current)
        lines = earlier + lines
        if query.tail is not None:
            lines = list(deque(lines, maxlen=query.tail)) if query.tail > 0 else []
        records = (r for r in map(parse_record, lines) if r is not None)
        yield from _filtered(records, query)
        if query.follow:
            yield from _filtered(_follow(path, current, pending, running, query), query)


def _follow(
    path: Path, fh: BinaryIO, pending: bytes, running: Callable[[], bool], query: Query
) -> Iterator[Record]:
    fh = os.fdopen(os.dup(fh.fileno()), "rb")  # ours to replace on rotation, and to close
    try:
        while True:
            alive = running()  # before reading: what a stopped container wrote is all there
            lines, pending = _complete(fh, pending)
            for line in lines:
                record = parse_record(line)
                if record is not None:
                    yield record
            if lines:
                continue
            if _rotated(path, fh):  # the shim renamed this file to .1: finish it, then the new
                lines, _ = _complete(fh, pending)
                yield from (r for r in map(parse_record, lines) if r is not None)
                fh.close()
                fh, pending = open(path, "rb"), b""
                continue
            if os.fstat(fh.fileno()).st_size < fh.tell():  # max-file=1: started over
                fh.seek(0)
                pending = b""
                continue
            if not alive or (query.until_ns is not None and time.time_ns() > query.until_ns):
                return
            time.sleep(FOLLOW_POLL)
    finally:
        fh.close()


def _complete(fh: BinaryIO, pending: bytes) -> tuple[list[bytes], bytes]:
    lines, rest = _lines(fh)
    if not lines:
        return [], pending + rest
    lines[0] = pending + lines[0]
    return lines, rest


def _rotated(path: Path, fh: BinaryIO) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return False
