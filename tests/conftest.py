"""Shared pytest fixtures: throwaway network labs (boxnet.lab) and a boxnetd factory.

Fixtures:
  lab             a fresh Lab, closed at teardown (skips when not root / no ip, nft, nsenter)
  basic           boxnet.lab.basic_lab() on that lab: .lab, .host, .outside, .client2
  lan             boxnet.lab.lan_lab(hosts=2) on that lab: .switch, .gateway, .hosts, .workstation
  daemon_factory  make(ns=None, *extra_args, config=None) -> Daemon; ns defaults to basic.host

Tests marked `e2e` or living under tests/e2e are skipped (with the reason) when the machine
cannot build labs. Nothing here changes the network of the namespace pytest runs in.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import (
    BasicLab,
    Daemon,
    Lab,
    LanLab,
    Netns,
    basic_lab,
    cleanup_stale_labs,
    install_signal_cleanup,
    lan_lab,
)

E2E_DIR = Path(__file__).parent / "e2e"


def lab_unavailable() -> str | None:
    """Why labs cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    missing = [t for t in ("ip", "nft", "nsenter") if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    in_e2e_dir = E2E_DIR in Path(str(item.path)).parents
    if item.get_closest_marker("e2e") is not None or in_e2e_dir:
        reason = lab_unavailable()
        if reason:
            pytest.skip(f"e2e: {reason}")


@pytest.fixture(scope="session", autouse=True)
def _stale_labs() -> None:
    """Remove namespaces, processes and dirs left by lab runs that were killed outright."""
    if lab_unavailable() is None:
        install_signal_cleanup()
        cleanup_stale_labs()


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    the_lab = Lab(request.node.name)
    try:
        yield the_lab
    finally:
        the_lab.close()


@pytest.fixture
def basic(lab: Lab) -> BasicLab:
    return basic_lab(lab)


@pytest.fixture
def lan(lab: Lab) -> LanLab:
    return lan_lab(2, lab)


@pytest.fixture
def daemon_factory(request: pytest.FixtureRequest) -> Callable[..., Daemon]:
    """Start boxnetd in a lab namespace: make(ns=None, *extra_args, config=None, exe=None).

    The daemon belongs to ns's lab, which stops it (after `rm -f` of its containers) at teardown.
    """

    def make(ns: Netns | None = None, *extra_args: str, **kw: Any) -> Daemon:
        if ns is None:
            ns = request.getfixturevalue("basic").host
        return ns.lab.boxnetd(ns, *extra_args, **kw)

    return make
