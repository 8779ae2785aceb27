"""GET /events: the daemon's events as Docker streams them (one JSON object a line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from boxnet.api.attach import _hung_up
from boxnet.api.server import Request, Response, Router
from boxnet.core import eventfilters
from boxnet.errors import InvalidArgument

if TYPE_CHECKING:
    from boxnet.core.controller import Controller


def register(r: Router, ctl: Controller) -> None:
    def events(req: Request) -> Response:
        since = event_time(req.query.get("since", ""), "since")
        until = event_time(req.query.get("until", ""), "until")
        if since is not None and until is not None and since > until:
            raise InvalidArgument(
                f"`since` time ({req.query['since']}) cannot be after `until` time"
                f" ({req.query['until']})"
            )
        wanted = eventfilters.parse(req.query.get("filters"))
        sock = req.handler.sock

        def body() -> Iterator[bytes]:
            for event in ctl.events.follow(since, until, lambda: _hung_up(sock)):
                if eventfilters.matches(event, wanted):
                    yield json.dumps(event.to_json()).encode() + b"\n"

        return Response(200, stream=body())

    r.add("GET", "/events", events)


def event_time(text: str, name: str) -> int | None:
    """Docker's since/until: UNIX seconds with an optional .fraction ('' = no bound; 0 is the
    epoch: `--since 0` asks for everything kept)."""
    text = text.strip()
    if not text:
        return None
    seconds, _, frac = text.partition(".")
    if not seconds.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise InvalidArgument(
            f"invalid {name} {text!r}: expected a UNIX timestamp (seconds[.nanoseconds])",
            hint="the CLI converts 10m, 1h or RFC 3339 times for you",
        )
    return int(seconds) * 10**9 + int((frac + "000000000")[:9])
