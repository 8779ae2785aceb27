"""Issue 17's missing endpoints, driven by boxnet's CLI and docker-py against a lab boxnetd:
events, top, stats, rename, pause/unpause, prune, df, cp (archive), diff."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab

pytestmark = pytest.mark.e2e

docker = pytest.importorskip("docker")


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[BasicLab, Daemon, Any]]:
    lab = Lab("endpoints")
    try:
        basic = basic_lab(lab)
        d = lab.boxnetd(basic.host)
        client = docker.DockerClient(base_url=f"unix://{d.socket}")
        yield basic, d, client
        client.close()
    finally:
        lab.close()


def test_events_of_a_run_stop_rm_filtered_by_container_and_type(env: Any) -> None:
    _basic, d, client = env
    since = time.time()
    d.cli("run", "-d", "--name", "evweb", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "evother", "busybox", "sleep", "1000")
    d.cli("stop", "-t", "1", "evweb")
    d.cli("rm", "evweb")
    until = time.time()
    mine = {"container": ["evweb"], "type": ["container"]}
    events = list(client.events(since=since, until=until, decode=True, filters=mine))
    actions = [e["Action"] for e in events]
    assert actions[:2] == ["create", "start"] and actions[-1] == "destroy", actions
    assert "die" in actions and "stop" in actions
    assert {e["Actor"]["Attributes"]["name"] for e in events} == {"evweb"}
    die = next(e for e in events if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] in ("143", "137")
    assert die["status"] == "die" and die["from"] == "busybox" and die["id"] == die["Actor"]["ID"]
    # network events of the same run: the default bridge's connect and disconnect
    nets = list(client.events(since=since, until=until, decode=True, filters={"type": "network"}))
    assert {e["Action"] for e in nets} >= {"connect", "disconnect"}
    assert all(e["Type"] == "network" for e in nets)
    # boxnet's CLI: the same history, one line an event
    out = d.cli(
        "events", "--since", str(int(since)), "--until", str(int(until) + 1),
        "--filter", "container=evweb", "--filter", "event=start",
    ).stdout  # fmt: skip
    lines = out.splitlines()
    assert len(lines) == 1 and " container start " in lines[0] and "name=evweb" in lines[0]
    bad = d.cli("events", "--filter", "colour=red", "--until", "1", check=False)
    assert bad.returncode != 0 and "invalid filter 'colour'" in bad.stderr
    backwards = d.cli("events", "--since", "20", "--until", "10", check=False)
    assert backwards.returncode != 0 and "cannot be after `until`" in backwards.stderr
    t0 = time.time()
    d.cli("exec", "evother", "true")
    d.cli("restart", "-t", "0", "evother")
    execs = client.events(
        since=t0,
        until=time.time(),
        decode=True,
        filters={"event": ["exec_start", "exec_die", "restart"]},
    )
    seen = [(e["Action"], e["Actor"]["Attributes"].get("exitCode")) for e in execs]
    assert seen == [("exec_start: true", None), ("exec_die", "0"), ("restart", None)], seen
    d.cli("rm", "-f", "evother")


def test_events_stream_live_until_the_client_hangs_up(env: Any) -> None:
    _basic, d, client = env
    stream = client.events(decode=True, filters={"event": ["create"]})
    d.cli("create", "--name", "evlive", "busybox", "true")
    first = next(stream)
    stream.close()
    assert first["Action"] == "create" and first["Actor"]["Attributes"]["name"] == "evlive"
    d.cli("rm", "evlive")
    json.dumps(first)


def test_top_lists_the_containers_processes(env: Any) -> None:
    _basic, d, client = env
    d.cli("run", "-d", "--name", "topweb", "busybox", "sh", "-c", "sleep 4321 & exec sleep 1234")
    web = client.containers.get("topweb")
    for _ in range(50):  # bounded: until the shell has forked and exec'd
        top = web.top()
        if len(top["Processes"]) == 2 and "sleep 1234" in top["Processes"][0][-1]:
            break
        time.sleep(0.1)
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    commands = [row[-1] for row in top["Processes"]]
    assert "sleep 1234" in commands and "sleep 4321" in commands, commands
    pids = [int(row[1]) for row in top["Processes"]]
    assert web.attrs["State"]["Pid"] in pids  # host PIDs, as Docker shows them
    custom = web.top(ps_args="-o pid,comm")
    assert custom["Titles"] == ["PID", "COMMAND"] and len(custom["Processes"]) == 2
    out = d.cli("top", "topweb").stdout
    assert out.splitlines()[0].split()[:3] == ["UID", "PID", "PPID"] and "sleep 1234" in out
    d.cli("stop", "-t", "0", "topweb")
    stopped = d.cli("top", "topweb", check=False)
    assert stopped.returncode == 1 and "is not running" in stopped.stderr
    d.cli("rm", "topweb")


def test_stats_count_the_containers_packets_memory_and_processes(env: Any) -> None:
    _basic, d, client = env
    d.cli("run", "-d", "--name", "statweb", "busybox", "sleep", "1000")
    web = client.containers.get("statweb")
    before = web.stats(stream=False)
    assert before["name"] == "/statweb" and before["pids_stats"]["current"] == 1
    assert before["memory_stats"]["usage"] > 0 and before["memory_stats"]["limit"] > 0
    assert before["cpu_stats"]["system_cpu_usage"] > before["precpu_stats"]["system_cpu_usage"]
    assert web.exec_run(["ping", "-c", "5", "-i", "0.2", "-s", "1000", "172.17.0.1"]).exit_code == 0
    after = web.stats(stream=False)
    rx = after["networks"]["eth0"]["rx_bytes"] - before["networks"]["eth0"]["rx_bytes"]
    assert rx >= 5 * 1000, (before["networks"], after["networks"])
    stream = web.stats(stream=True, decode=True)
    first, second = next(stream), next(stream)
    stream.close()
    assert second["precpu_stats"] == first["cpu_stats"]
    out = d.cli("stats", "--no-stream", "statweb").stdout.splitlines()
    assert out[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
    assert out[1].split()[1] == "statweb" and out[1].split()[-1] == "1"
    d.cli("rm", "-f", "statweb")


def test_rename_moves_the_dns_name_and_refuses_a_taken_one(env: Any) -> None:
    _basic, d, client = env
    d.cli("network", "create", "rnnet")
    d.cli("run", "-d", "--name", "rnold", "--network", "rnnet", "busybox", "sleep", "1000")
    d.cli("run", "-d", "--name", "rnpeer", "--network", "rnnet", "busybox", "sleep", "1000")
    since = time.time()
    taken = d.cli("rename", "rnold", "rnpeer", check=False)
    assert taken.returncode == 1 and 'name "/rnpeer" is already in use' in taken.stderr
    d.cli("rename", "rnold", "rnnew")
    peer = client.containers.get("rnpeer")
    assert peer.exec_run(["ping", "-c1", "-W2", "rnnew"]).exit_code == 0
    assert peer.exec_run(["ping", "-c1", "-W2", "rnold"]).exit_code != 0
    assert client.containers.get("rnnew").name == "rnnew"
    renamed = list(
        client.events(since=since, until=time.time(), decode=True, filters={"event": "rename"})
    )
    assert [e["Actor"]["Attributes"]["oldName"] for e in renamed] == ["/rnold"]
    d.cli("rm", "-f", "rnnew", "rnpeer")
    d.cli("network", "rm", "rnnet")


def _counter(pid: int) -> int:
    text = Path(f"/proc/{pid}/root/tmp/n").read_text().strip()
    return int(text or 0)


def test_pause_stops_every_process_and_unpause_resumes_them(env: Any) -> None:
    _basic, d, client = env
    loop = "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done"
    d.cli("run", "-d", "--name", "pz", "busybox", "sh", "-c", loop)
    pz = client.containers.get("pz")
    pid = pz.attrs["State"]["Pid"]
    d.cli("pause", "pz")
    pz.reload()
    assert pz.status == "paused" and pz.attrs["State"]["Paused"] is True
    ns = os.readlink(f"/proc/{pid}/ns/pid")
    members = [p for p in os.listdir("/proc") if p.isdigit() and _ns_of(p) == ns]
    assert len(members) >= 1 and {_state(int(p)) for p in members} == {"T"}, members
    frozen = _counter(pid)
    time.sleep(0.5)
    assert _counter(pid) == frozen
    refused = d.cli("exec", "pz", "true", check=False)
    assert refused.returncode != 0 and "is paused" in refused.stderr
    info = client.info()
    assert (info["ContainersPaused"], info["ContainersRunning"]) == (1, 0)
    again = d.cli("pause", "pz", check=False)
    assert again.returncode == 1 and "already paused" in again.stderr
    d.cli("unpause", "pz")
    for _ in range(100):  # bounded: until the loop has counted on
        if _counter(pid) > frozen:
            break
        time.sleep(0.05)
    assert _counter(pid) > frozen and _state(pid) != "T"
    d.cli("pause", "pz")
    d.cli("stop", "-t", "1", "pz")  # a paused container still stops
    assert client.containers.get("pz").status == "exited"
    d.cli("rm", "pz")


def _ns_of(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2]


def test_prune_removes_only_stopped_containers_and_df_counts_them(env: Any) -> None:
    _basic, d, client = env
    d.cli("run", "-d", "--name", "prlive", "busybox", "sleep", "1000")
    d.cli("create", "--name", "prcreated", "busybox", "true")
    d.cli("run", "--name", "prexited", "busybox", "sh", "-c", "echo data > /file")
    df = client.df()
    names = {c["Names"][0]: c for c in df["Containers"]}
    assert {"/prlive", "/prcreated", "/prexited"} <= set(names)
    assert names["/prexited"]["SizeRw"] > 0 and df["Volumes"] == []
    assert d.cli("df").stdout.splitlines()[0].split() == [
        "TYPE",
        "TOTAL",
        "ACTIVE",
        "SIZE",
        "RECLAIMABLE",
    ]
    result = client.containers.prune()
    gone = set(result["ContainersDeleted"])
    ids = {c["Names"][0]: c["Id"] for c in df["Containers"]}
    assert {ids["/prcreated"], ids["/prexited"]} <= gone and ids["/prlive"] not in gone
    assert [c.name for c in client.containers.list(all=True)] == ["prlive"]
    assert client.volumes.list() == []
    with pytest.raises(docker.errors.APIError, match="invalid characters"):
        client.volumes.create("v@l")
    with pytest.raises(docker.errors.APIError, match="does not set these limits"):
        client.containers.get("prlive").update(blkio_weight=100)
    d.cli("rm", "-f", "prlive")


def test_cp_both_ways_stays_inside_the_container_and_diff_sees_it(env: Any, tmp_path: Path) -> None:
    _basic, d, client = env
    d.cli(
        "run",
        "-d",
        "--name",
        "cpweb",
        "busybox",
        "sh",
        "-c",
        "ln -s /etc /tmp/esc; rm /bin/ls; sleep 1000",
    )
    web = client.containers.get("cpweb")
    local = tmp_path / "hello.txt"
    local.write_text("hello from the host\n")
    d.cli("cp", str(local), "cpweb:/tmp/")
    d.cli("cp", str(local), "cpweb:/renamed.txt")
    assert web.exec_run(["cat", "/tmp/hello.txt"]).output == b"hello from the host\n"
    assert web.exec_run(["cat", "/renamed.txt"]).output == b"hello from the host\n"
    web.exec_run(["sh", "-c", "echo made inside > /made.txt"])
    d.cli("cp", "cpweb:/made.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "made inside\n"
    d.cli("cp", "cpweb:/tmp", str(tmp_path))  # a directory, into an existing one
    assert (tmp_path / "tmp" / "hello.txt").read_text() == "hello from the host\n"
    # docker-py: the absolute symlink /tmp/esc -> /etc resolves in the container's root
    marker = f"boxnet-cp-{os.getpid()}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(marker)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"in\n"))
    assert web.put_archive("/tmp/esc", buffer.getvalue())
    assert not Path("/etc", marker).exists()
    assert web.exec_run(["cat", f"/etc/{marker}"]).output == b"in\n"
    chunks, stat = web.get_archive("/tmp/esc/hostname")
    assert stat["name"] == "hostname" and stat["size"] > 0
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.extractfile("hostname")
        assert member is not None and member.read().strip() == web.id[:12].encode()
    missing = d.cli("cp", "cpweb:/nope", str(tmp_path), check=False)
    assert missing.returncode == 1 and "Could not find the file /nope" in missing.stderr
    changes = {c["Path"]: c["Kind"] for c in web.diff()}
    assert changes["/made.txt"] == 1 and changes["/bin/ls"] == 2 and changes["/etc"] == 0
    assert changes[f"/etc/{marker}"] == 1  # /tmp is a tmpfs: not in the writable layer
    assert "A /renamed.txt" in d.cli("diff", "cpweb").stdout.splitlines()
    d.cli("rm", "-f", "cpweb")


def test_cp_into_a_created_container_and_out_of_an_exited_one(env: Any, tmp_path: Path) -> None:
    _basic, d, client = env
    ctr = client.containers.create("busybox", ["sh", "-c", "cat /data/in.txt; echo out > /o.txt"])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("in.txt")
        info.size = 12
        tar.addfile(info, io.BytesIO(b"put earlier\n"))
    with pytest.raises(docker.errors.NotFound):
        ctr.put_archive("/data", buffer.getvalue())  # no /data in the image
    local = tmp_path / "data"
    local.mkdir()
    d.cli("cp", str(local), f"{ctr.id}:/data")
    assert ctr.put_archive("/data", buffer.getvalue())
    ctr.start()
    assert ctr.wait(timeout=30)["StatusCode"] == 0
    assert ctr.logs() == b"put earlier\n"
    chunks, stat = ctr.get_archive("/o.txt")
    assert stat["name"] == "o.txt" and stat["size"] == 4
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.extractfile("o.txt")
        assert member is not None and member.read() == b"out\n"
    changes = {c["Path"]: c["Kind"] for c in ctr.diff()}
    assert changes["/o.txt"] == 1 and changes["/data/in.txt"] == 1
    mounts = Path("/proc/self/mountinfo").read_text()
    assert "boxnet-cp-" not in mounts  # the worker's overlay stayed in its own namespace
    ctr.remove()


def test_image_events_of_a_tag_and_its_removal(env: Any) -> None:
    _basic, _d, client = env
    since = time.time()
    image = client.images.get("busybox")
    assert image.tag("evtag", "v1")
    client.images.remove("evtag:v1")
    found = list(
        client.events(since=since, until=time.time(), decode=True, filters={"type": "image"})
    )
    assert [e["Action"] for e in found] == ["tag", "untag"], found
    assert (
        found[0]["Actor"]["ID"] == image.id
        and found[0]["Actor"]["Attributes"]["name"] == "evtag:v1"
    )
    assert found[0]["status"] == "tag" and found[0]["id"] == image.id
