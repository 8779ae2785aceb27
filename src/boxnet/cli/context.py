"""What every verb's handler gets (Context) and the one place its errors become output (run),
shared by the argparse path (main.py) and the quick one (quick.py)."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # importing typing costs ~2 ms; mypy treats this name as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Context:
    """What every handler needs: the parsed global flags and a lazily created daemon client."""

    def __init__(self, host: str | None, debug: bool) -> None:
        self.host = host
        self.debug = debug
        self._client: Any = None

    @property
    def client(self) -> Any:
        # Created on first use: commands that fail validation never touch the socket.
        if self._client is None:
            from boxnet.cli.client import Client

            self._client = Client(self.host)
        return self._client


def run(func: Callable[[Any, Any], int], ctx: Context, args: Any) -> int:
    """Call a verb's handler; errors become `Error: ...` (and a hint) with Docker's codes."""
    try:
        return int(func(ctx, args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `boxnet ps | head`: stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as err:
        from boxnet.errors import BoxnetError

        if ctx.debug:
            import traceback

            traceback.print_exc()
        if isinstance(err, BoxnetError):
            sys.stderr.write(err.render() + "\n")
            code = getattr(err, "exit_code", None)
            return int(code) if code is not None else int(args.error_code)
        if not ctx.debug:
            sys.stderr.write(
                f"Error: internal error in boxnet: {type(err).__name__}: {err}\n"
                "Hint: run again with --debug to see where, and report it\n"
            )
        return int(args.error_code)
