"""The CLI's quick path (cli/quick.py): the shapes it takes give the handler and arguments
argparse would, it answers as the argparse path does, it leaves every other shape to argparse,
and it imports no argparse."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_fake import FakeDaemon

from boxnet.cli import main as full
from boxnet.cli import quick

SHAPES = [
    ["rm", "web"],
    ["rm", "-f", "web", "db"],
    ["rm", "--force", "-f", "web"],
    ["-D", "--host", "unix:///x.sock", "rm", "-f", "web"],
    ["--host=unix:///x.sock", "network", "rm", "n1", "n2"],
    ["-H", "unix:///x.sock", "network", "create", "n1"],
    ["run", "-d", "busybox", "sleep", "1000"],
    ["run", "-d", "-p", "80", "busybox", "sleep", "1000"],
    ["run", "busybox"],
    ["create", "--name", "web", "busybox"],
    [
        "-H",
        "unix:///x.sock",
        "run",
        "-d",
        "--name=web",
        "-p",
        "8080:80",
        "--publish",
        "53/udp",
        "-e",
        "A=1",
        "--env=B",
        "--net",
        "n1",
        "--network-alias",
        "db",
        "--ip",
        "10.1.0.5",
        "--restart",
        "always",
        "--stop-timeout",
        "3",
        "--stop-timeout=4",
        "-P",
        "--rm",
        "busybox:1.36",
        "sh",
        "-c",
        "echo hi",
    ],
    [
        "run",
        "-d",
        "-h",
        "box",
        "--dns",
        "1.1.1.1",
        "--dns-opt",
        "ndots:2",
        "-v",
        "/a:/b:ro",
        "-l",
        "k=v",
        "-u",
        "1000:1000",
        "-w",
        "/tmp",
        "--read-only",
        "--mac-address",
        "02:42:ac:11:00:02",
        "--tmpfs",
        "/run",
        "--log-opt",
        "max-size=1m",
        "busybox",
    ],
    ["run", "--name=", "busybox"],
    ["run", "-d", "busybox", "-d", "--name", "x", "-", "--rm"],  # after IMAGE: the command's
    ["run", "-t", "-i", "--entrypoint", "", "busybox"],
]


@pytest.mark.parametrize("argv", SHAPES, ids=" ".join)
def test_quick_shapes_parse_as_argparse_does(argv: list[str]) -> None:
    found = quick.recognise(argv)
    assert found is not None
    func, args, ctx = found
    parsed = full.build_parser(full.find_command(argv)).parse_args(argv)
    assert func is parsed.func
    expected = {k: v for k, v in vars(parsed).items() if k not in ("func", "host", "debug")}
    assert vars(args) == expected
    assert (ctx.host, ctx.debug) == (parsed.host, parsed.debug)


@pytest.mark.parametrize(
    "argv",
    [
        ["rm"],
        ["rm", "--help"],
        ["rm", "web", "-f"],
        ["rm", "-v", "web"],
        ["network", "create", "--subnet", "10.9.0.0/24", "n1"],
        ["network", "create", "n1", "n2"],
        ["network", "remove", "n1"],
        ["run"],
        ["run", "-d"],
        ["run", "--help"],
        ["run", "-it", "busybox"],
        ["run", "-p80", "busybox"],
        ["run", "-e=A=1", "busybox"],
        ["run", "--netw", "n1", "busybox"],
        ["run", "--name", "-x", "busybox"],
        ["run", "--detach=yes", "busybox"],
        ["run", "--stop-timeout", "soon", "busybox"],
        ["run", "--", "busybox"],
        ["run", "busybox", "sh", "--", "x"],
        ["run", "--bogus", "busybox"],
        ["exec", "web", "ls"],
        ["--log-level", "debug", "rm", "web"],
        ["ps"],
        [],
    ],
    ids=lambda argv: " ".join(argv) or "(none)",
)
def test_other_shapes_go_to_argparse(argv: list[str]) -> None:
    assert quick.recognise(argv) is None


def test_quick_rm_and_network_verbs_answer_as_before(daemon: FakeDaemon, capsys) -> None:
    daemon.route("DELETE", "/containers/a", 204)
    daemon.route("DELETE", "/containers/b", 404, {"message": "No such container: b"})
    daemon.route("POST", "/networks/create", 201, {"Id": "n" * 64, "Warning": "careful"})
    daemon.route("DELETE", "/networks/n1", 204)
    assert quick.main(["-H", daemon.host, "rm", "-f", "a", "b"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "a\n" and captured.err == "Error: No such container: b\n"
    assert daemon.requests[0].query == {"force": "1"}
    assert quick.main(["-H", daemon.host, "network", "create", "n1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "n" * 64 + "\n" and captured.err == "WARNING: careful\n"
    assert daemon.requests[-1].body["Name"] == "n1"
    assert daemon.requests[-1].body["Driver"] == "bridge"
    assert quick.main(["-H", daemon.host, "network", "rm", "n1"]) == 0
    assert capsys.readouterr().out == "n1\n"
    assert daemon.paths()[-1] == "DELETE /networks/n1"


@pytest.mark.parametrize(
    ("verb", "handler"),
    [
        (["rm", "-f", "web"], "boxnet.cli.containers"),
        (
            ["run", "-d", "-p", "80", "--name", "web", "--net", "n1", "busybox", "sleep", "9"],
            "boxnet.cli.run",
        ),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else "",
)
def test_quick_verbs_import_no_argparse(tmp_path, verb: list[str], handler: str) -> None:
    code = (
        "import sys\n"
        "from boxnet.cli.quick import main\n"
        f"main(['-H', 'unix://{tmp_path}/absent.sock', *{verb!r}])\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "cannot connect to the boxnet daemon" in proc.stderr, proc.stderr
    loaded = set(proc.stderr.splitlines()[-1].split())
    assert handler in loaded  # the real handler ran
    heavy = {"argparse", "socket", "selectors", "re", "json", "ipaddress", "boxnet.cli.main"}
    assert not heavy & loaded


def test_quick_run_sends_what_the_argparse_path_sends(daemon: FakeDaemon, capsys) -> None:
    daemon.route("POST", "/containers/create", 201, {"Id": "c" * 64, "Warnings": []})
    daemon.route("POST", "/containers/" + "c" * 64 + "/start", 204)
    argv = ["-H", daemon.host, "run", "-d", "--name", "web", "-p", "8080:80", "-p",
            "[::1]::53/udp", "-e", "A=1", "--net", "n1", "--network-alias", "db", "busybox",
            "sleep", "9"]  # fmt: skip
    assert quick.recognise(argv) is not None
    assert quick.main(argv) == 0
    assert full.main(argv) == 0
    assert capsys.readouterr().out == ("c" * 64 + "\n") * 2
    first, second = daemon.requests[:2], daemon.requests[2:]
    assert [(r.method, r.path, r.query, r.body) for r in first] == [
        (r.method, r.path, r.query, r.body) for r in second
    ]
    assert first[0].body["HostConfig"]["PortBindings"]["53/udp"] == [
        {"HostIp": "::1", "HostPort": ""}
    ]
    # a bad value: the same error, exit code 125, no request
    bad = ["-H", daemon.host, "run", "-d", "--name", "-", "busybox"]
    bad_quick = ["-H", daemon.host, "run", "-d", "--name=x y", "busybox"]
    assert quick.recognise(bad) is None and quick.recognise(bad_quick) is not None
    assert quick.main(bad_quick) == 125
    err = capsys.readouterr().err
    assert 'invalid container name "x y"' in err
    assert len(daemon.requests) == 4


def test_wire_json_matches_the_json_package() -> None:
    from boxnet.cli import wirejson

    docs = [{"a": [1, 2.5, None, True, "é\n\u2028"], "b": {}}, [], "x", -3, {"Name": "n"}]
    for doc in docs:
        assert wirejson.dumps(doc) == json.dumps(doc)
        assert wirejson.loads(json.dumps(doc).encode()) == doc
    assert wirejson.loads(b' \n{"x": [NaN]}\r\n')["x"][0] != 0
    for bad in (b"", b"<html>", b'{"a": 1} tail', b'{"a": }'):
        with pytest.raises(ValueError):
            wirejson.loads(bad)
    with pytest.raises(TypeError):
        wirejson.dumps({"a": object()})
