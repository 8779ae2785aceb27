"""etcd 3.4's v3 API over its HTTP/JSON gateway (grpc-gateway), with http.client only.

Why not a PyPI client: `etcd3` is unmaintained and breaks on current protobuf; the gateway is part
of every etcd 3.4 server and speaks plain JSON (keys and values base64, 64-bit numbers as strings).

Every unary call tries the endpoints in turn, starting with the last one that answered, and sleeps
with exponential backoff between rounds; after `attempts` rounds it raises ClusterStoreUnavailable
naming every endpoint and what went wrong there. An answer that is an error (a bad request, an
unknown lease) is not retried: it raises ClusterStoreError with etcd's own message.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from boxnet.cluster.store import ClusterStoreError, ClusterStoreUnavailable, KeyValue, WatchEvent

_RETRY_HTTP = frozenset({502, 503, 504})  # the gateway is up but its etcd member is not (yet)
_GRPC_UNAVAILABLE = 14


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for etcd over TLS (--cluster-store-opt kv.cacertfile, kv.certfile, kv.keyfile)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def from_opts(cls, opts: Sequence[tuple[str, str]]) -> TlsFiles | None:
        given = dict(opts)
        if not given:
            return None
        return cls(given.get("kv.cacertfile"), given.get("kv.certfile"), given.get("kv.keyfile"))

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca)
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        return context


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: str) -> bytes:
    """The range_end that selects every key starting with prefix (etcd's WithPrefix)."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"  # every key


def _key_value(kv: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=_unb64(kv.get("key")).decode(),
        value=_unb64(kv.get("value")),
        create_revision=int(kv.get("create_revision", 0)),
        mod_revision=int(kv.get("mod_revision", 0)),
        lease=int(kv.get("lease", 0)),
    )


class EtcdStore:
    """A ClusterStore on an etcd 3.4 cluster given as (host, port) endpoints."""

    def __init__(
        self,
        endpoints: Sequence[tuple[str, int]],
        tls: TlsFiles | None = None,
        *,
        timeout: float = 2.0,
        attempts: int = 4,
        backoff: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not endpoints:
            raise ValueError("EtcdStore needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.tls = tls
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._sleep = sleep
        self._preferred = 0  # index of the endpoint that answered last
        self._context = tls.context() if tls is not None else None
        self._conns = threading.local()  # .by: endpoint index -> kept-alive connection

    # --- transport ---------------------------------------------------------------------------

    def describe(self) -> str:
        scheme = "https" if self.tls else "http"
        return ", ".join(f"{scheme}://{_hostport(h, p)}" for h, p in self.endpoints)

    def _connect(self, index: int, timeout: float | None) -> http.client.HTTPConnection:
        host, port = self.endpoints[index]
        if self._context is not None:
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _order(self) -> list[int]:
        count = len(self.endpoints)
        return [(self._preferred + i) % count for i in range(count)]

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST body to path on the first endpoint that answers; etcd's reply as a dict."""
        failures: dict[str, str] = {}
        delay = self.backoff
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(delay)
                delay = min(delay * 2, 2.0)
            for index in self._order():
                name = _hostport(*self.endpoints[index])
                try:
                    status, reply = self._post(index, path, body)
                except ssl.SSLError as err:
                    # Named as TLS: the bare ssl text ("EOF occurred in violation of
                    # protocol") does not say that the handshake is what failed.
                    failures[name] = f"TLS handshake failed: {err}"
                    continue
                except (OSError, http.client.HTTPException, ValueError) as err:
                    failures[name] = str(err) or type(err).__name__
                    continue
                if status in _RETRY_HTTP or reply.get("code") == _GRPC_UNAVAILABLE:
                    failures[name] = f"HTTP {status}: {reply.get('message') or reply.get('error')}"
                    continue
                self._preferred = index
                if status != 200:
                    message = reply.get("message") or reply.get("error") or f"HTTP {status}"
                    raise ClusterStoreError(f"etcd refused {path}: {message}")
                return reply
        detail = "; ".join(f"{name}: {why}" for name, why in failures.items())
        hint = "check that etcd runs and that this host reaches it (--cluster-store)"
        if self.tls is None:
            hint += "; if etcd serves TLS, give --cluster-store-opt kv.cacertfile=PATH"
        elif any(why.startswith("TLS handshake failed") for why in failures.values()):
            hint += "; if etcd asks for client certificates, give kv.certfile and kv.keyfile"
        raise ClusterStoreUnavailable(
            f"the cluster store does not answer ({detail}), tried {self.attempts} times", hint
        )

    def _post(self, index: int, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        # One kept-alive connection per thread and endpoint: a TCP (and TLS) handshake per call
        # was most of a call's cost. Streams (lease keepalive) get a connection of their own.
        reuse = path != "/v3/lease/keepalive"
        conns: dict[int, http.client.HTTPConnection] = self._conns.__dict__.setdefault("by", {})
        cached = conns.pop(index, None) if reuse else None
        conn = cached or self._connect(index, self.timeout)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            if cached is None:
                raise
            # etcd may have closed an idle kept-alive connection: once more on a fresh one.
            return self._post(index, path, body)
        if reuse and not response.will_close:
            conns[index] = conn
        else:
            conn.close()
        try:
            reply = json.loads(data) if data.strip() else {}
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            # Not etcd's gateway (e.g. plain HTTP to a TLS port): say what answered instead.
            text = data[:120].decode(errors="replace").strip()
            raise ValueError(f"not an etcd answer (HTTP {response.status}: {text})")
        # Stream endpoints (lease keepalive) answer {"result": {...}} lines; one request, one line.
        if "result" in reply and isinstance(reply["result"], dict):
            reply = reply["result"]
        return response.status, reply

    # --- keys --------------------------------------------------------------------------------

    def get(self, key: str) -> KeyValue | None:
        kvs = self.call("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        return _key_value(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        reply = self.call(
            "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        )
        revision = int(reply.get("header", {}).get("revision", 0))
        return [_key_value(kv) for kv in reply.get("kvs", [])], revision

    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("/v3/kv/put", body).get("header", {}).get("revision", 0))

    def _put_if(self, key: str, compare: dict[str, Any], value: bytes, lease: int) -> bool:
        put: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            put["lease"] = str(lease)
        body = {"compare": [{"key": _b64(key), **compare}], "success": [{"request_put": put}]}
        return bool(self.call("/v3/kv/txn", body).get("succeeded", False))

    def create(self, key: str, value: bytes, lease: int = 0) -> bool:
        compare = {"target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        return self._put_if(key, compare, value, lease)

    def compare_and_put(self, key: str, mod_revision: int, value: bytes) -> bool:
        compare = {"target": "MOD", "result": "EQUAL", "mod_revision": str(mod_revision)}
        return self._put_if(key, compare, value, 0)

    def delete(self, key: str) -> bool:
        reply = self.call("/v3/kv/deleterange", {"key": _b64(key)})
        return int(reply.get("deleted", 0)) > 0

    def compare_and_delete(self, key: str, mod_revision: int) -> bool:
        compare = {"key": _b64(key), "target": "MOD", "result": "EQUAL"}
        body = {
            "compare": [{**compare, "mod_revision": str(mod_revision)}],
            "success": [{"request_delete_range": {"key": _b64(key)}}],
        }
        return bool(self.call("/v3/kv/txn", body).get("succeeded", False))

    # --- leases ------------------------------------------------------------------------------

    def grant_lease(self, ttl: int) -> int:
        reply = self.call("/v3/lease/grant", {"TTL": str(ttl)})
        if reply.get("error"):
            raise ClusterStoreError(f"etcd granted no lease: {reply['error']}")
        return int(reply["ID"])

    def keep_alive(self, lease: int) -> int:
        return int(self.call("/v3/lease/keepalive", {"ID": str(lease)}).get("TTL", 0))

    def revoke_lease(self, lease: int) -> None:
        self.call("/v3/lease/revoke", {"ID": str(lease)})

    # --- watch -------------------------------------------------------------------------------

    def watch(self, prefix: str, start_revision: int) -> Iterator[WatchEvent]:
        """Events under prefix from start_revision; ends (without error) when the stream does.

        The caller re-reads with get_prefix and watches again from the revision it got: that is
        how a watcher catches up after an endpoint dies. Reads block without a timeout.
        """
        body = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _b64(prefix_end(prefix)),
                "start_revision": str(start_revision),
            }
        }
        conn, response = self._open_stream("/v3/watch", body)
        try:
            while True:
                line = response.readline()
                if not line:
                    return
                result = json.loads(line).get("result", {})
                if result.get("canceled"):
                    reason = result.get("cancel_reason") or "canceled"
                    raise ClusterStoreError(f"etcd ended the watch on {prefix}: {reason}")
                for event in result.get("events", []):
                    kv = event.get("kv", {})
                    # etcd omits the type of a PUT (its enum's zero value) from the JSON.
                    deleted = event.get("type") == "DELETE"
                    yield WatchEvent(
                        "delete" if deleted else "put",
                        _unb64(kv.get("key")).decode(),
                        _unb64(kv.get("value")),
                        int(kv.get("mod_revision", 0)),
                    )
        finally:
            conn.close()

    def _open_stream(
        self, path: str, body: dict[str, Any]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        failures: list[str] = []
        for index in self._order():
            conn = self._connect(index, self.timeout)
            try:
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                failures.append(f"{_hostport(*self.endpoints[index])}: {err}")
                continue
            if response.status != 200:
                conn.close()
                failures.append(f"{_hostport(*self.endpoints[index])}: HTTP {response.status}")
                continue
            if conn.sock is not None:
                conn.sock.settimeout(None)  # a watch waits for as long as nothing changes
            self._preferred = index
            return conn, response
        raise ClusterStoreUnavailable(
            f"cannot watch the cluster store ({'; '.join(failures)})",
            "check that etcd runs and that this host reaches it (--cluster-store)",
        )


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
