"""One packet, traced by the kernel: nftables `meta nftrace` and `nft monitor trace`.

`trace_one` adds two small tables of its own (`ip boxnet-trace`, `bridge boxnet-trace`; never
boxnet's `boxnet` tables, whose shape the firewall guard watches) whose only rules set nftrace on
packets matching the probe, starts `nft monitor trace`, sends the packet, reads the trace for a
bounded time and removes the tables again, also on failure. Every nftables table the packet
meets reports to the monitor: boxnet's, and iptables-nft's chains (the iptables backend on the
nf_tables kernel API). Rules of iptables-legacy (x_tables) do not appear.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from boxnet.errors import KernelError
from boxnet.kernel.netns import socket_in

TABLE = "boxnet-trace"
MONITOR_SETTLE = 0.3  # `nft monitor` has no "subscribed" signal: give it this long to subscribe
READ_FOR = 1.5  # seconds of trace collected after the packet left


@dataclass(frozen=True)
class Probe:
    src_ip: str
    dst_ip: str
    proto: str  # tcp, udp, icmp
    port: int | None
    netns: str | None  # the sender's namespace path; None: the daemon's own (the host)


def _match(p: Probe) -> str:
    m = (f"ip saddr {p.src_ip} " if p.src_ip else "") + f"ip daddr {p.dst_ip}"
    if p.proto == "icmp":
        return m + " ip protocol icmp"
    return m + f" {p.proto} dport {p.port}"


def _tables(p: Probe) -> str:
    rule = f"{_match(p)} meta nftrace set 1"
    return (
        f"table ip {TABLE}\ndelete table ip {TABLE}\n"
        f"table ip {TABLE} {{\n"
        f"\tchain pre {{ type filter hook prerouting priority -350; {rule}; }}\n"
        f"\tchain out {{ type filter hook output priority -350; {rule}; }}\n}}\n"
        f"table bridge {TABLE}\ndelete table bridge {TABLE}\n"
        f"table bridge {TABLE} {{\n"
        f"\tchain pre {{ type filter hook prerouting priority -350; {rule}; }}\n}}\n"
    )


def _remove_tables() -> str:
    return "".join(f"table {f} {TABLE}\ndelete table {f} {TABLE}\n" for f in ("ip", "bridge"))


def _nft(script: str) -> None:
    import nftables

    nft = nftables.Nftables()
    rc, out, err = nft.cmd(script)
    if rc != 0:
        raise KernelError(f"nftables trace set-up failed: {err.strip() or out.strip()}")


def _sock(p: Probe, type: int, proto: int = 0) -> socket.socket:
    if p.netns is None:
        return socket.socket(socket.AF_INET, type, proto)
    return socket_in(Path(p.netns), socket.AF_INET, type, proto)


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def send(p: Probe) -> None:
    """One packet from p.src_ip to p.dst_ip: an echo request, a SYN, or a datagram."""
    if p.proto == "icmp":
        header = struct.pack("!BBHHH", 8, 0, 0, 0xB0B, 1) + b"boxnet-probe"
        packet = header[:2] + struct.pack("!H", _checksum(header)) + header[4:]
        with _sock(p, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
            s.sendto(packet, (p.dst_ip, 0))
        return
    if p.proto == "udp":
        with _sock(p, socket.SOCK_DGRAM) as s:
            s.sendto(b"boxnet-probe", (p.dst_ip, p.port or 0))
        return
    with _sock(p, socket.SOCK_STREAM) as s:
        s.setblocking(False)
        rc = s.connect_ex((p.dst_ip, p.port or 0))
        if rc not in (0, errno.EINPROGRESS):
            return  # refused at once (local): the SYN went out and came back as a RST
        select.select([], [s], [], 1.0)  # a SYN-ACK or nothing: either way the SYN was sent


def trace_one(p: Probe) -> list[str]:
    """The trace lines the kernel reported for the probe packet, in order."""
    monitor = subprocess.Popen(
        ["nft", "monitor", "trace"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    lines: list[str] = []
    try:
        time.sleep(MONITOR_SETTLE)
        _nft(_tables(p))
        send(p)
        assert monitor.stdout is not None
        fd = monitor.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + READ_FOR
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
        lines = buf.decode(errors="replace").splitlines()
    finally:
        monitor.terminate()
        try:
            monitor.wait(timeout=5)
        except subprocess.TimeoutExpired:
            monitor.kill()
            monitor.wait()
        _nft(_remove_tables())
    return [line for line in lines if line.startswith("trace id ")]
