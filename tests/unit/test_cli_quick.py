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


def test_quick_rm_imports_no_argparse(tmp_path) -> None:
    code = (
        "import sys\n"
        "from boxnet.cli.quick import main\n"
        f"main(['-H', 'unix://{tmp_path}/absent.sock', 'rm', '-f', 'web'])\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "cannot connect to the boxnet daemon" in proc.stderr, proc.stderr
    loaded = set(proc.stderr.splitlines()[-1].split())
    assert "boxnet.cli.containers" in loaded  # the real handler ran
    assert not {"argparse", "socket", "selectors", "re", "json", "boxnet.cli.main"} & loaded


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
