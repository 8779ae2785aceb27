"""The daemon's event bus: what `GET /events` and `boxnet events` report.

Core managers publish an event at each lifecycle step (container create/start/die/stop/kill/
destroy/rename/pause/unpause, network create/connect/disconnect/destroy). The bus keeps the last
HISTORY events in memory (a bounded ring: `--since` reaches back that far, and not across a
daemon restart) and wakes live subscribers. Events carry Docker's message shape, so the docker
CLI and docker-py decode them as they would dockerd's.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boxnet.model import Container

HISTORY = 1000


@dataclass(frozen=True)
class Event:
    type: str  # container | network | image
    action: str
    actor_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    time_ns: int = 0
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.type == "image":  # moby fills the legacy fields for images too
            out.update(status=self.action, id=self.actor_id)
        if self.type == "container":  # the legacy fields clients before API 1.22 read
            out.update(
                status=self.action, id=self.actor_id, **{"from": self.attributes.get("image", "")}
            )
        out.update(
            Type=self.type,
            Action=self.action,
            Actor={"ID": self.actor_id, "Attributes": dict(self.attributes)},
            scope="local",
            time=self.time_ns // 10**9,
            timeNano=self.time_ns,
        )
        return out


class EventBus:
    def __init__(self, history: int = HISTORY, clock: Callable[[], int] = time.time_ns) -> None:
        self._events: deque[Event] = deque(maxlen=history)
        self._seq = itertools.count(1)
        self._last = 0
        self._changed = threading.Condition(threading.Lock())
        self._clock = clock

    def publish(
        self, type_: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
    ) -> Event:
        with self._changed:
            seq = next(self._seq)
            # Never earlier than the previous event: since/until cuts must not reorder them.
            last_ns = self._events[-1].time_ns if self._events else 0
            event = Event(
                type_, action, actor_id, dict(attributes or {}), max(self._clock(), last_ns), seq
            )
            self._events.append(event)
            self._last = seq
            self._changed.notify_all()
            return event

    def now_ns(self) -> int:
        return self._clock()

    def history(self) -> list[Event]:
        with self._changed:
            return list(self._events)

    def follow(
        self,
        since_ns: int | None,
        until_ns: int | None,
        stop: Callable[[], bool],
        poll: float = 1.0,
    ) -> Iterator[Event]:
        """Past events from since_ns (none without it), then live ones until until_ns passes
        or stop() says the reader is gone (asked every `poll` seconds while idle)."""
        with self._changed:
            cursor = self._last
            past = list(self._events) if since_ns is not None else []
        for event in past:
            if event.seq > cursor:
                break
            if event.time_ns < since_ns:  # type: ignore[operator]  # past is empty without it
                continue
            if until_ns is not None and event.time_ns > until_ns:
                return
            yield event
        while True:
            if until_ns is not None and self._clock() > until_ns:
                return
            with self._changed:
                fresh = [e for e in self._events if e.seq > cursor]
                if not fresh:
                    wait = poll
                    if until_ns is not None:
                        wait = min(wait, max(0.0, (until_ns - self._clock()) / 1e9) + 0.001)
                    self._changed.wait(wait)
                    fresh = [e for e in self._events if e.seq > cursor]
            for event in fresh:
                cursor = event.seq
                if until_ns is not None and event.time_ns > until_ns:
                    return
                yield event
            if not fresh and stop():
                return


def container_attributes(c: Container, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Docker's container Actor attributes: the labels, image, name (and the action's own)."""
    labels = c.spec.raw.get("Labels") if isinstance(c.spec.raw, dict) else None
    out = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    out.update(image=c.spec.image, name=c.name)
    out.update(extra or {})
    return out
