"""`boxnetd --ui [ADDR:]PORT` (and daemon.json "ui"): parsed once, clear errors."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from boxnet.config import ConfigErrors, resolve_config

EMPTY = str(Path(__file__).resolve().parent.parent / "data" / "daemon-json" / "empty-object.json")


def ui_of(*argv: str) -> object:
    return resolve_config(["--config-file", EMPTY, *argv], env={}).ui


def test_off_unless_asked_and_loopback_by_default() -> None:
    assert ui_of() is None
    assert ui_of("--ui", "8480") == (IPv4Address("127.0.0.1"), 8480)
    assert ui_of("--ui", ":8480") == (IPv4Address("127.0.0.1"), 8480)
    assert ui_of("--ui", "0.0.0.0:80") == (IPv4Address("0.0.0.0"), 80)


@pytest.mark.parametrize("text", ["web", "127.0.0.1", "127.0.0.1:0", "1.2.3.4:70000", "x:80"])
def test_bad_values_say_what_to_write(text: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        ui_of("--ui", text)
    problem = info.value.errors[0]
    assert "--ui" in str(problem) or "ui" in problem.key
    assert problem.hint
