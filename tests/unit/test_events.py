"""The event bus (core/events.py) and the events filters (core/eventfilters.py)."""

from __future__ import annotations

import threading

import pytest

from boxnet.core import eventfilters
from boxnet.core.events import EventBus
from boxnet.errors import InvalidArgument


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * 10**9

    def __call__(self) -> int:
        return self.now


def test_history_is_bounded_and_since_until_cut_it() -> None:
    clock = Clock()
    bus = EventBus(history=3, clock=clock)
    for i in range(5):
        clock.now += 10**9
        bus.publish("container", "start", f"id{i}", {"name": f"c{i}"})
    assert [e.actor_id for e in bus.history()] == ["id2", "id3", "id4"]
    # since id3's time, until the same: exactly id3 (until is inclusive), then the stream ends.
    t3 = bus.history()[1].time_ns
    seen = [e.actor_id for e in bus.follow(t3, t3, stop=lambda: False)]
    assert seen == ["id3"]
    # no since: no history
    assert list(bus.follow(None, clock.now - 1, stop=lambda: False)) == []


def test_live_subscriber_wakes_and_ends_when_reader_leaves() -> None:
    bus = EventBus()
    gone = threading.Event()
    got: list[str] = []

    def reader() -> None:
        for event in bus.follow(None, None, stop=gone.is_set, poll=0.05):
            got.append(event.action)
            gone.set()  # one is enough: the next idle poll ends the stream

    t = threading.Thread(target=reader)
    t.start()
    bus.publish("network", "create", "n1", {"name": "x"})
    t.join(10)
    assert not t.is_alive() and got == ["create"]


def test_message_shape_is_dockers() -> None:
    bus = EventBus(clock=lambda: 1_700_000_000_123_456_789)
    event = bus.publish("container", "die", "abc", {"image": "busybox", "exitCode": "0"})
    j = event.to_json()
    assert j["status"] == "die" and j["id"] == "abc" and j["from"] == "busybox"
    assert j["Actor"] == {"ID": "abc", "Attributes": {"image": "busybox", "exitCode": "0"}}
    assert (j["Type"], j["scope"], j["time"]) == ("container", "local", 1_700_000_000)
    assert j["timeNano"] == 1_700_000_000_123_456_789
    net = bus.publish("network", "connect", "n", {"container": "abc"}).to_json()
    assert "status" not in net and net["Type"] == "network"


def test_filters_both_encodings_and_matching() -> None:
    bus = EventBus()
    start = bus.publish(
        "container", "start", "abcdef", {"name": "web", "image": "busybox", "tier": "front"}
    )
    conn = bus.publish("network", "connect", "n1", {"name": "mynet", "container": "abcdef"})
    cli = eventfilters.parse('{"type": {"container": true}, "container": {"web": true}}')
    sdk = eventfilters.parse('{"type": ["container"], "container": ["abc"]}')
    for f in (cli, sdk):
        assert eventfilters.matches(start, f) and not eventfilters.matches(conn, f)
    assert eventfilters.matches(conn, eventfilters.parse('{"network": ["mynet"]}'))
    assert eventfilters.matches(start, eventfilters.parse('{"label": ["tier=front"]}'))
    assert not eventfilters.matches(start, eventfilters.parse('{"label": ["tier=back"]}'))
    assert eventfilters.matches(start, eventfilters.parse('{"event": ["start", "die"]}'))
    assert not eventfilters.matches(start, eventfilters.parse('{"event": ["die"]}'))
    assert eventfilters.matches(start, eventfilters.parse('{"image": ["busybox"]}'))


@pytest.mark.parametrize("text", ["nope", "[]", '{"colour": ["red"]}', '{"type": 3}'])
def test_bad_filters_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        eventfilters.parse(text)
