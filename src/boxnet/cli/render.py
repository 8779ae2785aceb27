"""Output helpers shaped like the Docker CLI's: tables, durations, sizes, port lists, JSON.

Pure functions returning strings, so tests compare exact output without a daemon.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

# Docker's tables come from text/tabwriter.NewWriter(out, 10, 1, 3, ' ', 0): a column is as wide
# as its widest cell plus 3 spaces of padding, and at least 10 (minwidth includes the padding).
# The last cell of a line is not tab-terminated, so it is never padded.
_MIN_WIDTH = 10
_PADDING = 3


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [list(headers), *(list(r) for r in rows)]
    widths = [
        max(_MIN_WIDTH, max(len(line[col]) for line in lines) + _PADDING)
        for col in range(len(headers) - 1)
    ]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        out.append("".join(cells) + line[-1])
    return "\n".join(out) + "\n"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "5 seconds", "About a minute", "3 days"..."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = secs // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def timestamp(value: object) -> float | None:
    """Unix seconds from an int (containers, images) or an RFC 3339 string (networks)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    if isinstance(value, str) and value and not value.startswith("0001-"):
        from datetime import datetime  # only for RFC 3339 strings

        text = value.replace("Z", "+00:00")
        # Go prints nanoseconds; Python 3.11 parses at most microseconds.
        if "." in text:
            head, _, rest = text.partition(".")
            digits = "".join(c for c in rest if c.isdigit())
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    return None


def ago(value: object, now: float | None = None) -> str:
    ts = timestamp(value)
    if ts is None:
        return ""
    return human_duration((time.time() if now is None else now) - ts) + " ago"


def created_at(value: object) -> str:
    """Docker's CreatedAt column: `2024-01-02 03:04:05 +0000 UTC`."""
    ts = timestamp(value)
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(ts))


def human_size(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.3g}{units[index]}"


def go_quote(text: str) -> str:
    """strconv.Quote for the COMMAND column: double quotes, backslash escapes."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


def ellipsis(text: str, width: int) -> str:
    """Docker's formatter.Ellipsis: cut to `width` characters, the last one being '…'."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def short_id(id_: str, no_trunc: bool = False) -> str:
    """Docker's TruncateID: drop an `algo:` prefix, keep 12 characters."""
    return id_ if no_trunc else id_.split(":", 1)[-1][:12]


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def display_ports(ports: Iterable[dict[str, Any]]) -> str:
    """The PORTS column, a port of docker/cli's DisplayablePorts.

    Ports sharing IP and protocol whose host and container ports are equal are merged into
    ranges (`0.0.0.0:8000-8002->8000-8002/tcp`); other mappings are listed one by one after
    them; exposed-only ports show as `80/tcp`.
    """

    def sort_key(p: dict[str, Any]) -> tuple[int, str, int, str]:
        return (
            int(p.get("PrivatePort") or 0),
            str(p.get("IP") or ""),
            int(p.get("PublicPort") or 0),
            str(p.get("Type") or ""),
        )

    groups: dict[str, list[int]] = {}  # key -> [first, last]; dicts keep creation order
    result: list[str] = []
    mappings: list[str] = []
    for port in sorted(ports, key=sort_key):
        private = int(port.get("PrivatePort") or 0)
        proto = str(port.get("Type") or "tcp")
        ip = str(port.get("IP") or "")
        key = proto
        if ip:
            public = int(port.get("PublicPort") or 0)
            if public != private:
                mappings.append(f"{_join_host_port(ip, public)}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_form_group(key, *group))
            groups[key] = [private, private]
    result.extend(_form_group(key, *group) for key, group in groups.items())
    return ", ".join(result + mappings)


def _form_group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    ports = str(first) if first == last else f"{first}-{last}"
    if ip:
        ports = f"{ip}:{ports}->{ports}"
    return f"{ports}/{proto}"


def print_json_lines(objects: Iterable[Any]) -> None:
    """`--format json` on listings: one compact object per line, as `docker ps` prints."""
    import json

    for obj in objects:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


def print_json_array(objects: list[Any]) -> None:
    """inspect: an indented array, like `docker inspect` (4 spaces)."""
    import json

    sys.stdout.write(json.dumps(objects, indent=4, ensure_ascii=False) + "\n")


def print_template(template: str, objects: Iterable[Any]) -> None:
    """`-f/--format TEMPLATE`: one rendered line per object, as Docker prints."""
    from boxnet.cli.template import render

    for obj in objects:
        sys.stdout.write(render(template, obj) + "\n")


def print_formatted(
    fmt: str | None, objects: list[Any], render_table: Any, fields: Any = None
) -> None:
    """A listing's --format: None/"table" -> table, "json" -> the API JSON one object per line,
    else a Go template over each object (as extended by `fields`, Docker's display fields)."""
    if fmt in (None, "", "table"):
        sys.stdout.write(render_table(objects))
    elif fmt == "json":
        print_json_lines(objects)
    else:
        print_template(fmt, [fields(o) for o in objects] if fields else objects)
