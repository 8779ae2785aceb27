"""The C plugin (boxnet-cni.c) against a recording stand-in for boxnetd: it sends exactly the
request the Python plugin sends (cni/verbs.frame, one protocol), prints the answer's body with
the answer's exit status, finds boxnetHost as Python's json reads it, and hands what it does not
read itself to the Python plugin. No root, no daemon: a unix socket in a temp dir."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.cni import verbs
from boxnet.lab import venv_bin

C_PLUGIN = venv_bin() / "boxnet-cni"
PY_PLUGIN = venv_bin() / "boxnet-cni-py"
ENV = {
    "PATH": "/usr/bin:/bin",
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "abc",
    "CNI_NETNS": "/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
    "CNI_ARGS": "K8S_POD_NAME=p;IgnoreUnknown=1",
}
OK = b'{"cniVersion": "1.1.0", "interfaces": []}\n'

pytestmark = pytest.mark.skipif(
    not C_PLUGIN.exists() or C_PLUGIN.read_bytes()[:4] != b"\x7fELF",
    reason="the C plugin is built by make install",
)


class Stand:
    """Answers every request on `path` with `answer`, recording the request bodies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bodies: list[bytes] = []
        self.answer = self.invoke_answer(0, OK)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def invoke_answer(code: int, body: bytes, extra: str = "") -> bytes:
        head = (
            f"HTTP/1.1 200 \r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nBoxnet-CNI-Exit: {code}\r\n{extra}"
            "Connection: close\r\n\r\n"
        )
        return head.encode() + body

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                self.bodies.append(body)
                conn.sendall(self.answer)


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[Stand]:
    s = Stand(tmp_path / "boxnet.sock")
    yield s
    s.sock.close()


def run(plugin: Path, stdin: bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(plugin)], input=stdin, env={**ENV, **env}, capture_output=True, timeout=30
    )


def conf(stand: Stand, **extra: object) -> bytes:
    doc = {"cniVersion": "1.1.0", "name": "n", "type": "boxnet"}
    doc["boxnetHost"] = f"unix://{stand.path}"
    doc.update(extra)
    return json.dumps(doc).encode()


def test_the_same_request_as_the_python_plugin(stand: Stand) -> None:
    stdin = conf(stand, ipam={"subnet": "10.1.0.0/24"}, note='é \\ " \u0001')
    for plugin in (C_PLUGIN, PY_PLUGIN):
        proc = run(plugin, stdin)
        assert (proc.returncode, proc.stdout) == (0, OK), proc.stderr
    c_body, py_body = stand.bodies
    assert c_body == py_body == verbs.frame(ENV, stdin)
    assert verbs.unframe(c_body) == ({k: v for k, v in ENV.items() if k != "PATH"}, stdin)


def test_exit_status_and_output_are_the_answers(stand: Stand) -> None:
    error = b'{"cniVersion": "1.1.0", "code": 7, "msg": "no"}\n'
    stand.answer = Stand.invoke_answer(1, error)
    proc = run(C_PLUGIN, conf(stand))
    assert (proc.returncode, proc.stdout) == (1, error)
    stand.answer = Stand.invoke_answer(0, b"")  # DEL: nothing printed
    proc = run(C_PLUGIN, conf(stand), CNI_COMMAND="DEL")
    assert (proc.returncode, proc.stdout) == (0, b"")


def test_boxnet_host_as_python_reads_it(stand: Stand, tmp_path: Path) -> None:
    elsewhere = f"unix://{tmp_path}/nothing-here.sock"
    # Nested keys do not count; the last top-level one does (as json.loads keeps it).
    nested = json.dumps({"cniVersion": "1.1.0", "x": {"boxnetHost": elsewhere}})
    proc = run(C_PLUGIN, nested.encode(), BOXNET_HOST=f"unix://{stand.path}")
    assert proc.returncode == 0 and len(stand.bodies) == 1
    twice = f'{{"boxnetHost": "{elsewhere}", "cniVersion": "1.1.0", "boxnetHost": "{stand.path}"}}'
    assert run(C_PLUGIN, twice.encode()).returncode == 0 and len(stand.bodies) == 2
    # Not JSON: $BOXNET_HOST (boxnetd then reports code 6, as for Python).
    proc = run(C_PLUGIN, b'{"boxnetHost": "x"', BOXNET_HOST=str(stand.path))
    assert proc.returncode == 0 and stand.bodies[-1].endswith(b'{"boxnetHost": "x"')


def test_what_it_leaves_to_the_python_plugin(stand: Stand, tmp_path: Path) -> None:
    # A chunked answer, and then one that is not an invoke answer: the Python plugin sends
    # the request again and reads it (a 404 of a daemon without the route: code 3).
    stand.answer = Stand.invoke_answer(0, OK, "Transfer-Encoding: chunked\r\n")
    proc = run(C_PLUGIN, conf(stand))
    assert len(stand.bodies) == 2 and stand.bodies[0] == stand.bodies[1]
    stand.answer = b'HTTP/1.1 404 Not Found\r\nContent-Length: 23\r\n\r\n{"message": "no route"}'
    proc = run(C_PLUGIN, conf(stand))
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["code"] == 3 and "no route" in out["msg"]
    # No daemon: the Python plugin's own answers (VERSION; code 11 naming the socket).
    gone = f"unix://{tmp_path}/gone.sock"
    proc = run(C_PLUGIN, b'{"cniVersion": "0.4.0"}', CNI_COMMAND="VERSION", BOXNET_HOST=gone)
    assert proc.returncode == 0 and json.loads(proc.stdout)["cniVersion"] == "0.4.0"
    proc = run(C_PLUGIN, json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "boxnet",
                                     "boxnetHost": gone}).encode())  # fmt: skip
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["code"] == 11 and "gone.sock" in out["msg"]


def test_a_large_configuration_reaches_the_daemon_whole(stand: Stand) -> None:
    stdin = conf(stand, padding="x" * (5 << 20))  # past the C plugin's 4 MiB buffer
    proc = run(C_PLUGIN, stdin)
    assert (proc.returncode, proc.stdout) == (0, OK)
    assert stand.bodies == [verbs.frame(ENV, stdin)]


def test_arguments_go_to_the_python_plugin(tmp_path: Path) -> None:
    proc = subprocess.run([str(C_PLUGIN), "install", str(tmp_path / "p")], capture_output=True)
    assert proc.returncode == 0
    assert (tmp_path / "p" / "boxnet").read_bytes()[:4] == b"\x7fELF"
    assert os.readlink(tmp_path / "p" / "boxnet-cni") == "boxnet"
    assert subprocess.run([str(C_PLUGIN), "bogus"], capture_output=True).returncode == 2
