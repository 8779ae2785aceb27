"""boxnet CLI: argv -> exact API request bodies, client-side validation, usage errors.

No daemon is involved: the builders are pure functions of the parsed argv, and validation errors
must be reported before the CLI ever connects (the socket given with -H does not exist).
"""

from __future__ import annotations

import pytest

from boxnet.cli import lan, networks
from boxnet.cli import run as runcmd
from boxnet.cli.main import ALL, build_parser, find_command, main
from boxnet.errors import InvalidArgument

NO_DAEMON = "unix:///nonexistent-boxnet-test/boxnet.sock"


def parse(*argv: str):
    return build_parser(ALL).parse_args(list(argv))


def create_body(*argv: str):
    return runcmd.build_create(parse("create", *argv))


def test_run_stops_option_parsing_at_the_image():
    args = parse("run", "--rm", "-e", "A=1", "busybox", "ls", "-l", "-e", "--rm")
    assert args.rm and args.env == ["A=1"]
    assert args.image == "busybox"
    assert args.command == ["ls", "-l", "-e", "--rm"]


def test_minimal_create_body():
    query, body = create_body("busybox")
    assert query == {}
    assert body == {
        "Image": "busybox",
        "Cmd": None,
        "Env": [],
        "Hostname": "",
        "Tty": False,
        "OpenStdin": False,
        "AttachStdin": False,
        "ExposedPorts": {},
        "HostConfig": {
            "NetworkMode": "bridge",
            "PortBindings": {},
            "PublishAllPorts": False,
            "Dns": [],
            "DnsSearch": [],
            "DnsOptions": [],
            "ExtraHosts": [],
            "AutoRemove": False,
        },
        "NetworkingConfig": {"EndpointsConfig": {"bridge": {}}},
    }


def test_full_create_body(monkeypatch):
    monkeypatch.setenv("FROM_ENV", "yes")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    query, body = create_body(
        "--name",
        "web",
        "-h",
        "web1",
        "-i",
        "-t",
        "-e",
        "A=1",
        "-e",
        "FROM_ENV",
        "-e",
        "UNSET_VAR",
        "-e",
        "EMPTY=",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1::53/udp",
        "-p",
        "[::1]:9000-9001:9000-9001",
        "--expose",
        "7000",
        "-P",
        "--net",
        "backend",
        "--ip",
        "172.18.0.10",
        "--network-alias",
        "DB",
        "--dns",
        "1.1.1.1",
        "--dns-search",
        "Example.Internal",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:10.0.0.5",
        "--mac-address",
        "02:42:AC:11:00:02",
        "busybox",
        "sleep",
        "100",
    )
    assert query == {"name": "web"}
    assert body == {
        "Image": "busybox",
        "Cmd": ["sleep", "100"],
        "Env": ["A=1", "FROM_ENV=yes", "EMPTY="],
        "Hostname": "web1",
        "Tty": True,
        "OpenStdin": True,
        "AttachStdin": True,
        "ExposedPorts": {
            "80/tcp": {},
            "53/udp": {},
            "9000/tcp": {},
            "9001/tcp": {},
            "7000/tcp": {},
        },
        "HostConfig": {
            "NetworkMode": "backend",
            "PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                "9000/tcp": [{"HostIp": "::1", "HostPort": "9000"}],
                "9001/tcp": [{"HostIp": "::1", "HostPort": "9001"}],
            },
            "PublishAllPorts": True,
            "Dns": ["1.1.1.1"],
            "DnsSearch": ["example.internal"],
            "DnsOptions": ["ndots:2"],
            "ExtraHosts": ["db:10.0.0.5"],
            "AutoRemove": False,
        },
        "NetworkingConfig": {
            "EndpointsConfig": {
                "backend": {"IPAMConfig": {"IPv4Address": "172.18.0.10"}, "Aliases": ["db"]}
            }
        },
        "MacAddress": "02:42:ac:11:00:02",
    }


def test_auto_remove_only_when_detached():
    # Attached runs delete the container themselves after reading its exit code.
    assert runcmd.build_create(parse("run", "--rm", "-d", "busybox"))[1]["HostConfig"]["AutoRemove"]
    assert not runcmd.build_create(parse("run", "--rm", "busybox"))[1]["HostConfig"]["AutoRemove"]
    body = runcmd.build_create(parse("run", "-d", "-i", "busybox"))[1]
    assert body["OpenStdin"] and not body["AttachStdin"]


def test_container_network_mode_has_no_endpoint():
    _, body = create_body("--network", "container:web", "busybox")
    assert body["HostConfig"]["NetworkMode"] == "container:web"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {}}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-p", "80"], "conflicting options: port publishing and the container type network mode"),
        (["-P"], "conflicting options: port publishing and the container type network mode"),
        (
            ["--expose", "80"],
            "conflicting options: port exposing and the container type network mode",
        ),
        (["--dns", "1.1.1.1"], "conflicting options: dns and the network mode"),
        (["--dns-search", "a.b"], "conflicting options: dns and the network mode"),
        (["--dns-option", "ndots:1"], "conflicting options: dns and the network mode"),
        (["-h", "web"], "conflicting options: hostname and the network mode"),
        (
            ["--mac-address", "02:00:00:00:00:01"],
            "conflicting options: mac-address and the network mode",
        ),
        (
            ["--add-host", "a:1.2.3.4"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
    ],
)
def test_container_network_mode_conflicts(flags, message, capsys):
    with pytest.raises(InvalidArgument) as err:
        create_body("--net", "container:web", *flags, "busybox")
    assert err.value.message == message
    # Through main: exit 125 before contacting the (absent) daemon.
    assert main(["-H", NO_DAEMON, "run", "--net", "container:web", *flags, "busybox"]) == 125
    err_text = capsys.readouterr().err
    assert err_text.startswith(f"Error: {message}\n")
    assert "cannot connect" not in err_text


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["-p", "80:99999"], "invalid publish spec"),
        (["-p", "1.2.3.4:80"], "invalid publish spec"),
        (["--expose", "8080:80"], "invalid expose spec"),
        (["--add-host", "nocolon"], "invalid add-host"),
        (["--dns", "1.1.1.1:53"], "invalid --dns"),
        (["--dns-option", "ndot:2"], "invalid --dns-option"),
        (["--name", "a b"], "invalid container name"),
        (["-h", "bad_host"], "invalid hostname"),
        (["--net", "bad/net"], "invalid network name"),
        (["--net", "a", "--net", "b"], "one network"),
        (["--ip", "300.1.1.1"], "invalid --ip"),
        (["--mac-address", "02:42"], "invalid MAC address"),
        (["-e", "=x"], "invalid environment variable"),
    ],
)
def test_validation_errors_exit_125_without_daemon(flags, fragment, capsys):
    assert main(["-H", NO_DAEMON, "run", *flags, "busybox"]) == 125
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and fragment in err, err
    assert "cannot connect" not in err and "Traceback" not in err


def test_bad_image_name_exit_125(capsys):
    assert main(["-H", NO_DAEMON, "create", "BusyBox"]) == 125
    assert "invalid image name" in capsys.readouterr().err


def test_usage_errors_exit_125(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ps", "--bogus"])
    assert exit_.value.code == 125
    err = capsys.readouterr().err
    assert err.startswith("Error: unrecognized arguments: --bogus")
    assert "See 'boxnet ps --help'." in err
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--ne", "x", "busybox"])  # no abbreviations of --net
    assert exit_.value.code == 125


def test_unknown_command_suggests(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["netwrk", "ls"])
    assert exit_.value.code == 125
    assert "Did you mean 'network'?" in capsys.readouterr().err


def test_find_command_skips_global_flags():
    assert find_command(["-H", "unix:///x", "--debug", "run", "-d", "busybox"]) == "run"
    assert find_command(["--host=/x", "ps"]) == "ps"
    assert find_command(["--help"]) is None


def test_every_command_builds():
    parser = build_parser(ALL)
    for argv in (["ps"], ["network", "ls"], ["system", "gc"], ["hostbridge", "ls"], ["images"]):
        assert callable(parser.parse_args(argv).func)


def test_exec_body(monkeypatch):
    monkeypatch.setenv("TERM_X", "xterm")
    body = runcmd.build_exec(
        parse("exec", "-it", "-e", "TERM_X", "-w", "/tmp", "web", "sh", "-c", "echo $0")
    )
    assert body == {
        "Cmd": ["sh", "-c", "echo $0"],
        "Env": ["TERM_X=xterm"],
        "Tty": True,
        "AttachStdin": True,
        "WorkingDir": "/tmp",
    }
    with pytest.raises(InvalidArgument):
        runcmd.build_exec(parse("exec", "web"))


def test_network_create_body():
    args = parse(
        "network",
        "create",
        "-d",
        "bridge",
        "--subnet",
        "172.20.0.0/16",
        "--subnet",
        "fd00:1::/64",
        "--gateway",
        "172.20.0.1",
        "--ip-range",
        "172.20.5.0/24",
        "--aux-address",
        "router=172.20.0.2",
        "--gateway",
        "fd00:1::1",
        "--internal",
        "--attachable",
        "--ipv6",
        "-o",
        "com.docker.network.bridge.name=br-test",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "--label",
        "team=net",
        "--label",
        "flag",
        "mynet",
    )
    assert networks.build_create(args) == {
        "Name": "mynet",
        "Driver": "bridge",
        "Internal": True,
        "Attachable": True,
        "EnableIPv6": True,
        "IPAM": {
            "Driver": "default",
            "Config": [
                {
                    "Subnet": "172.20.0.0/16",
                    "IPRange": "172.20.5.0/24",
                    "Gateway": "172.20.0.1",
                    "AuxiliaryAddresses": {"router": "172.20.0.2"},
                },
                {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"},
            ],
        },
        "Options": {
            "com.docker.network.bridge.name": "br-test",
            "com.docker.network.driver.mtu": "1400",
        },
        "Labels": {"team": "net", "flag": ""},
    }
    assert networks.build_create(parse("network", "create", "n"))["IPAM"]["Config"] == []


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--gateway", "10.0.0.1"], "must have a corresponding subnet"),
        (["--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1"], "no matching subnet for gateway"),
        (
            [
                "--subnet",
                "10.0.0.0/24",
                "--subnet",
                "10.1.0.0/24",
                "--gateway",
                "10.0.0.1",
                "--gateway",
                "10.0.0.2",
            ],
            "cannot configure multiple gateways",
        ),
        (["--subnet", "10.0.0.0/16", "--subnet", "10.0.1.0/24"], "overlapping"),
        (["--subnet", "10.0.0.0/33"], "not a CIDR"),
        (["--subnet", "10.0.0.0/24", "--aux-address", "x=10.9.0.1"], "aux-address"),
        (["-o", "=v"], "empty key"),
    ],
)
def test_network_create_errors(flags, fragment):
    with pytest.raises(InvalidArgument) as err:
        networks.build_create(parse("network", "create", *flags, "n"))
    assert fragment in err.value.message


def test_network_connect_body():
    args = parse("network", "connect", "--ip", "172.20.0.9", "--alias", "api", "net1", "web")
    assert networks.build_connect(args) == {
        "Container": "web",
        "EndpointConfig": {"IPAMConfig": {"IPv4Address": "172.20.0.9"}, "Aliases": ["api"]},
    }
    bare = networks.build_connect(parse("network", "connect", "net1", "web"))
    assert bare == {"Container": "web", "EndpointConfig": {}}


def test_pipework_body():
    args = parse("pipework", "br1", "-i", "eth2", "web", "192.168.198.5/24@192.168.198.1")
    assert lan.build_pipework(args) == {
        "HostInterface": "br1",
        "ContainerInterface": "eth2",
        "HostInterfaceName": "",
        "Container": "web",
        "Address": "192.168.198.5/24",
        "Gateway": "192.168.198.1",
        "MacAddress": "",
    }
    args = parse("pipework", "eth0", "-l", "vethweb", "web", "dhcp", "U:web1")
    body = lan.build_pipework(args)
    assert body["Address"] == "dhcp" and body["MacAddress"] == "U:web1"
    assert body["HostInterfaceName"] == "vethweb" and body["ContainerInterface"] == "eth1"
    with pytest.raises(InvalidArgument, match="no netmask"):
        lan.build_pipework(parse("pipework", "br1", "web", "192.168.198.5"))
    with pytest.raises(InvalidArgument, match="interface name"):
        lan.build_pipework(parse("pipework", "br/1", "web", "dhcp"))
