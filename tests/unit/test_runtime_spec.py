"""ProcessSpec <-> JSON, and the shim's own JSON codec and in-root path resolution."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from boxnet.runtime.launcher import ExitStatus, ProcessSpec, read_exit
from boxnet.runtime.shimspawn import SHIM_PATH


def load_shim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("boxnet_shim_under_test", SHIM_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shim = load_shim()

FULL = ProcessSpec(
    container_id="0123456789ab" * 5,
    argv=("sh", "-c", 'echo "é" \\ $HOME'),
    env={"A": "1", "QUOTE": 'x"y', "NL": "a\nb"},
    hostname="web",
    workdir="/www",
    rootfs="/var/lib/boxnet/images/busybox/rootfs",
    upper_dir="/c/upper",
    work_dir="/c/work",
    netns_path="/run/boxnet/netns/0123456789ab",
    etc_files={"/etc/hosts": "/c/hosts", "/etc/resolv.conf": "/c/resolv.conf"},
    state_dir="/run/boxnet/containers/x",
    log_path="/c/log",
    tty=True,
    stdio=False,
)


def test_spec_round_trips_through_json() -> None:
    text = json.dumps(FULL.to_json())
    assert ProcessSpec.from_json(json.loads(text)) == FULL


def test_spec_defaults_and_unknown_keys() -> None:
    spec = ProcessSpec.from_json({"container_id": "c", "argv": ["true"], "future_field": 1})
    assert spec.argv == ("true",)
    assert spec.rootfs is None and spec.netns_path is None and spec.mode == "run"
    assert spec.workdir == "/"


def test_shim_reads_what_the_launcher_writes() -> None:
    data = FULL.to_json()
    assert shim.loads(json.dumps(data)) == data


def test_shim_writes_json_the_daemon_reads() -> None:
    msg = {"error": 'exec: "fo\\o": not found ü', "exit_code": 127, "ok": False, "x": None}
    assert json.loads(shim.dumps(msg)) == msg


def test_read_exit(tmp_path: Path) -> None:
    assert read_exit(tmp_path) is None
    (tmp_path / "exit.json").write_text(
        shim.dumps({"ExitCode": 137, "FinishedAt": shim.shimio.rfc3339(0), "OOMKilled": False})
    )
    status = read_exit(tmp_path)
    assert isinstance(status, ExitStatus)
    assert status.exit_code == 137 and status.finished_at.endswith("Z")


@pytest.mark.parametrize(
    ("links", "path", "expected"),
    [
        ({}, "/etc/hosts", "etc/hosts"),
        ({"etc/resolv.conf": "/run/resolv.conf"}, "/etc/resolv.conf", "run/resolv.conf"),
        ({"etc/resolv.conf": "../run/r"}, "/etc/resolv.conf", "run/r"),
        ({"etc": "/"}, "/etc/hosts", "hosts"),  # an absolute link stays inside the root
        ({"etc/hosts": "../../../../../host-secret"}, "/etc/hosts", "host-secret"),
        ({}, "/../../etc/hosts", "etc/hosts"),
    ],
)
def test_in_root_never_leaves_the_root(
    tmp_path: Path, links: dict[str, str], path: str, expected: str
) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "run").mkdir()
    for name, target in links.items():
        link = root / name
        if link.is_dir() and not link.is_symlink():
            link.rmdir()
        os.symlink(target, link)
    assert shim.shimfs.in_root(str(root), path) == f"{root}/{expected}"


def test_in_root_detects_loops(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(OSError, match="too many symlinks"):
        shim.shimfs.in_root(str(tmp_path), "/a/x")


def test_shim_imports_nothing_heavy() -> None:
    """Start-up cost: the shim (and shimio.py, which it loads) must not pull in
    json/re/enum/typing (checked in a fresh python)."""
    import subprocess
    import sys

    code = (
        "import sys; "
        f"exec(compile(open({str(SHIM_PATH)!r}).read(), 'shim', 'exec'), "
        f"{{'__name__': 'x', '__file__': {str(SHIM_PATH)!r}}}); "
        "print(' '.join(m for m in ('re','enum','typing','json','signal','boxnet') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [], out.stdout


def test_start_refuses_incomplete_specs(tmp_path: Path) -> None:
    from boxnet.errors import InvalidArgument
    from boxnet.runtime.launcher import start

    base = ProcessSpec(container_id="c", argv=("true",), state_dir=str(tmp_path / "s"))
    for spec, fds in (
        (ProcessSpec(container_id="c", argv=(), state_dir=str(tmp_path)), None),
        (base, None),  # detached without a log file
        (ProcessSpec(**{**base.to_json(), "argv": ("true",), "stdio": True}), None),
        (ProcessSpec(**{**base.to_json(), "argv": ("true",), "log_path": "/x"}), (0, 1, 2)),
        (ProcessSpec(**{**base.to_json(), "argv": ("true",), "mode": "exec"}), None),
    ):
        with pytest.raises(InvalidArgument):
            start(spec, tmp_path / "shim", fds)


def test_shim_runs_from_bytecode() -> None:
    from boxnet.runtime.shimspawn import shim_program

    program = Path(shim_program())
    assert program.suffix == ".pyc" and program.stat().st_mtime >= SHIM_PATH.stat().st_mtime
