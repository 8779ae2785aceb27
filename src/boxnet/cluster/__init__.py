"""The cluster store shared by the hosts of overlay networks (SPEC §3b, issue 16).

`ClusterStore` (store.py) is what the rest of boxnet uses; `EtcdStore` (etcd.py) implements it over
etcd 3.4's v3 API through its HTTP/JSON gateway, with the standard library only. Keys live under
`/boxnet/`.
"""

from boxnet.cluster.etcd import EtcdStore, TlsFiles
from boxnet.cluster.store import (
    ClusterStore,
    ClusterStoreError,
    ClusterStoreUnavailable,
    KeyValue,
    WatchEvent,
)

__all__ = [
    "ClusterStore",
    "ClusterStoreError",
    "ClusterStoreUnavailable",
    "EtcdStore",
    "KeyValue",
    "TlsFiles",
    "WatchEvent",
]
