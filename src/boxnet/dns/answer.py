"""Turn one query into a local answer, or say it must be forwarded.

Answers are cached by (asker, query without its id): a repeated query costs one dict lookup and
no parsing. The cache belongs to one NameTable and is dropped with it.
"""

from __future__ import annotations

import struct

from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A, DNSError, DNSRecord

from boxnet.dns.table import NameTable

LOCAL_TTL = 600  # Docker's TTL for container names
CACHE_LIMIT = 20_000
FORWARD = None  # decide() result: not ours, send it upstream


class Answerer:
    def __init__(self, table: NameTable) -> None:
        self.table = table
        self._cache: dict[tuple[str, bytes], bytes] = {}

    def decide(self, asker: str, query: bytes) -> bytes | None:
        """The response to send back, or FORWARD. Malformed queries get FORMERR (or nothing
        when even the header is unreadable: b"")."""
        key = (asker, query[2:])
        cached = self._cache.get(key)
        if cached is not None:
            return query[:2] + cached if cached else FORWARD
        response = self._answer(asker, query)
        if response != b"":
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            # b"" marks "forward": a repeated outside name is not parsed again either.
            self._cache[key] = response[2:] if response is not FORWARD else b""
        return response

    def _answer(self, asker: str, query: bytes) -> bytes | None:
        fast = self._fast_a(asker, query)
        if fast is not None:
            return fast
        try:
            request = DNSRecord.parse(query)
        except (DNSError, ValueError, IndexError):
            if len(query) < 12:
                return b""
            # Echo the id, set QR and FORMERR: what a resolver expects for garbage.
            return query[:2] + bytes([0x80 | (query[2] & 0x01), RCODE.FORMERR]) + bytes(8)
        if request.header.qr or len(request.questions) != 1:
            reply = request.reply()
            reply.header.rcode = RCODE.FORMERR
            return bytes(reply.pack())
        q = request.q
        qname = str(q.qname)
        reply = request.reply()
        if q.qtype == QTYPE.PTR and qname.lower().endswith((".in-addr.arpa.", ".ip6.arpa.")):
            name = self.table.reverse(asker, qname)
            if name is not None:
                reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(name + "."), ttl=LOCAL_TTL))
                return bytes(reply.pack())
        else:
            addresses = self.table.lookup(asker, qname)
            if addresses is not None:
                for ip in addresses:
                    if ip.version == 4 and q.qtype in (QTYPE.A, QTYPE.ANY):
                        reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(str(ip)), ttl=LOCAL_TTL))
                    if ip.version == 6 and q.qtype in (QTYPE.AAAA, QTYPE.ANY):
                        rdata = AAAA(str(ip))
                        reply.add_answer(RR(q.qname, QTYPE.AAAA, rdata=rdata, ttl=LOCAL_TTL))
                # Other types of a container name (and AAAA on IPv4-only networks): NOERROR,
                # no records, so the client does not go asking the outside about a local name.
                return bytes(reply.pack())
        if not self.table.may_forward(asker):
            # Only on --internal networks: the name is not local and nothing leaves the host.
            reply.header.rcode = RCODE.REFUSED
            reply.header.ra = 0
            return bytes(reply.pack())
        return FORWARD

    def _fast_a(self, asker: str, query: bytes) -> bytes | None:
        """A or AAAA of a local name in a plain query (one question, no compression), packed
        by hand: ~100x cheaper than dnslib. Anything else returns None and takes the full path.
        """
        if len(query) < 17 or query[2] & 0xF8 or query[4:10] != b"\x00\x01\x00\x00\x00\x00":
            return None  # a response, an opcode other than QUERY, or not one question
        labels, pos = [], 12
        while query[pos]:
            length = query[pos]
            if length > 63 or pos + 1 + length >= len(query):
                return None
            labels.append(query[pos + 1 : pos + 1 + length])
            pos += 1 + length
        end = pos + 5
        if end > len(query) or query[pos + 3 : end] != b"\x00\x01":
            return None  # truncated, or not class IN
        qtype = query[pos + 1 : pos + 3]
        if qtype not in (b"\x00\x01", b"\x00\x1c"):
            return None
        try:
            name = b".".join(labels).decode("ascii")
        except UnicodeDecodeError:
            return None
        addresses = self.table.lookup(asker, name)
        if addresses is None:
            return None
        version, prefix = (6, _AAAA_PREFIX) if qtype == b"\x00\x1c" else (4, _A_PREFIX)
        records = [ip for ip in addresses if ip.version == version]
        flags = bytes([0x84 | (query[2] & 0x01), 0x80])  # QR AA (RD copied); RA
        header = query[:2] + flags + struct.pack("!HHHH", 1, len(records), 0, 0)
        answers = b"".join(prefix + ip.packed for ip in records)
        return header + query[12:end] + answers


# Name pointer to the question (offset 12), type A, class IN, TTL, 4 bytes of data.
_A_PREFIX = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, LOCAL_TTL, 4)
# The same for type AAAA (28), 16 bytes of data.
_AAAA_PREFIX = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, LOCAL_TTL, 16)


def servfail(query: bytes) -> bytes:
    """SERVFAIL for a query we could not get an answer for (upstreams down, too busy)."""
    try:
        reply = DNSRecord.parse(query).reply()
    except (DNSError, ValueError, IndexError):
        return b""
    reply.header.rcode = RCODE.SERVFAIL
    return bytes(reply.pack())
