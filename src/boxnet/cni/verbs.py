"""One CNI invocation, from the spec's inputs to what the plugin prints and its exit status.

`invoke(environ, stdin, call)` is the whole of boxnet-cni's behaviour: the CNI_* variables
checked, the configuration decoded (codec.py), the verb turned into boxnetd work through `call`
(method, url, body) -> answer, the answer turned into the spec's result or error object. It runs
in two places with the same code:
- in boxnetd, for `POST /boxnet/cni/invoke` (api/routes_cni.py), with `call` dispatching to the
  CNI routes' work in-process: the normal path of both plugin executables (the C one,
  boxnet-cni.c, and plugin.py), which only forward their inputs and print the answer;
- in plugin.py when boxnetd does not answer, with a `call` that raises code 11: so every
  error a plugin reports without a daemon (4 environment, 6 and 7 configuration, 1 version, 11
  try again, 50 STATUS) and VERSION's answer are this module's, whichever executable ran.

The request framing is here too (`frame`/`unframe`), one protocol for both executables: the
body is the CNI_* variables as `NAME=VALUE\\0` entries, an empty entry (`\\0`), then stdin
verbatim. Environment strings cannot hold NUL, so nothing needs escaping (the C plugin copies
bytes); the answer is 200 with the output as body and the exit status in EXIT_HEADER.
"""

from __future__ import annotations

import json

from boxnet.cni import codec
from boxnet.cni.codec import CniError

TYPE_CHECKING = False  # typing costs the plugin's start; mypy reads the block
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Call = Callable[[str, str, "dict[str, Any] | None"], Any]

INVOKE = "/boxnet/cni/invoke"
EXIT_HEADER = "boxnet-cni-exit"  # the plugin's exit status; its absence: not an invoke answer
CONTENT_TYPE = "application/x-boxnet-cni"
# What the plugins forward (BOXNET_HOST only chooses the socket, so it stays on the client).
VARIABLES = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")


def frame(environ: dict[str, str], stdin: bytes) -> bytes:
    """The invoke request's body (see the module's docstring)."""
    entries = b"".join(
        f"{name}={environ[name]}\0".encode("utf-8", "surrogateescape")
        for name in VARIABLES
        if name in environ
    )
    return entries + b"\0" + stdin


def unframe(body: bytes) -> tuple[dict[str, str], bytes]:
    """(the CNI_* variables, stdin) of an invoke body; ValueError when it is not one."""
    environ: dict[str, str] = {}
    pos = 0
    while True:
        end = body.find(b"\0", pos)
        if end < 0:
            raise ValueError("the variables are not terminated by an empty entry")
        if end == pos:
            return environ, body[end + 1 :]
        name, sep, value = body[pos:end].decode("utf-8", "replace").partition("=")
        if not sep or name not in VARIABLES:
            raise ValueError(f"unexpected variable entry {name[:40]!r}")
        environ[name] = value
        pos = end + 1


def run(environ: dict[str, str], stdin: bytes, call: Call) -> dict[str, Any] | None:
    """One invocation: the result to print (None: print nothing), or CniError."""
    env = codec.parse_env(environ)
    if env.command == "VERSION":
        return codec.version_info(stdin)
    config = codec.decode_config(stdin)
    version = config["cniVersion"]
    if env.command == "ADD":
        answer = call("POST", "/boxnet/cni/attach", codec.attach_body(config, env))
        return codec.result(version, answer)
    if env.command == "DEL":
        call("POST", "/boxnet/cni/detach", codec.identity(config, env))
        return None
    if env.command == "CHECK":
        codec.requires(version, "0.4.0", "CHECK")
        answer = call("POST", "/boxnet/cni/check", codec.identity(config, env))
        problems = list(answer["Problems"])
        if not problems:
            problems = codec.check_prev_result(config, answer["Result"])
        if problems:
            raise CniError(
                codec.BOXNET_FAILED, "the attachment is not as made", "; ".join(problems)
            )
        return None
    if env.command == "STATUS":
        codec.requires(version, "1.1.0", "STATUS")
        try:
            call("GET", "/_ping", None)
        except CniError as exc:
            raise CniError(codec.NOT_AVAILABLE, "boxnetd is not available", exc.msg) from None
        return None
    codec.requires(version, "1.1.0", "GC")  # GC
    call("POST", "/boxnet/cni/gc", codec.gc_body(config))
    return None


def error_version(stdin: bytes) -> str:
    """An error object carries the configuration's version when it has a usable one."""
    try:
        version = json.loads(stdin).get("cniVersion")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return codec.LATEST
    return version if version in codec.SUPPORTED_VERSIONS else codec.LATEST


def invoke(environ: dict[str, str], stdin: bytes, call: Call) -> tuple[int, str]:
    """(exit status, what goes to stdout) of one invocation; never raises."""
    try:
        out = run(environ, stdin, call)
    except CniError as exc:
        return 1, json.dumps(exc.to_json(error_version(stdin))) + "\n"
    except Exception as exc:  # a bug still answers in the spec's shape
        error = CniError(codec.BOXNET_FAILED, f"boxnet-cni failed: {exc!r}")
        return 1, json.dumps(error.to_json(error_version(stdin))) + "\n"
    return 0, json.dumps(out) + "\n" if out is not None else ""


def unreachable(path: str, reason: str) -> Call:
    """The `call` of a plugin whose daemon does not answer: code 11 (try again later)."""

    def call(method: str, url: str, body: dict[str, Any] | None) -> Any:
        raise CniError(
            codec.TRY_AGAIN_LATER,
            f"boxnetd is not answering on {path}: {reason}",
            "start boxnetd (or set boxnetHost in the configuration, or BOXNET_HOST)",
        )

    return call
