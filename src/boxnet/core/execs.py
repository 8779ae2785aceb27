"""The daemon's record of exec instances: pending ones, what each was created with, exit codes.

Docker keeps an exec inspectable after it ran (GET /exec/{id}/json: ExitCode, ProcessConfig);
docker-compose reads its "tty" after the start. Finished execs are kept in bounded, oldest-first
tables so that a daemon running millions of healthcheck-like execs does not grow without end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

EXECS_KEPT = 1000  # finished execs whose config and exit code stay inspectable

Value = TypeVar("Value")


@dataclass(frozen=True)
class ExecRequest:
    container_id: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    tty: bool
    stdin: bool = False  # Docker's AttachStdin: the client's input, else /dev/null
    user: str = ""  # UID[:GID] or NAME[:GROUP] ("" = root)
    detach_keys: bytes = b""  # the sequence that ends an attached start (b"": Docker's default)


def _keep_newest(table: dict[str, Value], limit: int) -> None:
    while len(table) > limit:
        table.pop(next(iter(table)))  # dicts keep insertion order: the first is the oldest


class ExecTable:
    def __init__(self, kept: int = EXECS_KEPT) -> None:
        self.kept = kept
        self._pending: dict[str, ExecRequest] = {}  # created, not started yet
        self._configs: dict[str, ExecRequest] = {}  # every exec created (bounded)
        self._results: dict[str, int] = {}  # exit codes of finished execs (bounded)

    def add(self, exec_id: str, request: ExecRequest) -> None:
        self._pending[exec_id] = request
        self._configs[exec_id] = request
        _keep_newest(self._configs, self.kept)

    def pending(self, exec_id: str) -> ExecRequest | None:
        return self._pending.get(exec_id)

    def take(self, exec_id: str) -> ExecRequest | None:
        """The pending exec, no longer pending (it starts now)."""
        return self._pending.pop(exec_id, None)

    def config(self, exec_id: str) -> ExecRequest | None:
        return self._configs.get(exec_id)

    def finished(self, exec_id: str, code: int) -> None:
        self._results[exec_id] = code
        _keep_newest(self._results, self.kept)

    def exit_code(self, exec_id: str) -> int | None:
        return self._results.get(exec_id)
