"""Image routes: list, inspect, history, tag, remove, import and pull (`/images/create`), load,
save (`/images/get`), prune; and boxnet's own `/boxnet/images/import` (a path on the host)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from boxnet.api.image_views import image_history, image_inspect, image_summary, labels
from boxnet.api.server import Request, Response, Router
from boxnet.errors import InvalidArgument
from boxnet.parsing.body import Field

if TYPE_CHECKING:
    from boxnet.core.controller import Controller
    from boxnet.runtime.images import Image, ImageStore


IMAGE_BODY_LIMIT = 16 << 30  # image tarballs go to a temporary file, not to memory


def body_file(req: Request, images: ImageStore) -> IO[bytes]:
    """The request body (an image or root file system tarball) in an unnamed temporary file
    next to the store: nothing to clean up if the daemon dies meanwhile."""
    images.paths.images.mkdir(parents=True, exist_ok=True)
    out = tempfile.TemporaryFile(dir=images.paths.images)
    try:
        req.handler.read_body_into(out, IMAGE_BODY_LIMIT)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def progress(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode() + b"\r\n"


def _all_values(req: Request, name: str) -> list[str]:
    """Every value of a repeated query parameter (`docker save a b` sends names=a&names=b)."""
    return list(req.query_all.get(name, []))


def parse_filters(text: str) -> dict[str, list[str]]:
    """Docker's two encodings: {"name": {"x": true}} (CLI) and {"name": ["x"]} (docker-py)."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"filters: not JSON: {e}") from e
    if not isinstance(raw, dict):
        raise InvalidArgument("filters: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out[key] = [str(k) for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            raise InvalidArgument(f"filters: {key}: expected a list or an object")
    return out


def _matches(image: Image, filters: dict[str, list[str]]) -> bool:
    import fnmatch

    from boxnet.api.image_views import repo_tags

    for key, values in filters.items():
        if key == "dangling":
            want = values[-1].lower() in ("1", "true") if values else True
            if (not image.tags) != want:
                return False
        elif key == "reference":
            tags = repo_tags(image)
            names = tags + [t.rpartition(":")[0] for t in tags]
            if not any(fnmatch.fnmatchcase(n, pattern) for pattern in values for n in names):
                return False
        elif key == "label":
            have = labels(image)
            for wanted in values:
                k, sep, v = wanted.partition("=")
                if k not in have or (sep and have[k] != v):
                    return False
        else:
            raise InvalidArgument(
                f"invalid filter {key!r}", hint="image filters: reference, dangling, label"
            )
    return True


def register(r: Router, ctl: Controller) -> None:
    def store() -> ImageStore:
        from boxnet.runtime.images import ImageStore

        return ImageStore(ctl.paths)

    def users(image_id: str) -> list[str]:
        """Containers created from the image (by id; records from before image ids by name)."""
        from boxnet.errors import NotFound

        images = store()
        out = []
        for c in ctl.records.containers():
            used = c.spec.image_id
            if not used:
                try:
                    used = images.lookup(c.spec.image).id
                except (NotFound, InvalidArgument):
                    continue
            if used == image_id:
                out.append(c.id)
        return out

    def image_list(req: Request) -> Response:
        filters = parse_filters(req.query.get("filters", ""))
        counts: dict[str, int] = {}
        for c in ctl.records.containers():
            counts[c.spec.image_id] = counts.get(c.spec.image_id, 0) + 1
        out = [
            image_summary(image, counts.get(image.id, 0))
            for image in store().list_images()
            if _matches(image, filters)
        ]
        out.sort(key=lambda s: s["Created"], reverse=True)
        return Response(200, out)

    def image_inspect_route(req: Request) -> Response:
        return Response(200, image_inspect(store().lookup(req.params["name"])))

    def image_history_route(req: Request) -> Response:
        return Response(200, image_history(store().lookup(req.params["name"])))

    def image_tag(req: Request) -> Response:
        repo, tag = req.query.get("repo", ""), req.query.get("tag", "")
        if not repo:
            raise InvalidArgument("tag: repo is required", hint="e.g. ?repo=myimage&tag=v1")
        images = store()
        target = f"{repo}:{tag}" if tag else repo
        images.tag(req.params["name"], target)
        image = images.lookup(target)
        ctl.events.publish("image", "tag", image.id, {"name": target})
        return Response(201, None, content_type="text/plain")

    def image_delete(req: Request) -> Response:
        with ctl.lock:  # no container may start using it meanwhile
            removed = store().remove(req.params["name"], req.flag("force"), users)
        for item in removed:  # Docker's events: untag per name, delete per image
            for key, action in (("Untagged", "untag"), ("Deleted", "delete")):
                if item.get(key):
                    ctl.events.publish("image", action, item[key], {"name": req.params["name"]})
        return Response(200, removed)

    def image_create(req: Request) -> Response:
        if req.query.get("fromSrc"):
            return _import(req)
        if req.query.get("fromImage"):
            return _pull(req)
        raise InvalidArgument("images/create needs fromImage (pull) or fromSrc=- (import)")

    def _import(req: Request) -> Response:
        if req.query["fromSrc"] != "-":
            raise InvalidArgument(
                "import from a URL is not supported: boxnetd fetches nothing from the internet",
                hint="send the tarball as the request body (fromSrc=-): docker import FILE",
            )
        repo, tag = req.query.get("repo", ""), req.query.get("tag", "")
        name = (f"{repo}:{tag}" if tag else repo) or None
        changes = [c for c in _all_values(req, "changes") if c]
        images = store()
        with body_file(req, images) as body:
            image = images.import_image(body, name, req.query.get("message", ""), changes=changes)
        ctl.events.publish("image", "import", image.id, {"name": name or image.id})
        return Response(200, None, stream=iter([progress({"status": image.id})]))

    def _pull(req: Request) -> Response:
        from boxnet.image import registry

        text, tag = req.query["fromImage"], req.query.get("tag", "")
        if tag:
            text += ("@" if tag.startswith("sha256:") else ":") + tag
        images = store()
        builtin_name = registry.builtin_name(text)
        if builtin_name is not None:  # built in: nothing to fetch, like a pull of what one has
            images.lookup(builtin_name)
            done = {"status": f"Status: Image is up to date for {builtin_name}:latest"}
            return Response(200, None, stream=iter([progress(done)]))
        puller = registry.Puller(images, text, ctl.config.insecure_registries)
        puller.resolve()  # errors (unknown repository, unreachable registry) as a status
        return Response(200, None, stream=_pull_stream(puller))

    def _pull_stream(puller: Any) -> Iterator[bytes]:
        from boxnet.errors import BoxnetError

        try:
            for line in puller.run():
                yield progress(line)
        except BoxnetError as e:
            yield progress({"errorDetail": {"message": e.message}, "error": e.message})
            return
        ctl.events.publish("image", "pull", puller.text, {"name": puller.text})

    def image_load(req: Request) -> Response:
        from boxnet.image import archive

        images = store()
        with body_file(req, images) as body:
            lines = archive.load(images.store, body, images.tag_loaded)
        out = [progress({"stream": line + "\n"}) for line in lines]
        return Response(200, None, stream=iter(out))

    def image_save(req: Request) -> Response:
        names = [req.params["name"]] if "name" in req.params else []
        names += [n for value in _all_values(req, "names") for n in value.split(",") if n]
        if not names:
            raise InvalidArgument("save: name at least one image (?names=NAME)")
        images = store()
        chosen = images.for_save(names)  # every name checked before the first byte
        from boxnet.image import archive

        return Response(
            200, None, content_type="application/x-tar", stream=archive.save(images.store, chosen)
        )

    def image_prune(req: Request) -> Response:
        filters = parse_filters(req.query.get("filters", ""))
        everything = filters.pop("dangling", ["true"])[-1].lower() in ("0", "false")
        if filters:
            raise InvalidArgument(f"prune: unsupported filters {sorted(filters)}")
        with ctl.lock:
            return Response(200, store().prune(everything, users))

    def image_import_path(req: Request) -> Response:
        body = Field(req.json())
        source, name = body["Source"].text(), body["Name"].text()
        if not source or not name:
            raise InvalidArgument("import needs Source (a path) and Name")
        if not source.startswith("/"):
            # the daemon's working directory means nothing to a client (`boxnet import` sends
            # an absolute path)
            raise InvalidArgument(
                f"Source: {source!r} is not an absolute path", hint="e.g. /tmp/rootfs.tar"
            )
        changes = list(body["Changes"].strings())
        image = store().import_image(Path(source), name, changes=changes)
        return Response(200, {"Name": name, "Id": image.id})

    r.add("GET", "/images/json", image_list)
    r.add("POST", "/images/create", image_create)
    r.add("POST", "/images/load", image_load)
    r.add("GET", "/images/get", image_save)
    r.add("POST", "/images/prune", image_prune)
    r.add("GET", "/images/{name:path}/json", image_inspect_route)
    r.add("GET", "/images/{name:path}/history", image_history_route)
    r.add("GET", "/images/{name:path}/get", image_save)
    r.add("POST", "/images/{name:path}/tag", image_tag)
    r.add("DELETE", "/images/{name:path}", image_delete)
    r.add("POST", "/boxnet/images/import", image_import_path)
