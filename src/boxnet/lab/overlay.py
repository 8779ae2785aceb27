"""A cluster lab for overlay networks: N hosts on one underlay, a real etcd, an outside host.

      [underlay] bridge sw0
        +-- [router]  eth0 10.99.0.1/16 (etcd on :2379), forwarding on
        |             eth1 203.0.113.1/24 -- [outside] eth0 203.0.113.2/24, HTTP echo on :80
        +-- [host1]   ens33 10.99.1.1/16, default via 10.99.0.1
        +-- [host2]   ens33 10.99.1.2/16 ...
(or, with etcd_on_hosts=3, a three-member etcd on host1..host3's underlay addresses)

`OverlayLab.daemon(i)` starts boxnetd on host i with --cluster-store/--cluster-advertise (and the
extra arguments given, e.g. a firewall backend); `restart_etcd`/`stop_etcd` are for outages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from boxnet.lab.core import Lab
from boxnet.lab.daemon import Daemon
from boxnet.lab.etcd import (
    PEER_PORT,
    EtcdCluster,
    restart_member,
    start_etcd,
    start_etcd_cluster,
)
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

    @property
    def store_url(self) -> str:
        return self.etcd.store_url if self.etcd is not None else STORE

    def daemon(self, index: int, *extra: str) -> Daemon:
        where = ["--cluster-store", self.store_url, "--cluster-advertise", host_address(index)]
        args = [*where, *extra]
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


def overlay_lab(
    hosts: int = 3, lab: Lab | None = None, etcd: bool = True, etcd_on_hosts: int = 0
) -> OverlayLab:
    """etcd in the router (one member), or with etcd_on_hosts=K a K-member cluster whose members
    run on the first K hosts (their underlay addresses), as a real cluster's hosts would."""
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
        store = None
        if etcd_on_hosts:
            where = [(members[i], host_address(i)) for i in range(etcd_on_hosts)]
            store = start_etcd_cluster(lab, where)
        elif etcd:
            store = start_etcd(lab, router, ROUTER)
    except BaseException:
        if own:
            lab.close()
        raise
    return OverlayLab(lab, switch, router, outside, tuple(members), store)
