"""Issue 2, container semantics: hostname, env, terminals, stop grace, images, logs, start-up
choices of the default bridge. Checked from outside the daemon (pty, /proc, ip -j)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab, venv_bin

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[BasicLab, Daemon]]:
    lab = Lab("containers")
    try:
        basic = basic_lab(lab)
        yield basic, lab.boxnetd(basic.host)
    finally:
        lab.close()


def inspect(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    return data[0] if isinstance(data, list) else data


def run_in_pty(argv: list[str], keystrokes: bytes, timeout: float = 20.0) -> tuple[int, bytes]:
    """Run argv on a fresh pseudo-terminal, type `keystrokes`, return (exit code, screen)."""
    pid, master = pty.fork()
    if pid == 0:  # child: becomes argv on the pty
        os.execv(argv[0], argv)
    screen = b""
    deadline = time.monotonic() + timeout
    typed = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
                if not typed and b"#" in screen:  # the shell's prompt
                    os.write(master, keystrokes)
                    typed = True
            elif not typed and time.monotonic() > deadline - timeout + 3:
                os.write(master, keystrokes)
                typed = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return os.waitstatus_to_exitcode(status), screen


def test_hostname_defaults_to_the_short_id_and_env_reaches_the_command(
    env: tuple[BasicLab, Daemon],
) -> None:
    _basic, d = env
    cid = d.cli("run", "-d", "--name", "named", "busybox", "sleep", "1000").stdout.strip()
    assert d.cli("exec", "named", "hostname").stdout.strip() == cid[:12]
    out = d.cli(
        "run",
        "--rm",
        "-h",
        "web1",
        "-e",
        "GREETING=hi there",
        "busybox",
        "sh",
        "-c",
        'echo "$(hostname) $GREETING"',
    ).stdout
    assert out.strip() == "web1 hi there"
    hosts = d.cli("exec", "named", "cat", "/etc/hosts").stdout
    assert (
        f"172.17.0.2\t{cid[:12]}" in hosts
        or f"{inspect(d, 'named')['NetworkSettings']['IPAddress']}\t{cid[:12]}" in hosts
    )
    d.cli("rm", "-f", "named")


def test_interactive_run_with_a_terminal(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    argv = [
        str(venv_bin() / "boxnet"),
        "-H",
        f"unix://{d.socket}",
        "run",
        "-it",
        "--rm",
        "busybox",
        "sh",
    ]
    code, screen = run_in_pty(argv, b"echo TERM=$TERM; test -t 0 && echo ON-A-TTY; exit 7\n")
    assert code == 7, screen
    assert b"TERM=xterm" in screen and b"ON-A-TTY" in screen


def test_exec_with_a_terminal(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    d.cli("run", "-d", "--name", "ex", "busybox", "sleep", "1000")
    argv = [str(venv_bin() / "boxnet"), "-H", f"unix://{d.socket}", "exec", "-it", "ex", "sh"]
    code, screen = run_in_pty(argv, b"cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 4\n")
    assert code == 4, screen
    assert b"sleep 1000" in screen
    d.cli("rm", "-f", "ex")


def test_stop_sends_sigterm_first_then_sigkill(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    d.cli(
        "run",
        "-d",
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
    )
    time.sleep(0.3)
    d.cli("stop", "-t", "5", "polite")
    state = inspect(d, "polite")["State"]
    assert state["ExitCode"] == 0  # it handled SIGTERM itself: no SIGKILL needed
    assert "got-term" in d.cli("logs", "polite").stdout
    d.cli("run", "-d", "--name", "stubborn", "busybox", "sleep", "1000")
    started = time.monotonic()
    d.cli("stop", "-t", "1", "stubborn")  # PID 1 ignores SIGTERM: SIGKILL after 1 s
    assert time.monotonic() - started >= 0.9
    assert inspect(d, "stubborn")["State"]["ExitCode"] == 137
    d.cli("rm", "polite", "stubborn")


def test_logs_follow_streams_until_exit(env: tuple[BasicLab, Daemon]) -> None:
    _basic, d = env
    d.cli(
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.2; done",
    )
    out = d.cli("logs", "-f", "talker", timeout=20).stdout
    assert out.split() == ["line1", "line2", "line3"]
    assert d.cli("logs", "--tail", "1", "talker").stdout.split() == ["line3"]
    d.cli("rm", "talker")


def test_import_and_images(env: tuple[BasicLab, Daemon], tmp_path: Path) -> None:
    _basic, d = env
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    busybox = Path("/bin/busybox")
    (rootfs / "bin" / "busybox").write_bytes(busybox.read_bytes())
    (rootfs / "bin" / "busybox").chmod(0o755)
    (rootfs / "bin" / "sh").symlink_to("busybox")
    (rootfs / "bin" / "cat").symlink_to("busybox")
    (rootfs / "etc").mkdir()
    (rootfs / "motd").write_text("imported!\n")
    tarball = tmp_path / "mini.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(rootfs, arcname=".")
    d.cli("import", str(tarball), "mini")
    images = d.cli("images").stdout
    assert "mini" in images and "busybox" in images and "host" in images
    assert d.cli("run", "--rm", "mini", "cat", "/motd").stdout == "imported!\n"
    bad = d.cli("import", str(tmp_path / "missing.tar"), "nope", check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_default_bridge_moves_off_a_subnet_the_host_already_routes(lab: Lab) -> None:
    basic = basic_lab(lab)
    # 172.17.0.0/16 is already routed on this "host" (a VPN, say): boxnet must not collide.
    basic.host.run(["ip", "route", "add", "172.17.0.0/16", "via", "203.0.113.1"])
    d = lab.boxnetd(basic.host)
    addrs = basic.host.ip_json("addr", "show", "dev", "boxnet0")[0]["addr_info"]
    v4 = [(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"]
    assert v4 == [("172.18.0.1", 16)]
    assert "172.17.0.0/16" in d.log_path.read_text()
    d.cli("run", "-d", "--name", "moved", "busybox", "sleep", "100")
    assert inspect(d, "moved")["NetworkSettings"]["IPAddress"] == "172.18.0.2"


def test_daemon_restart_keeps_containers_running(lab: Lab) -> None:
    basic = basic_lab(lab)
    d = lab.boxnetd(basic.host)
    d.cli("run", "-d", "--name", "survivor", "busybox", "sleep", "1000")
    pid = inspect(d, "survivor")["State"]["Pid"]
    d.restart()
    assert Path(f"/proc/{pid}").exists()
    state = inspect(d, "survivor")["State"]
    assert state["Running"] and state["Pid"] == pid
    ping = d.cli("exec", "survivor", "ping", "-c1", "-W2", "172.17.0.1", check=False)
    assert ping.returncode == 0
    d.cli("stop", "-t", "0", "survivor")
    assert not inspect(d, "survivor")["State"]["Running"]
    assert subprocess.run(["test", "-e", f"/proc/{pid}"]).returncode != 0


def _until(check: Any, seconds: float = 5.0) -> bool:
    """Poll check() (bounded) until it is true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def test_rm_f_frees_name_address_and_port_at_once_and_the_rest_soon(
    env: tuple[BasicLab, Daemon],
) -> None:
    # rm -f answers without waiting for the container to die (core/removal.py): the name, the
    # address and the port are free at once, the address handed out again only once the old
    # veth is gone (nothing of the dying container answers on it; core/leasing.py), and the
    # rest goes once it is dead.
    basic, d = env
    d.cli("run", "-d", "--name", "quick", "-p", "8181:80", "busybox", "sleep", "1000")
    old = inspect(d, "quick")
    old_ip = old["NetworkSettings"]["IPAddress"]
    old_veth = old["NetworkSettings"]["Networks"]["bridge"]["HostInterfaceName"]
    state_dir = d.data_root / "containers" / old["Id"]
    assert state_dir.is_dir()
    d.cli("rm", "-f", "quick")
    d.cli("run", "-d", "--name", "quick", "-p", "8181:80", "busybox", "sleep", "1000")
    new = inspect(d, "quick")
    assert new["NetworkSettings"]["IPAddress"] == old_ip  # the lowest free address again
    assert old_veth not in {x["ifname"] for x in basic.host.ip_json("link")}  # gone before
    assert basic.host.ping(old_ip)  # answered by the new container, through its own veth
    assert _until(lambda: old_veth not in {x["ifname"] for x in basic.host.ip_json("link")})
    assert _until(lambda: not state_dir.exists())  # removed once its shim exited
    assert not (d.exec_root / "netns" / old["Id"][:12]).exists()
    assert d.pending_intents() == []  # the removal's intent closed with the shim's exit
    events = d.cli("events", "--since", "0", "--until", str(int(time.time()) + 1),
                   "--filter", f"container={old['Id']}").stdout  # fmt: skip
    actions = [line.split()[2] for line in events.splitlines()]
    assert actions[-3:] == ["kill", "die", "destroy"], actions
    d.cli("rm", "-f", "quick")
