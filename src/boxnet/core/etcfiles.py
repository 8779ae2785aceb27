"""A container's own /etc/hosts, /etc/hostname and /etc/resolv.conf, written before it starts."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from ipaddress import IPv4Address, ip_address
from pathlib import Path

from boxnet.model import Container, Endpoint

log = logging.getLogger("boxnet.etc")

HOST_RESOLV_CONF = Path("/etc/resolv.conf")


def host_resolvers(path: Path = HOST_RESOLV_CONF) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, search domains, options) of the host's resolv.conf."""
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    try:
        text = path.read_text()
    except OSError:
        return servers, search, options
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    return servers, search, options


def etc_paths(directory: Path) -> dict[str, Path]:
    """{path in the container: file on the host} for the files in `directory`."""
    return {
        "/etc/hosts": directory / "hosts",
        "/etc/hostname": directory / "hostname",
        "/etc/resolv.conf": directory / "resolv.conf",
    }


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_etc_files(
    directory: Path,
    c: Container,
    endpoints: Sequence[Endpoint],
    daemon_dns: Sequence[str],
    daemon_search: Sequence[str],
    daemon_opts: Sequence[str],
    host_gateway: IPv4Address | None,
    host_mode: bool,
    embedded_dns: bool = False,
    in_place: bool = False,
    links: Sequence[tuple[str, Sequence[str]]] = (),
) -> dict[str, Path]:
    """Write the three files; returns {path in the container: file on the host}.

    embedded_dns: the daemon's resolver serves this container on 127.0.0.11 (boxnet.dns), so
    resolv.conf names it alone and the real servers only appear in a comment, as in Docker.
    links: (address, names) lines of legacy `--link`s.
    in_place: rewrite the existing files (a running container sees them through bind mounts of
    their inodes, which a rename would leave behind).
    """
    from boxnet.parsing.dns import render_hosts, render_resolv_conf
    from boxnet.parsing.hosts import parse_add_host

    directory.mkdir(parents=True, exist_ok=True)
    servers, search, options = host_resolvers()
    if c.spec.dns or daemon_dns:
        servers = list(c.spec.dns or daemon_dns)
    elif not host_mode and not embedded_dns:
        # A resolver on the host's loopback (systemd-resolved's 127.0.0.53) is unreachable from
        # a container's own namespace; say so rather than hand out a dead server.
        kept = [s for s in servers if not ip_address(s).is_loopback]
        if len(kept) != len(servers):
            log.info(
                "container %s: host resolvers on loopback are not usable: %s",
                c.short_id,
                ", ".join(s for s in servers if s not in kept),
            )
        servers = kept
    if c.spec.dns_search or daemon_search:
        search = list(c.spec.dns_search or daemon_search)
    if c.spec.dns_options or daemon_opts:
        options = list(c.spec.dns_options or daemon_opts)
    search = [s for s in search if s != "."]
    comment = ""
    if embedded_dns:
        comment = f"# ExtServers: [{' '.join(servers)}]\n"
        servers = ["127.0.0.11"]
        if not any(o.startswith("ndots:") for o in options):
            # Docker's choice: a bare name goes to the embedded resolver as is, first.
            options = ["ndots:0", *options]

    own_names = [c.hostname] + ([c.name] if c.name != c.hostname else [])
    if c.spec.domainname:  # Docker's line: "IP host.domain host"
        own_names.insert(0, f"{c.hostname}.{c.spec.domainname}")
    entries: list[list[str]] = []
    if host_mode:
        entries.append(["127.0.1.1", *own_names])
    for e in endpoints:  # a line per address: IPv4, and IPv6 on a dual-stack network
        entries.extend([str(address.ip), *own_names] for address in e.addresses)
    if host_gateway is None:
        # No default bridge (boxnetd --bridge=none): the gateway of the first network.
        host_gateway = next((e.gateway for e in endpoints if e.gateway is not None), None)
    entries.extend([addr, *names] for addr, names in links)  # --link: "IP alias id name"
    for item in c.spec.extra_hosts:
        name, addr = parse_add_host(item)
        if addr == "host-gateway":
            if host_gateway is None:
                log.info("container %s: no gateway for host-gateway (%s)", c.short_id, name)
                continue
            addr = host_gateway
        entries.append([str(addr), name])

    files = etc_paths(directory)
    write = Path.write_text if in_place else _atomic_write
    write(files["/etc/hosts"], render_hosts(entries))
    write(files["/etc/hostname"], c.hostname + "\n")
    write(files["/etc/resolv.conf"], comment + render_resolv_conf(servers, search, options))
    return files
