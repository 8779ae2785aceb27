"""Fault injection for crash tests: `BOXNET_FAULT=<step>` makes the daemon die at that step.

The daemon exits with os._exit (no cleanup, no undo), which is what a `kill -9` or a power cut
does at that moment. Tests crash the daemon at every named step in turn and check that the next
start leaves no kernel object, record or reservation without its owner.
"""

from __future__ import annotations

import os

ENV = "BOXNET_FAULT"
CRASH_EXIT_CODE = 86

# Every step that can be named, in the order a change passes them.
STEPS = (
    "container.start.netns",
    "container.start.veth",
    "container.start.ports",
    "container.start.shim",
    "container.start.recorded",
    "container.exit.teardown",
    "container.rm.teardown",
    "network.create.bridge",
    "network.create.recorded",
    "network.connect.attached",
    "network.disconnect.unplugged",
)


def point(step: str) -> None:
    """Die here if the environment names this step."""
    if os.environ.get(ENV) == step:
        os._exit(CRASH_EXIT_CODE)
