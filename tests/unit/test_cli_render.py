"""boxnet CLI output: Docker-shaped tables, durations, sizes, port lists and Go templates."""

from __future__ import annotations

from datetime import UTC

import pytest

from boxnet.cli import render
from boxnet.cli.containers import ps_table
from boxnet.cli.images import images_table
from boxnet.cli.networks import ls_table
from boxnet.cli.system import info_text
from boxnet.cli.template import render as tmpl
from boxnet.errors import InvalidArgument

NOW = 1_700_000_000.0


def test_table_uses_docker_tabwriter_widths():
    # minwidth 10 (padding included), 3 spaces of padding, last column unpadded.
    out = render.table(["A", "LONGER HEADER", "LAST"], [["x", "y", "z"], ["wider cell", "", ""]])
    assert out == (
        "A            LONGER HEADER   LAST\n"
        "x            y               z\n"
        "wider cell                   \n"
    )


def test_ps_table_exact():
    containers = [
        {
            "Id": "4f" * 32,
            "Names": ["/web"],
            "Image": "busybox",
            "Command": "httpd -f -p 80 -h /www",
            "Created": int(NOW) - 5,
            "Status": "Up 3 seconds",
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
        },
        {
            "Id": "a1" * 32,
            "Names": ["/db"],
            "Image": "host",
            "Command": "sleep 1",
            "Created": int(NOW) - 7200,
            "Status": "Exited (0) 2 seconds ago",
            "Ports": [],
        },
    ]
    assert ps_table(containers, now=NOW) == (
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS                     PORTS                  NAMES\n"  # noqa: E501
        '4f4f4f4f4f4f   busybox   "httpd -f -p 80 -h /…"   5 seconds ago   Up 3 seconds               0.0.0.0:8080->80/tcp   web\n'  # noqa: E501
        'a1a1a1a1a1a1   host      "sleep 1"                2 hours ago     Exited (0) 2 seconds ago                          db\n'  # noqa: E501
    )
    assert '"httpd -f -p 80 -h /www"' in ps_table(containers, no_trunc=True, now=NOW)
    assert "4f" * 32 in ps_table(containers, no_trunc=True, now=NOW)


def test_empty_ps_is_just_headers():
    assert ps_table([]) == (
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    )


def test_network_ls_table():
    nets = [
        {"Id": "7fca4eb8c647" + "0" * 52, "Name": "bridge", "Driver": "bridge", "Scope": "local"},
        {"Id": "9f6ae26ccb82" + "0" * 52, "Name": "none", "Driver": "null", "Scope": "local"},
    ]
    assert ls_table(nets) == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        "7fca4eb8c647   bridge    bridge    local\n"
        "9f6ae26ccb82   none      null      local\n"
    )


def test_images_table():
    images = [
        {
            "Id": "sha256:" + "ab" * 32,
            "RepoTags": ["busybox:latest"],
            "Created": NOW - 3 * 86400,
            "Size": 4_261_000,
        },
        {"Id": "sha256:" + "cd" * 32, "RepoTags": ["registry:5000/app"], "Created": 0, "Size": 0},
    ]
    assert images_table(images, now=NOW) == (
        "REPOSITORY          TAG       IMAGE ID       CREATED      SIZE\n"
        "busybox             latest    abababababab   3 days ago   4.26MB\n"
        "registry:5000/app   <none>    cdcdcdcdcdcd                0B\n"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds, text):
    assert render.human_duration(seconds) == text


def test_ago_accepts_unix_and_rfc3339():
    assert render.ago(NOW - 5, now=NOW) == "5 seconds ago"
    from datetime import datetime

    iso = datetime.fromtimestamp(NOW - 121, UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
    assert render.ago(iso, now=NOW) == "2 minutes ago"
    assert render.ago("0001-01-01T00:00:00Z", now=NOW) == ""
    assert render.ago(None) == ""


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (999, "999B"), (1000, "1kB"), (4_261_000, "4.26MB"), (1.5e9, "1.5GB")],
)
def test_human_size(size, text):
    assert render.human_size(size) == text


def _port(ip, private, public=None, proto="tcp"):
    port = {"PrivatePort": private, "Type": proto}
    if ip is not None:
        port.update(IP=ip, PublicPort=public)
    return port


@pytest.mark.parametrize(
    ("ports", "text"),
    [
        ([], ""),
        ([_port(None, 80)], "80/tcp"),
        ([_port("0.0.0.0", 80, 8080)], "0.0.0.0:8080->80/tcp"),
        (
            [_port("0.0.0.0", 80, 8080), _port("::", 80, 8080)],
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp",
        ),
        ([_port("0.0.0.0", p, p) for p in (8002, 8000, 8001)], "0.0.0.0:8000-8002->8000-8002/tcp"),
        ([_port(None, 53, proto="udp"), _port(None, 53)], "53/tcp, 53/udp"),
        ([_port(None, 80), _port(None, 81), _port(None, 90)], "80-81/tcp, 90/tcp"),
    ],
)
def test_display_ports(ports, text):
    assert render.display_ports(ports) == text


def test_go_quote_and_ellipsis():
    assert render.go_quote('sh -c "echo \\x"') == '"sh -c \\"echo \\\\x\\""'
    assert render.ellipsis("abcdef", 4) == "abc…"
    assert render.ellipsis("abc", 4) == "abc"


INSPECT = {
    "Id": "abc",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0},
    "Config": {"Env": ["A=1", "B=2"], "Tty": False},
    "NetworkSettings": {
        "IPAddress": "172.17.0.2",
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
        "Networks": {
            "bridge": {"IPAddress": "172.17.0.2", "Aliases": None},
            "backend": {"IPAddress": "172.18.0.3", "Aliases": ["db", "api"]},
        },
    },
}


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{{.State.Pid}}", "4242"),
        ("{{.NetworkSettings.IPAddress}}", "172.17.0.2"),
        ("{{.State.Running}}", "true"),
        ("{{.Missing.Field}}", "<no value>"),
        ("{{json .State}}", '{"Status":"running","Running":true,"Pid":4242,"ExitCode":0}'),
        ("{{json .Config.Env}}", '["A=1","B=2"]'),
        ("{{.Config.Env}}", "[A=1 B=2]"),
        (
            '{{index .NetworkSettings.Networks "backend"}}',
            "map[Aliases:[db api] IPAddress:172.18.0.3]",
        ),
        ('{{(index .NetworkSettings.Networks "backend").IPAddress}}', "172.18.0.3"),
        ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "172.18.0.3 172.17.0.2 "),
        (
            "{{range $n, $v := .NetworkSettings.Networks}}{{$n}}={{$v.IPAddress}};{{end}}",
            "backend=172.18.0.3;bridge=172.17.0.2;",
        ),
        (
            "{{range $p, $b := .NetworkSettings.Ports}}{{$p}} -> {{(index $b 0).HostPort}}{{end}}",
            "80/tcp -> 8080",
        ),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ("{{if .Config.Tty}}tty{{else}}notty{{end}}", "notty"),
        ("{{with .State}}{{.Status}}/{{$.Name}}{{end}}", "running//web"),
        ("{{.Name | upper}}", "/WEB"),
        ('{{join .Config.Env ","}}', "A=1,B=2"),
        ("{{len .Config.Env}}", "2"),
        ("a {{- .Id -}} b", "aabcb"),
        ('{{printf "%s:%d" .Id .State.Pid}}', "abc:4242"),
        ("{{/* comment */}}x", "x"),
        ("{{.State}}", "map[ExitCode:0 Pid:4242 Running:true Status:running]"),
        ("{{.NetworkSettings.Networks.bridge}}", "map[Aliases:<nil> IPAddress:172.17.0.2]"),
    ],
)
def test_template(template, text):
    assert tmpl(template, INSPECT) == text


@pytest.mark.parametrize(
    "template", ["{{.State.Pid", "{{if .X}}a", "{{end}}", "{{nosuchfunc .X}}", "{{$undefined}}"]
)
def test_bad_templates_are_user_errors(template):
    with pytest.raises(InvalidArgument):
        tmpl(template, INSPECT)


def test_info_text():
    info = {
        "Containers": 3,
        "ContainersRunning": 1,
        "ContainersStopped": 2,
        "Images": 2,
        "ServerVersion": "0.1.0",
        "FirewallBackend": {"Driver": "nftables"},
        "Name": "lab-host",
        "DockerRootDir": "/var/lib/boxnet",
        "BridgeNfIptables": False,
        "Nested": {"x": 1},
    }
    assert info_text(info) == (
        "Server:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 2\n"
        " Server Version: 0.1.0\n Firewall Backend: nftables\n Name: lab-host\n"
        " Docker Root Dir: /var/lib/boxnet\n BridgeNfIptables: false\n"
    )


def test_info_text_shows_the_firewall_backend_details():
    backend = {
        "Driver": "iptables",
        "Info": [["Variant", "iptables-legacy"], ["Binaries", "iptables-legacy-restore, …"]],
    }
    text = info_text({"ServerVersion": "0.1.0", "FirewallBackend": backend, "Name": "h"})
    assert (
        " Firewall Backend: iptables\n  Variant: iptables-legacy\n"
        "  Binaries: iptables-legacy-restore, …\n Name: h\n"
    ) in text
