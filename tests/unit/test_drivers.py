"""Each driver's validation, without root, a kernel or a daemon: a PlanContext of plain data
stands for the host (its address space, its interfaces), and validate() must plan the network
or refuse it with a clear error, before anything touches the kernel."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from boxnet.drivers import CREATABLE, DRIVERS, DriverEnv, Drivers, all_steps
from boxnet.drivers.base import HostLink, PlanContext
from boxnet.drivers.bridge import BridgeDriver
from boxnet.drivers.host import HostDriver
from boxnet.drivers.macvlan import OPT_CREATED_PARENT, MacvlanDriver
from boxnet.drivers.null import NullDriver
from boxnet.errors import BoxnetError, Conflict, Forbidden, InvalidArgument, NotFound
from boxnet.firewall.base import BridgeIntent
from boxnet.ipam.allocator import DEFAULT_POOLS, Occupant
from boxnet.model import OPT_BRIDGE_NAME, IPAMConfig, Network, NetworkRequest

ENV = DriverEnv(ipr=None)  # type: ignore[arg-type]  # validation never touches the kernel
NET_ID = "ab" * 32


def base(name: str = "n1", driver: str = "bridge") -> Network:
    return Network(id=NET_ID, name=name, driver=driver, created="2026-01-01T00:00:00Z")


def ctx(occupied: list[Occupant] | None = None, **kw: Any) -> PlanContext:
    return PlanContext(pools=DEFAULT_POOLS, occupied=lambda: list(occupied or []), **kw)


def bridge_plan(occupied: list[Occupant] | None = None, **req: Any) -> Any:
    return BridgeDriver(ENV).validate(NetworkRequest(name="n1", **req), base(), ctx(occupied))


def refused(exc_type: type[BoxnetError], fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    return info.value.message


# -- bridge ---------------------------------------------------------------------------------------
def test_bridge_picks_the_first_free_pool_subnet_and_names_its_bridge() -> None:
    plan = bridge_plan()
    net = plan.network
    assert net.ipam == (IPAMConfig(IPv4Network("172.17.0.0/16"), IPv4Address("172.17.0.1")),)
    assert net.bridge == "br-" + NET_ID[:12]
    assert net.options[OPT_BRIDGE_NAME] == net.bridge  # shown by inspect, as Docker does
    assert plan.warnings == ()


def test_bridge_skips_occupied_subnets_and_warns_only_about_foreign_ones() -> None:
    ours = Occupant(IPv4Network("172.17.0.0/16"), "network bridge")
    host_route = Occupant(IPv4Network("172.18.5.0/24"), "a route to 172.18.5.0/24")
    plan = bridge_plan([ours, host_route])
    assert plan.network.ipam[0].subnet == IPv4Network("172.19.0.0/16")
    assert len(plan.warnings) == 1
    assert "172.18.0.0/16 overlaps a route to 172.18.5.0/24" in plan.warnings[0]
    assert "network bridge" not in plan.warnings[0]
    assert bridge_plan([ours]).warnings == ()


def test_bridge_refuses_a_subnet_in_use() -> None:
    occupant = Occupant(IPv4Network("10.1.0.0/16"), "network other")
    message = refused(Conflict, bridge_plan, [occupant], subnet=IPv4Network("10.1.2.0/24"))
    assert "10.1.2.0/24 overlaps network other" in message


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        ({"gateway": IPv4Address("10.9.0.1")}, "invalid gateway 10.9.0.1"),
        ({"gateway": IPv4Address("10.1.0.0")}, "must be a host address inside 10.1.0.0/24"),
        ({"gateway": IPv4Address("10.1.0.255")}, "must be a host address"),
        ({"ip_range": IPv4Network("10.2.0.0/28")}, "invalid --ip-range 10.2.0.0/28"),
        ({"aux_addresses": {"printer": "10.3.0.9"}}, "invalid --aux-address printer=10.3.0.9"),
        ({"options": {"color": "blue"}}, "unknown bridge option 'color'"),
        ({"options": {OPT_BRIDGE_NAME: "bad name"}}, 'invalid interface name "bad name"'),
        ({"options": {OPT_BRIDGE_NAME: "-br"}}, "invalid bridge name '-br'"),
        ({"options": {OPT_BRIDGE_NAME: "x" * 16}}, "x" * 16),
        ({"options": {"com.docker.network.driver.mtu": "40"}}, "invalid MTU 40"),
        ({"options": {"com.docker.network.driver.mtu": "big"}}, "invalid MTU 'big'"),
        (
            {"options": {"com.docker.network.bridge.enable_icc": "maybe"}},
            "expected true or false",
        ),
        (
            {"options": {"com.docker.network.bridge.host_binding_ipv4": "nope"}},
            "host_binding_ipv4",
        ),
    ],
)
def test_bridge_refuses_bad_requests(req: dict[str, Any], expected: str) -> None:
    message = refused(InvalidArgument, bridge_plan, subnet=IPv4Network("10.1.0.0/24"), **req)
    assert expected in message


def test_bridge_keeps_ranges_aux_addresses_and_options() -> None:
    net = bridge_plan(
        subnet=IPv4Network("10.1.0.0/24"),
        gateway=IPv4Address("10.1.0.254"),
        ip_range=IPv4Network("10.1.0.128/25"),
        aux_addresses={"printer": "10.1.0.9"},
        options={"com.docker.network.bridge.enable_icc": "false", OPT_BRIDGE_NAME: "br-lab"},
    ).network
    assert net.ipam == (
        IPAMConfig(
            IPv4Network("10.1.0.0/24"),
            IPv4Address("10.1.0.254"),
            IPv4Network("10.1.0.128/25"),
            {"printer": "10.1.0.9"},
        ),
    )
    assert (net.icc, net.masquerade, net.bridge) == (False, True, "br-lab")


def test_bridge_name_taken_by_another_network() -> None:
    other = Network(id="cd" * 32, name="o", driver="bridge", created="", bridge="br-lab")
    driver = BridgeDriver(ENV)
    req = NetworkRequest(name="n1", options={OPT_BRIDGE_NAME: "br-lab"})
    with pytest.raises(Conflict):
        driver.validate(req, base(), PlanContext(pools=DEFAULT_POOLS, networks=(other,)))


def test_bridge_firewall_intents() -> None:
    net = bridge_plan(subnet=IPv4Network("10.1.0.0/24")).network
    (intent,) = BridgeDriver(ENV).firewall(net)
    assert intent == BridgeIntent(
        bridge=net.bridge or "", subnet=IPv4Network("10.1.0.0/24"), masquerade=True,
        internal=False, icc=True,
    )  # fmt: skip


# -- macvlan --------------------------------------------------------------------------------------
LINKS = {"ens33": HostLink(2, "ens33", "", None), "br0": HostLink(3, "br0", "bridge", None)}
LINKS["ens34"] = HostLink(4, "ens34", "", master=3)  # a port of br0


def macvlan_plan(**req: Any) -> Any:
    req.setdefault("subnet", IPv4Network("192.168.198.0/24"))
    context = PlanContext(link=LINKS.get)
    return MacvlanDriver(ENV).validate(
        NetworkRequest(name="lan", driver="macvlan", **req), base("lan", "macvlan"), context
    )


def test_macvlan_plans_on_an_existing_parent() -> None:
    net = macvlan_plan(options={"parent": "ens33"}).network
    assert net.ipam[0].gateway == IPv4Address("192.168.198.1")
    assert net.options == {"parent": "ens33", "macvlan_mode": "bridge"}
    assert net.bridge is None


def test_macvlan_plans_a_vlan_parent_it_will_create() -> None:
    net = macvlan_plan(options={"parent": "ens33.10"}).network
    assert net.options[OPT_CREATED_PARENT] == "true"


@pytest.mark.parametrize(
    ("req", "error", "expected"),
    [
        ({"options": {}}, InvalidArgument, "macvlan needs -o parent=NIC"),
        ({"options": {"parent": "ens33", "x": "1"}}, InvalidArgument, "unknown macvlan option"),
        (
            {"options": {"parent": "ens33", "macvlan_mode": "l2"}},
            InvalidArgument,
            "invalid macvlan_mode 'l2'",
        ),
        ({"options": {"parent": "ens33"}, "subnet": None}, InvalidArgument, "needs --subnet"),
        ({"options": {"parent": "eth9"}}, NotFound, "parent interface eth9 does not exist"),
        ({"options": {"parent": "eth9.10"}}, NotFound, "parent interface eth9.10"),
        ({"options": {"parent": "ens33.5000"}}, NotFound, "parent interface ens33.5000"),
        ({"options": {"parent": "ens34"}}, InvalidArgument, "is a bridge port"),
        (
            {"options": {"parent": "ens33"}, "gateway": IPv4Address("10.0.0.1")},
            InvalidArgument,
            "invalid gateway 10.0.0.1",
        ),
        (
            {"options": {"parent": "ens33", "boxnet.macvlan.host_ip": "192.168.198.180"}},
            InvalidArgument,
            "needs --ip-range",
        ),
        (
            {
                "options": {"parent": "ens33", "boxnet.macvlan.host_ip": "192.168.198.161"},
                "ip_range": IPv4Network("192.168.198.160/28"),
            },
            InvalidArgument,
            "outside that range",
        ),
        (
            {"options": {"parent": "ens33", "boxnet.macvlan.host_ip": "fe80::1"}},
            InvalidArgument,
            "not an IPv4 address",
        ),
    ],
)
def test_macvlan_refuses_bad_requests(
    req: dict[str, Any], error: type[BoxnetError], expected: str
) -> None:
    assert expected in refused(error, macvlan_plan, **req)


def test_macvlan_has_no_firewall_intents() -> None:
    net = macvlan_plan(options={"parent": "ens33"}).network
    assert MacvlanDriver(ENV).firewall(net) == ()


# -- host, null, the registry ---------------------------------------------------------------------
@pytest.mark.parametrize("driver", [HostDriver, NullDriver])
def test_host_and_null_exist_only_predefined(driver: Any) -> None:
    assert not driver.joinable
    assert "only one instance" in refused(
        Forbidden, driver(ENV).validate, NetworkRequest(name="x"), base(), ctx()
    )


def test_registry_builds_every_driver_and_names_the_known_ones() -> None:
    drivers = Drivers(ENV)
    assert {d.name for d in drivers} == {cls.name for cls in DRIVERS}
    assert drivers["macvlan"].name == "macvlan"
    assert drivers.bridge is drivers["bridge"]
    with pytest.raises(InvalidArgument) as error:
        drivers["vxlan"]
    assert "network driver 'vxlan' is not supported" in error.value.message
    assert error.value.hint == "use one of: " + ", ".join(CREATABLE)
    assert "overlay" in CREATABLE and "host" not in CREATABLE
    assert drivers.scope("overlay") == "global" and drivers.scope("bridge") == "local"


def test_overlay_needs_a_cluster_store_and_refuses_encryption() -> None:
    drivers = Drivers(ENV)  # no --cluster-store
    req = NetworkRequest(name="ov", driver="overlay")
    base = Network(id="a" * 64, name="ov", driver="overlay", created="")
    with pytest.raises(InvalidArgument) as error:
        drivers["overlay"].validate(req, base, PlanContext())
    assert error.value.message == "overlay networks need a cluster store, and this boxnetd has none"
    assert error.value.hint is not None and "--cluster-store" in error.value.hint


def test_every_driver_step_is_unique_and_named_after_its_driver() -> None:
    steps = all_steps()
    assert len(steps) == len(set(steps))
    for cls in DRIVERS:
        assert all(step.startswith(cls.name + ".") for step in cls.steps), cls


# -- IPv6 (issue 15) ------------------------------------------------------------------------------
def test_bridge_plans_a_dual_stack_network_from_the_request() -> None:
    from ipaddress import IPv6Address, IPv6Network

    asked = IPAMConfig(IPv6Network("2001:db8:1::/64"), ip_range=IPv6Network("2001:db8:1::/120"))
    net = bridge_plan(ipv6=True, subnet=IPv4Network("10.9.0.0/24"), ipam6=asked).network
    assert net.ipv6 is True
    v6 = net.family(6)
    assert v6 is not None and v6.subnet == IPv6Network("2001:db8:1::/64")
    assert v6.gateway == IPv6Address("2001:db8:1::1") and v6.ip_range == asked.ip_range
    assert net.family(4) is not None
    assert {i.subnet.version for i in BridgeDriver(ENV).firewall(net)} == {4, 6}


def test_bridge_ipv6_without_subnet_takes_a_64_of_the_pool_and_skips_taken_ones() -> None:
    from ipaddress import IPv6Network

    from boxnet.ipam.allocator import ula_pool

    pool = ula_pool("seed")
    assert pool[0].prefixlen == 48 and pool[0].subnet_of(IPv6Network("fd00::/8"))
    assert ula_pool("seed") == pool and ula_pool("other")[0] != pool[0]
    first = next(pool[0].subnets(new_prefix=64))
    context = PlanContext(
        pools=DEFAULT_POOLS, pools6=(pool,), occupied=lambda: [Occupant(first, "network a")]
    )
    net = BridgeDriver(ENV).validate(NetworkRequest(name="n1", ipv6=True), base(), context).network
    v6 = net.family(6)
    assert v6 is not None and v6.subnet.prefixlen == 64 and v6.subnet != first
    assert v6.subnet.subnet_of(pool[0])  # type: ignore[arg-type]


def test_bridge_ipv6_checks_the_gateway_and_overlaps() -> None:
    from ipaddress import IPv6Address, IPv6Network

    subnet = IPv6Network("2001:db8:1::/64")
    bad_gw = IPAMConfig(subnet, gateway=IPv6Address("2001:db8:2::1"))
    assert "invalid gateway" in refused(InvalidArgument, bridge_plan, ipv6=True, ipam6=bad_gw)
    taken = [Occupant(IPv6Network("2001:db8::/32"), "the address x of eth0")]
    msg = refused(Conflict, bridge_plan, taken, ipv6=True, ipam6=IPAMConfig(subnet))
    assert "overlaps the address x of eth0" in msg


def test_network_request_parses_one_ipam_config_per_family() -> None:
    from boxnet.core.network_request import parse_network_request

    req = parse_network_request(
        {
            "Name": "v6",
            "EnableIPv6": True,
            "IPAM": {"Config": [{"Subnet": "10.1.0.0/24"}, {"Subnet": "2001:db8::/64"}]},
        }
    )
    assert str(req.subnet) == "10.1.0.0/24" and req.ipam6 is not None
    assert str(req.ipam6.subnet) == "2001:db8::/64" and req.ipv4 is True
    two_v6 = {"Name": "x", "IPAM": {"Config": [{"Subnet": "2001:db8::/64"}] * 2}}
    assert "at most one IPv6" in refused(InvalidArgument, parse_network_request, two_v6)
    mixed = {"Name": "x", "IPAM": {"Config": [{"Subnet": "2001:db8::/64", "Gateway": "10.0.0.1"}]}}
    assert "same address family" in refused(InvalidArgument, parse_network_request, mixed)
