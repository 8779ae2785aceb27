"""What the CLI imports: start-up is most of a short verb's time (issue #20).

Times are measured in bench/ (CLI start-up rows), never here; these tests keep out the modules
that made start-up slow before, so that a stray import is caught when it lands.
"""

from __future__ import annotations

import subprocess
import sys


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


def test_run_imports_no_dataclasses_model_or_typing(tmp_path):
    # `run -d -p ... -v ... --restart ...` parses every flag in the CLI before it calls the daemon;
    # dataclasses (inspect, ast, tokenize), typing and the model cost ~20 ms of that together.
    code = (
        "import sys\n"
        "from boxnet.cli.main import main\n"
        "try:\n"
        f"    main(['-H', 'unix://{tmp_path}/absent.sock', 'run', '-d', '-p', '8080:80',\n"
        "          '--add-host', 'db:10.0.0.5', '--log-opt', 'max-size=1m', '--restart',\n"
        "          'on-failure:3', '-e', 'A=1', 'busybox', 'sleep', '9'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "cannot connect to the boxnet daemon" in proc.stderr, proc.stderr
    loaded = set(proc.stderr.splitlines()[-1].split())
    assert "boxnet.parsing.publish" in loaded  # the flags were parsed, not skipped
    heavy = {"dataclasses", "inspect", "typing", "boxnet.model", "pyroute2"}
    assert not heavy & loaded
