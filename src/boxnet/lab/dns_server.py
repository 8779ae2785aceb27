"""Lab upstream DNS server (stand-alone, stdlib only): `python dns_server.py --answer IP`.

Answers every A query over UDP with --answer (AAAA and others: no records), and appends one line
per query, `QNAME QTYPE SOURCE`, to --log, so a test can see exactly which queries left the
host (or that none did). Writes --ready-file once listening. Parsing is done by hand here, not
with the dnslib boxnet uses, so the observer shares no code with the thing observed.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct


def parse_question(data: bytes) -> tuple[str, int, int]:
    """(qname, qtype, offset after the question) of a query's first question."""
    labels, pos = [], 12
    while data[pos]:
        length = data[pos]
        labels.append(data[pos + 1 : pos + 1 + length].decode("ascii", "replace"))
        pos += 1 + length
    qtype = struct.unpack("!H", data[pos + 1 : pos + 3])[0]
    return ".".join(labels), qtype, pos + 5


def answer(data: bytes, address: bytes) -> tuple[bytes, str, int]:
    qname, qtype, end = parse_question(data)
    ancount = 1 if qtype == 1 else 0
    flags = 0x8180 | (data[2] << 8 & 0x0100)  # QR, RD copied, RA
    header = data[:2] + struct.pack("!HHHHH", flags, 1, ancount, 0, 0)
    body = data[12:end]
    if ancount:
        body += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + address
    return header + body, qname, qtype


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answer", default="192.0.2.53")
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("--log", required=True)
    parser.add_argument("--ready-file", required=True)
    args = parser.parse_args()
    address = socket.inet_aton(args.answer)
    family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:  # "::" serves IPv4 clients too (as ::ffff:a.b.c.d)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((args.bind, args.port))
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, args.ready_file)
    with open(args.log, "a", buffering=1) as log:
        while True:
            data, peer = sock.recvfrom(4096)
            try:
                reply, qname, qtype = answer(data, address)
            except (IndexError, struct.error):
                continue
            log.write(f"{qname} {qtype} {peer[0].removeprefix('::ffff:')}\n")
            sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
