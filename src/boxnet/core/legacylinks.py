"""Docker's legacy links (`--link NAME[:ALIAS]`): /etc/hosts lines naming linked containers,
and the environment Docker gives the linking container (ALIAS_NAME, ALIAS_ENV_*, ALIAS_PORT*)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boxnet.errors import Conflict, NotFound
from boxnet.model import Container, State

if TYPE_CHECKING:
    from boxnet.core.containers import Containers


def link_entries(containers: Containers, c: Container, strict: bool) -> list[tuple[str, list[str]]]:
    """/etc/hosts lines of c's legacy links: the target's address on a network c shares
    (the default bridge, where Docker's links live), as "IP alias id name". Not strict (a
    rewrite while c runs): a link whose target is gone or stopped is left out."""
    mine = {e.network_id for e in containers.records.endpoints(container_id=c.id)}
    strict = strict and c.spec.network_mode == "bridge"  # user networks: names, resolved late
    out = []
    for name, alias in c.spec.links:
        try:
            target = containers.find(name)
        except NotFound:
            if strict:
                raise
            continue
        addresses = [
            e.primary.ip for e in containers.records.endpoints(container_id=target.id)
            if e.network_id in mine
        ]  # fmt: skip
        if (target.state != State.RUNNING or not addresses) and not strict:
            continue
        if target.state != State.RUNNING or not addresses:
            raise Conflict(
                f"Cannot link to a non running container: /{target.name} AS /{c.name}/{alias}",
                hint=f"start {target.name} first (on the same network)",
            )
        names = [alias] + [x for x in (target.short_id, target.name) if x != alias]
        out.append((str(addresses[0]), names))
    return out


def link_env(containers: Containers, c: Container) -> list[str]:
    """moby's link variables for each running target on a network c shares: ALIAS_NAME,
    ALIAS_ENV_X for the target's env (HOME and PATH left out, as moby does), ALIAS_PORT and
    ALIAS_PORT_N_PROTO[_ADDR|_PORT|_PROTO] for its exposed ports. c's own env comes after, so
    it wins."""
    mine = {e.network_id for e in containers.records.endpoints(container_id=c.id)}
    out: list[str] = []
    for name, alias in c.spec.links:
        try:
            target = containers.find(name)
        except NotFound:
            continue
        ips = [
            str(e.ip) for e in containers.records.endpoints(container_id=target.id)
            if e.network_id in mine
        ]  # fmt: skip
        if target.state != State.RUNNING or not ips:
            continue
        prefix = "".join(ch if ch.isalnum() else "_" for ch in alias).upper()
        out.append(f"{prefix}_NAME=/{c.name}/{alias}")
        for item in target.spec.env:
            key, sep, value = item.partition("=")
            if sep and key not in ("HOME", "PATH"):
                out.append(f"{prefix}_ENV_{key}={value}")
        for i, (port, proto) in enumerate(sorted(target.spec.exposed)):
            url = f"{proto}://{ips[0]}:{port}"
            if i == 0:
                out.append(f"{prefix}_PORT={url}")
            key = f"{prefix}_PORT_{port}_{proto.upper()}"
            out += [f"{key}={url}", f"{key}_ADDR={ips[0]}", f"{key}_PORT={port}",
                    f"{key}_PROTO={proto}"]  # fmt: skip
    return out
