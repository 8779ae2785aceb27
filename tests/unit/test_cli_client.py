"""boxnet CLI against a fake daemon: a tiny threaded HTTP server on a unix socket, in-process.

Covers the hand-written HTTP client (status handling, JSON errors, chunked bodies), the
fd-passing handshake of run/exec (the fake receives our fds with recv_fds and writes to the
received stdout, as boxnetd's container would), the pty relay of -t, exit codes, and the
"cannot connect" message.
"""

from __future__ import annotations

import time

import pytest
from cli_fake import CID, FakeDaemon, Request, attach_handler, cli

from boxnet.cli.client import ApiError, Client, DaemonUnreachable
from boxnet.cli.main import main

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
