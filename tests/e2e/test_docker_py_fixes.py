"""What docker-py's suite needed from boxnetd, each checked with docker-py (and boxnet's CLI)
against a lab daemon: -i stdin kept open (a FIFO), docker attach with stdin and detach keys,
exec detach keys, log drivers, update --restart, --group-add, local volumes (named, anonymous,
subpath, rm -v, cp into a created container's volume), diff without mount points.

Observers: what the container prints (attach frames, logs), the socket closing at detach,
inspect's State and RestartCount, files read straight from the volume's directory on disk.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import Daemon, Lab, basic_lab
from boxnet.lab.daemon import venv_bin
from boxnet.lab.oci import oci_layout, tar_directory

pytestmark = pytest.mark.e2e

docker = pytest.importorskip("docker")

IMAGE = "alpine:3.10"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Any]]:
    from test_docker_py_suite import alpine_layer  # tests/e2e is on sys.path (rootdir mode)

    lab = Lab("dpyfixes")
    try:
        d = lab.boxnetd(basic_lab(lab).host)
        tmp = tmp_path_factory.mktemp("dpyfixes")
        oci_layout(tmp / "layout", [alpine_layer()], cmd=["/bin/sh"], ref_name=IMAGE)
        client = docker.APIClient(base_url=f"unix://{d.socket}", timeout=30)
        client.load_image(tar_directory(tmp / "layout", tmp / "img.tar").read_bytes())
        yield d, client
        client.close()
    finally:
        lab.close()


def raw_sock(s: Any) -> socket.socket:
    return s._sock if hasattr(s, "_sock") else s


def read_until(sock: socket.socket, wanted: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def closed_by_daemon(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(128) == b""
    except OSError:
        return True


def test_stdin_kept_open_attach_and_detach_keys(env: tuple[Daemon, Any]) -> None:
    _d, client = env
    c = client.create_container(IMAGE, "cat", stdin_open=True)
    client.start(c)
    time.sleep(0.5)
    assert client.inspect_container(c)["State"]["Running"]  # cat waits on its open stdin
    s = raw_sock(client.attach_socket(c, {"stdin": 1, "stdout": 1, "stream": 1}))
    s.sendall(b"ping\n")
    assert b"ping\n" in read_until(s, b"ping\n")  # cat echoed what the attach wrote
    s.sendall(b"\x10\x11")  # ctrl-p ctrl-q
    assert closed_by_daemon(s)
    s.close()
    assert client.inspect_container(c)["State"]["Running"]  # detached, not stopped
    s = raw_sock(client.attach_socket(c, {"stdin": 1, "stream": 1, "detachKeys": "ctrl-x"}))
    s.sendall(b"\x18")
    assert closed_by_daemon(s)
    s.close()
    with pytest.raises(docker.errors.APIError, match="Invalid detach keys"):
        client.attach_socket(c, {"stdin": 1, "stream": 1, "detachKeys": "ctrl-"})
    ex = client.exec_create(c, "cat", stdin=True, tty=True)
    s = raw_sock(client.exec_start(ex, tty=True, socket=True))
    s.sendall(b"\x10\x11")
    assert closed_by_daemon(s)
    s.close()
    assert client.logs(c) == b"ping\n"
    client.remove_container(c, force=True)


def test_log_drivers_restart_update_group_add(env: tuple[Daemon, Any]) -> None:
    d, client = env
    hc = client.create_host_config(log_config={"Type": "asdf", "Config": {}})
    with pytest.raises(docker.errors.APIError, match="no log driver named 'asdf'"):
        client.create_container(IMAGE, "true", host_config=hc)
    hc = client.create_host_config(log_config={"Type": "none", "Config": {}})
    c = client.create_container(IMAGE, "echo quiet", host_config=hc)
    client.start(c)
    assert client.wait(c)["StatusCode"] == 0
    with pytest.raises(docker.errors.APIError, match="does not support reading"):
        client.logs(c)
    client.remove_container(c)

    hc = client.create_host_config(group_add=[1000, "postgres"])
    c = client.create_container(IMAGE, "id -G", host_config=hc)
    client.start(c)
    client.wait(c)
    assert set(client.logs(c).decode().split()) >= {"0", "1000", "70"}
    client.remove_container(c)

    c = client.create_container(IMAGE, ["sh", "-c", "sleep 1; exit 3"], name="flappy")
    client.update_container(c, restart_policy={"Name": "always"})
    client.start(c)
    deadline = time.monotonic() + 20
    while client.inspect_container(c)["RestartCount"] < 1 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert client.inspect_container(c)["RestartCount"] >= 1  # restarted by the new policy
    cli = [str(venv_bin() / "boxnet"), "-H", f"unix://{d.socket}"]
    out = subprocess.run([*cli, "update", "--restart", "on-failure:2", "flappy"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert (out.returncode, out.stdout) == (0, "flappy\n"), out
    policy = client.inspect_container(c)["HostConfig"]["RestartPolicy"]
    assert policy == {"Name": "on-failure", "MaximumRetryCount": 2}
    client.remove_container(c, force=True)


def test_volumes(env: tuple[Daemon, Any]) -> None:
    _d, client = env
    vol = client.create_volume("vdata", labels={"k": "v"})
    mountpoint = Path(vol["Mountpoint"])
    hc = client.create_host_config(binds=["vdata:/data"])
    w = client.create_container(IMAGE, ["sh", "-c", "echo kept > /data/f"], host_config=hc)
    client.start(w)
    assert client.wait(w)["StatusCode"] == 0
    assert (mountpoint / "f").read_text() == "kept\n"  # on disk, in the volume's directory
    mounts = client.inspect_container(w)["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
        ("volume", "vdata", "/data")
    ]
    with pytest.raises(docker.errors.APIError, match="volume is in use"):
        client.remove_volume("vdata")
    df = {v["Name"]: v["UsageData"] for v in client.df()["Volumes"]}
    assert df["vdata"] == {"Size": 5, "RefCount": 1}  # "kept\n", used by w
    # a subpath of the volume, read-only, through --mount
    os.makedirs(mountpoint / "sub")
    (mountpoint / "sub" / "g").write_text("sub\n")
    m = docker.types.Mount("/mnt", "vdata", type="volume", read_only=True, subpath="sub")
    hc = client.create_host_config(mounts=[m])
    r = client.create_container(IMAGE, ["cat", "/mnt/g"], host_config=hc)
    client.start(r)
    client.wait(r)
    assert client.logs(r) == b"sub\n"
    for x in (w, r):
        client.remove_container(x)
    client.remove_volume("vdata")
    assert not mountpoint.exists()

    # anonymous: Config.Volumes; cp into the created container lands in the volume; rm -v
    before = {v["Name"] for v in client.volumes()["Volumes"] or []}
    a = client.create_container(IMAGE, ["cat", "/vol1/hello"], volumes=["/vol1"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    assert client.put_archive(a, "/vol1", buf.getvalue())
    client.start(a)
    client.wait(a)
    assert client.logs(a) == b"hi\n"
    anon = {v["Name"] for v in client.volumes()["Volumes"] or []} - before
    assert len(anon) == 1 and len(next(iter(anon))) == 64
    assert client.diff(a) is None  # the mount point is not a change of the process
    client.remove_container(a, v=True)
    assert {v["Name"] for v in client.volumes()["Volumes"] or []} == before


def run_output(client: Any, c: Any) -> str:
    client.start(c)
    client.wait(c)
    return str(client.logs(c).decode())


def test_links_uts_host_and_endpoint_mac(env: tuple[Daemon, Any]) -> None:
    _d, client = env
    up = client.create_container(IMAGE, "cat", stdin_open=True, name="upstream",
                                 environment={"FOO": "1"}, ports=[80])  # fmt: skip
    client.start(up)
    ip = client.inspect_container(up)["NetworkSettings"]["IPAddress"]
    hc = client.create_host_config(links={"upstream": "my-db"})
    down = client.create_container(IMAGE, "env", host_config=hc, name="downstream")
    env_lines = set(run_output(client, down).split())
    assert {"MY_DB_NAME=/downstream/my-db", "MY_DB_ENV_FOO=1",
            f"MY_DB_PORT=tcp://{ip}:80", f"MY_DB_PORT_80_TCP_ADDR={ip}"} <= env_lines  # fmt: skip
    client.remove_container("downstream/my-db", link=True)
    assert client.inspect_container(down)["HostConfig"]["Links"] is None
    # the log keeps both runs: the second one printed no link variables
    assert run_output(client, down).count("MY_DB_NAME=") == 1
    client.remove_container(down)
    client.remove_container(up, force=True)

    hc = client.create_host_config(uts_mode="host")
    c = client.create_container(IMAGE, "hostname", host_config=hc)
    assert run_output(client, c).strip() == socket.gethostname()  # the host's own name
    client.remove_container(c)
    with pytest.raises(docker.errors.APIError, match="hostname and the UTS mode"):
        client.create_container(IMAGE, "true", hostname="x", host_config=hc)

    net = client.create_network("macnet")
    c = client.create_container(IMAGE, "cat /sys/class/net/eth1/address")
    client.connect_container_to_network(c, net["Id"], mac_address="02:42:ac:11:00:99")
    settings = client.inspect_container(c)["NetworkSettings"]["Networks"]["macnet"]
    assert settings["MacAddress"] == "02:42:ac:11:00:99"  # configured, before the start
    assert run_output(client, c).strip() == "02:42:ac:11:00:99"  # the kernel's view
    client.remove_container(c)
    client.remove_network(net["Id"])


def test_resource_limits_in_cgroups(env: tuple[Daemon, Any]) -> None:
    _d, client = env
    root = Path("/sys/fs/cgroup")
    if not (root / "memory" / "cgroup.procs").exists():
        pytest.skip("no cgroup v1 memory controller on this machine")
    hc = client.create_host_config(mem_limit="64m", cpu_shares=512, cpuset_cpus="0",
                                   pids_limit=50)  # fmt: skip
    c = client.create_container(IMAGE, "top", host_config=hc)
    client.start(c)
    info = client.inspect_container(c)
    cid, pid = info["Id"], info["State"]["Pid"]
    # the kernel's view: the container's PID 1 is in boxnet's cgroups, with the limits
    assert f"memory:/boxnet/{cid}" in Path(f"/proc/{pid}/cgroup").read_text()
    mem = root / "memory" / "boxnet" / cid
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    assert (root / "cpu" / "boxnet" / cid / "cpu.shares").read_text().strip() == "512"
    assert (root / "cpuset" / "boxnet" / cid / "cpuset.cpus").read_text().strip() == "0"
    assert (root / "pids" / "boxnet" / cid / "pids.max").read_text().strip() == "50"
    client.update_container(c, mem_limit="32m", cpu_shares=256)
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(32 << 20)
    assert client.inspect_container(c)["HostConfig"]["Memory"] == 32 << 20
    # a process past the limit is killed by the kernel, not by boxnet
    ex = client.exec_create(c, ["sh", "-c", "head -c 100m /dev/zero | tail > /dev/null"])
    client.exec_start(ex)
    assert client.exec_inspect(ex)["ExitCode"] != 0
    client.stop(c, timeout=1)
    assert not mem.exists()  # removed at the exit
    client.remove_container(c)
    with pytest.raises(docker.errors.APIError, match="Minimum memory limit"):
        client.create_container(
            IMAGE, "true", host_config=client.create_host_config(mem_limit="1m")
        )


def test_init_runs_tini_as_pid_1(env: tuple[Daemon, Any]) -> None:
    _d, client = env
    c = client.create_container(IMAGE, ["ps", "-o", "pid,args"],
                                host_config=client.create_host_config(init=True))  # fmt: skip
    assert client.inspect_container(c)["HostConfig"]["Init"] is True
    lines = [line.split(None, 1) for line in run_output(client, c).strip().splitlines()[1:]]
    assert lines[0] == ["1", "/sbin/docker-init -- ps -o pid,args"]  # tini is PID 1
    assert lines[1][1].split() == ["ps", "-o", "pid,args"]  # the command, its child
    client.remove_container(c)


def test_commit_a_stopped_container(env: tuple[Daemon, Any]) -> None:
    _d, client = env
    c = client.create_container(IMAGE, ["sh", "-c", "echo hello > /test"], environment={"A": "b c"},
                                working_dir="/tmp")  # fmt: skip
    client.start(c)
    client.wait(c)
    image_id = client.commit(c, repository="committed", tag="v1")["Id"]
    assert client.inspect_image("committed:v1")["Id"] == image_id
    r = client.create_container(image_id, ["sh", "-c", 'cat /test; echo "$A"; pwd'])
    assert run_output(client, r) == "hello\nb c\n/tmp\n"  # the file, the env, the workdir
    client.remove_container(r)
    client.remove_container(c)
    client.remove_image("committed:v1")


def test_link_local_ips(env: tuple[Daemon, Any]) -> None:
    _d, client = env
    nc = client.create_networking_config(
        {"bridge": client.create_endpoint_config(link_local_ips=["169.254.8.8"])}
    )
    hc = client.create_host_config(network_mode="bridge")
    c = client.create_container(IMAGE, "ip -4 -o addr show dev eth0", networking_config=nc,
                                host_config=hc)  # fmt: skip
    ipam = client.inspect_container(c)["NetworkSettings"]["Networks"]["bridge"]["IPAMConfig"]
    assert ipam["LinkLocalIPs"] == ["169.254.8.8"]
    assert "inet 169.254.8.8/16" in run_output(client, c)  # the kernel's view, in the container
    client.remove_container(c)


def test_links_on_a_user_network_resolve_late(env: tuple[Daemon, Any]) -> None:
    _d, client = env
    net = client.create_network("linknet")
    nc = client.create_networking_config(
        {"linknet": client.create_endpoint_config(links=[("later", "bar")])}
    )
    hc = client.create_host_config(network_mode="linknet")
    c = client.create_container(IMAGE, "top", networking_config=nc, host_config=hc)
    client.start(c)  # the target does not exist yet: Docker allows it on a user network
    links = client.inspect_container(c)["NetworkSettings"]["Networks"]["linknet"]["Links"]
    assert links == ["later:bar"]
    t = client.create_container(IMAGE, "top", name="later", host_config=hc)
    client.start(t)
    ip = client.inspect_container(t)["NetworkSettings"]["Networks"]["linknet"]["IPAddress"]
    ex = client.exec_create(c, ["nslookup", "bar"])
    out = client.exec_start(ex).decode()
    assert client.exec_inspect(ex)["ExitCode"] == 0 and ip in out  # the embedded DNS's answer
    client.disconnect_container_from_network(c, "linknet")
    client.connect_container_to_network(c, "linknet", links=[("later", "baz")])
    links = client.inspect_container(c)["NetworkSettings"]["Networks"]["linknet"]["Links"]
    assert links == ["later:baz"]  # what the connect asked, echoed
    ex = client.exec_create(c, ["nslookup", "baz"])
    assert ip in client.exec_start(ex).decode()
    other = client.create_container(IMAGE, ["nslookup", "bar"], host_config=hc)
    assert ip not in run_output(client, other)  # the alias is the linking container's only
    for x in (c, t, other):
        client.remove_container(x, force=True)
    client.remove_network(net["Id"])


def test_shared_bind_propagation_is_refused(env: tuple[Daemon, Any], tmp_path: Path) -> None:
    _d, client = env
    hc = client.create_host_config(
        binds={str(tmp_path): {"bind": "/mnt", "propagation": "rshared"}}
    )
    with pytest.raises(docker.errors.APIError, match="bind propagation 'rshared' is not supported"):
        client.create_container(IMAGE, "true", host_config=hc)
    m = docker.types.Mount("/mnt", str(tmp_path), type="bind", propagation="rslave")
    with pytest.raises(docker.errors.APIError, match="'rslave' is not supported"):
        client.create_container(IMAGE, "true", host_config=client.create_host_config(mounts=[m]))
