"""This host's membership in the cluster: /boxnet/hosts/<advertise address>, held by a lease.

The key lives as long as the daemon keeps its lease alive; a host that dies disappears from the
cluster once the TTL runs out (a clean stop revokes the lease at once). Overlay networks will
flood broadcast to every member (one all-zeros FDB entry per remote host).

A store that does not answer never stops the daemon: local networks keep working, the outage is
logged once (with the store's own error) and the thread retries with backoff until it answers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from ipaddress import IPv4Address

from boxnet.cluster.store import KEY_ROOT, ClusterStore, ClusterStoreError
from boxnet.errors import Unavailable

HOSTS_PREFIX = f"{KEY_ROOT}hosts/"
LEASE_TTL = 10  # seconds: how long a dead host stays listed
MAX_RETRY_DELAY = 5.0

log = logging.getLogger("boxnetd.cluster")


class HostMembership:
    def __init__(self, store: ClusterStore, advertise: IPv4Address, ttl: int = LEASE_TTL) -> None:
        self.store = store
        self.advertise = advertise
        self.ttl = ttl
        self.key = f"{HOSTS_PREFIX}{advertise}"
        self.lease = 0
        self.joined = threading.Event()  # set while the key is known to be in the store
        self.outage = False  # the last call to the store failed
        # Called (in this thread) with each new lease: records held by the old one are gone.
        self.on_join: list[Callable[[int], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cluster-membership", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Leave the cluster: stop refreshing and revoke the lease (its key goes with it)."""
        self._stop.set()
        self._thread.join(timeout=1)
        # During an outage a revoke would only wait for retries: the lease expires by itself.
        if self.lease and not self.outage:
            try:
                self.store.revoke_lease(self.lease)
            except (Unavailable, ClusterStoreError) as err:
                log.warning("cluster store: could not revoke lease on leaving: %s", err.message)

    def _record(self) -> bytes:
        return json.dumps(
            {"address": str(self.advertise), "hostname": socket.gethostname(), "pid": os.getpid()}
        ).encode()

    def _join(self) -> None:
        self.lease = self.store.grant_lease(self.ttl)
        self.store.put(self.key, self._record(), lease=self.lease)
        self.joined.set()
        log.info("cluster store: joined as %s (lease %x, ttl %ds)", self.key, self.lease, self.ttl)
        for callback in self.on_join:
            try:
                callback(self.lease)
            except Exception as err:  # a subscriber's failure must not stop the membership
                log.warning("cluster store: after joining: %s", err)

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                if not self.joined.is_set():
                    self._join()
                elif self.store.keep_alive(self.lease) <= 0:
                    log.warning("cluster store: lease %x expired; joining again", self.lease)
                    self.joined.clear()
                    self.lease = 0
                    continue
                if self.outage:
                    log.info("cluster store answers again")
                self.outage, delay = False, 0.2
                self._stop.wait(self.ttl / 3)
            except (Unavailable, ClusterStoreError) as err:
                if not self.outage:
                    log.warning(
                        "cluster store: %s; local networks keep working, retrying", err.message
                    )
                self.outage = True
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
