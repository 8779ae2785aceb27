"""`boxnet images` and `boxnet import TARBALL|DIR NAME`."""

from __future__ import annotations

import argparse
import os

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

IMAGES_HEADERS = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")


def register(sub: Any) -> None:
    from boxnet.cli.main import verb

    p = verb(sub, "images")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("--format", help='"table", "json" or a Go template')
    p.set_defaults(func=cmd_images)
    p = verb(sub, "import")
    p.add_argument("source", metavar="TARBALL|DIR")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_import)


def images_table(
    images: list[dict[str, Any]], no_trunc: bool = False, now: float | None = None
) -> str:
    from boxnet.cli import render

    rows = []
    for image in images:
        image_id = render.short_id(str(image.get("Id", "")), no_trunc)
        for tag in image.get("RepoTags") or ["<none>:<none>"]:
            repo, _, version = str(tag).rpartition(":")
            if not repo or "/" in version:  # "registry:5000/name" has no tag
                repo, version = str(tag), "<none>"
            rows.append(
                [repo, version, image_id, render.ago(image.get("Created"), now),
                 render.human_size(float(image.get("Size") or 0))]
            )  # fmt: skip
    return render.table(IMAGES_HEADERS, rows)


def cmd_images(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli import render

    images = ctx.client.call("GET", "/images/json") or []
    if args.quiet:
        for image in images:
            print(render.short_id(str(image.get("Id", "")), args.no_trunc))
        return 0
    render.print_formatted(args.format, images, lambda i: images_table(i, args.no_trunc))
    return 0


def build_import(source: str, name: str) -> dict[str, str]:
    from boxnet.parsing.names import validate_image_name

    # The daemon resolves nothing relative to our working directory: send an absolute path.
    path = os.path.abspath(source)
    if not os.path.exists(path):
        raise InvalidArgument(
            f'cannot import "{source}": no such file or directory',
            "give a root file system as a tarball (.tar, .tar.gz) or a directory",
        )
    return {"Source": path, "Name": validate_image_name(name)}


def cmd_import(ctx: Any, args: argparse.Namespace) -> int:
    result = ctx.client.call("POST", "/boxnet/images/import", build_import(args.source, args.name))
    print((result or {}).get("Name") or args.name)
    return 0
