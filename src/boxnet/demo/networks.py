"""Demo sections for tutorial §2.1 (daemon flags), §2.4 (daemon.json) and §3.1 (isolation).

§2.1 and §2.4 start extra daemons, each in a fresh namespace of the lab, so the main daemon and
its containers are untouched; §3.1 uses the main daemon.
"""

from __future__ import annotations

import json

from boxnet.demo.show import BOLD, RESET, boxnet, note, on, section
from boxnet.lab import Daemon, Lab, Netns
from boxnet.lab.daemon import venv_bin
from boxnet.lab.matrix import Member, expected_reach, observe, render
from boxnet.lab.proc import run

# The tutorial's daemon.json, byte for byte (four mistakes), and what it meant.
TUTORIAL_DAEMON_JSON = """{
'bip':"192.168.1.5/24"
"final-cidr":"10.20.0.0/36"
"default-gateway":"10.20.1.1"
"dns":["10.20.1.1","10.20.1.3"]
}
"""
CORRECTED_DAEMON_JSON = """{
"bip":"10.20.0.1/16",
"fixed-cidr":"10.20.128.0/17",
"default-gateway":"10.20.1.1",
"dns":["10.20.1.1","10.20.1.3"]
}
"""
HOST_IP, OUTSIDE_IP = "203.0.113.2", "203.0.113.1"


def tutorial_2_1(lab: Lab) -> None:
    section("2.1 Daemon-wide parameters: boxnetd --bip 10.10.10.1/24")
    ns = lab.netns("bip-host")
    d = lab.boxnetd(ns, "--bip", "10.10.10.1/24")
    note("a second boxnetd, in its own namespace, started with --bip 10.10.10.1/24")
    on(ns, ["ip", "-br", "-4", "addr", "show", "dev", "boxnet0"])
    boxnet(d, "run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "dev", "eth0")
    note("restarted without --bip, the bridge is back on 172.17.0.1/16 (the flags and the file")
    note("are the truth at every start; Docker would keep 10.10.10.1/24)")
    d.extra_args.clear()
    d.restart()
    on(ns, ["ip", "-br", "-4", "addr", "show", "dev", "boxnet0"])
    d.stop()


def _validate(path: str) -> None:
    argv = [str(venv_bin() / "boxnetd"), "--validate", "--config-file", path]
    result = run(argv, check=False)
    print(f"{BOLD}host${RESET} boxnetd --validate --config-file {path}")
    print(((result.stdout or "") + (result.stderr or "")).rstrip())
    print(f"(exit code {result.returncode})")


def tutorial_2_4(lab: Lab) -> None:
    section("2.4 daemon.json: the tutorial's file, then the corrected one")
    bad = lab.tmpdir / "daemon.json"
    bad.write_text(TUTORIAL_DAEMON_JSON)
    print(TUTORIAL_DAEMON_JSON.rstrip())
    _validate(str(bad))
    note("boxnetd refuses to start with it, and touches nothing (no bridge, no rules):")
    ns = lab.netns("json-host")
    try:
        lab.boxnetd(ns, "--config-file", str(bad))
    except Exception as exc:
        print(str(exc).splitlines()[0])
    on(ns, ["ip", "-br", "link"])
    good = lab.tmpdir / "daemon-fixed.json"
    good.write_text(CORRECTED_DAEMON_JSON)
    note("corrected: double quotes, commas, fixed-cidr inside the bip network, a /17")
    print(CORRECTED_DAEMON_JSON.rstrip())
    _validate(str(good))
    d = lab.boxnetd(ns, "--config-file", str(good))
    on(ns, ["ip", "-br", "-4", "addr", "show", "dev", "boxnet0"])
    boxnet(d, "run", "-d", "--name", "cfg", "host", "sleep", "1000")
    boxnet(d, "exec", "cfg", "ip", "-4", "-br", "addr", "show", "dev", "eth0")
    boxnet(d, "exec", "cfg", "ip", "-4", "route", "show", "default")
    # The daemon's dns are the embedded resolver's upstreams (# ExtServers), see §DNS.
    boxnet(d, "exec", "cfg", "cat", "/etc/resolv.conf")
    boxnet(d, "rm", "-f", "cfg")
    d.stop()


def tutorial_3_1(d: Daemon, host: Netns) -> None:
    section("3.1 Isolating containers: user-defined networks lamp and lnmp")
    lamp = boxnet(d, "network", "create", "-d", "bridge", "lamp").stdout.strip()
    lnmp = boxnet(d, "network", "create", "-d", "bridge", "lnmp").stdout.strip()
    boxnet(d, "network", "ls")
    on(host, ["ip", "-br", "-4", "addr", "show", "dev", f"br-{lamp[:12]}"])
    on(host, ["ip", "-br", "-4", "addr", "show", "dev", f"br-{lnmp[:12]}"])
    boxnet(d, "run", "-d", "--name", "tomcat-lamp", "--network=lamp", "busybox", "sleep", "1000")
    boxnet(d, "run", "-d", "--name", "tomcat-lnmp", "--network=lnmp", "busybox", "sleep", "1000")
    boxnet(d, "exec", "tomcat-lamp", "ip", "-o", "-4", "addr", "show", "dev", "eth0")
    boxnet(d, "exec", "tomcat-lnmp", "ip", "-o", "-4", "addr", "show", "dev", "eth0")
    note("across the two networks: no answer, in both directions")
    boxnet(d, "exec", "tomcat-lamp", "ping", "-c1", "-W1", "172.19.0.2", expect_ok=False)
    boxnet(d, "exec", "tomcat-lnmp", "ping", "-c1", "-W1", "172.18.0.2", expect_ok=False)
    note("…but both still reach the host and the outside")
    boxnet(d, "exec", "tomcat-lamp", "ping", "-c1", "-W1", HOST_IP)
    boxnet(d, "exec", "tomcat-lnmp", "ping", "-c1", "-W1", OUTSIDE_IP)
    note("the isolation is boxnet's forward chain, which only drops traffic into its own bridges")
    rules = host.run(["nft", "list", "chain", "inet", "boxnet", "forward"]).stdout
    print(rules.rstrip())
    note("network connect: tomcat-lamp gets eth1 on lnmp, and then it can reach tomcat-lnmp")
    boxnet(d, "network", "connect", "lnmp", "tomcat-lamp")
    boxnet(d, "exec", "tomcat-lamp", "ip", "-o", "-4", "addr")
    boxnet(d, "exec", "tomcat-lamp", "ping", "-c1", "-W1", "172.19.0.2")
    boxnet(d, "network", "disconnect", "lnmp", "tomcat-lamp")
    reachability_matrix(d)


def reachability_matrix(d: Daemon) -> None:
    section("Reachability matrix: every container pings every other (real packets)")
    d.cli("network", "create", "harbor_harbor")
    d.cli("network", "create", "--internal", "backend")
    layout = [
        ("tomcat-lamp", "lamp"), ("lamp-db", "lamp"), ("tomcat-lnmp", "lnmp"),
        ("harbor", "harbor_harbor"), ("vault", "backend"), ("vault-db", "backend"),
        ("tomcat1", "bridge"), ("hostbox", "host"), ("offline", "none"),
    ]  # fmt: skip
    members = []
    for name, net in layout:
        if name not in ("tomcat-lamp", "tomcat-lnmp", "tomcat1"):
            d.cli("run", "-d", "--name", name, "--network", net, "busybox", "sleep", "1000")
        data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
        data = data[0] if isinstance(data, list) else data
        settings = data["NetworkSettings"]["Networks"].get(net, {})
        ip = HOST_IP if net == "host" else settings.get("IPAddress") or None
        gateway = settings.get("Gateway") or None
        if net == "backend":
            info = json.loads(d.cli("network", "inspect", "--format", "json", net).stdout)
            info = info[0] if isinstance(info, list) else info
            gateway = info["IPAM"]["Config"][0]["Gateway"]
        members.append(Member(name, net, ip, gateway, internal=net == "backend"))
    expected = expected_reach(members, HOST_IP, OUTSIDE_IP)
    observed = observe(d, members, HOST_IP, OUTSIDE_IP)
    print(render(members, expected, observed, HOST_IP, OUTSIDE_IP))
    note("same network: ok; across networks (the default bridge too): --; internal (backend):")
    note("only its own network and its gateway; none: nothing; host: everything")


def networks_sections(lab: Lab, d: Daemon, host: Netns) -> None:
    """§2.1, §2.4 and §3.1 with the reachability matrix (one call from the demo's main)."""
    tutorial_2_1(lab)
    tutorial_2_4(lab)
    tutorial_3_1(d, host)
