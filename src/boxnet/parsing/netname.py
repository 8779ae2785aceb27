"""Network names (`network create NAME`): without `re`, which costs a short CLI verb ~5 ms of
start-up (parsing/names.py, which needs it for the other names, re-exports this)."""

from __future__ import annotations

from boxnet.errors import InvalidArgument

NETWORK_NAME_MAX = 128


def validate_network_name(name: str) -> str:
    """1-128 printable characters, spaces included (Docker accepts `my net`), but no '/' (it
    would split the API's URL path), no leading '-' (a flag) and no space at either end."""
    printable = name.isprintable() and "/" not in name
    if (
        not name
        or not printable
        or len(name) > NETWORK_NAME_MAX
        or name[0] == "-"
        or name != name.strip()
    ):
        raise InvalidArgument(
            f'invalid network name "{name}": '
            f"use 1-{NETWORK_NAME_MAX} printable characters without '/', not starting with '-'"
            " or a space",
            "e.g. backend-net",
        )
    return name
