"""Docker's legacy links (`--link NAME[:ALIAS]`): /etc/hosts lines naming linked containers."""

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
