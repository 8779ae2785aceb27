"""The kernel's own cost of what boxnet does per container: the lower bound for its figures.

In the lab's host namespace (where boxnetd runs), a probe process makes, per sample, exactly the
objects boxnet makes, with nothing else around them: a netns bind-mounted on a file (unshare in
a throwaway thread, as boxnet.kernel.netns does; the same thread opens the netlink socket into
it), a veth whose peer is born in the netns and whose host end is enslaved to a bridge, the
peer's address, up, lo up, a default route, and one libnftables transaction adding a DNAT map
element (context kept open). Then it removes them (nft element, netns unmount: the veth dies
with the netns, asynchronously, as in boxnet). A bridge `bxraw0` and table `ip bxraw` of its own
are removed at the end.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench.report import Row, lat
from boxnet.lab import Netns, venv_bin

PROBE = r"""
import ctypes, json, os, socket, sys, threading, time
from pyroute2 import IPRoute
import nftables

libc = ctypes.CDLL(None, use_errno=True)
root, count = sys.argv[1], int(sys.argv[2])
os.makedirs(root, exist_ok=True)
ipr = IPRoute()
ipr.link("add", ifname="bxraw0", kind="bridge")
bridge = ipr.link_lookup(ifname="bxraw0")[0]
ipr.link("set", index=bridge, state="up")
ipr.addr("add", index=bridge, address="10.213.0.1", prefixlen=16)
nft = nftables.Nftables()
rc, _, err = nft.cmd(
    "add table ip bxraw; add map ip bxraw pub "
    "{ type inet_proto . inet_service : ipv4_addr . inet_service; }"
)
assert rc == 0, err

def netns_with_socket(path):
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)
    box = {}
    def work():
        assert libc.unshare(0x40000000) == 0
        tid = threading.get_native_id()
        src = f"/proc/self/task/{tid}/ns/net".encode()
        assert libc.mount(src, path.encode(), None, 4096, None) == 0
        box["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 0)
    t = threading.Thread(target=work); t.start(); t.join()
    return box["sock"]

out = {k: [] for k in ("netns", "veth", "inner", "nft", "total", "teardown", "gone")}
for i in range(count):
    path = f"{root}/raw{i}"
    ip = f"10.213.{1 + i // 250}.{1 + i % 250}"
    t0 = time.perf_counter()
    sock = netns_with_socket(path)
    t1 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    ipr.link("add", ifname=f"bxrawv{i}", kind="veth", master=bridge, state="up",
             peer={"ifname": "eth0", "net_ns_fd": fd})
    os.close(fd)
    t2 = time.perf_counter()
    inner = IPRoute(fileno=sock.detach())
    idx = inner.link_lookup(ifname="eth0")[0]
    inner.addr("add", index=idx, address=ip, prefixlen=16, broadcast="10.213.255.255")
    inner.link("set", index=idx, state="up")
    inner.link("set", index=inner.link_lookup(ifname="lo")[0], state="up")
    inner.route("add", dst="0.0.0.0/0", gateway="10.213.0.1")
    inner.close()
    t3 = time.perf_counter()
    element = f"tcp . {40000 + i} : {ip} . 80"
    rc, _, err = nft.cmd(f"add element ip bxraw pub {{ {element} }}")
    assert rc == 0, err
    t4 = time.perf_counter()
    rc, _, err = nft.cmd(f"delete element ip bxraw pub {{ tcp . {40000 + i} }}")
    assert libc.umount2(path.encode(), 2) == 0
    os.unlink(path)
    t5 = time.perf_counter()
    for _ in range(10000):  # bounded (5 s): the veth dies with the netns, asynchronously
        try:
            socket.if_nametoindex(f"bxrawv{i}")
        except OSError:
            break
        time.sleep(0.0005)
    t6 = time.perf_counter()
    for key, value in zip(out, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, t5 - t4, t6 - t4)):
        out[key].append(value * 1000)
ipr.link("del", index=bridge)
nft.cmd("delete table ip bxraw")
print(json.dumps(out))
"""


def measure(host: Netns, workdir: Path, count: int) -> tuple[dict[str, float], list[Row]]:
    """Run the probe `count` times; returns ({part: median ms}, rows)."""
    argv = [str(venv_bin() / "python"), "-c", PROBE, str(workdir / "rawns"), str(count)]
    out = json.loads(host.run(argv, timeout=120).stdout)
    medians = {k: statistics.median(v) for k, v in out.items()}
    parts = ", ".join(f"{k} {medians[k]:.2f}" for k in ("netns", "veth", "inner", "nft"))
    rows = [
        Row(
            "raw kernel",
            "netns + veth (peer in netns, on bridge) + addr/up/lo/route + 1 nft map element",
            lat(out["total"]),
            "1.0x",
        ),
        Row("raw kernel", f"of which (medians, ms): {parts}", "", ""),
        Row("raw kernel", "teardown: nft element delete + netns unmount", lat(out["teardown"])),
        Row("raw kernel", "teardown until the veth is gone (ip link)", lat(out["gone"])),
    ]
    return medians, rows
