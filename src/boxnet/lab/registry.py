"""A local image registry for tests: Debian's docker-registry (the CNCF distribution server)
listening on a lab address, plain HTTP, storage in the lab's temp dir; filled with skopeo from
OCI layouts the test builds itself (boxnet.lab.oci). Nothing comes from the internet.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from boxnet.lab.core import Lab
from boxnet.lab.netns import Netns
from boxnet.lab.proc import LabError, tool

READY_TIMEOUT = 15.0


def start_registry(lab: Lab, ns: Netns, address: str, port: int = 5000) -> str:
    """Start the registry in ns on address:port; "address:port" once /v2/ answers."""
    root = lab.tmpdir / f"registry-{ns.role}-{port}"
    (root / "data").mkdir(parents=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}:{port}\n"
    )
    log_path = root / "registry.log"
    with log_path.open("ab") as log:
        proc = ns.popen(
            [tool("docker-registry"), "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    url = f"http://{address}:{port}/v2/"
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        probe = ns.run([tool("curl"), "-sf", "-o", "/dev/null", url], check=False, timeout=5)
        if probe.returncode == 0:
            return f"{address}:{port}"
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"docker-registry did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.1)


def push_layout(ns: Netns, layout: Path, destination: str, *, all_platforms: bool = False) -> None:
    """`skopeo copy oci:LAYOUT docker://DESTINATION` over plain HTTP, run inside ns."""
    policy = layout.parent / f"{layout.name}-policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    argv = [tool("skopeo"), "--policy", str(policy), "copy", "--dest-tls-verify=false"]
    if all_platforms:
        argv.append("--all")
    ns.run([*argv, f"oci:{layout}", f"docker://{destination}"], timeout=60)
