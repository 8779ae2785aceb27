"""What GET /containers/json and GET /networks list: Docker's filters, `all` and `limit` applied
to the records (parsing/filters.py parses and matches the values)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from boxnet.core.sandbox import mode_kind
from boxnet.errors import InvalidArgument, NotFound
from boxnet.model import Container, Network, State
from boxnet.parsing import filters as F

if TYPE_CHECKING:
    from collections.abc import Callable

    from boxnet.core.controller import Controller

CONTAINER_KEYS = frozenset(
    [
        "id",
        "name",
        "label",
        "status",
        "ancestor",
        "network",
        "exited",
        "before",
        "since",
        "publish",
        "expose",
        "volume",
        "health",
        "is-task",
        "isolation",
    ]
)
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
NETWORK_KEYS = ("name", "id", "driver", "label", "scope", "type", "dangling")


def container_status(ctl: Controller, c: Container) -> str:
    if c.state != State.RUNNING and ctl.containers.restarts.pending(c.id):
        return "restarting"
    return str(c.state)


def _networks_of(ctl: Controller, c: Container) -> set[str]:
    """Names and ids of the networks c is configured for or attached to."""
    names = {e.network for e in c.spec.endpoints}
    if mode_kind(c.spec.network_mode) != "container":
        names.add(c.spec.network_mode)
    by_id = {n.id: n for n in ctl.records.networks()}
    by_name = {n.name: n for n in by_id.values()}
    for e in ctl.records.endpoints(container_id=c.id):
        if e.network_id in by_id:
            names.add(by_id[e.network_id].name)
    return names | {by_name[n].id for n in names if n in by_name}


def select_containers(
    ctl: Controller, query_filters: str | None, show_all: bool, limit: int
) -> list[Container]:
    f = F.parse(query_filters, CONTAINER_KEYS)
    for status in f.get("status", ()):
        if status not in STATUSES:
            raise InvalidArgument(
                f"invalid filter 'status={status}'", hint="valid: " + ", ".join(STATUSES)
            )
    codes = set()
    for code in f.get("exited", ()):
        if not code.lstrip("-").isdigit():
            raise InvalidArgument(f"invalid filter 'exited={code}'", hint="an exit code")
        codes.add(int(code))
    published = set().union(*(F.port_set("publish", v) for v in f.get("publish", ())))
    exposed = set().union(*(F.port_set("expose", v) for v in f.get("expose", ())))
    every = ctl.containers.all()  # newest first
    created_before = _reference_times(ctl, f.get("before", []))
    created_since = _reference_times(ctl, f.get("since", []))
    show_all = show_all or limit > 0 or any(k in f for k in ("before", "since", "status"))
    show_all = show_all or "exited" in f
    out = []
    for c in every:
        if not show_all and c.state != State.RUNNING:
            continue
        ports = {f"{p.container_port}/{p.proto}" for p in c.spec.ports}
        exposes = ports | {f"{p}/{proto}" for p, proto in c.spec.exposed}
        if (
            _container_matches(ctl, c, f)
            and ("exited" not in f or (c.state == State.EXITED and c.exit_code in codes))
            and (not created_before or c.created < min(created_before))
            and (not created_since or c.created > max(created_since))
            and (not published or bool(published & ports))
            and (not exposed or bool(exposed & exposes))
        ):
            out.append(c)
    return out[:limit] if limit > 0 else out


def _container_matches(ctl: Controller, c: Container, f: F.Filters) -> bool:
    """The filters that test one value of c at a time."""
    status = container_status(ctl, c)
    return (
        F.any_value(f, "id", c.id.startswith)
        and F.any_value(f, "name", lambda v: F.name_matches(v, c.name))
        and F.labels_match(c.spec.labels, f.get("label", ()))
        and F.any_value(f, "status", status.__eq__)
        and F.any_value(f, "ancestor", lambda v: v.removesuffix(":latest") == c.spec.image)
        and F.any_value(f, "network", _networks_of(ctl, c).__contains__)
        and F.any_value(f, "volume", lambda v: any(v in (b.source, b.target) for b in c.spec.binds))
        and F.any_value(f, "health", lambda v: v == "none")
        and F.any_value(f, "is-task", lambda v: not F.boolean("is-task", v))
        and F.any_value(f, "isolation", lambda v: v == "default")
    )


def _reference_times(ctl: Controller, refs: list[str]) -> list[str]:
    times = []
    for ref in refs:
        try:
            times.append(ctl.containers.find(ref).created)
        except NotFound:
            raise NotFound(
                f"No such container: {ref}", hint="before/since name a container"
            ) from None
    return times


def select_networks(ctl: Controller, query_filters: str | None) -> list[Network]:
    f = F.parse(query_filters, NETWORK_KEYS)
    for kind in f.get("type", ()):
        if kind not in ("custom", "builtin"):
            raise InvalidArgument(f"Invalid filter: 'type'='{kind}'", hint="custom or builtin")
    for scope in f.get("scope", ()):
        if scope not in ("local", "swarm", "global"):
            raise InvalidArgument(f"Invalid filter: 'scope'='{scope}'", hint="local")
    used = {e.network_id for e in ctl.records.endpoints()}
    scope_of = ctl.drivers.scope
    return [net for net in ctl.networks.all() if _network_matches(net, f, used, scope_of)]


def _network_matches(
    net: Network, f: F.Filters, used: set[str], scope: Callable[[str], str]
) -> bool:
    dangling = not net.predefined and net.id not in used
    return (
        F.any_value(f, "name", lambda v: F.name_matches(v, net.name))
        and F.any_value(f, "id", net.id.startswith)
        and F.any_value(f, "driver", str(net.driver).__eq__)
        and F.labels_match(net.labels, f.get("label", ()))
        and F.any_value(f, "scope", scope(net.driver).__eq__)
        and F.any_value(f, "type", ("builtin" if net.predefined else "custom").__eq__)
        and F.any_value(f, "dangling", lambda v: F.boolean("dangling", v) == dangling)
    )
