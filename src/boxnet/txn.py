"""Apply-then-undo: every multi-step change pushes the inverse of each step it made.

On failure the undo callbacks run in reverse order (best effort, all of them); on success
`commit()` forgets them. `always()` callbacks run when the block ends either way (closing the
change's intent in the journal, store/intents.py); a crash runs nothing, which is the point.
A thin, named wrapper over ExitStack so call sites read as intent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType

log = logging.getLogger("boxnet.txn")


class Undo:
    def __init__(self, what: str) -> None:
        self.what = what
        self._stack = ExitStack()
        self._always: list[tuple[str, Callable[[], object]]] = []

    def push(self, description: str, fn: Callable[[], object]) -> None:
        def run() -> None:
            try:
                fn()
            except Exception as exc:  # keep undoing the rest; report, never mask the cause
                log.warning("undo %s (%s) failed: %s", description, self.what, exc)

        self._stack.callback(run)

    def always(self, description: str, fn: Callable[[], object]) -> None:
        """Run fn when the block ends, committed or rolled back (after the rollback)."""
        self._always.append((description, fn))

    def commit(self) -> None:
        self._stack.pop_all()

    def __enter__(self) -> Undo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            log.info("rolling back %s after: %s", self.what, exc)
        try:
            self._stack.close()
        finally:
            for description, fn in self._always:
                try:
                    fn()
                except Exception as err:  # never mask the change's own outcome
                    log.warning("%s (%s) failed: %s", description, self.what, err)
