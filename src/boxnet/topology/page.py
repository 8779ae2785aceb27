"""The topology page: one self-contained HTML file (no script fetched from anywhere else).

It shows the SVG boxnetd draws (`/boxnet/topology.svg`) and keeps it current with a long poll:
`/boxnet/topology.json?wait=VERSION` answers as soon as the topology's version differs from
VERSION (or after a while, unchanged), then the page fetches the new drawing. Search dims what
does not match; zoom scales the drawing; the reachability matrix is a table under it.
"""

from __future__ import annotations

from importlib import resources


def html() -> str:
    return (resources.files("boxnet.topology") / "page.html").read_text(encoding="utf-8")
