"""Read daemon.json: syntax problems with file:line:col and a caret, then positions for every key.

Order of work: the tolerant `jsonlint` scan reports every mistake it recognises; only when it finds
none does `json.loads` parse the text (so a mistake the scan does not know is still caught, with
json's own position). Keys given twice are not a syntax error: they are returned as problems for the
semantic stage, alongside the unknown keys and bad values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from boxnet.config.jsonlint import Path as JsonPath
from boxnet.config.jsonlint import lint
from boxnet.config.problems import ConfigErrors, ConfigProblem, excerpt
from boxnet.paths import DEFAULT_CONFIG_FILE


@dataclass(frozen=True)
class LoadedFile:
    display: str  # the path as the user gave it, used in every source string
    data: dict[str, object]
    positions: dict[JsonPath, str] = field(default_factory=dict)  # json path -> "file:line:col"
    problems: tuple[ConfigProblem, ...] = ()  # non-syntax findings (duplicate keys)

    def source(self, *path: str | int) -> str:
        """Where a key or list element was written; falls back to its nearest written parent."""
        at = tuple(path)
        while at:
            if at in self.positions:
                return self.positions[at]
            at = at[:-1]
        return self.display


class _Text:
    """Offsets to line/column and excerpts, computed once per file."""

    def __init__(self, text: str, display: str) -> None:
        self.text, self.display = text, display
        self.lines = text.split("\n")

    def where(self, offset: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, offset) + 1
        col = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return line, col

    def source(self, offset: int) -> str:
        line, col = self.where(offset)
        return f"{self.display}:{line}:{col}"

    def excerpt(self, offset: int, width: int = 1) -> str:
        line, col = self.where(offset)
        return excerpt(self.lines[line - 1].rstrip("\r"), line, col, width)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_lone_surrogate(data: object) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_config_text(text: str, display: str) -> LoadedFile:
    """Parse the text of a daemon.json; raise ConfigErrors listing every syntax problem."""
    text = text.removeprefix("\ufeff")  # editors on Windows add a BOM; Docker ignores it too
    where = _Text(text, display)
    scan = lint(text)
    if scan.issues:
        raise ConfigErrors(
            ConfigProblem(
                None,
                where.source(i.offset),
                None,
                i.message,
                i.hint,
                where.excerpt(i.offset, i.width),
            )
            for i in scan.issues
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"invalid JSON: {err.msg}"
        raise ConfigErrors(
            [ConfigProblem(None, where.source(err.pos), None, msg, None, where.excerpt(err.pos))]
        ) from None
    except (ValueError, RecursionError) as err:  # e.g. an integer too long to convert
        raise ConfigErrors([ConfigProblem(None, display, None, f"invalid JSON: {err}")]) from None
    if not isinstance(data, dict):  # the scan reports this first; kept for safety
        msg = "the configuration must be one JSON object"
        raise ConfigErrors([ConfigProblem(None, display, None, msg)])
    if _has_lone_surrogate(data):
        # "\ud800" is valid JSON but no character: it cannot be a name, an address or printed.
        found = _SURROGATE_ESCAPE.search(text)
        offset = found.start() if found else 0
        msg = "a \\u escape here is half of a UTF-16 pair, not a character"
        hint = "write the character itself, or both halves of the pair"
        problem = ConfigProblem(
            None, where.source(offset), None, msg, hint, where.excerpt(offset, 6)
        )
        raise ConfigErrors([problem])
    duplicates = []
    for dup in scan.duplicates:
        first_line, _ = where.where(dup.first)
        inside = "" if not dup.path else f" (inside {'.'.join(map(str, dup.path))})"
        msg = f"key given twice{inside}, first on line {first_line}: JSON keeps only the last one"
        duplicates.append(
            ConfigProblem(dup.key, where.source(dup.again), None, msg, "delete one of the two")
        )
    positions = {path: where.source(offset) for path, offset in scan.positions.items()}
    return LoadedFile(display, data, positions, tuple(duplicates))


def read_config_file(path: Path, explicit: bool) -> LoadedFile | None:
    """Read and parse the file; None when the default file is simply absent (= defaults)."""
    display = str(path)
    source = "flag --config-file" if explicit else display

    def fail(message: str, hint: str | None = None) -> ConfigErrors:
        return ConfigErrors([ConfigProblem(None, source, display, message, hint)])

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if not explicit:
            return None
        hint = (
            f"check the path, or leave out --config-file (an absent {DEFAULT_CONFIG_FILE}"
            " means defaults)"
        )
        raise fail(f"{display}: no such file", hint) from None
    except IsADirectoryError:
        raise fail(f"{display} is a directory, not a JSON file") from None
    except PermissionError:
        raise fail(
            f"{display}: permission denied", "boxnetd runs as root; check the file's mode"
        ) from None
    except OSError as err:
        raise fail(f"{display}: cannot read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        msg = f"not UTF-8 text: byte 0x{raw[err.start]:02x} on line {line}"
        raise ConfigErrors(
            [ConfigProblem(None, f"{display}:{line}", None, msg, "save the file as UTF-8")]
        ) from None
    return parse_config_text(text, display)
