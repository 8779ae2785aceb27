"""Configuration problems: what is wrong, where it came from, and how to fix it.

boxnetd refuses to start on any configuration problem, so each one must be enough on its own for the
user to fix their file or command line without reading our code: the source (flag or file:line:col),
the key, the bad value, and a hint. All problems are collected and shown together so that one edit
round fixes everything that can be seen at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from boxnet.errors import ConfigError

COMMAND_LINE = "command line"


@dataclass(frozen=True)
class ConfigProblem:
    key: (
        str | None
    )  # daemon.json key name ("fixed-cidr"), None for syntax and command-line problems
    source: str  # "flag --bip", "/etc/boxnet/daemon.json:3:1", "env BOXNET_HOST", "command line"
    value: str | None  # the offending value as the user wrote it
    message: str  # what is wrong; names the value when it helps
    hint: str | None = None  # the fix, when it can be guessed
    excerpt: str | None = None  # offending line of the file with a caret under the spot

    def headline(self) -> str:
        """`<source>: <key>: <what is wrong>` (key omitted when the problem has none)."""
        if self.key is None:
            return f"{self.source}: {self.message}"
        return f"{self.source}: {self.key}: {self.message}"

    def render(self) -> str:
        lines = [self.headline()]
        if self.excerpt:
            lines.append(self.excerpt)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


_POSITION = re.compile(r"^(?P<path>.*):(?P<line>[0-9]+):(?P<col>[0-9]+)$")


def _order(problem: ConfigProblem) -> tuple[int, str, int, int]:
    """Command line first, then each file in reading order: the order a user edits in."""
    match = _POSITION.match(problem.source)
    if match is None:
        return (0, "", 0, 0)
    return (1, match["path"], int(match["line"]), int(match["col"]))


class ConfigErrors(ConfigError):
    """Every problem found in one configuration; boxnetd prints `render()` and exits 1."""

    def __init__(self, errors: Iterable[ConfigProblem]) -> None:
        # sorted() is stable, so problems at the same spot keep the order they were found in.
        self.errors: list[ConfigProblem] = sorted(errors, key=_order)
        if not self.errors:
            raise ValueError("ConfigErrors needs at least one problem")
        first = self.errors[0]
        super().__init__(_summary(len(self.errors)) + "\n" + first.headline(), first.hint)

    def render(self) -> str:
        return render_problems(self.errors)

    def to_json(self) -> dict[str, str]:
        return {"message": render_problems(self.errors)}


def _summary(count: int) -> str:
    noun = "problem" if count == 1 else "problems"
    return f"invalid boxnetd configuration ({count} {noun})"


def render_problems(errors: ConfigErrors | Iterable[ConfigProblem]) -> str:
    """The text boxnetd prints to stderr: a summary line, then one block per problem."""
    problems = errors.errors if isinstance(errors, ConfigErrors) else list(errors)
    blocks = [f"Error: {_summary(len(problems))}:"]
    blocks += [problem.render() for problem in problems]
    return "\n\n".join(blocks) + "\n"


def excerpt(line_text: str, line_no: int, col: int, width: int = 1) -> str:
    """The offending line and a caret under columns col..col+width-1 (1-based).

    Tabs in front of the caret are copied so the caret lines up in any terminal.
    """
    gutter = f"{line_no:>5} | "
    pad = "".join(c if c == "\t" else " " for c in line_text[: col - 1])
    width = max(1, min(width, len(line_text) - col + 1))
    return f"{gutter}{line_text}\n{' ' * (len(gutter) - 2)}| {pad}{'^' * width}"
