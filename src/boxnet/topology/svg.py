"""A pure SVG drawing of a Topology: the host on top, one column per network, a box per container
on it (a container on two networks has a box in each column), differences from the kernel in red.

Elements carry `class` and `data-*` attributes (container, network, port, difference) so the page
can search and hide them, and tests can find them without knowing the layout.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from boxnet.topology.model import ContainerNode, EndpointNode, NetworkNode, Topology

COL_W, COL_GAP, LINE, PAD = 260, 20, 14, 8
ROWS = 16  # container boxes per sub-column: a network of 300 spreads sideways, not 10 m down
HOST_H = 74


def _text(x: int, y: int, s: str, cls: str = "", extra: str = "") -> str:
    c = f" class={quoteattr(cls)}" if cls else ""
    return f"<text x='{x}' y='{y}'{c}{extra}>{escape(s)}</text>"


def _network_lines(n: NetworkNode) -> list[str]:
    flags = [f for f, on in (("internal", n.internal), ("ICC off", not n.icc)) if on]
    head = f"{n.driver} {n.bridge}".strip()
    lines = [head, f"{n.subnet} gw {n.gateway}" if n.subnet else ""]
    if flags:
        lines.append(", ".join(flags))
    if not n.in_kernel:
        lines.append(f"{n.bridge} MISSING in kernel")
    return [x for x in lines if x]


def _container_lines(c: ContainerNode, e: EndpointNode | None) -> list[str]:
    lines = []
    if e is not None:
        lines.append(f"{e.ip}  {e.ifname}" + (f" <-> {e.host_veth}" if e.host_veth else ""))
        if not e.in_kernel and c.state == "running":
            lines.append("host end MISSING or on another bridge")
    elif c.network_mode in ("host", "none"):
        lines.append(f"network mode {c.network_mode}")
    lines += [f"port {p.label}" for p in c.ports]
    lines += [f"{x.kind} {x.host_if}: {x.ifname} {x.address}".strip() for x in c.lan]
    return lines


def _container_box(
    c: ContainerNode, e: EndpointNode | None, net: str, x: int, y: int
) -> tuple[str, int]:
    lines = _container_lines(c, e)
    h = PAD + LINE * (1 + len(lines)) + 2
    broken = e is not None and not e.in_kernel and c.state == "running"
    cls = (
        "container" + (" differs" if broken else "") + ("" if c.state == "running" else " stopped")
    )
    body = [
        f"<g class={quoteattr(cls)} data-name={quoteattr(c.name)} data-network={quoteattr(net)}>",
        f"<rect x='{x}' y='{y}' width='{COL_W - 2 * PAD}' height='{h}' rx='5'/>",
        _text(x + 6, y + LINE, f"{c.name}  ({c.state})", "name"),
    ]
    for i, line in enumerate(lines):
        kind = "port" if line.startswith("port ") else "detail"
        body.append(_text(x + 6, y + LINE * (i + 2), line, kind))
    body.append("</g>")
    return "".join(body), h


def to_svg(t: Topology) -> str:
    Member = tuple[ContainerNode, EndpointNode | None]
    columns: list[tuple[str, list[str], list[Member]]] = []
    for n in t.networks:
        members: list[Member] = [
            (c, e) for c in t.containers for e in c.endpoints if e.network == n.name
        ]
        columns.append((n.name, _network_lines(n), members))
    loose: list[Member] = [(c, None) for c in t.containers if not c.endpoints]
    if loose:
        columns.append(("(no bridge network)", ["host, none or not running"], loose))
    spans = [max(1, -(-len(members) // ROWS)) for _n, _h, members in columns]
    width = sum(s * COL_W + (s - 1) * PAD + COL_GAP for s in spans) + COL_GAP
    parts: list[str] = []
    x = COL_GAP
    bottom = HOST_H + 40
    nodes: list[NetworkNode | None] = [*t.networks, None]
    for (name, head, members), node, span in zip(columns, nodes, spans, strict=False):
        y = HOST_H + 40
        group_w = span * COL_W + (span - 1) * PAD
        differs = node is not None and not node.in_kernel
        cls = "network" + (" internal" if node is not None and node.internal else "")
        cls += " differs" if differs else ""
        col = [f"<g class={quoteattr(cls)} data-name={quoteattr(name)}>"]
        head_h = PAD + LINE * (1 + len(head)) + 2
        col.append(f"<rect class='nethead' x='{x}' y='{y}' width='{group_w}' height='{head_h}'/>")
        col.append(_text(x + 6, y + LINE, name, "name"))
        col += [_text(x + 6, y + LINE * (i + 2), s, "detail") for i, s in enumerate(head)]
        col.append(f"<line class='uplink' x1='{x + COL_W // 2}' y1='{HOST_H}' "
                   f"x2='{x + COL_W // 2}' y2='{y}'/>")  # fmt: skip
        top = y = y + head_h + PAD
        for i, (c, e) in enumerate(members):
            if i and i % ROWS == 0:
                bottom, y = max(bottom, y), top
            box, h = _container_box(c, e, name, x + PAD + (i // ROWS) * (COL_W + PAD), y)
            col.append(box)
            y += h + PAD
        col.append("</g>")
        parts += col
        bottom = max(bottom, y)
        x += group_w + COL_GAP
    host = [
        "<g class='host'>",
        f"<rect x='{COL_GAP}' y='10' width='{width - 2 * COL_GAP}' height='{HOST_H - 10}' rx='6'/>",
        _text(COL_GAP + 8, 28, f"host {t.hostname}  firewall {t.firewall_backend}"
              + ("" if t.firewall_intact is not False else " (RULES CHANGED)"), "name"),
    ]  # fmt: skip
    ups = [f"{u.name} {' '.join(u.addresses)}".strip() + ("" if u.up else " (down)")
           for u in t.uplinks if u.name != "lo"]  # fmt: skip
    ups += [f"host bridge {b} on {nic}" for b, nic in t.hostbridges]
    host.append(_text(COL_GAP + 8, 46, "uplinks: " + ("; ".join(ups) or "none"), "detail"))
    host.append("</g>")
    diffs = []
    y = bottom + 20
    if t.differences:
        diffs.append(_text(COL_GAP, y, "kernel vs records:", "name"))
    for d in t.differences:
        y += LINE + 2
        text = (
            f"{d.subject}: recorded {d.recorded or 'nothing'}, kernel has {d.kernel or 'nothing'}"
        )
        diffs.append(_text(COL_GAP, y, text, "difference", f" data-subject={quoteattr(d.subject)}"))
    height = y + 20
    style = (
        "<style>text{font:11px monospace;fill:#222}.name{font-weight:bold}"
        "rect{fill:#fff;stroke:#555}.host rect{fill:#eef3fb}.nethead{fill:#e8f4e8}"
        ".internal .nethead{fill:#fbeee0}.container rect{fill:#fafafa}"
        ".stopped rect{stroke-dasharray:3 3;fill:#eee}.port{fill:#0645ad}"
        ".differs rect,.differs>rect{stroke:#c00;stroke-width:2;stroke-dasharray:5 3}"
        ".difference{fill:#c00}.uplink{stroke:#888}</style>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' class='topology' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}'>{style}"
        + "".join(host + parts + diffs)
        + "</svg>\n"
    )
