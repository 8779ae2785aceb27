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
keep = len(sys.argv) > 3  # grown: nothing removed, so sample i has i containers' objects before it
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

out = {k: [] for k in ("netns", "veth", "inner", "nft", "total", "teardown", "gone", "hairpin")}
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
    if keep:  # and boxnet's hairpin on the port (a bridge_slave change), outside "total"
        ipr.brport("set", index=socket.if_nametoindex(f"bxrawv{i}"), mode=1)
        t5 = time.perf_counter()
        out["hairpin"].append((t5 - t4) * 1000)
        values = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)
    else:
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
        values = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, t5 - t4, t6 - t4)
    for key, value in zip(("netns", "veth", "inner", "nft", "total", "teardown", "gone"), values):
        out[key].append(value * 1000)
for i in range(count if keep else 0):
    libc.umount2(f"{root}/raw{i}".encode(), 2)
    os.unlink(f"{root}/raw{i}")
ipr.link("del", index=bridge)
nft.cmd("delete table ip bxraw")
print(json.dumps(out))
"""


def run_probe(host: Netns, workdir: Path, count: int, keep: bool = False) -> dict[str, list[float]]:
    argv = [str(venv_bin() / "python"), "-c", PROBE, str(workdir / "rawns"), str(count)]
    return json.loads(host.run(argv + (["keep"] if keep else []), timeout=600).stdout)  # type: ignore[no-any-return]


def measure(host: Netns, workdir: Path, count: int) -> tuple[dict[str, float], list[Row]]:
    """Run the probe `count` times; returns ({part: median ms}, rows)."""
    out = run_probe(host, workdir, count)
    medians = {k: statistics.median(v) for k, v in out.items() if v}
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


def main() -> int:
    """`python -m bench.raw --grow 1000`: the kernel's cost per container while the bridge, the
    namespaces and the DNAT map grow to N (nothing removed): medians per 100 containers, the
    floor under boxnetd's setup slope (issue 20)."""
    import argparse

    from boxnet.lab import Lab, basic_lab

    p = argparse.ArgumentParser(prog="python -m bench.raw")
    p.add_argument("--grow", type=int, default=1000, help="containers to grow to")
    p.add_argument("--bin", type=int, default=100)
    args = p.parse_args()
    with Lab("bench-raw") as lab:
        out = run_probe(basic_lab(lab).host, lab.tmpdir, args.grow, keep=True)
    k = args.bin
    print(f"ms per container, medians of each {k} while growing 0..{args.grow}")
    for key in ("netns", "veth", "inner", "nft", "hairpin", "total"):
        bins = [statistics.median(out[key][i : i + k]) for i in range(0, len(out[key]), k)]
        print(f"{key:8s}", " ".join(f"{b:5.2f}" for b in bins))
    xs = list(range(len(out["total"])))
    slope = statistics.linear_regression(xs, out["total"]).slope * 100
    print(f"total: {slope:+.2f} ms per 100 containers (least squares over every sample)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
