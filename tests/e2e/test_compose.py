"""Issue 17: docker-compose 1.29 (Debian 12's, a Python program on docker-py) against boxnetd.

A two-service project (web: busybox httpd published on 8080, alias `www` on the user network
`backend`; client: sleep) is brought up, used, brought up again, and taken down. Observers:
docker-compose's own exit codes and output, HTTP from the lab's outside namespace through the
published port, wget from the client container to the alias, the docker CLI's `ps`/`network ls`,
and `ip -j link` in the host namespace (the network's bridge is gone after `down`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from boxnet.lab import BasicLab, Daemon, Lab, basic_lab
from boxnet.lab.daemon import unix_get

pytestmark = pytest.mark.e2e

COMPOSE = "/usr/bin/docker-compose"
DOCKER = "/usr/bin/docker"
HOST_IP = "203.0.113.2"
PROJECT = "shop"

COMPOSE_FILE = """\
version: "3.8"
services:
  web:
    image: busybox
    pull_policy: never
    command: ["httpd", "-f", "-p", "80"]
    ports: ["8080:80"]
    networks:
      backend:
        aliases: [www]
  client:
    image: busybox
    pull_policy: never
    command: ["sleep", "1000"]
    networks: [backend]
networks:
  backend: {}
"""


class Env:
    def __init__(self, basic: BasicLab, d: Daemon, work: Path) -> None:
        self.basic, self.d, self.work = basic, d, work
        config = work / "docker-config"
        config.mkdir()
        self.environ = {
            **os.environ,
            "DOCKER_HOST": f"unix://{d.socket}",
            "DOCKER_CONFIG": str(config),
            "COMPOSE_INTERACTIVE_NO_CLI": "1",
        }

    def run(self, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            env=self.environ,
            cwd=cwd or self.work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(COMPOSE, "-p", PROJECT, *args)

    def docker(self, *args: str) -> str:
        res = self.run(DOCKER, *args)
        assert (res.returncode, res.stderr) == (0, ""), f"docker {' '.join(args)}: {res}"
        return res.stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    for program in (COMPOSE, DOCKER):
        if not os.access(program, os.X_OK):
            pytest.skip(f"{program} missing: `make deb` installs docker-compose and docker.io")
    work = tmp_path_factory.mktemp("compose")
    (work / "docker-compose.yml").write_text(COMPOSE_FILE)
    lab = Lab("compose")
    try:
        basic = basic_lab(lab)
        yield Env(basic, lab.boxnetd(basic.host), work)
    finally:
        lab.close()


def http_status(env: Env, url: str, tries: int = 50) -> str:
    for _ in range(tries):
        res = env.basic.outside.run(
            ["curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code}", url], check=False
        )
        if res.returncode == 0:
            return res.stdout
        subprocess.run(["sleep", "0.1"], check=False)
    return ""


def project_ids(env: Env, project: str) -> list[str]:
    out = env.docker(
        "ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}"
    )
    return sorted(out.split())


def link_names(env: Env) -> set[str]:
    res = env.basic.host.run(["ip", "-j", "link"])
    return {link["ifname"] for link in json.loads(res.stdout)}


def test_compose_project_lifecycle(env: Env) -> None:
    # Another project's container: `down --remove-orphans` of ours must leave it alone.
    other = env.docker(
        "run", "-d", "--name", "other_box", "--label", "com.docker.compose.project=other",
        "busybox", "sleep", "1000",
    ).strip()  # fmt: skip

    # And a second compose project with its own network: `down` filters networks by label too.
    other_dir = env.work / "otherproj"
    other_dir.mkdir()
    (other_dir / "docker-compose.yml").write_text(
        COMPOSE_FILE.replace('["8080:80"]', '["8081:80"]')
    )
    other_up = env.run(COMPOSE, "-p", "otherproj", "up", "-d", cwd=other_dir)
    assert other_up.returncode == 0, other_up
    others = sorted([other, *project_ids(env, "otherproj")])

    up = env.compose("up", "-d")
    assert up.returncode == 0, f"docker-compose up -d: {up}"
    assert "ERROR" not in up.stderr, up.stderr
    ids = project_ids(env, PROJECT)
    assert len(ids) == 2, env.docker("ps", "-a")

    network = f"{PROJECT}_backend"
    net_id = json.loads(env.docker("network", "inspect", network))[0]["Id"]
    bridge = f"br-{net_id[:12]}"
    assert bridge in link_names(env)

    # busybox httpd has no index page: its 404 proves the request went through the DNAT.
    assert http_status(env, f"http://{HOST_IP}:8080/") == "404"

    # The alias resolves on the user network: wget gets httpd's 404 (wget exits 1, says so;
    # compose's exec without a terminal shows the process's stderr on its stdout, as on Docker).
    ex = env.compose("exec", "-T", "client", "wget", "-qO-", "http://www/")
    assert ex.returncode == 1 and "HTTP/1.1 404 Not Found" in ex.stdout, ex
    ex = env.compose("exec", "-T", "client", "wget", "-qO-", "http://web/")  # the service name
    assert ex.returncode == 1 and "HTTP/1.1 404 Not Found" in ex.stdout, ex
    ex = env.compose("exec", "-T", "client", "echo", "hello")
    assert (ex.returncode, ex.stdout) == (0, "hello\n"), ex

    again = env.compose("up", "-d")
    assert again.returncode == 0, again
    assert again.stderr.count("is up-to-date") == 2, again.stderr
    assert project_ids(env, PROJECT) == ids
    assert json.loads(env.docker("network", "inspect", network))[0]["Id"] == net_id
    ps = env.compose("ps")
    assert ps.returncode == 0 and ps.stdout.count(" Up ") == 2, ps

    down = env.compose("down", "--remove-orphans")
    assert down.returncode == 0, down
    assert project_ids(env, PROJECT) == []
    assert sorted(env.docker("ps", "-aq", "--no-trunc").split()) == others
    networks = env.docker("network", "ls", "--format", "{{.Name}}").split()
    assert network not in networks and "otherproj_backend" in networks
    assert http_status(env, f"http://{HOST_IP}:8081/") == "404"  # the other project still serves
    assert bridge not in link_names(env)
    assert http_status(env, f"http://{HOST_IP}:8080/", tries=1) == ""  # the port is unpublished
    env.docker("rm", "-f", other)
    other_down = env.run(COMPOSE, "-p", "otherproj", "down", cwd=other_dir)
    assert other_down.returncode == 0 and env.docker("ps", "-aq") == "", other_down


def test_exec_inspect_shows_process_config(env: Env) -> None:
    """docker-compose exec reads ProcessConfig.tty of GET /exec/{id}/json (it crashed on {})."""
    box = env.docker("run", "-d", "--name", "execbox", "busybox", "sleep", "1000").strip()
    try:
        body = json.dumps({"Cmd": ["echo", "hi"], "Tty": True, "AttachStdout": True})
        status, created = unix_request(env.d.socket, "POST", f"/containers/{box}/exec", body)
        assert status == 201, created
        exec_id = json.loads(created)["Id"]
        status, shown = unix_get(env.d.socket, f"/exec/{exec_id}/json")
        assert status == 200, shown
        info = json.loads(shown)
        assert info["ContainerID"] == box and info["Running"] is False
        assert info["ProcessConfig"] == {
            "tty": True,
            "entrypoint": "echo",
            "arguments": ["hi"],
            "privileged": False,
            "user": "",
        }
        status, missing = unix_get(env.d.socket, "/exec/nosuchexec/json")
        assert status == 404 and b"No such exec instance: nosuchexec" in missing
    finally:
        env.docker("rm", "-f", "execbox")


def unix_request(sock_path: Path, method: str, path: str, body: str) -> tuple[int, bytes]:
    """A bare HTTP/1.0 request with a JSON body over the daemon's unix socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(sock_path))
        head = (
            f"{method} {path} HTTP/1.0\r\nHost: boxnet\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        conn.sendall(head.encode() + body.encode())
        chunks = []
        for _ in range(10_000):  # bounded: HTTP/1.0 closes after the body
            data = conn.recv(65536)
            if not data:
                break
            chunks.append(data)
    status_line, _, rest = b"".join(chunks).partition(b"\r\n")
    return int(status_line.split(b" ", 2)[1]), rest.partition(b"\r\n\r\n")[2]
