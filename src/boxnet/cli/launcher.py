"""The `boxnet` command as `make install` writes it: a launcher that starts fast.

pip's console script for `boxnet` runs with the venv's site machinery (its .pth files:
~3 ms) and imports `re` to tidy argv[0]; and every Python process spends a few more ms
tearing the interpreter down at exit. The CLI needs neither: it uses only the standard
library and the boxnet package. So the launcher runs the interpreter with `-IS` (no site,
no user paths, no PYTHON* variables), puts this package's parent directory on sys.path, and
leaves with os._exit once its output is flushed. `python -m boxnet.cli.launcher PATH` writes
it (atomically: a shell never sees half a file); pip's script keeps working where it is not
replaced (a wheel installed by hand).
"""

from __future__ import annotations

import os
import sys

LAUNCHER = """#!{python} -IS
# boxnet, written by `python -m boxnet.cli.launcher` (see boxnet/cli/launcher.py): -IS skips
# site (the CLI needs only the standard library and boxnet, found below) and os._exit skips
# the interpreter's teardown, once stdout and stderr are flushed.
import os
import sys
sys.path.insert(0, {src!r})
from boxnet.cli.quick import main
code = main()
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BrokenPipeError:  # `boxnet ps | head`
    pass
os._exit(code)
"""


def source_root() -> str:
    """The directory holding the boxnet package (src/ of an editable install)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(path: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as out:
        out.write(LAUNCHER.format(python=sys.executable, src=source_root()))
    os.chmod(temporary, 0o755)
    os.replace(temporary, path)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m boxnet.cli.launcher PATH", file=sys.stderr)
        return 2
    write(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
