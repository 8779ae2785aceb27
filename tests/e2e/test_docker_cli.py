"""Issue 17: the real docker CLI (Debian's 20.10, /usr/bin/docker) against boxnetd.

Observers: the docker CLI's own exit codes, stdout and stderr (Go prints "Unsolicited response
received on idle HTTP channel" when a response carries bytes it did not ask for), HTTP through
the published port from the lab's outside namespace, and raw HTTP/1.1 on the daemon's socket
(what exactly is on the wire after HEAD, after an error with an unread body, after a 101).
dockerd is never started: only the client binary is used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e

DOCKER = "/usr/bin/docker"  # Debian's 20.10 CLI (a newer `docker` may shadow it on PATH)
HOST_IP = "203.0.113.2"
LOOPS = int(os.environ.get("DOCKER_CLI_LOOPS", "20"))  # 100 by hand for the report
PARALLEL = 50


class Env:
    def __init__(self, basic: BasicLab, d: Daemon, config_dir: Path) -> None:
        self.basic, self.d = basic, d
        self.environ = {
            **os.environ,
            "DOCKER_HOST": f"unix://{d.socket}",
            "DOCKER_CONFIG": str(config_dir),  # no user config.json (proxies, detach keys)
        }

    def run(
        self, *args: str, input: str | None = None, binary: str = DOCKER, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *args],
            env=self.environ,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, input: str | None = None, binary: str = DOCKER) -> str:
        """Run a docker command that must succeed and print nothing on stderr."""
        res = self.run(*args, input=input, binary=binary)
        stderr = cli_race_free(res.stderr) if args[:2] == ("run", "-d") else res.stderr
        assert (res.returncode, stderr) == (0, ""), f"docker {' '.join(args)}: {res}"
        return res.stdout

    def raw(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(str(self.d.socket))
        return sock


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not os.access(DOCKER, os.X_OK):
        pytest.skip(f"{DOCKER} missing: `make deb` installs docker.io (only its client is used)")
    lab = Lab("docker-cli")
    try:
        basic = basic_lab(lab)
        yield Env(basic, lab.boxnetd(basic.host), tmp_path_factory.mktemp("docker-config"))
    finally:
        lab.close()


@pytest.fixture
def clean(env: Env) -> Iterator[Env]:
    yield env
    env.d.remove_all_containers()


def http_status(env: Env, url: str, tries: int = 50) -> str:
    """The HTTP status code curl got from the outside namespace ('' while nothing answers)."""
    for _ in range(tries):
        res = env.basic.outside.run(
            ["curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code}", url], check=False
        )
        if res.returncode == 0:
            return res.stdout
        subprocess.run(["sleep", "0.1"], check=False)
    return ""


def newer_cli() -> str | None:
    """A docker CLI 28 named by $DOCKER_CLI_28 (Debian 12 has none, and `make test` refuses
    programs that `make install` does not provide: so only on request, by hand)."""
    return os.environ.get("DOCKER_CLI_28") or None


@pytest.mark.parametrize("cli", ["20.10", "28"])
def test_tutorial_commands_in_a_loop(clean: Env, cli: str) -> None:
    binary = DOCKER if cli == "20.10" else newer_cli()
    if binary is None:
        pytest.skip("set DOCKER_CLI_28 to a docker CLI 28 binary to run this")
    env = clean

    def ok(*args: str, input: str | None = None) -> str:
        return clean.ok(*args, input=input, binary=binary)

    for i in range(LOOPS):
        cid = ok("run", "-d", "--name", "web", "-p", "8080:80", "busybox", "httpd", "-f")
        ps = ok("ps")
        assert cid.strip()[:12] in ps and "0.0.0.0:8080->80/tcp" in ps and "web" in ps
        assert ok("port", "web") == "80/tcp -> 0.0.0.0:8080\n"
        ip = ok("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web").strip()
        assert ip.startswith("172.17.0."), ip
        # busybox httpd has no index page: its 404 proves the request went through the DNAT.
        assert http_status(env, f"http://{HOST_IP}:8080/") == "404"
        ok("logs", "web")
        assert ok("exec", "web", "echo", "hello") == "hello\n"
        net = f"tut{i}"
        ok("network", "create", net)
        assert net in ok("network", "ls")
        assert json.loads(ok("network", "inspect", net))[0]["Name"] == net
        assert ok("network", "rm", net) == f"{net}\n"
        assert ok("run", "--rm", "busybox", "echo", "hi") == "hi\n"
        assert ok("run", "-i", "--rm", "busybox", "cat", input="piped\n") == "piped\n"
        assert ok("run", "--name", "att", "busybox", "echo", "attached") == "attached\n"
        assert ok("start", "-a", "att") == "attached\n"
        assert ok("logs", "att") == "attached\nattached\n"  # attached output is logged too
        ok("rm", "att")
        ok("rm", "-f", "web")
    assert ok("ps", "-aq") == ""


def test_attached_run_streams_exit_codes_and_stdin(clean: Env) -> None:
    env = clean
    res = env.run("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n", "err\n")
    env.ok("run", "-d", "--name", "box", "busybox", "sleep", "300")
    assert env.ok("exec", "-i", "box", "sh", "-c", "cat; echo done", input="in\n") == "in\ndone\n"
    res = env.run("exec", "box", "sh", "-c", "echo e >&2; exit 5")
    assert (res.returncode, res.stdout, res.stderr) == (5, "", "e\n")
    assert env.ok("exec", "box", "cat") == ""  # no -i: stdin is empty, cat ends at once
    res = env.run("run", "--rm", "busybox", "nosuchcmd")  # --rm: nothing left behind
    assert res.returncode == 127 and "executable file not found" in res.stderr
    assert env.ok("ps", "-aq", "--no-trunc").split() == [
        env.ok("inspect", "-f", "{{.Id}}", "box").strip()
    ]
    env.ok("run", "-d", "--name", "envbox", "-e", "A=1", "-e", "B=2", "busybox", "sleep", "300")
    shown = env.ok("exec", "-e", "B=3", "envbox", "sh", "-c", "echo $A $B")
    assert shown == "1 3\n"  # the container's environment, exec -e on top (Docker's order)


def test_tty_run_and_exec(clean: Env) -> None:
    env = clean
    if shutil.which("script") is None:
        pytest.skip("script (util-linux) gives the docker CLI a terminal")

    def in_terminal(command: str, typed: str) -> subprocess.CompletedProcess[str]:
        argv = ["script", "-qec", command, "/dev/null"]
        return subprocess.run(
            argv, env=env.environ, input=typed, capture_output=True, text=True, timeout=60
        )

    res = in_terminal(f"{DOCKER} run -it --rm busybox sh", "echo typed-$((6*7))\nexit 7\n")
    assert res.returncode == 7 and "\ntyped-42\n" in res.stdout, res
    env.ok("run", "-d", "--name", "box", "busybox", "sleep", "300")
    res = in_terminal(f"{DOCKER} exec -it box sh", "echo exec-$((6*7))\nexit 2\n")
    assert res.returncode == 2 and "\nexec-42\n" in res.stdout, res


# The 20.10 CLI's `run -d` cancels its own wait request when it returns, and the goroutine
# reading that request may log the cancellation before the process exits: a race inside the
# CLI, seen with dockerd too and fixed in docker/cli#5043 (CLI 26.1). It says nothing about the
# daemon; any other text on stderr still fails the test.
CLI_WAIT_RACE = re.compile(
    r'^time="[^"]+" level=error msg="error waiting for container: context canceled"\n', re.M
)


def cli_race_free(stderr: str) -> str:
    return CLI_WAIT_RACE.sub("", stderr)


def test_parallel_detached_runs(clean: Env) -> None:
    env = clean

    def start(i: int) -> subprocess.CompletedProcess[str]:
        return env.run("run", "-d", "--name", f"par{i}", "busybox", "sleep", "300", timeout=120)

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(start, range(PARALLEL)))
    failed = [
        (r.args, r.returncode, r.stderr)
        for r in results
        if r.returncode != 0 or cli_race_free(r.stderr)
    ]
    assert failed == [], f"{len(failed)} of {PARALLEL} failed: {failed[:3]}"
    names = env.ok("ps", "--format", "{{.Names}}").split()
    assert sorted(names) == sorted(f"par{i}" for i in range(PARALLEL))


def test_parallel_attached_runs(clean: Env) -> None:
    """Each holds three connections (attach, wait, start) until its container is removed."""
    env = clean

    def run(i: int) -> subprocess.CompletedProcess[str]:
        return env.run("run", "--rm", "busybox", "echo", f"hi{i}", timeout=120)

    with ThreadPoolExecutor(PARALLEL // 2) as pool:
        results = list(pool.map(run, range(PARALLEL // 2)))
    assert [(r.returncode, r.stdout, r.stderr) for r in results] == [
        (0, f"hi{i}\n", "") for i in range(PARALLEL // 2)
    ]
    assert env.ok("ps", "-aq") == ""


# -- raw HTTP on the socket --------------------------------------------------------------------
def read_head(sock: socket.socket, buf: bytes = b"") -> tuple[str, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        assert data, f"connection closed after {buf!r}"
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
    return status, headers, rest


def read_response(sock: socket.socket, buf: bytes = b"") -> tuple[str, bytes, bytes]:
    """(status line, body, bytes after it) of a Content-Length response."""
    status, headers, rest = read_head(sock, buf)
    size = int(headers["content-length"])
    while len(rest) < size:
        rest += sock.recv(65536)
    return status, rest[:size], rest[size:]


def test_head_has_no_body_and_keeps_the_connection_usable(env: Env) -> None:
    with env.raw() as sock:
        sock.sendall(
            b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
            b"HEAD /v1.41/no/such/route HTTP/1.1\r\nHost: docker\r\n\r\n"
            b"HEAD /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n"
            b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
        )
        status, headers, rest = read_head(sock)
        assert status.startswith("HTTP/1.1 200") and headers["api-version"]
        assert headers["content-length"] == "0" and headers["ostype"] == "linux"
        status, headers, rest = read_head(sock, rest)
        assert status.startswith("HTTP/1.1 404") and int(headers["content-length"]) > 0
        status, headers, rest = read_head(sock, rest)  # no body bytes came before this head
        assert status.startswith("HTTP/1.1 200")
        status, body, rest = read_response(sock, rest)
        assert status.startswith("HTTP/1.1 200") and body == b"OK" and rest == b""


def test_unread_request_bodies_do_not_break_the_next_request(env: Env) -> None:
    with env.raw() as sock:
        sock.sendall(
            b"POST /v1.41/commit HTTP/1.1\r\nHost: docker\r\nContent-Length: 11\r\n\r\n"
            b"hello world"
            b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            b"POST /v1.41/containers/nosuch/start HTTP/1.1\r\nHost: docker\r\n"
            b"Content-Length: 5\r\n\r\nxxxxx"
            b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
        )
        status, body, rest = read_response(sock)
        assert status.startswith("HTTP/1.1 404") and b"page not found" in body
        status, body, rest = read_response(sock, rest)
        assert status.startswith("HTTP/1.1 404") and b"page not found" in body
        status, body, rest = read_response(sock, rest)
        assert status.startswith("HTTP/1.1 404") and b"No such container: nosuch" in body
        status, body, rest = read_response(sock, rest)
        assert status.startswith("HTTP/1.1 200") and body == b"OK" and rest == b""


def post_json(sock: socket.socket, path: str, body: object, extra: str = "") -> None:
    data = json.dumps(body).encode()
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )


def test_swarm_leave_is_503(env: Env) -> None:
    with env.raw() as sock:
        sock.sendall(b"POST /v1.41/swarm/leave?force=True HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body, _ = read_response(sock)
        assert status.startswith("HTTP/1.1 503")
        assert json.loads(body)["message"] == "This node is not part of a swarm"


def test_default_endpoint_config_of_cli_28_means_the_default_network(clean: Env) -> None:
    """The docker CLI 28 names the default network "default" in EndpointsConfig."""
    env = clean
    body = {
        "Image": "busybox",
        "Cmd": ["sleep", "300"],
        "HostConfig": {"NetworkMode": "default"},
        "NetworkingConfig": {
            "EndpointsConfig": {
                "default": {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": ""}
            }
        },
    }
    with env.raw() as sock:
        post_json(sock, "/v1.51/containers/create?name=c28", body)
        status, payload, _ = read_response(sock)
        assert status.startswith("HTTP/1.1 201"), payload
    env.ok("start", "c28")
    ip = env.ok("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "c28")
    assert ip.startswith("172.17.0.")


def test_exec_frames_follow_the_start_body_and_wait_answers_at_once(clean: Env) -> None:
    env = clean
    cid = env.ok("run", "-d", "--name", "box", "busybox", "sleep", "300").strip()
    with env.raw() as sock:
        post_json(sock, f"/v1.41/containers/{cid}/exec", {"Cmd": ["echo", "x"], "Tty": True})
        status, payload, _ = read_response(sock)
        exec_id = json.loads(payload)["Id"]
    with env.raw() as sock:
        upgrade = "Connection: Upgrade\r\nUpgrade: tcp\r\n"
        post_json(sock, f"/v1.41/exec/{exec_id}/start", {"Detach": False, "Tty": False}, upgrade)
        status, headers, rest = read_head(sock)
        assert status == "HTTP/1.1 101 UPGRADED" and headers["upgrade"] == "tcp"
        while len(rest) < 8:
            rest += sock.recv(65536)
        kind, size = struct.unpack(">BxxxL", rest[:8])
        assert kind == 1  # a stdout frame, though the exec was created with a pty
        while True:  # the stream ends when the exec has ended
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        assert rest[8 : 8 + size] == b"x\r\n"  # the pty turned \n into \r\n
    with env.raw() as sock:
        sock.sendall(f"POST /v1.41/containers/{cid}/wait HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, rest = read_head(sock)  # the container still runs: only the head
        assert status.startswith("HTTP/1.1 200") and headers["transfer-encoding"] == "chunked"
        env.ok("kill", "box")
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
        assert b'"StatusCode": 137' in rest


def test_attach_to_a_container_removed_before_its_start_ends(clean: Env) -> None:
    env = clean
    cid = env.ok("create", "-i", "busybox", "cat").strip()
    with env.raw() as sock:
        sock.sendall(
            f"POST /v1.41/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
            "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
        )
        status, _, rest = read_head(sock)
        assert status == "HTTP/1.1 101 UPGRADED"
        sock.sendall(b"never read\n")
        sock.shutdown(socket.SHUT_WR)  # the docker CLI's end of stdin
        assert env.ok("rm", cid) == f"{cid}\n"
        assert rest + sock.recv(65536) == b""  # the daemon ends the stream (EOF, no bytes)
    assert env.ok("ps", "-aq") == ""


def test_attach_to_a_running_container_follows_its_output(clean: Env) -> None:
    env = clean
    loop = "while [ ! -e /tmp/stop ]; do echo tick; sleep 0.2; done; echo bye; exit 4"
    env.ok("run", "-d", "--name", "ticker", "busybox", "sh", "-c", loop)
    attach = subprocess.Popen(
        [DOCKER, "attach", "--no-stdin", "ticker"],
        env=env.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert attach.stdout is not None
        assert attach.stdout.readline() == "tick\n"  # new output reaches the attached client
        env.ok("exec", "ticker", "touch", "/tmp/stop")
        out, err = attach.communicate(timeout=30)
    finally:
        attach.kill()
        attach.wait()
    assert out.endswith("bye\n") and err == "" and attach.returncode == 4
