"""A cluster lab for overlay networks: N hosts on one underlay, a real etcd, an outside host.

      [underlay] bridge sw0
        +-- [router]  eth0 10.99.0.1/16 (etcd on :2379), forwarding on
        |             eth1 203.0.113.1/24 -- [outside] eth0 203.0.113.2/24, HTTP echo on :80
        +-- [host1]   ens33 10.99.1.1/16, default via 10.99.0.1
        +-- [host2]   ens33 10.99.1.2/16 ...

`OverlayLab.daemon(i)` starts boxnetd on host i with --cluster-store/--cluster-advertise (and the
extra arguments given, e.g. a firewall backend); `restart_etcd`/`stop_etcd` are for outages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from boxnet.lab.core import Lab
from boxnet.lab.daemon import Daemon
from boxnet.lab.etcd import PEER_PORT, EtcdCluster, restart_member, start_etcd
from boxnet.lab.netns import Netns, Switch
from boxnet.lab.proc import LabError

ROUTER = "10.99.0.1"
OUTSIDE = "203.0.113.2"
STORE = f"etcd://{ROUTER}:2379"


def host_address(index: int) -> str:
    """Underlay address of host index (0-based): 10.99.1.1, 10.99.1.2, ..."""
    return f"10.99.{1 + index // 250}.{1 + index % 250}"


@dataclass
class OverlayLab:
    lab: Lab
    switch: Switch
    router: Netns
    outside: Netns
    hosts: tuple[Netns, ...]
    etcd: EtcdCluster | None
    daemons: dict[int, Daemon] = field(default_factory=dict)

    def daemon(self, index: int, *extra: str) -> Daemon:
        args = ["--cluster-store", STORE, "--cluster-advertise", host_address(index), *extra]
        daemon = self.lab.boxnetd(self.hosts[index], *args)
        self.daemons[index] = daemon
        return daemon

    def stop_etcd(self) -> None:
        if self.etcd is not None:
            for member in self.etcd.members:
                member.stop()

    def restart_etcd(self) -> None:
        """Start the stopped etcd again on its data (the end of an outage)."""
        assert self.etcd is not None
        (member,) = self.etcd.members
        initial = f"{member.name}=http://{member.address}:{PEER_PORT}"
        self.etcd = EtcdCluster((restart_member(self.lab, member, initial),))


def overlay_lab(hosts: int = 3, lab: Lab | None = None, etcd: bool = True) -> OverlayLab:
    if not 1 <= hosts <= 500:
        raise LabError(f"overlay_lab supports 1..500 hosts, not {hosts}")
    own = lab is None
    lab = lab if lab is not None else Lab("ovl")
    try:
        switch = lab.switch("underlay")
        router = lab.netns("router")
        switch.plug(router, "eth0", f"{ROUTER}/16")
        outside = lab.netns("outside")
        lab.link(router, "eth1", "203.0.113.1/24", outside, "eth0", f"{OUTSIDE}/24")
        lab.route(outside, "10.99.0.0/16", "203.0.113.1")
        router.sysctl("net.ipv4.ip_forward", "1")
        lab.http_server(outside, 80)
        members = []
        for i in range(hosts):
            ns = lab.netns(f"host{i + 1}")
            switch.plug(ns, "ens33", f"{host_address(i)}/16")
            lab.route(ns, "default", ROUTER)
            members.append(ns)
        store = start_etcd(lab, router, ROUTER) if etcd else None
    except BaseException:
        if own:
            lab.close()
        raise
    return OverlayLab(lab, switch, router, outside, tuple(members), store)
