"""A reachability matrix: who can ping whom among a daemon's containers (tests and the demo).

Expected values follow Docker's rules: containers on the same bridge network talk; different
bridge networks (the default one included) never do; every container reaches the host's own
addresses and its gateway (an internal network, having no default route, only the gateway: the
host's address on that bridge); only non-internal networks reach the outside; `none` reaches
nothing; `host` is the host itself, so it reaches every container directly; on a network with
icc off two containers never reach each other (each still reaches itself, its gateway, the rest).

The same matrix is observed with ping (IPv4 or IPv6: the members' `ip` says which) or with a TCP
connection to port 80 (`probe="tcp"`: every target must run a server there).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from boxnet.lab.daemon import Daemon

Cell = tuple[str, str]  # (source container, target column)


@dataclass(frozen=True)
class Member:
    name: str
    network: str  # a network name, "host" or "none"
    ip: str | None  # what others ping (the host's address for a host-mode container)
    gateway: str | None
    internal: bool = False
    icc: bool = True  # the network's enable_icc


# The shell command (with "$t" the target address) that prints "$t ok" when it answers.
PROBES = {
    "ping": 'ping -c1 -W1 "$t" >/dev/null 2>&1',
    # two tries: a routed first packet may wait for neighbour discovery on both bridges
    "ping6": 'ping -6 -c2 -i0.2 -w2 "$t" >/dev/null 2>&1',
    # any HTTP answer means the TCP connection was made (busybox nc takes IPv6 literals)
    "tcp": "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 \"$t\" 80 2>/dev/null | grep -q HTTP",
}


def columns(members: list[Member]) -> list[str]:
    return [m.name for m in members if m.ip] + ["gateway", "host", "outside"]


def _targets(src: Member, members: list[Member], host_ip: str, outside_ip: str) -> dict[str, str]:
    out = {m.name: m.ip for m in members if m.ip}
    out["host"], out["outside"] = host_ip, outside_ip
    if src.gateway:
        out["gateway"] = src.gateway
    return {k: v for k, v in out.items() if v}


def expected_reach(members: list[Member], host_ip: str, outside_ip: str) -> dict[Cell, bool]:
    out: dict[Cell, bool] = {}
    by_name = {m.name: m for m in members}
    for src in members:
        for col in _targets(src, members, host_ip, outside_ip):
            dst = by_name.get(col)
            if src.network == "none":
                ok = False
            elif src.network == "host" or col == "gateway":
                ok = True
            elif col in ("host", "outside") or (dst is not None and dst.network == "host"):
                # An internal network has no default route: the host is its gateway address.
                ok = not src.internal
            elif dst is not None and dst.network == src.network:
                ok = src.icc or dst is src  # icc off: no two containers of the bridge talk
            else:
                ok = False
            out[(src.name, col)] = ok
    return out


def observe(
    d: Daemon, members: list[Member], host_ip: str, outside_ip: str, how: str = "ping"
) -> dict[Cell, bool]:
    """One exec per source container, its probes (PROBES[how]) run in parallel inside it."""

    def probe(src: Member) -> dict[Cell, bool]:
        targets = _targets(src, members, host_ip, outside_ip)
        ips = sorted(set(targets.values()))
        script = (
            f"for t in {' '.join(ips)}; do "
            f'({PROBES[how]} && echo "$t ok" || echo "$t no") & done; wait'
        )
        res = d.cli("exec", src.name, "sh", "-c", script, check=False, timeout=30)
        answers = dict(line.split() for line in res.stdout.splitlines() if len(line.split()) == 2)
        return {(src.name, col): answers.get(ip) == "ok" for col, ip in targets.items()}

    out: dict[Cell, bool] = {}
    with ThreadPoolExecutor(8) as pool:
        for part in pool.map(probe, members):
            out.update(part)
    return out


def render(
    members: list[Member],
    expected: dict[Cell, bool],
    observed: dict[Cell, bool],
    host_ip: str,
    outside_ip: str,
) -> str:
    """Rows are sources, columns targets; `ok`/`--` when observed == expected, else `!ok`/`!--`
    (what was observed, marked as wrong)."""
    cols = columns(members)
    label = {m.name: f"{m.name}({m.network})" for m in members}
    head = ["from \\ to"] + [label.get(c, c) for c in cols]
    rows = [head]
    for src in members:
        row = [label[src.name]]
        for col in cols:
            cell = (src.name, col)
            if cell not in expected:
                row.append("")
                continue
            text = "ok" if observed.get(cell) else "--"
            row.append(text if observed.get(cell) == expected[cell] else "!" + text)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    mismatches = sum(1 for k, v in expected.items() if observed.get(k) != v)
    lines.append(
        f"host = {host_ip}, outside = {outside_ip}; ok = answers, -- = no answer;"
        f" {mismatches} unexpected"
    )
    return "\n".join(lines)
