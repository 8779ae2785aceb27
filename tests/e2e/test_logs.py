"""Issue 13 part 2: every container's output is in `logs`, as Docker's json-file driver keeps it.

Attached runs (with and without -t), `start -a` and restarts are logged; the API keeps stdout
and stderr apart (frame headers read from the raw HTTP answer, and docker-py); --tail, --since,
--until, -t; rotation by --log-opt max-size/max-file. Observed with the real CLI against a real
daemon in a lab, and on the log files themselves.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab, venv_bin

pytestmark = pytest.mark.e2e
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")
COUNT_RUNS = "n=$(cat /n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /n; echo run$n; echo e$n >&2"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[BasicLab, Daemon]]:
    lab = Lab("logs")
    try:
        basic = basic_lab(lab)
        yield basic, lab.boxnetd(basic.host)
    finally:
        lab.close()


def api_get(d: Daemon, path: str) -> tuple[dict[str, str], bytes]:
    """A raw HTTP/1.1 GET on the daemon's socket: (headers, de-chunked body)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(d.socket))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: boxnet\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert " 200 " in lines[0], data
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        plain = b""
        while True:
            size_text, _, body = body.partition(b"\r\n")
            size = int(size_text, 16)
            if size == 0:
                break
            plain, body = plain + body[:size], body[size + 2 :]
        body = plain
    return headers, body


def frames(body: bytes) -> list[tuple[int, bytes]]:
    """Docker's multiplexed stream: (stream, payload) per 8-byte header."""
    out = []
    while body:
        stream, size = struct.unpack(">BxxxL", body[:8])
        out.append((stream, body[8 : 8 + size]))
        body = body[8 + size :]
    return out


def test_attached_run_is_logged_with_streams_apart(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    ran = d.cli("run", "--name", "lg", "busybox", "sh", "-c", "echo hello; echo oops >&2")
    assert (ran.stdout, ran.stderr) == ("hello\n", "oops\n")  # the client still gets both
    logs = d.cli("logs", "lg")
    assert (logs.stdout, logs.stderr) == ("hello\n", "oops\n")
    headers, body = api_get(d, "/containers/lg/logs?stdout=1&stderr=1")
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert sorted(frames(body)) == [(1, b"hello\n"), (2, b"oops\n")]
    _, body = api_get(d, "/containers/lg/logs?stderr=1")
    assert frames(body) == [(2, b"oops\n")]
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{d.socket}")
    container = client.containers.get("lg")
    assert container.logs(stdout=False, stderr=True) == b"oops\n"
    assert container.logs(stdout=True, stderr=False) == b"hello\n"
    d.cli("rm", "lg")


def test_attached_tty_run_is_logged_raw(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    ran = d.cli("run", "-t", "--name", "lgt", "busybox", "sh", "-c", "test -t 1 && echo on-tty")
    assert ran.stdout.replace("\r\n", "\n") == "on-tty\n"
    assert d.cli("logs", "lgt").stdout.replace("\r\n", "\n") == "on-tty\n"
    headers, body = api_get(d, "/containers/lgt/logs?stdout=1&stderr=1")
    assert headers["content-type"] == "application/vnd.docker.raw-stream"
    assert body == b"on-tty\r\n"  # a tty's output, as the terminal got it
    d.cli("rm", "lgt")


def run_in_pty(
    argv: list[str],
    steps: list[tuple[bytes, bytes | tuple[int, int]]],
    rows_cols: tuple[int, int] = (24, 80),
) -> tuple[int, bytes]:
    """argv on a fresh pty of the given size; for each (seen, action) step, once the screen
    shows `seen` after the previous action: type the action's bytes, or resize the terminal to
    its (rows, cols) and go on with the next step at once; (exit code, screen)."""
    pid, master = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *rows_cols, 0, 0))
    screen, todo, mark = b"", list(steps), 0
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
                while todo and todo[0][0] in screen[mark:]:
                    action = todo.pop(0)[1]
                    if isinstance(action, tuple):  # the kernel signals SIGWINCH to the CLI
                        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *action, 0, 0))
                        continue
                    os.write(master, action)
                    mark = len(screen)
        else:
            os.kill(pid, signal.SIGKILL)  # stuck: fail below rather than hang
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return os.waitstatus_to_exitcode(status), screen


def test_interactive_terminal_session_is_logged_and_sized(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    cli = [str(venv_bin() / "boxnet"), "-H", f"unix://{d.socket}"]
    code, screen = run_in_pty(
        [*cli, "run", "-it", "--name", "lgi", "busybox", "sh"],
        [
            (b"# ", b"stty size; echo typed-$((6*7))\n"),
            (b"typed-42\r\n", (40, 120)),  # resized while it runs
            (b"", b"stty size; exit 5\n"),
        ],
        (33, 101),
    )
    assert code == 5, screen
    assert b"33 101" in screen and b"typed-42" in screen  # window size and keys reach it
    assert b"40 120" in screen  # a resize too: CLI pty -> SIGWINCH to the shim -> its pty
    logged = d.cli("logs", "lgi").stdout
    assert "33 101" in logged and "typed-42" in logged
    d.cli("rm", "lgi")


def test_a_daemon_restart_keeps_logging(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    script = "echo before; while [ ! -e /go ]; do sleep 0.05; done; echo after"
    d.cli("run", "-d", "--name", "lr", "busybox", "sh", "-c", script)
    d.restart()  # the shim, which writes the log, lives on; the new daemon adopts it
    d.cli("exec", "lr", "touch", "/go")
    assert d.cli("wait", "lr").stdout.strip() == "0"
    assert d.cli("logs", "lr").stdout == "before\nafter\n"
    d.cli("rm", "lr")


def test_ctrl_c_on_a_terminal_reaches_the_container(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    cli = [str(venv_bin() / "boxnet"), "-H", f"unix://{d.socket}"]
    code, screen = run_in_pty(
        [*cli, "run", "-it", "--rm", "busybox", "sh"],
        [
            # The job itself prints the marker: by then it is the terminal's foreground job.
            (b"# ", b"sh -c 'echo started; exec sleep 100'; echo not-interrupted\n"),
            (b"started\r\n", b"\x03"),  # the byte, through the shim's pty: SIGINT to sleep
            (b"# ", b"echo after-int; exit 3\n"),
        ],
    )
    assert code == 3, screen
    assert b"^C" in screen and b"after-int\r\n" in screen
    assert screen.count(b"not-interrupted\r\n") == 1  # the typed line's echo only


def test_stdin_eof_reaches_an_attached_container(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    piped = d.cli("run", "-i", "--name", "cat", "busybox", "cat", input="abc\n")
    assert piped.returncode == 0 and piped.stdout == "abc\n"  # EOF reached cat
    assert d.cli("logs", "cat").stdout == "abc\n"
    d.cli("rm", "cat")


def test_start_attach_and_restart_are_logged_in_order(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    d.cli("create", "--name", "rs", "busybox", "sh", "-c", COUNT_RUNS)
    assert d.cli("start", "-a", "rs").stdout == "run1\n"
    assert d.cli("start", "-a", "rs").stdout == "run2\n"
    d.cli("restart", "rs")  # detached
    assert d.cli("wait", "rs").stdout.strip() == "0"
    logs = d.cli("logs", "rs")
    assert logs.stdout == "run1\nrun2\nrun3\n"
    assert logs.stderr == "e1\ne2\ne3\n"
    d.cli("rm", "rs")


def test_tail_since_until_and_timestamps(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    # Separate writes: lines the shim reads in one chunk share one time (as in Docker).
    script = "echo a; sleep 0.1; echo b; sleep 0.1; echo c"
    d.cli("run", "--name", "tm", "busybox", "sh", "-c", script)
    stamped = [STAMPED.match(line) for line in d.cli("logs", "-t", "tm").stdout.splitlines()]
    assert all(stamped), stamped
    times = [m.group(1) for m in stamped if m]
    assert [m.group(2) for m in stamped if m] == ["a", "b", "c"]
    assert times[0] < times[1] < times[2]

    def lines(*args: str) -> list[str]:
        return d.cli("logs", *args, "tm").stdout.split()

    assert lines("--tail", "2") == ["b", "c"]
    assert lines("--tail", "0") == []
    assert lines("--since", times[1]) == ["b", "c"]
    assert lines("--until", times[1]) == ["a", "b"]
    assert lines("--since", times[1], "--until", times[1]) == ["b"]
    assert lines("--since", "1h") == ["a", "b", "c"]  # a duration: since an hour ago
    assert lines("--until", "1h") == []
    bad = d.cli("logs", "--since", "yesterday", "tm", check=False)
    assert bad.returncode != 0 and "--since" in bad.stderr and "Traceback" not in bad.stderr
    d.cli("rm", "tm")


def test_rotation_keeps_at_most_max_file_files(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    script = "i=0; while [ $i -lt 400 ]; do echo line$i; i=$((i+1)); done"
    opts = ["--log-opt", "max-size=4k", "--log-opt", "max-file=2"]
    d.cli("run", "--name", "rot", *opts, "busybox", "sh", "-c", script)
    info = json.loads(d.cli("inspect", "--format", "json", "rot").stdout)
    info = info[0] if isinstance(info, list) else info
    log = Path(info["LogPath"])
    kept = sorted(p.name for p in log.parent.iterdir() if p.name.startswith(log.name))
    assert kept == [log.name, f"{log.name}.1"]
    for path in (log, log.with_name(f"{log.name}.1")):
        assert path.stat().st_size <= 4096
        assert all(json.loads(x)["stream"] == "stdout" for x in path.read_text().splitlines())
    shown = d.cli("logs", "rot").stdout.split()
    first = int(shown[0].removeprefix("line"))
    assert first > 0 and shown == [f"line{i}" for i in range(first, 400)]  # recent, in order
    d.cli("rm", "rot")


def test_bad_log_options_are_refused(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    for opt, words in (
        ("max-size=lots", "invalid max-size"),
        ("max-file=0", "invalid max-file"),
        ("compress=true", "unknown log opt"),
    ):
        bad = d.cli("run", "--name", "badlog", "--log-opt", opt, "busybox", "true", check=False)
        assert bad.returncode == 125 and words in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    assert "badlog" not in d.cli("ps", "-a").stdout
