"""`boxnet explain --probe`: the explanation, then one real packet traced by the kernel.

The packet leaves from the source itself (inside a container's namespace, or the host's), so the
kernel sees exactly what explain reasoned about. The trace is the kernel's word; the summary
says whether a rule dropped the packet and whether that agrees with explain's verdict.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from boxnet.errors import InvalidArgument
from boxnet.kernel import trace
from boxnet.topology import service
from boxnet.topology.explain import Evaluator

if TYPE_CHECKING:
    from boxnet.core.controller import Controller

_TRACE_ID = re.compile(r"^trace id \w+ ")
_IFACES = re.compile(r'\b(iif|oif) "([^"]+)"')


def _legacy(ctl: Controller) -> bool:
    return getattr(ctl.firewall, "kind", "") == "legacy"


def run(ctl: Controller, src: str, target: str, family: int | None = None) -> dict[str, Any]:
    ev = Evaluator(service.scene(ctl))
    ex = ev.explain(src, target, family)
    if ":" in ex.dst_ip or ":" in ex.src_ip:
        raise InvalidArgument(
            "--probe traces IPv4 packets only", hint="drop --probe; explain itself reads IPv6"
        )
    party = ev.party(src)
    if party.kind == "outside":
        raise InvalidArgument(
            f"--probe sends its packet from SRC, and {src} is another machine",
            hint="probe from a container or 'host', or drop --probe",
        )
    if not ex.dst_ip:
        raise InvalidArgument(f"--probe: {ex.dst} has no address to send to")
    netns = party.container.netns_path if party.container and party.kind == "container" else None
    probe = trace.Probe(ex.src_ip, ex.dst_ip, ex.proto, ex.port, netns)
    lines = [_TRACE_ID.sub("", line) for line in trace.trace_one(probe)]
    return summarize(lines, ex.allowed, _legacy(ctl))


def summarize(lines: list[str], explained: bool, legacy: bool) -> dict[str, Any]:
    """The kernel's verdict from its trace lines (`trace id` prefix already removed)."""
    note = (
        "iptables-legacy rules do not appear in nftables traces: only boxnet's nftables bridge"
        " table and other nftables tables are shown"
        if legacy
        else ""
    )
    lines = [x.rstrip() for x in lines]
    drops = [x for x in lines if x.endswith("(verdict drop)") or x.endswith("policy drop")]
    if drops:
        dropped, summary = True, f"the kernel dropped it: {drops[0]}"
    elif lines:
        dropped, summary = False, "no rule dropped it"
    else:
        return {"Summary": "no trace: the packet met no traced hook", "Trace": [],
                "Verdict": "unknown", "Agrees": None, "Note": note}  # fmt: skip
    if legacy and not dropped:  # the x_tables rules may have dropped it out of the trace's sight
        return {"Summary": "no nftables rule dropped it; iptables-legacy rules are not traced",
                "Trace": compact(lines), "Raw": lines, "Verdict": "unknown", "Agrees": None,
                "Note": note}  # fmt: skip
    verdict = "blocked" if dropped else "allowed"
    agrees = (not dropped) == explained
    return {"Summary": summary + ("" if agrees else " (explain disagrees)"),
            "Trace": compact(lines), "Raw": lines, "Verdict": verdict, "Agrees": agrees,
            "Note": note}  # fmt: skip


def compact(lines: list[str]) -> list[str]:
    """The path without the probe's own tables and with packet dumps cut to the interfaces."""
    out = []
    for line in lines:
        if f" {trace.TABLE} " in line:
            continue
        head, sep, packet = line.partition(" packet: ")
        if sep:
            line = head + ": " + " ".join(f"{k} {v}" for k, v in _IFACES.findall(packet))
        out.append(line)
    return out
