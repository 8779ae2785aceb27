"""A DNS query built and parsed by hand, sent by a python run anywhere (a lab namespace, a
container's namespace, `boxnet exec C python3`): the tests' independent DNS client. Stdlib only,
no dnslib, so the observer shares no code with the resolver it observes."""

from __future__ import annotations

import socket
import struct
import subprocess

from boxnet.lab.proc import LabError

CLIENT = r"""
import socket, struct, sys
server, port, proto, name, qtype = sys.argv[1:6]
port, qtype = int(port), int(qtype)
q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
q += struct.pack("!HH", qtype, 1)
family = socket.AF_INET6 if ":" in server else socket.AF_INET
if proto == "udp":  # connected, as libc resolvers do: a reply from another port is dropped
    s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(5)
    s.connect((server, port)); s.send(q); r = s.recv(4096)
else:
    s = socket.create_connection((server, port), timeout=5)
    s.sendall(struct.pack("!H", len(q)) + q)
    r = b""
    while len(r) < 2 or len(r) < 2 + struct.unpack("!H", r[:2])[0]:
        chunk = s.recv(4096)
        if not chunk:
            break
        r += chunk
    r = r[2:]
print(r.hex())
"""


def query(
    prefix: list[str], server: str, port: int, proto: str, name: str, qtype: int = 1
) -> tuple[int, list[str]]:
    """(rcode, A addresses) of a hand-built query to server:port/proto, sent by the python
    that `prefix` runs (an nsenter into some namespace, or `boxnet exec C python3`)."""
    argv = [*prefix, "-I", "-c", CLIENT, server, str(port), proto, name, str(qtype)]
    r = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise LabError(f"query {name} to {server}:{port}/{proto} failed: {r.stderr.strip()}")
    return parse_reply(bytes.fromhex(r.stdout.strip()))


def parse_reply(data: bytes) -> tuple[int, list[str]]:
    """(rcode, A addresses) of the reply to CLIENT's query (id 0x4242)."""
    assert data[:2] == b"\x42\x42" and data[2] & 0x80, "not a response to our query"
    rcode = data[3] & 0x0F
    ancount = struct.unpack("!H", data[6:8])[0]
    pos = 12
    while data[pos]:
        pos += 1 + data[pos]
    pos += 5
    addresses = []
    for _ in range(ancount):
        pos += 2 if data[pos] & 0xC0 == 0xC0 else _skip_name(data, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1:
            addresses.append(socket.inet_ntoa(data[pos : pos + rdlen]))
        pos += rdlen
    return rcode, addresses


def _skip_name(data: bytes, pos: int) -> int:
    start = pos
    while data[pos] and data[pos] & 0xC0 != 0xC0:
        pos += 1 + data[pos]
    return pos - start + (2 if data[pos] else 1)
