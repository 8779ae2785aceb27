"""The etcd client's pure parts: prefix ranges, TLS options, retry rounds with backoff."""

from __future__ import annotations

import socket

import pytest

from boxnet.cluster import ClusterStoreUnavailable, EtcdStore, TlsFiles
from boxnet.cluster.etcd import prefix_end


def test_prefix_end_is_the_next_key_after_every_key_with_the_prefix() -> None:
    assert prefix_end("/boxnet/networks/") == b"/boxnet/networks0"
    assert prefix_end("a\xff") == b"a\xc3\xc0"  # utf-8 bytes, last byte incremented
    assert prefix_end("") == b"\0"


def test_tls_files_from_store_opts() -> None:
    assert TlsFiles.from_opts(()) is None
    tls = TlsFiles.from_opts((("kv.cacertfile", "/ca.pem"), ("kv.keyfile", "/k.pem")))
    assert tls == TlsFiles(ca="/ca.pem", cert=None, key="/k.pem")


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_every_endpoint_is_tried_each_round_with_growing_backoff() -> None:
    slept: list[float] = []
    ports = [_closed_port(), _closed_port()]
    store = EtcdStore(
        [("127.0.0.1", p) for p in ports], attempts=4, backoff=0.5, sleep=slept.append
    )
    with pytest.raises(ClusterStoreUnavailable) as info:
        store.get("/boxnet/x")
    assert slept == [0.5, 1.0, 2.0]  # capped at 2 s
    message = info.value.message
    assert f"127.0.0.1:{ports[0]}: " in message and f"127.0.0.1:{ports[1]}: " in message
    assert message.endswith("tried 4 times")
    assert info.value.status == 503
