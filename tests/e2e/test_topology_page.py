"""Issue 19: the topology page in a real browser (Debian's headless Chromium) and the read-only
`--ui` listener.

Chromium runs inside the lab's host namespace and loads the page from the lab daemon's `--ui`
address; the test reads the DOM over the DevTools pipe: every container and network drawn, a
published port shown, and a container removed with `boxnet rm` disappearing without a reload.
A bridge added by hand behind boxnet's back is marked as a difference, live, and unmarked when
it goes. The screenshot is kept (docs/topology.png when BOXNET_UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab.browser import Browser
from boxnet.lab.daemon import unix_get

pytestmark = pytest.mark.e2e
UI = "127.0.0.1:8480"
PAGE = f"http://{UI}/boxnet/topology"
DOCS = Path(__file__).resolve().parents[2] / "docs"
CONTAINERS = ("web", "a1", "a2", "b1", "i1")
NETWORKS = ("bridge", "frontend", "backend", "vault")


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[BasicLab, Daemon]]:
    lab = Lab("topopage")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host, "--ui", UI)
        d.cli("network", "create", "frontend")
        d.cli("network", "create", "backend")
        d.cli("network", "create", "--internal", "vault")
        for name, net in (("a1", "frontend"), ("a2", "frontend"), ("b1", "backend"),
                          ("i1", "vault")):  # fmt: skip
            d.cli("run", "-d", "--name", name, "--network", net, "busybox", "sleep", "1000")
        d.cli("run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:8090:80",
              "busybox", "sleep", "1000")  # fmt: skip
        yield basic, d
    finally:
        lab.close()


def curl(basic: BasicLab, *args: str) -> tuple[int, str]:
    """(HTTP status, body) of a request from inside the lab host namespace."""
    res = basic.host.run(
        ["curl", "-s", "-m", "5", "-o", "/dev/stdout", "-w", "\n%{http_code}", *args], check=False
    )
    body, _, status = res.stdout.rpartition("\n")
    return int(status or 0), body


def test_ui_listener_serves_the_page_and_nothing_else(env: tuple[BasicLab, Daemon]) -> None:
    basic, d = env
    status, body = curl(basic, PAGE)
    assert status == 200 and "<title>boxnet topology</title>" in body
    status, body = curl(basic, f"http://{UI}/boxnet/topology.json")
    assert status == 200 and {c["name"] for c in json.loads(body)["containers"]} >= set(CONTAINERS)
    assert curl(basic, f"http://{UI}/boxnet/topology.svg")[1].startswith("<svg")
    # The API is not there: no listing, no creating, no explain.
    assert curl(basic, f"http://{UI}/containers/json")[0] == 404
    assert curl(basic, f"http://{UI}/boxnet/explain?src=a1&dst=a2")[0] == 404
    assert curl(basic, "-X", "POST", f"http://{UI}/containers/create")[0] == 404
    assert curl(basic, "-X", "POST", PAGE)[0] == 405
    assert curl(basic, "-X", "DELETE", f"http://{UI}/boxnet/topology.json")[0] == 405
    # DNS rebinding: a request naming another host is refused.
    assert curl(basic, "-H", "Host: evil.example:8480", PAGE)[0] == 403
    assert curl(basic, "-H", "Host: localhost:8480", PAGE)[0] == 200
    # Only on the address asked for: the host's eth0 address has no listener.
    assert curl(basic, "http://203.0.113.2:8480/boxnet/topology")[0] == 0
    # The unix socket serves the same page; `boxnet topology` prints the TCP address.
    status, raw = unix_get(d.socket, "/boxnet/topology")
    assert status == 200 and b"boxnet topology" in raw
    assert d.cli("topology").stdout.strip() == PAGE
    assert d.cli("topology", "--format", "svg").stdout.startswith("<svg")
    assert d.cli("topology", "--format", "dot").stdout.startswith("digraph boxnet {")


NAMES = "[...document.querySelectorAll('#canvas g.container')].map(g => g.dataset.name)"
NETS = "[...document.querySelectorAll('#canvas g.network')].map(g => g.dataset.name)"
DIFFS = "[...document.querySelectorAll('#canvas text.difference')].map(t => t.dataset.subject)"
PORTS = "[...document.querySelectorAll('#canvas text.port')].map(t => t.textContent)"


def test_the_page_in_chromium_follows_the_daemon(env: tuple[BasicLab, Daemon]) -> None:
    basic, d = env
    browser = Browser(basic.host, PAGE)
    try:
        want = json.dumps(sorted(CONTAINERS))
        drawn = browser.wait_for(f"(n => {want}.every(x => n.includes(x)) && n)({NAMES})")
        assert drawn and set(drawn) >= set(CONTAINERS), drawn
        assert set(browser.evaluate(NETS)) >= set(NETWORKS)
        assert "port 0.0.0.0:8080->80/tcp" in browser.evaluate(PORTS)
        assert "port 127.0.0.1:8090->80/tcp" in browser.evaluate(PORTS)
        matrix = browser.evaluate("document.querySelector('#matrix').textContent")
        assert "frontend" in matrix and "no" in matrix
        per_pair = browser.evaluate("document.querySelector('#cmatrix').textContent")
        assert "a1" in per_pair and "i1" in per_pair
        shot = basic.lab.tmpdir / "topology.png"
        browser.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("BOXNET_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, DOCS / "topology.png")
        # Live: a removed container disappears without a reload (the marker survives).
        browser.evaluate("window.stillHere = 'same document'")
        d.cli("rm", "-f", "a2")
        gone = browser.wait_for(f"!{NAMES}.includes('a2')", tries=300)
        assert gone, browser.evaluate(NAMES)
        assert browser.evaluate("window.stillHere") == "same document"
        assert "a1" in browser.evaluate(NAMES)
        # Kernel vs records, live: a bridge by boxnet's prefix that nobody recorded is marked.
        basic.host.ip("link", "add", "br-stray0", "type", "bridge")
        marked = browser.wait_for(f"{DIFFS}.includes('br-stray0')", tries=300)
        assert marked, browser.evaluate(DIFFS)
        basic.host.ip("link", "del", "br-stray0")
        assert browser.wait_for(f"!{DIFFS}.includes('br-stray0')", tries=300)
        # Search dims what does not match. Not just "b1": a host veth's name is hex, and a1's
        # (drawn in a1's box) held "b1" once; a name and its state never appear in hex.
        browser.evaluate(
            "document.getElementById('search').value = 'b1  (running)';"
            "document.getElementById('search').dispatchEvent(new Event('input'))"
        )
        dimmed = browser.evaluate(
            "[...document.querySelectorAll('#canvas g.container.dim')].map(g => g.dataset.name)"
        )
        assert "b1" not in dimmed and "a1" in dimmed
    finally:
        browser.close()
