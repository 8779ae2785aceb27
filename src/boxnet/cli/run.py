"""`boxnet run`, `create` and `exec`: the commands that start processes.

The request bodies are built by pure functions (`build_create`, `build_exec`) from the parsed
argv, so tests check the exact JSON without a daemon. Every value users type is validated here,
before the daemon is contacted (the daemon validates again: Docker's CLI and SDK can talk to it).
"""

from __future__ import annotations

import os
import sys

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    import argparse
    from typing import Any

_MAC_HINT = "six hex pairs separated by ':', e.g. 02:42:ac:11:00:02"


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    import argparse

    from boxnet.cli.runopts import APPEND, FLAG, INT, OPTIONS

    # -h is --hostname here (as in Docker), so help is only --help.
    parser.add_argument("--help", action="help", help="show this help message and exit")
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": opt.dest, "help": opt.help}
        if opt.kind == FLAG:
            kwargs["action"] = "store_true"
        elif opt.kind == APPEND:
            kwargs.update(action="append", default=[])
        else:
            kwargs["default"] = opt.default
            if opt.kind == INT:
                kwargs["type"] = int
        if opt.metavar is not None:
            kwargs["metavar"] = opt.metavar
        parser.add_argument(*opt.names, **kwargs)
    parser.add_argument("image", metavar="IMAGE")
    # REMAINDER: everything after IMAGE belongs to the container (`run busybox ls -l`).
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def register(sub: Any) -> None:
    import argparse

    from boxnet.cli.main import verb

    for name, func in (("run", cmd_run), ("create", cmd_create)):
        parser = verb(sub, name, add_help=False)
        _add_run_options(parser)
        parser.set_defaults(func=func, error_code=125)
    parser = verb(sub, "exec")
    parser.add_argument("-d", "--detach", action="store_true", help="run in the background")
    parser.add_argument("-i", "--interactive", action="store_true", help="keep STDIN attached")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="KEY[=VALUE]")
    parser.add_argument("-w", "--workdir", default="", help="working directory")
    parser.add_argument("-u", "--user", default="", help="UID[:GID] or NAME[:GROUP]")
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")
    parser.set_defaults(func=cmd_exec)


def env_list(values: list[str], environ: Any = None) -> list[str]:
    """`-e KEY=V` as given; `-e KEY` takes KEY from our environment, dropped if unset (Docker)."""
    environ = os.environ if environ is None else environ
    out = []
    for value in values:
        key, sep, _ = value.partition("=")
        if not key:
            raise InvalidArgument(f'invalid environment variable "{value}": empty name')
        if sep:
            out.append(value)
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return out


def parse_mac(text: str) -> str:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(
        len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
    ):
        raise InvalidArgument(f'invalid MAC address "{text}"', _MAC_HINT)
    return ":".join(parts).lower()


def ipam_addresses(ip: str | None, ip6: str | None) -> dict[str, str]:
    """The EndpointConfig.IPAMConfig of `--ip` and `--ip6`."""
    out = {}
    if ip:
        out["IPv4Address"] = parse_ipv4(ip)
    if ip6:
        out["IPv6Address"] = parse_ipv6(ip6)
    return out


def parse_ipv6(text: str) -> str:
    from ipaddress import IPv6Address

    try:
        return str(IPv6Address(text))
    except ValueError:
        raise InvalidArgument(
            f"invalid IPv6 address {text!r} for --ip6", hint="for example 2001:db8:1::10"
        ) from None


def parse_ipv4(text: str) -> str:
    from ipaddress import IPv4Address

    try:
        return str(IPv4Address(text))
    except ValueError:
        raise InvalidArgument(
            f'invalid --ip "{text}": not an IPv4 address', "e.g. --ip 172.18.0.10"
        ) from None


def _network_mode(values: list[str]) -> str:
    from boxnet.parsing.netname import validate_network_name

    if len(values) > 1:
        raise InvalidArgument(
            "boxnet run connects a container to one network",
            "connect more with: boxnet network connect NETWORK CONTAINER",
        )
    mode = values[0] if values else "bridge"
    if mode.startswith("container:"):
        if not mode[len("container:") :]:
            raise InvalidArgument(
                'invalid network mode "container:": no container given', "e.g. container:web"
            )
    elif mode not in ("bridge", "host", "none", "default"):
        validate_network_name(mode)
    return mode


def _check_conflicts(args: argparse.Namespace, mode: str) -> None:
    """Docker's client-side checks for `--net container:X` (runconfig's ErrConflict*)."""
    if not mode.startswith("container:"):
        return
    checks = (
        (args.publish or args.publish_all, "port publishing and the container type network mode"),
        (args.expose, "port exposing and the container type network mode"),
        (args.dns or args.dns_search or args.dns_option, "dns and the network mode"),
        (args.hostname, "hostname and the network mode"),
        (args.mac_address, "mac-address and the network mode"),
        (args.add_host, "custom host-to-IP mapping and the network mode"),
    )
    for given, what in checks:
        if given:
            raise InvalidArgument(
                f"conflicting options: {what}",
                f"a container in {mode} shares that container's network: set this option there",
            )


def _aliases(values: list[str]) -> list[str]:
    if not values:
        return []
    from boxnet.parsing.names import validate_dns_name

    return [validate_dns_name(a, kind="network alias") for a in values]


def build_create(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, Any]]:
    """Validate run/create flags and return (query, body) for POST /containers/create."""
    # Each parser is imported only when its flags are given: `run -d IMAGE CMD` is the common
    # case, and every module here is start-up time of the CLI (parsing.dns pulls ipaddress).
    from boxnet.parsing import refnames

    image = refnames.validate_image_name(args.image)
    name = refnames.validate_container_name(args.name) if args.name is not None else None
    hostname = None
    if args.hostname:
        from boxnet.parsing.names import validate_hostname

        hostname = validate_hostname(args.hostname)
    mode = _network_mode(args.network)
    _check_conflicts(args, mode)
    exposed: dict[str, Any] = {}
    bindings: dict[str, Any] = {}
    if args.publish or args.expose:
        from boxnet.parsing import publish

        specs = [spec for text in args.publish for spec in publish.parse_publish(text)]
        exposed, bindings = publish.to_api(specs)
        for text in args.expose:
            for port, proto in publish.parse_expose(text):
                exposed.setdefault(f"{port}/{proto}", {})
    extra_hosts = []
    if args.add_host:
        from boxnet.parsing import hosts

        for text in args.add_host:
            host, address = hosts.parse_add_host(text)
            extra_hosts.append(f"{host}:{address}")
    host_config: dict[str, Any] = {
        "NetworkMode": mode,
        "PortBindings": bindings,
        "PublishAllPorts": args.publish_all,
        "Dns": [],
        "DnsSearch": [],
        "DnsOptions": [],
        "ExtraHosts": extra_hosts,
        # Attached runs remove the container themselves after /wait: an auto-removing daemon
        # could delete it before the CLI reads its exit code (our API has no wait condition).
        "AutoRemove": bool(args.rm and args.detach),
    }
    if args.dns or args.dns_search or args.dns_option:
        from boxnet.parsing import dns

        host_config["Dns"] = [str(dns.parse_dns(d)) for d in args.dns]
        host_config["DnsSearch"] = [dns.parse_dns_search(d) for d in args.dns_search]
        host_config["DnsOptions"] = [dns.parse_dns_option(d) for d in args.dns_option]
    if args.log_driver is not None or args.log_opt:
        from boxnet.parsing import logopts

        log_config = logopts.log_config(args.log_driver, args.log_opt)
        if log_config is not None:
            host_config["LogConfig"] = log_config
    endpoints: dict[str, Any] = {}
    if args.ip:
        parse_ipv4(args.ip)
    if mode in ("bridge", "default") and args.ip:
        raise InvalidArgument(
            "user specified IP address is supported on user defined networks only",
            hint="create a network (boxnet network create --subnet ...) and use --network",
        )
    aliases = _aliases(args.network_alias)  # what is wrong with the value first
    if mode in ("bridge", "default") and args.network_alias:
        raise InvalidArgument(
            "network-scoped alias is supported only for containers in user defined networks",
            hint="create a network (boxnet network create NAME) and use --network NAME",
        )
    if not mode.startswith("container:"):
        endpoint: dict[str, Any] = {}
        ipam = ipam_addresses(args.ip, args.ip6)
        if ipam:
            endpoint["IPAMConfig"] = ipam
        if args.network_alias:
            endpoint["Aliases"] = aliases
        endpoints[mode] = endpoint
    elif args.ip or args.network_alias:
        raise InvalidArgument(
            f"--ip and --network-alias do not apply to {mode}",
            "the container shares the other container's addresses and names",
        )
    body: dict[str, Any] = {}
    _add_process_flags(args, body, host_config)
    body.update({
        "Image": image,
        "Cmd": list(args.command) or None,  # None: the image's default command
        "Env": env_list(args.env),
        "Hostname": hostname or "",
        "Tty": args.tty,
        "OpenStdin": args.interactive,
        "AttachStdin": args.interactive and not args.detach,
        "ExposedPorts": exposed,
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    })  # fmt: skip
    if args.mac_address:
        body["MacAddress"] = parse_mac(args.mac_address)
    if args.entrypoint is not None:  # Docker's encoding: [""] resets the image's entrypoint
        body["Entrypoint"] = [args.entrypoint]
    return ({"name": name} if name else {}), body


def _add_process_flags(
    args: argparse.Namespace, body: dict[str, Any], host_config: dict[str, Any]
) -> None:
    """-v/--mount, -u, -w, --read-only, --domainname, --label, --restart, --link."""
    from boxnet.parsing import runflags

    binds = [runflags.parse_bind(v) for v in args.volume]
    mounts = [runflags.parse_mount_flag(m) for m in args.mount]
    for m in mounts:
        if m["Type"] != "tmpfs":  # the daemon checks tmpfs options
            runflags.mount_to_bind(str(m["Type"]), str(m["Source"]), str(m["Target"]), False)
    if binds:
        host_config["Binds"] = [
            f"{b.source}:{b.target}" + (":ro" if b.read_only else "") for b in binds
        ]
    if mounts:
        host_config["Mounts"] = mounts
    name, count = runflags.parse_restart(args.restart)
    if name != "no" and args.rm:
        raise InvalidArgument("Conflicting options: --restart and --rm", hint="drop one of them")
    if name != "no":
        host_config["RestartPolicy"] = {"Name": name, "MaximumRetryCount": count}
    if args.read_only:
        host_config["ReadonlyRootfs"] = True
    if args.link:
        host_config["Links"] = ["{}:{}".format(*runflags.parse_link(x)) for x in args.link]
    if args.user is not None:
        body["User"] = runflags.parse_user(args.user)
    if args.workdir is not None:
        body["WorkingDir"] = runflags.parse_workdir(args.workdir)
    if args.domainname:
        from boxnet.parsing.names import validate_dns_name

        body["Domainname"] = validate_dns_name(args.domainname, kind="domain name")
    if args.label:
        body["Labels"] = dict(runflags.parse_label(x) for x in args.label)
    if args.tmpfs:
        host_config["Tmpfs"] = dict(
            runflags.parse_tmpfs(t.partition(":")[0], t.partition(":")[2]) for t in args.tmpfs
        )
    if args.stop_signal:
        body["StopSignal"] = args.stop_signal
    if args.stop_timeout is not None:
        body["StopTimeout"] = args.stop_timeout


def build_exec(args: argparse.Namespace) -> dict[str, Any]:
    from boxnet.parsing.runflags import parse_user

    if not args.command:
        raise InvalidArgument("exec needs a command to run", "e.g. boxnet exec -it CONTAINER sh")
    return {
        "Cmd": list(args.command),
        "Env": env_list(args.env),
        "Tty": args.tty,
        "AttachStdin": args.interactive,
        "WorkingDir": args.workdir,
        **({"User": parse_user(args.user)} if args.user else {}),
    }


def check_tty(args: argparse.Namespace) -> None:
    if args.tty and args.interactive and not args.detach and not os.isatty(0):
        raise InvalidArgument(
            "the input device is not a TTY",
            "drop -t, or run from a terminal (-i alone pipes input)",
        )


def start_error(err: Exception, default: int = 125) -> Exception:
    """Docker's runStartContainerErr: 127 if the command was not found, 126 if it cannot run."""
    from boxnet.cli.client import ApiError

    if isinstance(err, ApiError):
        message = err.message.lower()
        if "chdir to cwd" in message:  # boxnetd's (and runc's) words for a bad -w: 126
            err.exit_code = 126
        elif any(s in message for s in ("executable file not found", "no such file or directory")):
            err.exit_code = 127
        elif any(s in message for s in ("permission denied", "is a directory")):
            err.exit_code = 126
        else:
            err.exit_code = default
        if isinstance(err.body.get("ExitCode"), int):  # a daemon may say it outright
            err.exit_code = err.body["ExitCode"]
    return err


def create(ctx: Any, query: dict[str, str], body: dict[str, Any]) -> str:
    result = ctx.client.call("POST", "/containers/create", body, query)
    for warning in result.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {warning}\n")
    return str(result["Id"])


def cmd_create(ctx: Any, args: argparse.Namespace) -> int:
    query, body = build_create(args)
    print(create(ctx, query, body))
    return 0


def cmd_run(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.client import quote

    query, body = build_create(args)
    check_tty(args)
    cid = create(ctx, query, body)
    # Docker leaves a "Created" container behind when `run` cannot start it; boxnet removes it,
    # so a failed `run` leaves nothing half-created.
    if args.detach:
        try:
            ctx.client.request("POST", f"/containers/{cid}/start")
        except Exception as err:
            remove_quietly(ctx, f"/containers/{quote(cid)}")
            raise start_error(err) from None
        print(cid)
        return 0
    from boxnet.cli import attach

    try:
        code = attach.run_container(ctx.client, cid, tty=args.tty, interactive=args.interactive)
    except Exception as err:
        remove_quietly(ctx, f"/containers/{quote(cid)}")
        raise start_error(err) from None
    # Not in a `finally`: after a forced detach (Ctrl-C x3) the container keeps running.
    if args.rm:
        remove_quietly(ctx, f"/containers/{quote(cid)}")
    return code


def remove_quietly(ctx: Any, path: str) -> None:
    """--rm: delete the container; gone already (404) or busy (409) are not errors here."""
    from boxnet.cli.client import ApiError, DaemonUnreachable

    try:
        ctx.client.request("DELETE", path, query={"force": 1})
    except (ApiError, DaemonUnreachable) as err:
        if getattr(err, "status", 404) not in (404, 409):
            sys.stderr.write(f"Error: removing the container: {err.message}\n")


def cmd_exec(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli import attach
    from boxnet.cli.client import quote

    body = build_exec(args)
    check_tty(args)
    exec_id = str(ctx.client.call("POST", f"/containers/{quote(args.container)}/exec", body)["Id"])
    try:
        if args.detach:  # Docker's detached start: no stdio, the daemon does not wait
            ctx.client.request("POST", f"/exec/{quote(exec_id)}/start", {"Detach": True})
            return 0
        return attach.run_exec(ctx.client, exec_id, tty=args.tty, interactive=args.interactive)
    except Exception as err:
        raise start_error(err, default=1) from None  # exec's own failures exit 1, as Docker's
