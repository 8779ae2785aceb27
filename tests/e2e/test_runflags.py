"""Issue 17: every `run` flag about the process and its files works, observed from inside the
container (id, pwd, /proc, /etc/hosts, files written through bind mounts seen on the host), or is
refused with Docker's words and leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[BasicLab, Daemon]]:
    lab = Lab("runflags")
    try:
        basic = basic_lab(lab)
        yield basic, lab.boxnetd(basic.host)
    finally:
        lab.close()


@pytest.fixture
def d(env: tuple[BasicLab, Daemon]) -> Iterator[Daemon]:
    daemon = env[1]
    yield daemon
    assert daemon.remove_all_containers() == []


def inspect(d: Daemon, name: str) -> dict[str, Any]:
    data = json.loads(d.cli("inspect", "--format", "json", name).stdout)
    return data[0] if isinstance(data, list) else data


def out(d: Daemon, *args: str) -> str:
    return d.cli("run", "--rm", *args).stdout


def test_bind_mounts_read_write_and_read_only(d: Daemon, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host").write_text("hello from the host\n")
    script = "cat /data/from-host; echo written > /data/from-ctr"
    assert out(d, "-v", f"{shared}:/data", "busybox", "sh", "-c", script) == "hello from the host\n"
    assert (shared / "from-ctr").read_text() == "written\n"
    # :ro refuses writes; the host file is untouched.
    ro = d.cli(
        "run", "--rm", "-v", f"{shared}:/data:ro", "busybox", "sh", "-c",
        "cat /data/from-host && echo x > /data/from-ctr", check=False,
    )  # fmt: skip
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr
    assert (shared / "from-ctr").read_text() == "written\n"
    # --mount type=bind,...,readonly is the same mount; a file can be bound too.
    spec = f"type=bind,source={shared / 'from-host'},target=/etc/motd,readonly"
    assert out(d, "--mount", spec, "busybox", "cat", "/etc/motd") == "hello from the host\n"
    # -v creates a missing host directory (Docker's legacy Binds behaviour).
    created = tmp_path / "made" / "here"
    out(d, "-v", f"{created}:/out", "busybox", "touch", "/out/f")
    assert (created / "f").is_file()
    # inspect echoes them.
    d.cli("create", "--name", "b1", "-v", f"{shared}:/data:ro", "busybox")
    assert inspect(d, "b1")["HostConfig"]["Binds"] == [f"{shared}:/data:ro"]


def test_user_and_workdir(d: Daemon) -> None:
    assert out(d, "-u", "1234:5678", "busybox", "sh", "-c", "id -u; id -g") == "1234\n5678\n"
    assert out(d, "-u", "nobody", "busybox", "id", "-un") == "nobody\n"
    assert out(d, "-u", "nobody", "busybox", "sh", "-c", "echo $HOME") == "/nonexistent\n"
    assert out(d, "-w", "/srv/app", "busybox", "pwd") == "/srv/app\n"
    assert out(d, "-w", "/tmp", "-u", "65534", "busybox", "sh", "-c", "pwd; id -u") == (
        "/tmp\n65534\n"
    )
    bad = d.cli("run", "--rm", "--name", "nouser", "-u", "nosuch", "busybox", "id", check=False)
    assert bad.returncode == 125
    assert "unable to find user nosuch: no matching entries in passwd file" in bad.stderr
    assert d.cli("ps", "-aq").stdout == ""  # nothing left behind
    d.cli("create", "--name", "uw", "-u", "nobody", "-w", "/srv", "busybox")
    config = inspect(d, "uw")["Config"]
    assert (config["User"], config["WorkingDir"]) == ("nobody", "/srv")
    # exec runs as the container's user, in its working directory, unless told otherwise.
    d.cli("run", "-d", "--name", "ux", "-u", "nobody", "-w", "/srv", "busybox", "sleep", "1000")
    assert d.cli("exec", "ux", "sh", "-c", "id -u; pwd").stdout == "65534\n/srv\n"
    assert d.cli("exec", "-u", "0:0", "-w", "/", "ux", "sh", "-c", "id -u; pwd").stdout == "0\n/\n"
    bad_exec = d.cli("exec", "-u", "nosuch", "ux", "true", check=False)
    assert bad_exec.returncode != 0 and "unable to find user nosuch" in bad_exec.stderr


def test_read_only_root(d: Daemon) -> None:
    bad = d.cli("run", "--rm", "--read-only", "busybox", "touch", "/x", check=False)
    assert bad.returncode == 1 and "Read-only file system" in bad.stderr
    # /tmp, /dev/shm and the working directory's mounts stay writable; the root does not.
    script = "touch /tmp/ok /dev/shm/ok && pwd && ! touch /srv/w/x 2>/dev/null && echo ro"
    assert out(d, "--read-only", "-w", "/srv/w", "busybox", "sh", "-c", script) == "/srv/w\nro\n"
    assert out(d, "busybox", "sh", "-c", "touch /x && echo rw") == "rw\n"
    # --tmpfs: a writable tmpfs in a read-only root, noexec/nosuid/nodev unless told otherwise.
    script = "echo x > /run/f && grep ' /run ' /proc/mounts && grep ' /cache ' /proc/mounts"
    mounts = out(d, "--read-only", "--tmpfs", "/run:size=1m", "--tmpfs", "/cache:exec,mode=700",
                 "busybox", "sh", "-c", script).splitlines()  # fmt: skip
    run_opts, cache_opts = (line.split()[3].split(",") for line in mounts)
    assert mounts[0].split()[2] == "tmpfs" and "size=1024k" in run_opts
    assert {"rw", "nosuid", "nodev", "noexec"} <= set(run_opts)
    assert "noexec" not in cache_opts and "mode=700" in cache_opts
    spec = "type=tmpfs,target=/scratch,tmpfs-size=2m,tmpfs-mode=1770"
    line = out(d, "--mount", spec, "busybox", "grep", " /scratch ", "/proc/mounts").split()
    assert line[2] == "tmpfs" and {"size=2048k", "mode=1770"} <= set(line[3].split(","))
    bad = d.cli("run", "--rm", "--tmpfs", "/x:bogus", "busybox", "true", check=False)
    assert bad.returncode == 125 and "invalid tmpfs option 'bogus'" in bad.stderr
    d.cli("create", "--name", "ro", "--read-only", "busybox")
    assert inspect(d, "ro")["HostConfig"]["ReadonlyRootfs"] is True


def test_domainname_and_labels(d: Daemon) -> None:
    script = "cat /proc/sys/kernel/domainname; grep web.example.com /etc/hosts"
    lines = out(d, "-h", "web", "--domainname", "example.com", "busybox", "sh", "-c", script)
    first, hosts = lines.splitlines()
    assert first == "example.com" and hosts.split()[1:3] == ["web.example.com", "web"]
    d.cli("create", "--name", "lab1", "-l", "tier=front", "--label", "empty", "busybox")
    assert inspect(d, "lab1")["Config"]["Labels"] == {"tier": "front", "empty": ""}


def test_link_on_the_default_bridge(d: Daemon) -> None:
    d.cli("run", "-d", "--name", "db", "busybox", "sleep", "1000")
    db_ip = inspect(d, "db")["NetworkSettings"]["IPAddress"]
    hosts = out(d, "--link", "db:database", "busybox", "cat", "/etc/hosts")
    line = next(x for x in hosts.splitlines() if "database" in x.split())
    assert line.split()[0] == db_ip and "db" in line.split()
    assert "1 packets received" in out(d, "--link", "db", "busybox", "ping", "-c1", "-W2", "db")
    # On a user network the linked name answers too (Docker: an alias of that network).
    d.cli("network", "create", "linknet")
    d.cli("network", "connect", "linknet", "db")
    script = "ping -c1 -W2 dbl >/dev/null && grep -w dbl /etc/hosts"
    line = out(d, "--net", "linknet", "--link", "db:dbl", "busybox", "sh", "-c", script)
    db_on_net = inspect(d, "db")["NetworkSettings"]["Networks"]["linknet"]["IPAddress"]
    assert line.split()[0] == db_on_net
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{d.socket}")
    config = client.api.create_networking_config(
        {"linknet": client.api.create_endpoint_config(links={"db": "viaendpoint"})}
    )
    host_config = client.api.create_host_config(network_mode="linknet")
    made = client.api.create_container(
        "busybox", ["cat", "/etc/hosts"], networking_config=config, host_config=host_config
    )
    client.api.start(made["Id"])
    assert client.api.wait(made["Id"])["StatusCode"] == 0
    assert b"viaendpoint" in client.api.logs(made["Id"])
    client.api.remove_container(made["Id"])
    # Links given at connect time too.
    d.cli("run", "-d", "--name", "joiner", "busybox", "sleep", "1000")
    client.api.connect_container_to_network("joiner", "linknet", links=[("db", "viaconnect")])
    hosts = d.cli("exec", "joiner", "cat", "/etc/hosts").stdout
    db_ips = {n["IPAddress"] for n in inspect(d, "db")["NetworkSettings"]["Networks"].values()}
    assert any(x.split()[0] in db_ips and "viaconnect" in x.split() for x in hosts.splitlines())
    assert (
        "1 packets received" in d.cli("exec", "joiner", "ping", "-c1", "-W2", "viaconnect").stdout
    )
    with pytest.raises(docker.errors.NotFound, match="could not get container for ghost"):
        client.api.connect_container_to_network("joiner", "bridge", links=[("ghost", "g")])
    d.cli("rm", "-f", "joiner")
    d.cli("network", "disconnect", "linknet", "db")
    d.cli("network", "rm", "linknet")
    missing = d.cli("run", "--rm", "--link", "nosuch:x", "busybox", "true", check=False)
    assert missing.returncode == 125 and "could not get container for nosuch" in missing.stderr
    d.cli("stop", "-t", "0", "db")
    stopped = d.cli("run", "--rm", "--link", "db", "busybox", "true", check=False)
    assert stopped.returncode == 125
    assert "Cannot link to a non running container: /db AS" in stopped.stderr
    assert d.cli("ps", "-aq").stdout.split() == [inspect(d, "db")["Id"][:12]]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--ip", "172.17.0.99"), "user specified IP address is supported on user defined"),
        (("--network-alias", "x"), "network-scoped alias is supported only for containers in"),
        (("-v", "b@d:/data"), "invalid characters for a local volume name"),
        (("-v", "/tmp:rel"), "mount path must be absolute"),
        (("--mount", "type=npipe,target=/x"), 'mount type "npipe" is not supported'),
        (("--restart", "sometimes"), "invalid restart policy: unknown policy 'sometimes'"),
        (("--restart", "always:3"), "maximum retry count can only be used with 'on-failure'"),
        (("--restart", "always", "--rm"), "Conflicting options: --restart and --rm"),
        (("-w", "relative"), "the working directory 'relative' is invalid"),
        (("--net", "host", "--link", "dbx"), "host type networking can't be used with links"),
    ],
)
def test_refusals(d: Daemon, flags: tuple[str, ...], message: str) -> None:
    bad = d.cli("run", "-d", *flags, "busybox", "true", check=False)
    assert bad.returncode == 125 and message in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr
    assert d.cli("ps", "-aq").stdout == ""


def test_the_daemon_refuses_what_the_cli_would(d: Daemon) -> None:
    """Other clients send JSON: the daemon checks the same things (docker-py here)."""
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{d.socket}")
    cases = [
        (
            {"network_mode": "bridge", "networking_config": None, "volumes": ["b@d:/x"]},
            "invalid characters",
        ),
        ({"restart_policy": {"Name": "always", "MaximumRetryCount": 2}}, "maximum retry count"),
        ({"user": "a:b:c"}, "invalid user"),
        # Settings boxnet lacks are refused, not ignored.
        ({"privileged": True}, "HostConfig.Privileged is not supported"),
        ({"mem_limit": "1m"}, "Minimum memory limit allowed is 6MB"),
        ({"cap_add": ["NET_ADMIN"]}, "HostConfig.CapAdd is not supported"),
        ({"pid_mode": "host"}, "HostConfig.PidMode is not supported"),
        ({"healthcheck": {"test": ["CMD", "true"]}}, "Healthcheck is not supported"),
        ({"shm_size": "1g"}, "HostConfig.ShmSize is not supported"),
        ({"oom_kill_disable": True}, "HostConfig.OomKillDisable is not supported"),
        ({"runtime": "kata"}, "HostConfig.Runtime 'kata' is not supported"),
        ({"network_disabled": True}, "NetworkDisabled is not supported"),
    ]
    for kwargs, message in cases:
        with pytest.raises(docker.errors.APIError) as err:
            client.containers.create("busybox", ["true"], **kwargs)
        assert err.value.status_code == 400 and message in str(err.value)
    aliased = client.api.create_endpoint_config(aliases=["web"])
    with pytest.raises(docker.errors.APIError, match="network-scoped alias is supported only"):
        client.api.create_container(
            "busybox",
            ["true"],
            networking_config=client.api.create_networking_config({"bridge": aliased}),
        )
    endpoint = client.api.create_endpoint_config(ipv4_address="172.17.0.50")
    with pytest.raises(docker.errors.APIError, match="supported on user defined networks only"):
        client.api.create_container(
            "busybox",
            ["true"],
            networking_config=client.api.create_networking_config({"bridge": endpoint}),
        )
    made = client.containers.create(
        "busybox", ["true"], labels={"a": "1"}, user="nobody", working_dir="/w",
        domainname="example.org", restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
    )  # fmt: skip
    attrs = client.api.inspect_container(made.id)
    assert attrs["Config"]["Labels"] == {"a": "1"} and attrs["Config"]["User"] == "nobody"
    assert attrs["Config"]["Domainname"] == "example.org"
    assert attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert [c.id for c in client.containers.list(all=True)] == [made.id]


def test_network_names_with_spaces_and_networks_of_stopped_containers(d: Daemon) -> None:
    d.cli("network", "create", "my net")
    try:
        d.cli("create", "--name", "spaced", "--net", "my net", "--ip", "172.18.0.40",
              "--network-alias", "svc", "busybox", "sleep", "1000")  # fmt: skip
        # Created: the configured network, with what was asked and no addresses yet (Docker).
        before = inspect(d, "spaced")["NetworkSettings"]["Networks"]
        assert list(before) == ["my net"]
        assert before["my net"]["IPAMConfig"] == {"IPv4Address": "172.18.0.40"}
        assert before["my net"]["Aliases"] == ["svc"] and before["my net"]["IPAddress"] == ""
        d.cli("start", "spaced")
        running = inspect(d, "spaced")["NetworkSettings"]["Networks"]["my net"]
        assert running["IPAddress"] == "172.18.0.40" and running["EndpointID"]
        addrs = d.cli("exec", "spaced", "ip", "-4", "-o", "addr", "show", "eth0").stdout
        assert "172.18.0.40/16" in addrs
        d.cli("stop", "-t", "0", "spaced")
        after = inspect(d, "spaced")["NetworkSettings"]["Networks"]
        assert after["my net"]["IPAddress"] == "" and after["my net"]["EndpointID"] == ""
        listed = d.cli("network", "ls", "--format", "{{.Name}}", "-f", "name=my net").stdout
        assert listed == "my net\n"
        # A stopped container on the default bridge shows it too; --net none shows none.
        d.cli("create", "--name", "plain", "busybox")
        d.cli("create", "--name", "isolated", "--net", "none", "busybox")
        assert list(inspect(d, "plain")["NetworkSettings"]["Networks"]) == ["bridge"]
        assert list(inspect(d, "isolated")["NetworkSettings"]["Networks"]) == ["none"]
    finally:
        d.remove_all_containers()
        d.cli("network", "rm", "my net")
    assert "my net" not in d.cli("network", "ls").stdout


def test_stop_signal_and_stop_timeout(d: Daemon) -> None:
    script = "trap 'echo got-usr1; exit 0' USR1; while :; do sleep 0.1; done"
    d.cli("run", "-d", "--name", "usr1", "--stop-signal", "SIGUSR1", "--stop-timeout", "30",
          "busybox", "sh", "-c", script)  # fmt: skip
    d.cli("stop", "usr1")
    info = inspect(d, "usr1")
    assert info["State"]["ExitCode"] == 0 and "got-usr1" in d.cli("logs", "usr1").stdout
    assert (info["Config"]["StopSignal"], info["Config"]["StopTimeout"]) == ("SIGUSR1", 30)
    # PID 1 ignores a SIGTERM it has no handler for: after --stop-timeout comes SIGKILL.
    d.cli("run", "-d", "--name", "deaf", "--stop-timeout", "0", "busybox", "sleep", "1000")
    d.cli("stop", "deaf")
    assert inspect(d, "deaf")["State"]["ExitCode"] == 137
    bad = d.cli("run", "-d", "--stop-signal", "SIGNOPE", "busybox", "true", check=False)
    assert bad.returncode == 125 and "invalid signal: SIGNOPE" in bad.stderr
