"""boxnet CLI start-up: `boxnet version` (client part) must take < 50 ms.

Measured as the median of 10 runs of the installed entry point (or `python -m boxnet`), against
a socket that does not exist, so only the client part runs. The assertion allows 150 ms so a
loaded CI machine does not fail it; the printed number is what to watch.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 50
LIMIT_MS = 150


def _command() -> list[str]:
    script = Path(sys.executable).with_name("boxnet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "boxnet"]


def test_version_starts_fast(tmp_path):
    argv = [*_command(), "-H", f"unix://{tmp_path}/absent.sock", "version"]
    env = dict(os.environ)
    env.pop("BOXNET_HOST", None)
    timings = []
    for _ in range(10):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        timings.append((time.perf_counter() - start) * 1000)
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout.startswith("Client:\n Version:")
        assert "cannot connect to the boxnet daemon" in proc.stderr
    median = statistics.median(timings)
    print(
        f"\nboxnet version (client part): median {median:.1f} ms over 10 runs "
        f"(min {min(timings):.1f}, target < {TARGET_MS} ms)"
    )
    assert median < LIMIT_MS


def test_version_imports_nothing_heavy(tmp_path):
    # What `boxnet version` loads: no kernel libraries, no asyncio, no http.client/email.
    code = (
        "import sys\n"
        "from boxnet.cli.main import main\n"
        f"main(['-H', 'unix://{tmp_path}/absent.sock', 'version'])\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    loaded = set(proc.stderr.splitlines()[-1].split())
    heavy = {
        "pyroute2",
        "nftables",
        "asyncio",
        "http.client",
        "email",
        "json",
        "boxnet.paths",
        "boxnet.core",
        "boxnet.kernel",
        "ipaddress",
        "shutil",
        "typing",
    }
    assert not heavy & loaded
