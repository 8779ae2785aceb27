"""`docker import --change`: the Dockerfile instructions Docker allows there, applied to a new
image's config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR; VOLUME and ONBUILD are
refused: boxnet has no volumes, and no builds to trigger)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from boxnet.errors import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "WORKDIR")


def _command(text: str) -> list[str]:
    """JSON form `["a", "b"]`, else shell form, run by /bin/sh -c (Dockerfile's rule)."""
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", text]


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    """`K=V K2="v 2"` or the old `K V` form (one pair)."""
    words = shlex.split(text)
    if words and "=" not in words[0]:
        key, _, value = text.partition(" ")
        return [(key, value.strip())]
    out = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--change {what}: {word!r} is not KEY=VALUE")
        out.append((key, value))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> None:
    """Apply each change line to config["config"] in order."""
    c = config.setdefault("config", {})
    for line in changes:
        keyword, _, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword not in ALLOWED:
            raise InvalidArgument(
                f"--change {line!r}: {keyword or 'an empty line'} is not supported",
                hint="supported: " + ", ".join(ALLOWED),
            )
        if not rest:
            raise InvalidArgument(f"--change {keyword}: a value is required")
        if keyword in ("CMD", "ENTRYPOINT"):
            c["Cmd" if keyword == "CMD" else "Entrypoint"] = _command(rest)
        elif keyword == "ENV":
            env = [e for e in c.get("Env") or []]
            for key, value in _pairs(rest, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            c["Env"] = env
        elif keyword == "LABEL":
            c["Labels"] = {**(c.get("Labels") or {}), **dict(_pairs(rest, "LABEL"))}
        elif keyword == "EXPOSE":
            ports = dict(c.get("ExposedPorts") or {})
            for port in rest.split():
                number, _, proto = port.partition("/")
                if not number.isdigit() or not 0 < int(number) < 65536:
                    raise InvalidArgument(f"--change EXPOSE: invalid port {port!r}")
                ports[f"{int(number)}/{(proto or 'tcp').lower()}"] = {}
            c["ExposedPorts"] = ports
        elif keyword == "USER":
            c["User"] = rest
        else:  # WORKDIR: relative to the previous one, as in a Dockerfile
            previous = str(c.get("WorkingDir") or "/")
            c["WorkingDir"] = rest if rest.startswith("/") else f"{previous.rstrip('/')}/{rest}"
