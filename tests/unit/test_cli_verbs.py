"""boxnet CLI verbs (ps, stop, rm, inspect, network, port, version, logs, images, ...)
against the fake daemon of cli_fake.py: what each sends and how it renders the answers."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import select
import socket
import struct
import sys
import termios
import threading
import time
from pathlib import Path

from cli_fake import CID, Request, attach_handler, cli

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
