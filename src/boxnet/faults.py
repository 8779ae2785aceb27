"""Fault injection for crash tests: `BOXNET_FAULT=<step>` makes the daemon die at that step.

The daemon exits with os._exit (no cleanup, no undo), which is what a `kill -9` or a power cut
does at that moment. Tests crash the daemon at every named step in turn and check that the next
start leaves no kernel object, record or reservation without its owner.
"""

from __future__ import annotations

import os

ENV = "BOXNET_FAULT"
CRASH_EXIT_CODE = 86

# Every step core can be named at, in the order a change passes them. Each driver names its own
# (NetworkDriver.steps, drivers.all_steps()); tests/e2e/test_crash.py crashes at core's and the
# bridge driver's, tests/e2e/test_lan_crash.py at the LAN's and the macvlan driver's.
STEPS = (
    "container.start.netns",
    "container.start.ports",
    "container.start.shim",
    "container.start.recorded",
    "container.exit.teardown",
    "container.rm.teardown",
    "container.rm.forgotten",  # rm -f answered its record away; the shim's exit not yet seen
    "network.create.realised",
    "network.create.recorded",
    "network.rm.forgotten",
    "network.connect.attached",
    "network.disconnect.unplugged",
)

# LAN changes (lan/hostbridge.py, lan/pipework.py), named by what has just happened; crashed in
# turn by tests/e2e/test_lan_crash.py.
LAN_STEPS = (
    "hostbridge.create.bridge",
    "hostbridge.create.enslaved",
    "hostbridge.create.uplink-cleared",
    "hostbridge.create.addresses-moved",
    "hostbridge.create.routes-moved",
    "hostbridge.create.recorded",
    "hostbridge.rm.bridge-cleared",
    "hostbridge.rm.released",
    "hostbridge.rm.addresses-restored",
    "hostbridge.rm.routes-restored",
    "hostbridge.rm.bridge-deleted",
    "hostbridge.rm.forgotten",
    "pipework.attach.bridge",
    "pipework.attach.link",
    "pipework.attach.address",
    "pipework.attach.recorded",
    "pipework.detach.unplugged",
    "pipework.detach.veth-deleted",
    "pipework.detach.forgotten",
)

# Attachments in namespaces boxnet does not own (core/external.py, the CNI plugin); crashed in
# turn by tests/e2e/test_cni_crash.py.
EXTERNAL_STEPS = (
    "external.attach.joined",
    "external.attach.published",
    "external.attach.recorded",
    "external.detach.forgotten",
)

ALL_STEPS = STEPS + LAN_STEPS + EXTERNAL_STEPS


def point(step: str) -> None:
    """Die here if the environment names this step."""
    if os.environ.get(ENV) == step:
        os._exit(CRASH_EXIT_CODE)
