"""EndpointWatcher's diff: what a host must program and unprogram between two views."""

from __future__ import annotations

from boxnet.cluster.endpoints import EndpointRecord, diff


def rec(endpoint: str, ip: str, host: str = "192.168.198.143") -> EndpointRecord:
    return EndpointRecord("net1", endpoint, 4096, ip, "02:42:0a:63:00:02", host)


def test_diff_names_added_changed_and_removed() -> None:
    a, b, c = rec("a", "10.99.0.2"), rec("b", "10.99.0.3"), rec("c", "10.99.0.4")
    moved = rec("b", "10.99.0.3", host="192.168.198.144")  # same key, now on another host
    old = {a.key: a, b.key: b}
    new = {b.key: moved, c.key: c}
    added, removed = diff(old, new)
    assert added == [moved, c]
    assert removed == [a, b]  # the old b is unprogrammed before the moved one is programmed
    assert diff(new, new) == ([], [])


def test_record_round_trips_through_json() -> None:
    a = rec("a", "10.99.0.2")
    assert EndpointRecord.from_json(a.to_json()) == a
    assert a.key == "/boxnet/endpoints/net1/a"


def test_names_round_trip_and_older_records_without_them_still_parse() -> None:
    named = EndpointRecord("net1", "a", 4096, "10.99.0.2", "02:42:0a:63:00:02", "h", "c1",
                           ("web", "abc123", "www"))  # fmt: skip
    assert EndpointRecord.from_json(named.to_json()) == named
    old = b'{"network_id":"n","endpoint_id":"e","vni":4096,"ip":"10.0.0.2","mac":"m","host":"h"}'
    parsed = EndpointRecord.from_json(old)
    assert parsed.names == () and parsed.container_id == ""
