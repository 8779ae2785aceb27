"""boxnet CLI against a fake daemon: a tiny threaded HTTP server on a unix socket, in-process.

Covers the hand-written HTTP client (status handling, JSON errors, chunked bodies), the
fd-passing handshake of run/exec (the fake receives our fds with recv_fds and writes to the
received stdout, as boxnetd's container would), the pty relay of -t, exit codes, and the
"cannot connect" message.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import select
import socket
import socketserver
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from boxnet.cli.client import ApiError, Client, DaemonUnreachable
from boxnet.cli.main import main

Handler = Callable[["Request"], None]


class Request:
    def __init__(self, conn: socket.socket, method: str, target: str, body: bytes) -> None:
        self.conn = conn
        self.method = method
        self.path, _, self.query_string = target.partition("?")
        self.query = dict(p.split("=", 1) for p in self.query_string.split("&") if p)
        self.body = json.loads(body) if body else None

    def send(self, status: int, body: object = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)

    def send_raw(self, data: bytes) -> None:
        self.conn.sendall(data)


class FakeDaemon:
    """Routes: (METHOD, path) -> handler(Request). Every request is recorded."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.host = f"unix://{path}"
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        daemon = self

        class RequestHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn = self.request
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(1)  # byte by byte: never read past the headers
                    if not chunk:
                        return
                    data += chunk
                head, _, _ = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, target, _ = lines[0].split(" ")
                headers = {
                    k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
                }
                length = int(headers.get("content-length", "0"))
                body = b""
                while len(body) < length:
                    body += conn.recv(length - len(body))
                req = Request(conn, method, target, body)
                daemon.requests.append(req)
                handler = daemon.routes.get((method, req.path))
                if handler is None:
                    req.send(404, {"message": f"no route {method} {req.path}"})
                else:
                    handler(req)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, RequestHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def route(self, method: str, path: str, status: int = 200, body: object = None) -> None:
        self.routes[(method, path)] = lambda req: req.send(status, body)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def daemon(tmp_path):
    fake = FakeDaemon(str(tmp_path / "boxnet.sock"))
    yield fake
    fake.close()


def cli(daemon: FakeDaemon, *argv: str) -> int:
    return main(["-H", daemon.host, *argv])


CID = "c0" * 32


def attach_handler(output: bytes, status: int = 200, body: object = None) -> Handler:
    """attach-start: 100 Continue, receive three fds, write to the received stdout."""

    def handle(req: Request) -> None:
        req.send_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        msg, fds, _, _ = socket.recv_fds(req.conn, 1, 3)
        req.fds_received = len(fds)  # type: ignore[attr-defined]
        req.marker = msg  # type: ignore[attr-defined]
        os.write(fds[1], output)
        for fd in fds:
            os.close(fd)
        req.send(status, body if body is not None else {"Id": CID})

    return handle


# --- client.py -------------------------------------------------------------------------------


def test_json_request_and_query(daemon):
    daemon.route("GET", "/containers/json", body=[{"Id": "x"}])
    assert Client(daemon.host).call("GET", "/containers/json", query={"all": True, "x": None}) == [
        {"Id": "x"}
    ]
    assert daemon.requests[-1].query_string == "all=1"


def test_error_status_carries_message_and_hint(daemon):
    daemon.route("GET", "/networks/nope", 404, {"message": "network nope not found", "hint": "ls"})
    with pytest.raises(ApiError) as err:
        Client(daemon.host).call("GET", "/networks/nope")
    assert err.value.status == 404
    assert err.value.render() == "Error: network nope not found\nHint: ls"


def test_non_json_error_body(daemon):
    daemon.routes[("GET", "/_ping")] = lambda req: req.send_raw(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"
    )
    with pytest.raises(ApiError, match="oops"):
        Client(daemon.host).request("GET", "/_ping")


def test_204_and_read_until_close(daemon):
    daemon.route("POST", "/containers/x/start", 204)
    assert Client(daemon.host).request("POST", "/containers/x/start").status == 204
    daemon.routes[("GET", "/_ping")] = lambda req: req.send_raw(b"HTTP/1.1 200 OK\r\n\r\nOK")
    assert Client(daemon.host).request("GET", "/_ping").body == b"OK"


def test_chunked_logs_follow(daemon, capfd):
    def logs(req: Request) -> None:
        req.send_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"line 1\n", b"line 2\nline", b" 3\n"):
            req.send_raw(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.02)
        req.send_raw(b"0\r\nX-Trailer: y\r\n\r\n")

    daemon.routes[("GET", "/containers/web/logs")] = logs
    assert cli(daemon, "logs", "-f", "--tail", "10", "web") == 0
    assert capfd.readouterr().out == "line 1\nline 2\nline 3\n"
    assert daemon.requests[-1].query == {"stdout": "1", "stderr": "1", "follow": "1", "tail": "10"}


def test_cannot_connect_message_and_exit_codes(tmp_path, capsys):
    host = f"unix://{tmp_path}/absent.sock"
    with pytest.raises(DaemonUnreachable):
        Client(host).connect()
    assert main(["-H", host, "ps"]) == 1
    assert capsys.readouterr().err == (
        f"Error: cannot connect to the boxnet daemon at {host}: No such file or directory\n"
        'Hint: is boxnetd running? Start it with "boxnetd &" (or pass -H / set BOXNET_HOST)\n'
    )
    assert main(["-H", host, "run", "busybox"]) == 125
    assert "cannot connect" in capsys.readouterr().err


def test_host_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BOXNET_HOST", str(tmp_path / "env.sock"))
    assert Client().host == f"unix://{tmp_path}/env.sock"
    monkeypatch.delenv("BOXNET_HOST")
    assert Client().host == "unix:///run/boxnet.sock"


def test_unsupported_host_scheme(capsys):
    assert main(["-H", "tcp://1.2.3.4:2375", "ps"]) == 1
    assert "unsupported daemon host" in capsys.readouterr().err


def test_unexpected_exception_has_no_traceback(daemon, capsys):
    daemon.routes[("GET", "/containers/json")] = lambda req: req.send_raw(b"garbage\r\n\r\n")
    assert cli(daemon, "ps") == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "Traceback" not in err
    assert cli(daemon, "--debug", "ps") == 1
    assert "Traceback" in capsys.readouterr().err


# --- run / exec: fd passing --------------------------------------------------------------------


def run_routes(daemon: FakeDaemon, output: bytes, exit_code: int) -> None:
    daemon.route("POST", "/containers/create", 201, {"Id": CID, "Warnings": ["careful"]})
    daemon.routes[("POST", f"/boxnet/containers/{CID}/attach-start")] = attach_handler(output)
    daemon.route("POST", f"/containers/{CID}/wait", 200, {"StatusCode": exit_code})
    daemon.route("DELETE", f"/containers/{CID}", 204)


def test_run_passes_fds_and_exits_with_container_code(daemon, capfd):
    run_routes(daemon, b"hello from the container\n", 3)
    assert cli(daemon, "run", "--rm", "--name", "t1", "busybox", "echo", "hi") == 3
    out, err = capfd.readouterr()
    assert out == "hello from the container\n"
    assert "WARNING: careful" in err
    assert daemon.paths() == [
        "POST /containers/create",
        f"POST /boxnet/containers/{CID}/attach-start",
        f"POST /containers/{CID}/wait",
        f"DELETE /containers/{CID}",
    ]
    create, attach = daemon.requests[0], daemon.requests[1]
    assert create.query == {"name": "t1"} and create.body["Cmd"] == ["echo", "hi"]
    assert attach.fds_received == 3 and attach.marker == b"F"
    assert daemon.requests[3].query == {"force": "1"}


def test_run_with_tty_relays_the_pty(daemon, capfd):
    # -t without a terminal: the CLI still opens a pty and copies its output to stdout.
    run_routes(daemon, b"through the pty\n", 0)
    assert cli(daemon, "run", "-t", "busybox") == 0
    out = capfd.readouterr().out
    assert out == "through the pty\r\n"  # the pty's line discipline adds the \r


def test_run_detached_prints_id(daemon, capsys):
    daemon.route("POST", "/containers/create", 201, {"Id": CID, "Warnings": []})
    daemon.route("POST", f"/containers/{CID}/start", 204)
    assert cli(daemon, "run", "-d", "--rm", "busybox", "sleep", "9") == 0
    assert capsys.readouterr().out == CID + "\n"
    assert daemon.requests[0].body["HostConfig"]["AutoRemove"] is True


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ('exec: "nosuch": executable file not found in $PATH', 127),
        ("exec /bin/x: permission denied", 126),
        ("cannot set up the network: no space left", 125),
        ('chdir to cwd ("/x") failed: no such file or directory', 126),
    ],
)
def test_run_start_errors_map_to_docker_codes(daemon, capsys, message, code):
    run_routes(daemon, b"", 0)
    daemon.route("POST", f"/boxnet/containers/{CID}/attach-start", 500, {"message": message})
    assert cli(daemon, "run", "--rm", "busybox", "nosuch") == code
    assert capsys.readouterr().err.endswith(f"\nError: {message}\n")
    assert daemon.paths()[-1] == f"DELETE /containers/{CID}"  # --rm cleans up after a failure


def test_create_error_is_125(daemon, capsys):
    daemon.route("POST", "/containers/create", 409, {"message": "name web in use", "hint": "rm it"})
    assert cli(daemon, "create", "--name", "web", "busybox") == 125
    assert capsys.readouterr().err == "Error: name web in use\nHint: rm it\n"


def test_exec_returns_exit_code(daemon, capfd):
    daemon.route("POST", "/containers/web/exec", 201, {"Id": "e1"})
    daemon.routes[("POST", "/boxnet/exec/e1/attach-start")] = attach_handler(
        b"exec output\n", body={"ExitCode": 5}
    )
    assert cli(daemon, "exec", "-e", "A=1", "web", "sh", "-c", "exit 5") == 5
    assert capfd.readouterr().out == "exec output\n"
    assert daemon.requests[0].body == {
        "Cmd": ["sh", "-c", "exit 5"],
        "Env": ["A=1"],
        "Tty": False,
        "AttachStdin": False,
        "WorkingDir": "",
    }


def test_exec_not_running_is_exit_1(daemon, capsys):
    daemon.route("POST", "/containers/web/exec", 409, {"message": "container web is not running"})
    assert cli(daemon, "exec", "web", "true") == 1
    assert capsys.readouterr().err == "Error: container web is not running\n"


# --- other verbs -------------------------------------------------------------------------------


def test_ps_quiet_and_json(daemon, capsys):
    listing = [{"Id": "ab" * 32, "Names": ["/w"], "Image": "busybox", "Ports": []}]
    daemon.route("GET", "/containers/json", body=listing)
    assert cli(daemon, "ps", "-a", "-q") == 0
    assert capsys.readouterr().out == "abababababab\n"
    assert daemon.requests[-1].query == {"all": "1"}
    assert cli(daemon, "ps", "--format", "json") == 0
    # Docker's formatted fields (issue 17), not the raw API objects.
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1 and rows[0]["Names"] == "w" and rows[0]["ID"] == "abababababab"
    assert rows[0]["Ports"] == "" and rows[0]["Image"] == "busybox"
    assert cli(daemon, "ps", "--format", "{{.ID}} {{.Image}} {{.Names}} {{len .Ports}}") == 0
    assert capsys.readouterr().out == "abababababab busybox w 0\n"


def test_stop_rm_report_each_failure(daemon, capsys):
    daemon.route("POST", "/containers/a/stop", 204)
    daemon.route("POST", "/containers/b/stop", 404, {"message": "No such container: b"})
    assert cli(daemon, "stop", "-t", "3", "a", "b") == 1
    captured = capsys.readouterr()
    assert captured.out == "a\n" and captured.err == "Error: No such container: b\n"
    assert daemon.requests[0].query == {"t": "3"}


def test_inspect_container_then_network_then_missing(daemon, capsys):
    daemon.route("GET", "/containers/web/json", body={"Id": "1", "State": {"Pid": 42}})
    daemon.route("GET", "/networks/net1", body={"Id": "2", "Name": "net1"})
    assert cli(daemon, "inspect", "-f", "{{.State.Pid}}", "web") == 0
    assert capsys.readouterr().out == "42\n"
    assert cli(daemon, "inspect", "net1", "ghost") == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [{"Id": "2", "Name": "net1"}]
    assert captured.out.startswith('[\n    {\n        "Id": "2"')
    assert captured.err == "Error: No such object: ghost\n"


def test_network_ls_sorted_and_create(daemon, capsys):
    nets = [
        {"Id": "b" * 64, "Name": "none", "Driver": "null", "Scope": "local"},
        {"Id": "a" * 64, "Name": "bridge", "Driver": "bridge", "Scope": "local"},
    ]
    daemon.route("GET", "/networks", body=nets)
    assert cli(daemon, "network", "ls", "-q", "--no-trunc") == 0
    assert capsys.readouterr().out == "a" * 64 + "\n" + "b" * 64 + "\n"
    daemon.route("POST", "/networks/create", 201, {"Id": "n" * 64, "Warning": ""})
    assert cli(daemon, "network", "create", "--subnet", "10.9.0.0/24", "lan") == 0
    assert capsys.readouterr().out == "n" * 64 + "\n"


def test_port_uses_docker_format(daemon, capsys):
    ports = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}
    daemon.route("GET", "/containers/web/json", body={"NetworkSettings": {"Ports": ports}})
    assert cli(daemon, "port", "web") == 0
    assert capsys.readouterr().out == "80/tcp -> 0.0.0.0:8080\n"
    assert cli(daemon, "port", "web", "53/udp") == 1
    assert "No public port '53/udp' published for web" in capsys.readouterr().err


def test_version_prints_client_then_server(daemon, capsys):
    daemon.route(
        "GET",
        "/version",
        body={
            "Version": "0.1.0",
            "ApiVersion": "1.43",
            "Os": "linux",
            "Arch": "amd64",
            "KernelVersion": "6.1",
        },
    )
    assert cli(daemon, "version") == 0
    out = capsys.readouterr().out
    assert out.startswith("Client:\n Version:           0.1.0\n")
    assert "\nServer:\n Engine:\n  Version:          0.1.0\n" in out
    assert "  Kernel version:   6.1\n" in out


def test_start_attach_uses_container_tty_setting(daemon, capfd):
    daemon.route("GET", "/containers/web/json", body={"Id": CID, "Config": {"Tty": False}})
    daemon.routes[("POST", f"/boxnet/containers/{CID}/attach-start")] = attach_handler(b"again\n")
    daemon.route("POST", f"/containers/{CID}/wait", 200, {"StatusCode": 0})
    assert cli(daemon, "start", "-a", "web") == 0
    assert capfd.readouterr().out == "again\n"


def test_exec_detached_uses_docker_start(daemon):
    daemon.route("POST", "/containers/web/exec", 201, {"Id": "e2"})
    daemon.route("POST", "/exec/e2/start", 200, {})
    assert cli(daemon, "exec", "-d", "web", "sleep", "100") == 0
    assert daemon.paths()[-1] == "POST /exec/e2/start"
    assert daemon.requests[-1].body == {"Detach": True}


def test_logs_without_follow_and_errors(daemon, capfd):
    daemon.routes[("GET", "/containers/web/logs")] = lambda req: req.send_raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef"
    )
    assert cli(daemon, "logs", "web") == 0
    assert capfd.readouterr().out == "abcdef"
    assert cli(daemon, "logs", "ghost") == 1
    assert capfd.readouterr().err == "Error: no route GET /containers/ghost/logs\n"


def test_images_import_gc_hostbridge(daemon, capsys, tmp_path):
    daemon.route("POST", "/boxnet/images/import", 200, {"Name": "myimg"})
    assert cli(daemon, "import", str(tmp_path), "myimg") == 0
    assert daemon.requests[-1].body == {"Source": str(tmp_path), "Name": "myimg"}
    assert cli(daemon, "import", str(tmp_path / "absent.tar"), "x") == 1
    daemon.route("POST", "/boxnet/system/gc", 200, {"Removed": ["br-0123456789ab"], "Released": []})
    assert cli(daemon, "system", "gc") == 0
    daemon.route("POST", "/boxnet/hostbridges", 201, {"Name": "br-lan"})
    assert cli(daemon, "hostbridge", "create", "br-lan", "--uplink", "eth0") == 0
    assert daemon.requests[-1].body == {"Name": "br-lan", "Uplink": "eth0"}
    out = capsys.readouterr().out
    assert "myimg\n" in out and "Removed: br-0123456789ab\n" in out and out.endswith("br-lan\n")


def test_network_prune_asks_first(daemon, capsys, monkeypatch):
    daemon.route("POST", "/networks/prune", 200, {"NetworksDeleted": ["a", "b"]})
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert cli(daemon, "network", "prune") == 0
    assert daemon.requests == []
    assert cli(daemon, "network", "prune", "-f") == 0
    assert capsys.readouterr().out.endswith("Deleted Networks:\na\nb\n")


def test_run_it_in_a_terminal(daemon):
    """`run -it` from a real terminal: raw mode, input relayed, window size copied and resized."""
    attached = threading.Event()
    finished = threading.Event()

    def container(fds: list[int]) -> None:
        # Plays the container: reads lines from its tty, answers with the tty's size.
        with os.fdopen(fds[0], "rb", buffering=0) as tty_in:
            for _ in range(2):
                line = b""
                while not line.endswith(b"\n"):
                    line += tty_in.read(1)
                rows, cols = struct.unpack(
                    "HHHH", fcntl.ioctl(fds[1], termios.TIOCGWINSZ, b"\0" * 8)
                )[:2]
                os.write(fds[1], b"got %s %dx%d\n" % (line.strip(), rows, cols))
        os.close(fds[1])
        os.close(fds[2])
        finished.set()

    def attach(req: Request) -> None:
        req.send_raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        _, fds, _, _ = socket.recv_fds(req.conn, 1, 3)
        threading.Thread(target=container, args=(fds,), daemon=True).start()
        req.send(200, {"Id": CID})
        attached.set()

    def wait(req: Request) -> None:
        finished.wait(10)
        req.send(200, {"StatusCode": 7})

    daemon.route("POST", "/containers/create", 201, {"Id": CID, "Warnings": []})
    daemon.routes[("POST", f"/boxnet/containers/{CID}/attach-start")] = attach
    daemon.routes[("POST", f"/containers/{CID}/wait")] = wait
    script = Path(sys.executable).with_name("boxnet")
    argv = [str(script), "-H", daemon.host, "run", "-it", "busybox"]
    pid, master = pty.fork()
    if pid == 0:  # the child: the CLI, on the pty's slave as its terminal
        os.execv(argv[0], argv)
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    output = b""

    def read_until(expected: bytes) -> None:
        nonlocal output
        deadline = time.monotonic() + 10
        while expected not in output and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    output += os.read(master, 1024)
                except OSError:
                    break

    try:
        assert attached.wait(10)
        time.sleep(0.3)  # let the CLI enter raw mode and its relay loop
        os.write(master, b"one\r")
        read_until(b"got one 30x100")
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        time.sleep(0.3)  # SIGWINCH reaches the CLI, which resizes the container's pty
        os.write(master, b"two\r")
        read_until(b"got two 40x120")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    assert b"got one 30x100" in output and b"got two 40x120" in output, output
    assert os.waitstatus_to_exitcode(status) == 7
