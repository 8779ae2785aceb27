"""boxnet-cni in Python: a CNI 1.1 plugin backed by the running boxnetd (issue 18).

A runtime (Podman, containerd, CRI-O, kubelet) execs a plugin once per verb with CNI_COMMAND and
the other CNI_* variables set and the network configuration on stdin. This one forwards them
as they are to boxnetd (`POST /boxnet/cni/invoke`, framing in verbs.py), where verbs.invoke
does the verb (so the address, the published ports, the DNS names and the isolation are
boxnet's own) and answers what to print and the exit status. The executable runtimes exec is
the C program boxnet-cni.c, which sends the same request; this module is the reference and
its fallback: when boxnetd does not answer, the C plugin execs this one, which runs
verbs.invoke here (VERSION answered, input errors with their codes, else code 11, 50 for
STATUS).

Standard library only, and no boxnet module but the cni package: it imports nothing it does
not use (a Python start is ~20 ms of a runtime's wait per container).

`boxnet-cni install DIR [--python]` puts the plugin into a runtime's plugin directory as
DIR/boxnet (the issue's `"type": "boxnet"`) with DIR/boxnet-cni (the specification's name)
linked to it: the C executable built by `make install`, or with --python (or without the C
one) a wrapper running this module.
"""

from __future__ import annotations

import _socket
import json
import os
import shutil
import sys

from boxnet.cni import codec, verbs

DEFAULT_HOST = "unix:///run/boxnet.sock"
TIMEOUT = 60.0  # an ADD may create the network first
NAMES = ("boxnet", "boxnet-cni")
TYPE_CHECKING = False  # typing itself costs this process's start; mypy reads the block
if TYPE_CHECKING:
    from typing import Any


def socket_path(config: dict[str, Any] | None) -> str:
    """boxnetHost in the configuration, else $BOXNET_HOST, else the default socket."""
    host = ""
    if config is not None and isinstance(config.get("boxnetHost"), str):
        host = config["boxnetHost"]
    host = host or os.environ.get("BOXNET_HOST") or DEFAULT_HOST
    return host[len("unix://") :] if host.startswith("unix://") else host


def _exchange(path: str, request: bytes) -> bytes:
    """One HTTP/1.1 exchange on a fresh connection (Connection: close: the answer ends with it).
    _socket, not socket and http.client: those import enum, email and ssl, ~3x this process's
    start."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT)
        sock.connect(path)
        sock.sendall(request)
        chunks: list[bytes] = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
    finally:
        sock.close()


def _parse(raw: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        headers[key.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _unchunk(body)
    elif b"content-length" in headers:
        body = body[: int(headers[b"content-length"])]
    return int(parts[1]), headers, body


def _unchunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2 :]
    return b"".join(out)


def forward(path: str, environ: dict[str, str], stdin: bytes) -> tuple[int, bytes]:
    """One invocation done by boxnetd (POST /boxnet/cni/invoke, see verbs.py): (exit status,
    output). OSError or ValueError when the daemon does not answer."""
    payload = verbs.frame(environ, stdin)
    head = (
        f"POST {verbs.INVOKE} HTTP/1.1\r\nHost: boxnet\r\nConnection: close\r\n"
        f"Content-Type: {verbs.CONTENT_TYPE}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    status, headers, data = _parse(_exchange(path, head.encode() + payload))
    code = headers.get(verbs.EXIT_HEADER.encode(), b"")
    if status == 200 and code.isdigit():
        return int(code), data
    # Not an invoke answer (a daemon without the route, a request it refused): its error.
    error = codec.error_from_daemon(status if status >= 300 else 500, data)
    return 1, (json.dumps(error.to_json(verbs.error_version(stdin))) + "\n").encode()


def run(environ: dict[str, str], stdin: bytes) -> tuple[int, bytes]:
    """One invocation: (exit status, output). boxnetd does the work; when it does not answer,
    verbs.invoke runs here with code 11 for what needs the daemon."""
    try:
        config = json.loads(stdin)
    except (ValueError, UnicodeDecodeError):
        config = None
    path = socket_path(config if isinstance(config, dict) else None)
    try:
        return forward(path, environ, stdin)
    except (OSError, ValueError) as exc:
        code, out = verbs.invoke(environ, stdin, verbs.unreachable(path, str(exc)))
        return code, out.encode()


WRAPPER = """#!{python} -IS
# boxnet-cni, installed by `boxnet-cni install`: -IS skips site (this plugin needs only the
# standard library and the boxnet.cni package, found below), a third of a Python start.
import sys
sys.path.insert(0, {src!r})
from boxnet.cni.plugin import main
sys.exit(main())
"""


def native() -> str | None:
    """The C plugin `make install` put next to this interpreter, if it is there."""
    path = os.path.join(os.path.dirname(sys.executable), "boxnet-cni")
    try:
        with open(path, "rb") as exe:
            return path if exe.read(4) == b"\x7fELF" else None
    except OSError:
        return None


def install(directory: str, python: bool = False) -> int:
    """Put the plugin into a runtime's CNI plugin directory as `boxnet`, with `boxnet-cni`
    linked to it: a copy of the C executable, or (python, or no C executable) a wrapper
    running this package with this interpreter."""
    os.makedirs(directory, exist_ok=True)
    first = os.path.join(directory, NAMES[0])
    temporary = first + ".tmp"
    exe = None if python else native()
    if exe is not None:
        shutil.copyfile(exe, temporary)
    else:
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(temporary, "w") as out:
            out.write(WRAPPER.format(python=sys.executable, src=src))
    os.chmod(temporary, 0o755)
    os.replace(temporary, first)  # a runtime never sees half a file
    print(first)
    for name in NAMES[1:]:
        link = os.path.join(directory, name)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(NAMES[0], link)
        print(link)
    return 0


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "install":
        if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--python"):
            print("usage: boxnet-cni install DIR [--python]", file=sys.stderr)
            return 2
        return install(argv[1], python=len(argv) == 3)
    if argv:
        print(
            "boxnet-cni is run by a container runtime (CNI_COMMAND and a configuration on stdin);"
            " 'boxnet-cni install DIR' puts it into a plugin directory",
            file=sys.stderr,
        )
        return 2
    stdin = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    code, out = run(dict(os.environ), stdin)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
