"""Docker's local volumes: a directory DATA_ROOT/volumes/NAME/_data (Docker's layout), which a
container gets as a bind mount. Named (`-v NAME:/path`, `--mount type=volume`, POST
/volumes/create) or anonymous (`-v /path`, Config.Volumes: a random 64-hex name, removed with
the container by `rm -v`). Only the local driver exists: no options, no plugins. A new volume
starts empty (Docker copies the image's files at the mount point into it; boxnet does not).

The volume's metadata is NAME/meta.json beside _data; a container uses a volume when one of
its binds has the volume's _data (or a directory in it, a subpath) as its source.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boxnet.errors import Conflict, InvalidArgument, NotFound

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from boxnet.core.containers import Containers
    from boxnet.model import BindMount, ContainerSpec

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # moby's volume name rule
SUBPATH_SEP = ":"  # "NAME:SUBPATH" in a BindMount's source (":" is never in a name)


class Volumes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def data(self, name: str) -> Path:
        return self.root / name / "_data"

    def create(
        self,
        name: str = "",
        labels: Mapping[str, str] | None = None,
        driver: str = "",
        options: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        """The volume's view; creating one that exists returns it (Docker does the same)."""
        if driver not in ("", "local"):
            raise InvalidArgument(
                f'error looking up volume plugin {driver}: plugin "{driver}" not found',
                hint="boxnet has the local driver only",
            )
        if options:
            raise InvalidArgument(
                f"volume driver options are not supported: {sorted(options)[0]}",
                hint="a boxnet volume is a plain directory: leave --opt out",
            )
        name = name or secrets.token_hex(32)
        check_name(name)
        if (self.root / name / "meta.json").exists():
            return self.get(name)
        self.data(name).mkdir(parents=True, exist_ok=True)
        meta = {
            "Name": name,
            "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Labels": dict(labels or {}),
            "Anonymous": anonymous,
        }
        tmp = self.root / name / f"meta.json.tmp{os.getpid()}"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.root / name / "meta.json")
        return self._view(meta)

    def get(self, name: str) -> dict[str, Any]:
        try:
            meta = json.loads((self.root / name / "meta.json").read_text())
        except (OSError, ValueError):
            raise NotFound(f"get {name}: no such volume", hint="boxnet volume ls") from None
        return self._view(meta)

    def all(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(os.listdir(self.root)):
            try:
                found.append(self.get(entry))
            except NotFound:
                continue  # half-created or not a volume
        return found

    def remove(self, name: str, users: Iterable[str], force: bool = False) -> None:
        if not (self.root / name / "meta.json").exists():
            if force:
                return
            raise NotFound(f"get {name}: no such volume", hint="boxnet volume ls")
        in_use = sorted(users)
        if in_use:
            raise Conflict(
                f"remove {name}: volume is in use - [{', '.join(in_use)}]",
                hint="remove the containers that use it first",
            )
        shutil.rmtree(self.root / name, ignore_errors=True)

    def _view(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        name = str(meta["Name"])
        return {
            "CreatedAt": meta.get("CreatedAt", ""),
            "Driver": "local",
            "Labels": meta.get("Labels") or {},
            "Mountpoint": str(self.data(name)),
            "Name": name,
            "Options": {},
            "Scope": "local",
        }

    def is_anonymous(self, name: str) -> bool:
        try:
            return bool(json.loads((self.root / name / "meta.json").read_text()).get("Anonymous"))
        except (OSError, ValueError):
            return False

    def name_of(self, source: str) -> str | None:
        """The volume whose _data (or a directory in it) a bind source is, or None."""
        try:
            rel = Path(source).relative_to(self.root)
        except ValueError:
            return None
        parts = rel.parts
        return parts[0] if len(parts) >= 2 and parts[1] == "_data" else None

    def resolve(self, bind: BindMount) -> BindMount:
        """A bind whose source is a volume name ("" = anonymous; NAME:SUBPATH) made a host
        path, creating the volume when it does not exist yet (Docker's `-v name:/path`)."""
        from dataclasses import replace

        if bind.source.startswith("/"):
            return bind
        name, _, subpath = bind.source.partition(SUBPATH_SEP)
        view = self.create(name, anonymous=not name)
        source = Path(view["Mountpoint"])
        if subpath:
            inside = (source / subpath).resolve()
            if not inside.is_relative_to(source.resolve()) or not inside.is_dir():
                raise InvalidArgument(
                    f"cannot access path {subpath!r} in volume {name}: not a directory in it",
                    hint="create the subpath in the volume first",
                )
            source = inside
        return replace(bind, source=str(source))


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name,'
            ' only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed',
            hint="a name of two or more letters, digits, _ . -",
        )
    return name


def with_volumes(cs: Containers, spec: ContainerSpec) -> ContainerSpec:
    """--volumes-from copied in, then every volume bind (named, anonymous) made a host path."""
    from dataclasses import replace

    binds = list(spec.binds)
    targets = {b.target for b in binds}
    for entry in (spec.raw.get("HostConfig") or {}).get("VolumesFrom") or ():
        ref, _, mode = str(entry).partition(":")
        if mode not in ("", "ro", "rw"):
            raise InvalidArgument(f"invalid mode for volumes-from: {mode}", hint="ro or rw")
        try:
            source = cs.find(ref)
        except NotFound as exc:  # not a 404: clients take a create 404 for a missing image
            raise InvalidArgument(exc.message, hint=exc.hint) from exc
        for b in source.spec.binds:
            if b.target not in targets:
                targets.add(b.target)
                binds.append(replace(b, read_only=b.read_only if not mode else mode == "ro"))
    return replace(spec, binds=tuple(cs.volumes.resolve(b) for b in binds))
