"""Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`), as Docker applies them.

When a container's process ends, `on_exit` decides whether the policy restarts it and schedules
the restart after Docker's back-off: 100 ms, doubled at each restart, at most a minute, and back
to 100 ms once a run lasted 10 s. A container stopped or killed by a user is left alone
(`manual_stop`); `always` containers still come back when the daemon starts, `unless-stopped`
ones only if no user stopped them. Pending restarts live in memory: a daemon restart re-derives
them from the records (`on_daemon_start`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from boxnet.clock import parse_rfc3339
from boxnet.model import Container, State

if TYPE_CHECKING:
    from boxnet.core.containers import Containers

log = logging.getLogger("boxnet.restarts")

FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0  # a run at least this long resets the back-off


def wants_restart(c: Container) -> bool:
    """Docker's restartmanager.ShouldRestart, for a container that just exited."""
    policy = c.spec.restart_policy
    if c.manual_stop or policy == "no":
        return False
    if policy == "on-failure":
        limit = c.spec.restart_max
        return c.exit_code != 0 and (limit == 0 or c.restart_count < limit)
    return True  # always, unless-stopped


class Restarts:
    def __init__(self, containers: Containers) -> None:
        self.containers = containers
        self._timers: dict[str, threading.Timer] = {}
        self._delays: dict[str, float] = {}

    def pending(self, container_id: str) -> bool:
        """True while a restart is scheduled (Docker's State.Restarting)."""
        return container_id in self._timers

    def on_exit(self, c: Container) -> None:
        """Called with the lock held once c's exit is recorded."""
        if not wants_restart(c):
            self._delays.pop(c.id, None)
            return
        try:
            ran = parse_rfc3339(c.finished_at) - parse_rfc3339(c.started_at)
        except ValueError:
            ran = 0.0
        previous = self._delays.get(c.id)
        delay = FIRST_DELAY if previous is None or ran >= RESET_AFTER else previous * 2
        self._schedule(c.id, min(delay, MAX_DELAY))

    def on_daemon_start(self) -> None:
        """Start the containers whose policy brings them back with the daemon."""
        for c in self.containers.records.containers():
            if c.state == State.RUNNING or not c.started_at or c.started_at.startswith("0001"):
                continue
            policy = c.spec.restart_policy
            if policy == "always" or (policy == "unless-stopped" and not c.manual_stop):
                self._schedule(c.id, 0.0)

    def cancel(self, container_id: str) -> bool:
        """Drop a scheduled restart (stop, kill, rm, a manual start); True if one was pending."""
        self._delays.pop(container_id, None)
        timer = self._timers.pop(container_id, None)
        if timer is not None:
            timer.cancel()
        return timer is not None

    def close(self) -> None:
        for cid in list(self._timers):
            self.cancel(cid)

    def _schedule(self, container_id: str, delay: float) -> None:
        self.cancel(container_id)
        self._delays[container_id] = max(delay, FIRST_DELAY)
        timer = threading.Timer(delay, self._fire, args=(container_id,))
        timer.daemon = True
        self._timers[container_id] = timer
        timer.start()

    def _fire(self, container_id: str) -> None:
        with self.containers.lock:
            timer = self._timers.get(container_id)
            if timer is None or timer is not threading.current_thread():
                return  # cancelled (or replaced) while we waited for the lock
            del self._timers[container_id]
            c = self.containers.records.container(container_id)
            if c is None or c.state == State.RUNNING:
                return
            try:
                self.containers.start(container_id, by_policy=True)
            except Exception as exc:  # e.g. its network was removed: try again later, as Docker
                log.warning("restart of %s failed: %s", c.short_id, exc)
                c = self.containers.records.update_container(
                    c, restart_count=c.restart_count + 1, error=str(exc)
                )
                if wants_restart(c):
                    delay = self._delays.get(container_id, FIRST_DELAY) * 2
                    self._schedule(container_id, min(delay, MAX_DELAY))
