"""Demo section for issue 19: the topology page's address, and `explain` on an allowed and a
blocked pair (the blocked one also with --probe: one real packet, traced by the kernel)."""

from __future__ import annotations

from boxnet.demo.show import boxnet, note, on, section
from boxnet.lab import Daemon, Netns


def topology_section(d: Daemon, host_ns: Netns) -> None:
    section("See the network: the topology page and boxnet explain")
    boxnet(d, "network", "create", "front")
    boxnet(d, "network", "create", "back")
    for name, net in (("shop", "front"), ("cart", "front"), ("ledger", "back")):
        boxnet(d, "run", "-d", "--name", name, "--network", net, "busybox", "sleep", "1000")
    note("boxnetd was started with --ui 127.0.0.1:8480: the read-only page, live")
    page = boxnet(d, "topology").stdout.strip()
    on(host_ns, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", page])
    note("(boxnet topology --format svg|dot|json writes the drawing or the model to stdout)")
    note("an allowed pair: same network, switched on its bridge")
    boxnet(d, "explain", "shop", "cart")
    note("a blocked pair: two networks are isolated; the rule and its reason, as programmed")
    boxnet(d, "explain", "shop", "ledger", expect_ok=False)
    note("--probe: one real ping from shop, with nftables tracing on, and the kernel's path")
    boxnet(d, "explain", "--probe", "shop", "ledger", expect_ok=False)
    boxnet(d, "rm", "-f", "shop", "cart", "ledger")
    boxnet(d, "network", "rm", "front", "back")
