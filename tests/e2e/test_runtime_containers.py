"""The container runtime on a real kernel: shim, namespaces, mounts, exec, exit codes.

Every container runs in a network namespace this module creates (`bxrt-<pid>-<n>`), with its
data root in a temporary directory. Observers are independent of boxnet: /proc, readlink of
namespace files, the host's mount table, commands run inside the container.
"""

from __future__ import annotations

import itertools
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from boxnet.paths import Paths
from boxnet.runtime import (
    ExitStatus,
    ImageStore,
    ProcessSpec,
    Started,
    StartFailed,
    exec_in,
    is_alive,
    launcher,
    logfile,
    read_exit,
    send_signal,
    spawn_exec,
    start,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)"),
    pytest.mark.skipif(not shutil.which("ip"), reason="needs iproute2"),
]
_counter = itertools.count()


def ns_inode(path: str) -> str:
    return f"net:[{os.stat(path).st_ino}]"


def own_mounts(under: Path) -> list[str]:
    """Mounts of the test's mount table at or below `under` (where every container's root is
    built: a mount that propagated out would show up there). Other paths are left out, as other
    tests may be mounting things concurrently."""
    with open("/proc/self/mountinfo") as f:
        fields = [line.split() for line in f]
    return sorted(" ".join(x[2:]) for x in fields if x[4].startswith(str(under)))


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    name = f"bxrt-{os.getpid()}-{next(_counter)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    root = tmp_path_factory.mktemp("bxrt")
    return ImageStore(Paths(root / "data", root / "exec", root / "boxnet.sock"))


@dataclass
class Box:
    spec: ProcessSpec
    started: Started
    dir: Path

    @property
    def pid(self) -> int:
        return self.started.pid

    def run(self, *argv: str, **kw: Any) -> tuple[int, str]:
        """exec_in with stdout+stderr captured."""
        r, w = os.pipe()
        try:
            code = exec_in(self.pid, argv, stdio_fds=(0, w, w), **kw)
        finally:
            os.close(w)
        with os.fdopen(r) as f:
            return code, f.read()

    def out(self, *argv: str) -> str:
        code, text = self.run(*argv)
        assert code == 0, text
        return text

    def wait(self, timeout: float = 10.0) -> ExitStatus:
        assert self.started.shim_pidfd is not None
        select.select([self.started.shim_pidfd], [], [], timeout)  # readable when the shim ends
        status = read_exit(self.spec.state_dir)
        assert status is not None, "the shim ended without writing exit.json"
        return status


@pytest.fixture
def boxes(
    store: ImageStore, netns: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Box]]:
    made: list[Box] = []
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n10.88.0.2\tweb\n")
    hostname = tmp_path / "hostname"
    hostname.write_text("web\n")

    def make(*argv: str, image: str = "busybox", upper: bool = True, **kw: Any) -> Box:
        n = next(_counter)
        cdir = tmp_path / f"c{n}"
        rootfs = store.resolve(image)
        fields: dict[str, Any] = dict(
            container_id=f"{n:064x}",
            argv=argv,
            hostname="web",
            rootfs=str(rootfs) if rootfs else None,
            upper_dir=str(cdir / "upper") if upper else None,
            work_dir=str(cdir / "work") if upper else None,
            netns_path=netns,
            etc_files={"/etc/hosts": str(hosts), "/etc/hostname": str(hostname)},
            state_dir=str(cdir / "state"),
            log_path=str(cdir / "log"),
        )
        stdio_fds = kw.pop("stdio_fds", None)
        fields.update(kw)
        spec = ProcessSpec(**fields)
        box = Box(spec, start(spec, cdir / "shim", stdio_fds), cdir)
        made.append(box)
        return box

    base = tmp_path_factory.getbasetemp()
    before = own_mounts(base)
    try:
        yield make
    finally:
        for box in made:
            for pid, fd in (
                (box.started.pid, box.started.pidfd),
                (box.started.shim_pid, box.started.shim_pidfd),
            ):
                send_signal(pid, signal.SIGKILL, fd)
                if fd is not None:
                    select.select([fd], [], [], 5)
                    fd.close()
    assert own_mounts(base) == before, "container mounts leaked into the host's mount table"


def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not is_alive(pid)


def test_container_is_in_the_netns_it_was_given(boxes: Callable[..., Box], netns: str) -> None:
    box = boxes("sleep", "60")
    container_ns = os.readlink(f"/proc/{box.pid}/ns/net")
    assert container_ns == ns_inode(netns)
    assert container_ns != os.readlink("/proc/self/ns/net")
    for ns in ("uts", "ipc", "mnt", "pid"):
        assert os.readlink(f"/proc/{box.pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns


def test_exec_sees_the_containers_world(boxes: Callable[..., Box]) -> None:
    box = boxes("sleep", "60")
    assert box.out("hostname") == "web\n"
    assert box.out("sh", "-c", "echo $HOSTNAME") == "web\n"
    links = box.out("ip", "-o", "link").splitlines()
    assert [line.split(":")[1].strip() for line in links] == ["lo"]
    assert box.out("ls", "/sys/class/net").split() == ["lo"]  # sysfs of the container's netns
    assert box.out("cat", "/etc/hosts") == "127.0.0.1\tlocalhost\n10.88.0.2\tweb\n"
    assert box.out("cat", "/proc/1/cmdline") == "sleep\x0060\x00"
    assert box.out("cat", "/etc/passwd").startswith("root:x:0:0")  # the image's files
    assert box.out("pwd") == "/\n"


def test_pid_1_and_shim_parentage(boxes: Callable[..., Box]) -> None:
    box = boxes("sleep", "60")
    with open(f"/proc/{box.pid}/status") as f:
        status = dict(line.split(":\t", 1) for line in f)
    assert status["NSpid"].split() == [str(box.pid), "1"]
    assert int(status["PPid"]) == box.started.shim_pid
    with open(f"/proc/{box.started.shim_pid}/status") as f:
        shim_ppid = next(int(x.split()[1]) for x in f if x.startswith("PPid:"))
    assert shim_ppid != os.getpid()  # detached: this process never has to reap it
    assert (Path(box.spec.state_dir) / "pid").read_text() == str(box.pid)


def test_writes_land_in_the_upper_dir_not_in_the_image(
    boxes: Callable[..., Box], store: ImageStore
) -> None:
    box = boxes("sleep", "60")
    assert box.run("sh", "-c", "echo data > /www/index.html && rm /etc/group")[0] == 0
    upper = box.dir / "upper"
    assert (upper / "www/index.html").read_text() == "data\n"
    image = store.resolve("busybox")
    assert image is not None
    assert not (image / "www/index.html").exists()
    assert (image / "etc/group").exists()
    assert box.run("cat", "/etc/group")[0] == 1
    # /tmp is a private tmpfs: neither the image nor the upper dir
    assert box.run("touch", "/tmp/scratch")[0] == 0
    assert not (upper / "tmp/scratch").exists()


def test_exit_codes(boxes: Callable[..., Box]) -> None:
    assert boxes("sh", "-c", "exit 3").wait().exit_code == 3
    assert boxes("true").wait().exit_code == 0
    killed = boxes("sleep", "60")
    assert send_signal(killed.pid, signal.SIGKILL, killed.started.pidfd)
    status = killed.wait()
    assert status.exit_code == 137 and status.finished_at.endswith("Z")


def test_missing_command_fails_like_docker(boxes: Callable[..., Box]) -> None:
    with pytest.raises(StartFailed) as err:
        boxes("nosuchcommand")
    assert err.value.exit_code == 127
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in err.value.message
    with pytest.raises(StartFailed) as err:
        boxes("/etc/passwd")
    assert err.value.exit_code == 126 and "permission denied" in err.value.message


def logged(box: Box, stream: str | None = None) -> str:
    """The container's log (json-file records) as text, of one stream or both."""
    records = logfile.read(box.dir / "log", logfile.Query())
    return "".join(r.data.decode() for r in records if stream in (None, r.stream))


def test_detached_output_goes_to_the_log(boxes: Callable[..., Box]) -> None:
    box = boxes("sh", "-c", "echo out; echo err >&2; read x || echo stdin-is-empty")
    assert box.wait().exit_code == 0
    assert logged(box, "stdout") == "out\nstdin-is-empty\n"
    assert logged(box, "stderr") == "err\n"


def test_detached_tty_output_goes_to_the_log(boxes: Callable[..., Box]) -> None:
    box = boxes("sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty", tty=True)
    assert box.wait().exit_code == 0
    assert logged(box, "stdout").replace("\r\n", "\n") == "is-a-tty\n"


def test_attached_stdio(boxes: Callable[..., Box]) -> None:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        box = boxes("sh", "-c", "read x; echo got $x", stdio=True, stdio_fds=(in_r, out_w, out_w))
    finally:
        os.close(in_r)
        os.close(out_w)
    os.write(in_w, b"hello\n")
    os.close(in_w)
    with os.fdopen(out_r) as f:
        assert f.read() == "got hello\n"  # EOF: the shim keeps no copy of the container's stdio
    assert box.wait().exit_code == 0
    assert logged(box, "stdout") == "got hello\n"  # attached output is logged too


def test_exec_codes_workdir_env_and_tty(boxes: Callable[..., Box]) -> None:
    box = boxes("sleep", "60", workdir="/www")
    assert box.run("sh", "-c", "exit 7")[0] == 7
    code, text = box.run("nosuchcommand")
    assert code == 127 and 'exec: "nosuchcommand": executable file not found' in text
    assert box.out("pwd") == "/www\n"  # default: the container's working directory
    assert box.run("pwd", workdir="/etc")[1] == "/etc\n"
    assert box.run("sh", "-c", "echo $FOO", env={"FOO": "bar"})[1] == "bar\n"
    master, slave = os.openpty()
    try:
        code = exec_in(
            box.pid,
            ["sh", "-c", "test -t 0 && echo tty"],
            tty=True,
            stdio_fds=(slave, slave, slave),
        )
        assert code == 0
        assert os.read(master, 100) == b"tty\r\n"
    finally:
        os.close(master)
        os.close(slave)


def test_exec_process_is_in_the_container_pid_namespace(boxes: Callable[..., Box]) -> None:
    box = boxes("sleep", "60")
    proc = spawn_exec(box.pid, ["sleep", "30"])
    try:
        assert proc.pid is not None
        assert os.readlink(f"/proc/{proc.pid}/ns/pid") == os.readlink(f"/proc/{box.pid}/ns/pid")
        assert os.readlink(f"/proc/{proc.pid}/root") == "/"
        assert "sleep 30" in box.out("ps")
    finally:
        send_signal(proc.pid or 0, signal.SIGKILL)
        assert proc.wait(10) == 137


def test_killing_the_shim_kills_the_container(boxes: Callable[..., Box]) -> None:
    box = boxes("sleep", "60")
    child = spawn_exec(box.pid, ["sleep", "60"])
    send_signal(box.started.shim_pid, signal.SIGKILL, box.started.shim_pidfd)
    assert wait_dead(box.pid), "PID 1 survived its shim (PR_SET_PDEATHSIG)"
    assert child.pid is not None and wait_dead(child.pid)  # the PID namespace died with PID 1
    assert child.wait(10) == 137


def test_read_only_image_without_upper_dir(boxes: Callable[..., Box]) -> None:
    box = boxes("sleep", "60", upper=False)
    code, text = box.run("touch", "/newfile")
    assert code != 0 and "Read-only file system" in text
    assert box.run("touch", "/tmp/ok")[0] == 0
    assert box.out("cat", "/etc/hostname") == "web\n"


def test_host_image(boxes: Callable[..., Box], tmp_path: Path) -> None:
    box = boxes("sleep", "60", image="host")
    code, text = box.run("touch", "/usr/boxnet-must-not-exist")
    assert code != 0 and "Read-only file system" in text
    assert not Path("/usr/boxnet-must-not-exist").exists()
    assert box.out("cat", "/etc/hosts") == "127.0.0.1\tlocalhost\n10.88.0.2\tweb\n"
    assert box.out("hostname") == "web\n"
    host_tmp = set(os.listdir("/tmp"))
    box.out("touch", "/tmp/boxnet-private-tmp")
    assert box.out("ls", "-A", "/tmp") == "boxnet-private-tmp\n"
    assert not Path("/tmp/boxnet-private-tmp").exists() and set(os.listdir("/tmp")) >= host_tmp
    assert box.out("cat", "/proc/1/cmdline") == "sleep\x0060\x00"  # its own /proc
    assert box.out("ls", "/sys/class/net").split() == ["lo"]
    # the host's netns bind mounts are not copied in (they would pin other containers' netns)
    assert "nsfs" not in box.out("cat", "/proc/self/mountinfo")


@pytest.mark.parametrize("image", ["busybox", "host"])
def test_host_network_mode_stays_in_the_callers_netns(
    boxes: Callable[..., Box], image: str
) -> None:
    """`--net host`: no setns. Only reads the network (the test's own namespace is untouched)."""
    box = boxes("sleep", "60", netns_path=None, image=image)
    assert os.readlink(f"/proc/{box.pid}/ns/net") == os.readlink("/proc/self/ns/net")
    assert os.readlink(f"/proc/{box.pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
    assert box.out("ls", "/sys/class/net").split() == sorted(os.listdir("/sys/class/net"))


def test_bad_workdir_and_bad_rootfs(boxes: Callable[..., Box]) -> None:
    with pytest.raises(StartFailed, match=r'chdir to cwd \("/etc/passwd"\)') as err:
        boxes("true", workdir="/etc/passwd")
    assert err.value.exit_code == 126
    created = boxes("pwd", workdir="/new/dir")  # Docker creates a missing working directory
    assert created.wait().exit_code == 0
    assert logged(created) == "/new/dir\n"
    from boxnet.runtime import SetupFailed

    with pytest.raises(SetupFailed, match="mount"):
        boxes("true", rootfs="/nonexistent-rootfs", upper_dir=None, work_dir=None)


def test_nothing_propagates_even_below_a_shared_mount(
    boxes: Callable[..., Box], tmp_path: Path
) -> None:
    """The container's mounts happen below its state dir; if that is on a shared mount, only
    making / recursively private first keeps them (overlay, proc, dev, ...) off the host."""
    shared = tmp_path / "shared"
    shared.mkdir()
    subprocess.run(["mount", "--bind", str(shared), str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        before = own_mounts(shared)
        for image in ("busybox", "host"):
            box = boxes("sleep", "60", image=image, state_dir=str(shared / image))
            assert box.out("hostname") == "web\n"
            assert own_mounts(shared) == before
            send_signal(box.pid, signal.SIGKILL, box.started.pidfd)
            box.wait()
            assert own_mounts(shared) == before
    finally:
        subprocess.run(["umount", "-l", str(shared)], check=False)


def _zygote_pid() -> int | None:
    proc = launcher.ZYGOTE._proc  # the one this test process started (first start above)
    return proc.pid if proc is not None and proc.poll() is None else None


def test_shims_are_forked_by_the_zygote_and_named_after_their_container(
    boxes: Callable[..., Box],
) -> None:
    box = boxes("sleep", "60")
    zygote = _zygote_pid()
    assert zygote is not None, "no zygote: every start spawned a fresh interpreter"
    shim = box.started.shim_pid
    # Forked, not exec'd: the shim's command line is the zygote's; its name says whose it is.
    assert (
        Path(f"/proc/{shim}/cmdline").read_bytes() == Path(f"/proc/{zygote}/cmdline").read_bytes()
    )
    assert Path(f"/proc/{shim}/comm").read_text().strip() == "bx-" + box.spec.container_id[:12]
    assert box.out("echo", "ok").strip() == "ok"


def test_a_dead_zygote_costs_no_start(boxes: Callable[..., Box]) -> None:
    boxes("true").wait()
    first = _zygote_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)  # a process this test process started, by its PID
    assert wait_dead(first)
    box = boxes("sh", "-c", "exit 7")
    assert box.wait().exit_code == 7  # started all the same (a new zygote, or a plain shim)
    second = _zygote_pid()
    assert second is not None and second != first
