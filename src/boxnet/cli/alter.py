"""Container housekeeping verbs: rename, update, pause, unpause, `container prune`, `system df`."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    from boxnet.cli.main import group_parser, verb

    p = verb(sub, "rename")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")
    p.set_defaults(func=cmd_rename)
    p = verb(sub, "update")
    p.add_argument("--restart", required=True, metavar="POLICY",
                   help="no | always | unless-stopped | on-failure[:N]")  # fmt: skip
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.set_defaults(func=cmd_update)
    for name in ("pause", "unpause"):
        p = verb(sub, name)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.set_defaults(func=cmd_pause, verb=name)
    _, container = group_parser(sub, "container")
    p = container.add_parser("prune", help="remove every stopped container")
    p.add_argument("-f", "--force", action="store_true", help="do not ask (boxnet never asks)")
    p.set_defaults(func=cmd_container_prune)
    p = verb(sub, "df")
    p.set_defaults(func=cmd_df)


def _path(name: str, suffix: str = "") -> str:
    from boxnet.cli.client import quote

    return f"/containers/{quote(name)}{suffix}"


def cmd_rename(ctx: Any, args: argparse.Namespace) -> int:
    ctx.client.request("POST", _path(args.container, "/rename"), None, {"name": args.new_name})
    return 0


def cmd_update(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.containers import for_each
    from boxnet.parsing.runflags import parse_restart

    name, retries = parse_restart(args.restart)
    body = {"RestartPolicy": {"Name": name, "MaximumRetryCount": retries}}

    return for_each(
        args.containers, lambda n: ctx.client.request("POST", _path(n, "/update"), body)
    )


def cmd_pause(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.containers import for_each

    return for_each(
        args.containers, lambda n: ctx.client.request("POST", _path(n, f"/{args.verb}"))
    )


def cmd_container_prune(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli import render

    out = ctx.client.call("POST", "/containers/prune")
    deleted = out.get("ContainersDeleted") or []
    if deleted:
        print("Deleted Containers:")
        for cid in deleted:
            print(cid)
        print()
    print(f"Total reclaimed space: {render.human_size(out.get('SpaceReclaimed') or 0)}")
    return 0


def cmd_df(ctx: Any, args: argparse.Namespace) -> int:
    """`docker system df`'s summary table."""
    from boxnet.cli import render

    out = ctx.client.call("GET", "/system/df")
    images, containers = out.get("Images") or [], out.get("Containers") or []
    image_size = sum(i.get("Size", 0) for i in images)
    used_images = [i for i in images if i.get("Containers")]
    unused_size = sum(i.get("Size", 0) for i in images if not i.get("Containers"))
    size_rw = sum(c.get("SizeRw", 0) for c in containers)
    stopped_rw = sum(c.get("SizeRw", 0) for c in containers if c.get("State") != "running")
    rows = [
        ["Images", str(len(images)), str(len(used_images)), render.human_size(image_size),
         _reclaimable(unused_size, image_size)],
        ["Containers", str(len(containers)),
         str(sum(1 for c in containers if c.get("State") == "running")),
         render.human_size(size_rw), _reclaimable(stopped_rw, size_rw)],
        ["Local Volumes", "0", "0", "0B", "0B"],
        ["Build Cache", "0", "0", "0B", "0B"],
    ]  # fmt: skip
    print(render.table(("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"), rows))
    return 0


def _reclaimable(part: int, whole: int) -> str:
    from boxnet.cli import render

    percent = f" ({100 * part // whole}%)" if whole else ""
    return render.human_size(part) + percent
