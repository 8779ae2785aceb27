"""GET /containers/{id}/logs: the container's log as Docker serves it.

Multiplexed frames (stdout = 1, stderr = 2) unless the container has a TTY (raw bytes, like
Docker); query parameters stdout, stderr, tail, since, until, timestamps, follow as in the
Engine API. The records come from `boxnet.runtime.logfile`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from boxnet.api import streams
from boxnet.api.server import Response
from boxnet.errors import InvalidArgument
from boxnet.runtime import logfile

STREAMS = {"stdout": streams.STDOUT, "stderr": streams.STDERR}


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true", "yes")


def unix_ns(query: Mapping[str, str], name: str) -> int | None:
    """Docker's since/until: UNIX seconds, with an optional .fraction; absent or 0 = no bound."""
    text = query.get(name, "").strip()
    if not text:
        return None
    seconds, _, frac = text.partition(".")
    if not seconds.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise InvalidArgument(
            f"invalid {name} {text!r}: expected a UNIX timestamp (seconds[.nanoseconds])"
        )
    value = int(seconds) * 10**9 + int((frac + "000000000")[:9])
    return value if value != 0 else None


def parse_query(query: Mapping[str, str]) -> logfile.Query:
    tail_text = query.get("tail", "all").strip()
    # Docker reads a tail that is not a whole number (or is negative) as "all".
    tail = int(tail_text) if tail_text.isdigit() else None
    return logfile.Query(
        tail=tail,
        since_ns=unix_ns(query, "since"),
        until_ns=unix_ns(query, "until"),
        follow=_flag(query, "follow"),
    )


def logs_response(
    path: Path, tty: bool, query: Mapping[str, str], running: Callable[[], bool]
) -> Response:
    wanted = {name for name in STREAMS if _flag(query, name)}
    if not wanted:
        raise InvalidArgument(
            "Bad parameters: you must choose at least one stream",
            hint="pass stdout=1 and/or stderr=1",
        )
    parsed = parse_query(query)
    timestamps = _flag(query, "timestamps")

    def body() -> Iterator[bytes]:
        for record in logfile.read(path, parsed, running):
            if record.stream not in wanted:
                continue
            data = record.data
            if timestamps:
                data = record.time.encode() + b" " + data
            yield data if tty else streams.frame(STREAMS.get(record.stream, 1), data)

    content_type = streams.RAW if tty else streams.MULTIPLEXED
    if not parsed.follow:
        return Response(200, b"".join(body()), content_type=content_type)
    return Response(200, stream=body(), content_type=content_type)
