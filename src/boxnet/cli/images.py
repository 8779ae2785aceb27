"""Image verbs: `images`, `import`, `pull`, `tag`, `rmi`, `save`, `load`, `history`, and the
`image` group (ls, inspect, rm, prune, and the same verbs again), as Docker names them."""

from __future__ import annotations

import argparse
import os
import sys

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # importing typing costs ~2 ms of start-up; mypy takes this as True
if TYPE_CHECKING:
    from typing import Any

IMAGES_HEADERS = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")
HISTORY_HEADERS = ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")


def _path(name: str, suffix: str = "") -> str:
    from boxnet.cli.client import quote

    return f"/images/{quote(name)}{suffix}"


def register(sub: Any) -> None:
    from boxnet.cli.main import group_parser, verb

    _add_ls(verb(sub, "images"))
    _add_import(verb(sub, "import"))
    _add_pull(verb(sub, "pull"))
    _add_tag(verb(sub, "tag"))
    _add_rm(verb(sub, "rmi"))
    _add_save(verb(sub, "save"))
    _add_load(verb(sub, "load"))
    _add_history(verb(sub, "history"))
    _parser, image = group_parser(sub, "image")
    _add_ls(image.add_parser("ls", aliases=["list"], help="List images"))
    p = image.add_parser("inspect", help="Show the low-level JSON of images")
    p.add_argument("-f", "--format", help='"json" or a Go template, e.g. {{.Id}}')
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_inspect)
    _add_rm(image.add_parser("rm", aliases=["remove"], help="Remove images"))
    p = image.add_parser("prune", help="Remove unused images (dangling ones; all with -a)")
    p.add_argument("-a", "--all", action="store_true", help="every image no container uses")
    p.add_argument("-f", "--force", action="store_true", help="do not ask (boxnet never asks)")
    p.set_defaults(func=cmd_prune)
    _add_pull(image.add_parser("pull", help="Pull an image from a registry"))
    _add_tag(image.add_parser("tag", help="Give an image another name"))
    _add_save(image.add_parser("save", help="Write images to a tarball"))
    _add_load(image.add_parser("load", help="Load images from a tarball"))
    _add_history(image.add_parser("history", help="Show the history of an image"))
    _add_import(image.add_parser("import", help="Add an image from a root file system"))


def _add_ls(p: Any) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate ids")
    p.add_argument("-a", "--all", action="store_true", help="all images (boxnet has no others)")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="reference=PATTERN, dangling=true|false, label=KEY[=VALUE]")  # fmt: skip
    p.add_argument("--format", help='"table", "json" or a Go template')
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.set_defaults(func=cmd_images)


def _add_import(p: Any) -> None:
    p.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                   help='CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR: "CMD sh"')  # fmt: skip
    p.add_argument("source", metavar="TARBALL|DIR")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_import)


def _add_pull(p: Any) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.set_defaults(func=cmd_pull)


def _add_tag(p: Any) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    p.set_defaults(func=cmd_tag)


def _add_rm(p: Any) -> None:
    p.add_argument("-f", "--force", action="store_true", help="untag even if containers use it")
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_rmi)


def _add_save(p: Any) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_save)


def _add_load(p: Any) -> None:
    p.add_argument("-i", "--input", metavar="FILE", help="read FILE, not stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_load)


def _add_history(p: Any) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate")
    p.add_argument("name", metavar="IMAGE")
    p.set_defaults(func=cmd_history)


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


def list_filters(pairs: list[str], reference: str | None) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {pair!r}")
        filters.setdefault(key, []).append(value)
    if reference:
        filters.setdefault("reference", []).append(reference)
    return filters


def cmd_images(ctx: Any, args: argparse.Namespace) -> int:
    import json

    from boxnet.cli import render

    filters = list_filters(args.filter, args.reference)
    query = {"filters": json.dumps(filters)} if filters else None
    images = ctx.client.call("GET", "/images/json", query=query) or []
    if args.quiet:
        for image in images:
            print(render.short_id(str(image.get("Id", "")), args.no_trunc))
        return 0
    render.print_formatted(args.format, images, lambda i: images_table(i, args.no_trunc))
    return 0


def build_import(source: str, name: str, changes: list[str] | None = None) -> dict[str, Any]:
    from boxnet.parsing.names import validate_image_name

    # The daemon resolves nothing relative to our working directory: send an absolute path.
    path = os.path.abspath(source)
    if not os.path.exists(path):
        raise InvalidArgument(
            f'cannot import "{source}": no such file or directory',
            "give a root file system as a tarball (.tar, .tar.gz) or a directory",
        )
    body: dict[str, Any] = {"Source": path, "Name": validate_image_name(name)}
    if changes:
        body["Changes"] = changes
    return body


def cmd_import(ctx: Any, args: argparse.Namespace) -> int:
    body = build_import(args.source, args.name, args.change)
    result = ctx.client.call("POST", "/boxnet/images/import", body)
    print((result or {}).get("Id") or args.name)
    return 0


def _progress_lines(chunks: Any) -> Any:
    """The JSON progress lines of pull/load/import; an error line raises."""
    import json

    from boxnet.errors import BoxnetError

    pending = b""
    for chunk in chunks:
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if not line.strip():
                continue
            doc = json.loads(line)
            if doc.get("error"):
                raise BoxnetError(str(doc["error"]))
            yield doc


def cmd_pull(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.parsing.names import validate_image_name

    name = validate_image_name(args.name)
    query = {"fromImage": name} if "@" in name else None
    if query is None:
        repo, tag = _split_tag(name)
        query = {"fromImage": repo, "tag": tag or "latest"}
    for doc in _progress_lines(ctx.client.stream("POST", "/images/create", query=query)):
        if args.quiet:
            continue
        status = str(doc.get("status", ""))
        print(f"{doc['id']}: {status}" if doc.get("id") else status)
    print(name if "@" in name or ":" in name.rsplit("/", 1)[-1] else f"{name}:latest")
    return 0


def _split_tag(name: str) -> tuple[str, str]:
    slash, colon = name.rfind("/"), name.rfind(":")
    return (name[:colon], name[colon + 1 :]) if colon > slash else (name, "")


def cmd_tag(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.parsing.names import validate_image_name

    repo, tag = _split_tag(validate_image_name(args.target))
    ctx.client.request("POST", _path(args.source, "/tag"), query={"repo": repo, "tag": tag})
    return 0


def cmd_rmi(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.client import ApiError

    failed = 0
    for name in args.names:
        try:
            removed = ctx.client.call("DELETE", _path(name), query={"force": args.force})
        except ApiError as err:
            sys.stderr.write(err.render() + "\n")
            failed = 1
            continue
        for entry in removed or []:
            for key, value in entry.items():
                print(f"{key}: {value}")
    return failed


def cmd_save(ctx: Any, args: argparse.Namespace) -> int:
    if args.output is None and sys.stdout.isatty():
        raise InvalidArgument(
            "cowardly refusing to save to a terminal", hint="use -o FILE or redirect stdout"
        )
    if len(args.names) == 1:
        chunks = ctx.client.stream("GET", _path(args.names[0], "/get"))
    else:
        chunks = ctx.client.stream("GET", "/images/get", query={"names": ",".join(args.names)})
    if args.output is None:
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        return 0
    tmp = f"{args.output}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, args.output)  # no half-written tarball under the name asked for
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return 0


def cmd_load(ctx: Any, args: argparse.Namespace) -> int:
    if args.input is None:
        if sys.stdin.isatty():
            raise InvalidArgument(
                "requested load from stdin, but stdin is empty", hint="use -i FILE"
            )
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(args.input, "rb") as f:
                data = f.read()
        except OSError as e:
            raise InvalidArgument(f"cannot read {args.input}: {e.strerror}") from None
    chunks = ctx.client.stream("POST", "/images/load", query={"quiet": args.quiet}, raw=data)
    for doc in _progress_lines(chunks):
        if not args.quiet:
            sys.stdout.write(str(doc.get("stream", "")))
    return 0


def cmd_history(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli import render

    rows = ctx.client.call("GET", _path(args.name, "/history")) or []
    if args.quiet:
        for row in rows:
            print(render.short_id(str(row.get("Id", "")), args.no_trunc))
        return 0
    table = []
    for row in rows:
        image_id = str(row.get("Id", ""))
        created_by = str(row.get("CreatedBy", ""))
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        table.append(
            [image_id if image_id == "<missing>" else render.short_id(image_id, args.no_trunc),
             render.ago(row.get("Created")), created_by,
             render.human_size(float(row.get("Size") or 0)), str(row.get("Comment", ""))]
        )  # fmt: skip
    sys.stdout.write(render.table(HISTORY_HEADERS, table))
    return 0


def cmd_inspect(ctx: Any, args: argparse.Namespace) -> int:
    from boxnet.cli.containers import inspect_many

    return inspect_many(ctx, args.names, args.format, "image")


def cmd_prune(ctx: Any, args: argparse.Namespace) -> int:
    import json

    from boxnet.cli import render

    filters = {"dangling": ["false" if args.all else "true"]}
    result = ctx.client.call("POST", "/images/prune", query={"filters": json.dumps(filters)})
    for entry in (result or {}).get("ImagesDeleted") or []:
        for key, value in entry.items():
            print(f"{key}: {value}")
    print(f"Total reclaimed space: {render.human_size(float(result.get('SpaceReclaimed', 0)))}")
    return 0
