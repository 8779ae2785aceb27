"""boxnet-cni: a CNI 1.1 plugin backed by the running boxnetd (issue 18).

A runtime (Podman, containerd, CRI-O, kubelet) execs it once per verb with CNI_COMMAND and the
other CNI_* variables set and the network configuration on stdin. ADD, DEL, CHECK and GC become
one request each to boxnetd's /boxnet/cni/* routes over its unix socket (the same daemon, so the
address, the published ports, the DNS names and the isolation are boxnet's own); STATUS pings the
daemon; VERSION answers here. Results and errors go to stdout as the spec's JSON.

Standard library only, and no boxnet module but codec.py: a runtime pays this process's start
for every container, so it imports nothing it does not use (~25 ms of a Python start).

`boxnet-cni install DIR` links the plugin into a runtime's plugin directory as DIR/boxnet (the
issue's `"type": "boxnet"`) and DIR/boxnet-cni (the specification's name).
"""

from __future__ import annotations

import _socket
import json
import os
import sys

from boxnet.cni import codec
from boxnet.cni.codec import CniError

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


def _parse(raw: bytes) -> tuple[int, bytes]:
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
    return int(parts[1]), body


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


def call(path: str, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    """One request to boxnetd; a daemon that does not answer is code 11 (try again later)."""
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {url} HTTP/1.1\r\nHost: boxnet\r\nConnection: close\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    try:
        status, data = _parse(_exchange(path, head.encode() + b"\r\n" + payload))
    except (OSError, ValueError) as exc:
        raise CniError(
            codec.TRY_AGAIN_LATER,
            f"boxnetd is not answering on {path}: {exc}",
            "start boxnetd (or set boxnetHost in the configuration, or BOXNET_HOST)",
        ) from None
    if status >= 300:
        raise codec.error_from_daemon(status, data)
    return json.loads(data) if data.startswith((b"{", b"[")) else None  # /_ping says OK


def run(environ: dict[str, str], stdin: bytes) -> dict[str, Any] | None:
    """One invocation: the result to print (None: print nothing), or CniError."""
    env = codec.parse_env(environ)
    if env.command == "VERSION":
        return codec.version_info(stdin)
    config = codec.decode_config(stdin)
    version = config["cniVersion"]
    path = socket_path(config)
    if env.command == "ADD":
        answer = call(path, "POST", "/boxnet/cni/attach", codec.attach_body(config, env))
        return codec.result(version, answer)
    if env.command == "DEL":
        call(path, "POST", "/boxnet/cni/detach", codec.identity(config, env))
        return None
    if env.command == "CHECK":
        codec.requires(version, "0.4.0", "CHECK")
        answer = call(path, "POST", "/boxnet/cni/check", codec.identity(config, env))
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
            call(path, "GET", "/_ping")
        except CniError as exc:
            raise CniError(codec.NOT_AVAILABLE, "boxnetd is not available", exc.msg) from None
        return None
    codec.requires(version, "1.1.0", "GC")  # GC
    call(path, "POST", "/boxnet/cni/gc", codec.gc_body(config))
    return None


def _error_version(stdin: bytes) -> str:
    """An error object carries the configuration's version when it has a usable one."""
    try:
        version = json.loads(stdin).get("cniVersion")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return codec.LATEST
    return version if version in codec.SUPPORTED_VERSIONS else codec.LATEST


WRAPPER = """#!{python} -IS
# boxnet-cni, installed by `boxnet-cni install`: -IS skips site (this plugin needs only the
# standard library and the boxnet.cni package, found below), a third of a Python start.
import sys
sys.path.insert(0, {src!r})
from boxnet.cni.plugin import main
sys.exit(main())
"""


def install(directory: str) -> int:
    """Write the plugin into a runtime's CNI plugin directory as `boxnet`, with `boxnet-cni`
    linked to it: a wrapper running this package with this interpreter."""
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(directory, exist_ok=True)
    first = os.path.join(directory, NAMES[0])
    temporary = first + ".tmp"
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
        if len(argv) != 2:
            print("usage: boxnet-cni install DIR", file=sys.stderr)
            return 2
        return install(argv[1])
    if argv:
        print(
            "boxnet-cni is run by a container runtime (CNI_COMMAND and a configuration on stdin);"
            " 'boxnet-cni install DIR' links it into a plugin directory",
            file=sys.stderr,
        )
        return 2
    stdin = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    try:
        out = run(dict(os.environ), stdin)
    except CniError as exc:
        json.dump(exc.to_json(_error_version(stdin)), sys.stdout)
        sys.stdout.write("\n")
        return 1
    except Exception as exc:  # a bug here still answers in the spec's shape
        error = CniError(codec.BOXNET_FAILED, f"boxnet-cni failed: {exc!r}")
        json.dump(error.to_json(_error_version(stdin)), sys.stdout)
        sys.stdout.write("\n")
        return 1
    if out is not None:
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
