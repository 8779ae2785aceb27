"""boxnet.dns answers without a lab: which asker sees which name, what is forwarded."""

from __future__ import annotations

from ipaddress import IPv4Address

from dnslib import QTYPE, RCODE, DNSRecord

from boxnet.dns.answer import FORWARD, Answerer
from boxnet.dns.table import NameEntry, NameTable

DB = IPv4Address("172.18.0.2")
TABLE = NameTable(
    [
        NameEntry("web", "app", IPv4Address("172.18.0.3"), ("web", "aaaaaaaaaaaa")),
        NameEntry("db", "app", DB, ("db", "bbbbbbbbbbbb", "postgres")),
        NameEntry("other", "lnmp", IPv4Address("172.19.0.2"), ("other",)),
        NameEntry("vault", "internal", IPv4Address("172.20.0.2"), ("vault",), internal=True),
        NameEntry("vault2", "internal", IPv4Address("172.20.0.3"), ("vault2",), internal=True),
    ]
)


def ask(asker: str, name: str, qtype: str = "A") -> DNSRecord | None:
    query = bytes(DNSRecord.question(name, qtype).pack())
    response = Answerer(TABLE).decide(asker, query)
    return None if response is FORWARD else DNSRecord.parse(response)


def test_names_aliases_and_short_ids_on_a_shared_network() -> None:
    for name in ("db", "postgres", "bbbbbbbbbbbb", "DB.", "Postgres"):
        reply = ask("web", name)
        assert reply is not None and [str(rr.rdata) for rr in reply.rr] == [str(DB)]


def test_a_name_on_another_network_is_not_answered_locally() -> None:
    assert ask("web", "other") is FORWARD
    assert ask("other", "db") is FORWARD


def test_aaaa_of_a_local_name_is_empty_not_forwarded() -> None:
    reply = ask("web", "db", "AAAA")
    assert reply is not None and reply.header.rcode == RCODE.NOERROR and not reply.rr


def test_ptr() -> None:
    reply = ask("web", "2.0.18.172.in-addr.arpa", "PTR")
    assert reply is not None and str(reply.rr[0].rdata) == "db."
    assert reply.rr[0].rtype == QTYPE.PTR
    assert ask("other", "2.0.18.172.in-addr.arpa", "PTR") is FORWARD


def test_internal_only_containers_get_names_and_nothing_forwarded() -> None:
    reply = ask("vault", "vault2")
    assert reply is not None and str(reply.rr[0].rdata) == "172.20.0.3"
    refused = ask("vault", "example.com")
    assert refused is not None and refused.header.rcode == RCODE.REFUSED
    # An asker the table does not know is never forwarded either.
    unknown = ask("ghost", "example.com")
    assert unknown is not None and unknown.header.rcode == RCODE.REFUSED


def test_cache_keeps_ids_and_remembers_forwarding() -> None:
    answerer = Answerer(TABLE)
    first = DNSRecord.question("db")
    first.header.id = 1
    second = DNSRecord.question("db")
    second.header.id = 2
    one = answerer.decide("web", bytes(first.pack()))
    two = answerer.decide("web", bytes(second.pack()))
    assert one is not None and two is not None and one[2:] == two[2:]
    assert DNSRecord.parse(two).header.id == 2
    outside = bytes(DNSRecord.question("example.com").pack())
    assert answerer.decide("web", outside) is FORWARD
    assert answerer.decide("web", outside) is FORWARD


def test_garbage_gets_formerr_or_nothing() -> None:
    answerer = Answerer(TABLE)
    assert answerer.decide("web", b"\x00\x01") == b""
    response = answerer.decide("web", b"\x12\x34" + b"\x01\x00" + b"\x00\x01" + b"\xff" * 20)
    assert response is not None and response[:2] == b"\x12\x34" and response[3] & 0x0F == 1


class SlowAnswerer(Answerer):
    def _fast_a(self, asker: str, query: bytes) -> bytes | None:
        return None


def test_the_hand_packed_fast_path_matches_dnslib() -> None:
    for name, qtype in (("db", "A"), ("Postgres.", "A"), ("db", "AAAA"), ("web", "A")):
        request = DNSRecord.question(name, qtype)
        request.header.id = 4242
        fast = Answerer(TABLE)._fast_a("web", bytes(request.pack()))
        slow = SlowAnswerer(TABLE).decide("web", bytes(request.pack()))
        assert fast is not None and slow is not None
        a, b = DNSRecord.parse(fast), DNSRecord.parse(slow)
        assert (a.header.id, a.header.qr, a.header.aa, a.header.rd, a.header.ra) == (
            b.header.id, b.header.qr, b.header.aa, b.header.rd, b.header.ra,
        )  # fmt: skip
        assert a.q == b.q and a.header.rcode == b.header.rcode
        assert [(str(r.rname), r.rtype, r.ttl, str(r.rdata)) for r in a.rr] == [
            (str(r.rname), r.rtype, r.ttl, str(r.rdata)) for r in b.rr
        ]
    # Not local, PTR, or not a plain query: the full path decides.
    assert Answerer(TABLE)._fast_a("web", bytes(DNSRecord.question("other").pack())) is None
    ptr = DNSRecord.question("2.0.18.172.in-addr.arpa", "PTR")
    assert Answerer(TABLE)._fast_a("web", bytes(ptr.pack())) is None


def test_aaaa_on_a_dual_stack_network() -> None:
    """An endpoint with two addresses has two entries: A answers the IPv4 one, AAAA the IPv6
    one (the hand-packed fast path and dnslib's path alike), PTR works in ip6.arpa."""
    from ipaddress import IPv6Address

    v6 = IPv6Address("2001:db8:1::2")
    table = NameTable(
        [
            NameEntry("web6", "dual", IPv4Address("10.98.0.2"), ("web6", "alias6")),
            NameEntry("web6", "dual", v6, ("web6", "alias6")),
            NameEntry("cli", "dual", IPv4Address("10.98.0.3"), ("cli",)),
        ]
    )

    def ask6(name: str, qtype: str) -> DNSRecord:
        query = bytes(DNSRecord.question(name, qtype).pack())
        response = Answerer(table).decide("cli", query)
        assert response is not FORWARD
        return DNSRecord.parse(response)

    for name in ("web6", "alias6"):
        aaaa = ask6(name, "AAAA")
        assert [(rr.rtype, str(rr.rdata)) for rr in aaaa.rr] == [(QTYPE.AAAA, str(v6))]
        a = ask6(name, "A")
        assert [(rr.rtype, str(rr.rdata)) for rr in a.rr] == [(QTYPE.A, "10.98.0.2")]
    both = ask6("web6", "ANY")  # dnslib's path
    assert {str(rr.rdata) for rr in both.rr} == {"10.98.0.2", str(v6)}
    ptr = ask6(v6.reverse_pointer, "PTR")
    assert str(ptr.rr[0].rdata) == "web6."
    no_v6 = ask6("cli", "AAAA")
    assert no_v6.header.rcode == RCODE.NOERROR and not no_v6.rr
