"""Command lines that run the lab's stand-alone scripts inside a container of the `host` image.

The `host` image gives containers a private /tmp, so a path inside a checkout that lives under
/tmp (as CI's may) is invisible there. A script's source is therefore passed with `-c`, and the
interpreter by its real path (outside /tmp). The scripts are stdlib-only on purpose.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType


def script_argv(module: ModuleType, *args: str) -> list[str]:
    """`python -I -c <module source> ARGS`, runnable wherever the host's files are visible."""
    python = os.path.realpath(sys.executable)
    source = Path(str(module.__file__)).read_text()
    return [python, "-I", "-c", source, *args]


def echo_server_argv(port: int = 80) -> list[str]:
    from boxnet.lab import echo_server

    return script_argv(echo_server, "--port", str(port))
