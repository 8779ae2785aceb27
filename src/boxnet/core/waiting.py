"""Docker's `wait` conditions over the container records.

`not-running` (the default) answers at once for a container that is not running; `next-exit`
waits for the exit after the request (`docker run` asks before it starts the container);
`removed` waits until the container is gone (`docker run --rm`) and still carries its exit code.
Waiting happens on the lifecycle's Condition, so it never blocks other work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from boxnet.errors import InvalidArgument, NotFound
from boxnet.model import State

if TYPE_CHECKING:
    from boxnet.core.containers import Containers

CONDITIONS = ("not-running", "next-exit", "removed")


Waiter = Callable[[Callable[[], bool]], int | None]


def waiter(containers: Containers, ref: str, condition: str = "") -> Waiter:
    """Check the request now (unknown container, bad condition: errors before any answer).
    The returned function blocks until the condition holds and returns the exit code, or None
    once `gone()` says nobody waits any more (checked every second)."""
    condition = condition or "not-running"
    if condition not in CONDITIONS:
        raise InvalidArgument(
            f"invalid condition: {condition!r}", hint=f"use one of {', '.join(CONDITIONS)}"
        )
    with containers.changed:
        try:
            target = containers.find(ref)
        except NotFound:
            recent = containers.recent_exits.get(ref)  # removed on exit (--rm) just before
            if recent is None:
                raise
            code = recent[0]
            return lambda _gone: code
        baseline = target.finished_at
    container_id = target.id

    def wait(gone: Callable[[], bool]) -> int | None:
        with containers.changed:
            while True:
                current = containers.records.container(container_id)
                if current is None:
                    recent = containers.recent_exits.get(container_id)
                    return recent[0] if recent else 0
                stopped = current.state != State.RUNNING
                if condition == "not-running" and stopped:
                    return current.exit_code
                if condition == "next-exit" and stopped and current.finished_at != baseline:
                    return current.exit_code
                if not containers.changed.wait(1.0) and gone():
                    return None

    return wait
