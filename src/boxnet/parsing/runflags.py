"""The run/create flags about the container's process and files, parsed with Docker's wording:
bind mounts (`-v`, `--mount`), user, working directory, labels, restart policies and links.

Shared by the CLI (what users type) and the daemon (what the API's JSON carries), so both refuse
the same things in the same words. A named volume's bind has the name as its source (NAME, or
NAME:SUBPATH), an anonymous volume's the empty string; the daemon makes them directories
(core/volumes.py).
"""

from __future__ import annotations

from boxnet.errors import InvalidArgument

TYPE_CHECKING = False  # see below; mypy takes this as True
if TYPE_CHECKING:
    from boxnet.model import BindMount

# boxnet.model is imported only where a BindMount is built: the CLI checks every `run` through
# this module, and the model's dataclasses cost ~10 ms of its start-up (issue #20).

RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")

_VOLUME_HINT = "use -v /HOST/PATH:/PATH (bind) or -v NAME:/PATH (volume)"
_BIND_CONFIG = 'invalid mount config for type "bind"'
_BIND_OPTIONS = frozenset(("ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated"))
_BIND_OPTIONS |= {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


def _check_target(target: str, spec: str) -> str:
    if not target.startswith("/"):
        raise InvalidArgument(
            f"invalid mount config for type \"bind\": invalid mount path: '{target}'"
            " mount path must be absolute",
            hint=f"in {spec!r}",
        )
    if target.rstrip("/") == "":
        raise InvalidArgument(f"invalid mount config for type \"bind\": invalid specification:"
                              f" destination can't be '/' in {spec!r}")  # fmt: skip
    if "\x00" in target:
        raise InvalidArgument(f"invalid mount path {target!r}: NUL is not allowed")
    return "/" + "/".join(p for p in target.split("/") if p)


def parse_bind(spec: str) -> BindMount:
    """Docker's `Binds` entry / `-v` value: HOST:CONTAINER[:OPTIONS] with an absolute HOST."""
    parts = spec.split(":")
    if len(parts) == 1 or not parts[0]:  # `-v /path`: an anonymous volume
        from boxnet.model import BindMount

        return BindMount(source="", target=_check_target(parts[-1], spec))
    if len(parts) > 3:
        raise InvalidArgument(f"invalid volume specification: '{spec}'",
                              hint="use HOST:CONTAINER[:ro]")  # fmt: skip
    source, target = parts[0], parts[1]  # a source that is not a path names a volume
    options = parts[2].split(",") if len(parts) == 3 else []
    for option in options:
        if option not in _BIND_OPTIONS:
            raise InvalidArgument(f"invalid mode: {option}", hint="use ro or rw")
        check_propagation(option)
    if "ro" in options and "rw" in options:
        raise InvalidArgument(f"invalid mode: {parts[2]}", hint="ro or rw, not both")
    if "\x00" in source:
        raise InvalidArgument(f"invalid bind source {source!r}: NUL is not allowed")
    from boxnet.model import BindMount

    return BindMount(source=source, target=_check_target(target, spec), read_only="ro" in options)


def check_propagation(mode: str) -> None:
    """Binds are rprivate: the shim makes its mount namespace private before it mounts
    anything, so shared or slave propagation is refused rather than ignored."""
    if mode in ("shared", "rshared", "slave", "rslave"):
        raise InvalidArgument(
            f"bind propagation {mode!r} is not supported by boxnet: binds are rprivate",
            hint="leave the propagation out (or use private/rprivate)",
        )


def parse_mount_flag(text: str) -> dict[str, object]:
    """`--mount type=bind,source=/a,target=/b[,readonly]` -> the API's Mounts entry."""
    fields: dict[str, str] = {}
    read_only = False
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            read_only = not sep or value.lower() in ("1", "true")
            continue
        if not sep:
            raise InvalidArgument(f"invalid field '{item}' must be a key=value pair")
        fields[{"src": "source", "dst": "target", "destination": "target"}.get(key, key)] = value
    kind = fields.pop("type", "volume")
    mount: dict[str, object] = {
        "Type": kind,
        "Source": fields.pop("source", ""),
        "Target": fields.pop("target", ""),
    }
    if kind == "tmpfs":
        size, mode = fields.pop("tmpfs-size", "0"), fields.pop("tmpfs-mode", "0")
        mount["TmpfsOptions"] = {"SizeBytes": _bytes(size), "Mode": _octal(mode)}
    mount["ReadOnly"] = read_only
    propagation = fields.pop("bind-propagation", "")
    check_propagation(propagation)
    if propagation:
        mount["BindOptions"] = {"Propagation": propagation}
    if fields:
        raise InvalidArgument(f"unexpected key '{next(iter(fields))}' in '{text}'")
    return mount


def _bytes(text: str) -> int:
    """`64m`, `1g`, `4096` -> bytes (Docker's RAMInBytes, binary units)."""
    units = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    number, unit = text.rstrip("bBkKmMgG"), text[len(text.rstrip("bBkKmMgG")) :].lower()
    if not number.isdigit() or unit.rstrip("b") not in units:
        raise InvalidArgument(f"invalid size {text!r}", hint="e.g. 64m")
    return int(number) * units[unit.rstrip("b")]


def _octal(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise InvalidArgument(f"invalid mode {text!r}", hint="octal, e.g. 1777") from None


def mount_to_bind(
    kind: str, source: str, target: str, read_only: bool, subpath: str = ""
) -> BindMount:
    """An API `Mounts` entry (HostConfig.Mounts) -> BindMount: types bind and volume."""
    if kind == "volume":
        from boxnet.model import BindMount

        if not target:
            raise InvalidArgument('invalid mount config for type "volume": field Target must'
                                  " not be empty")  # fmt: skip
        if subpath and (subpath.startswith("/") or ".." in subpath.split("/") or not source):
            raise InvalidArgument(f"invalid volume subpath {subpath!r}",
                                  hint="a relative path inside a named volume")  # fmt: skip
        return BindMount(source=f"{source}:{subpath}" if subpath else source,
                         target=_check_target(target, target), read_only=read_only)  # fmt: skip
    if kind != "bind":
        raise InvalidArgument(f'mount type "{kind}" is not supported', hint=_VOLUME_HINT)
    if not source:
        raise InvalidArgument(f"{_BIND_CONFIG}: field Source must not be empty")
    if not source.startswith("/"):
        raise InvalidArgument(
            f"invalid mount config for type \"bind\": invalid mount path: '{source}'"
            " mount path must be absolute"
        )
    if not target:
        raise InvalidArgument(f"{_BIND_CONFIG}: field Target must not be empty")
    from boxnet.model import BindMount

    return BindMount(source=source, target=_check_target(target, target), read_only=read_only)


_TMPFS_FLAGS = frozenset(["ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev"])
_TMPFS_DATA = frozenset(["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"])


def parse_tmpfs(target: str, options: str) -> tuple[str, str]:
    """`--tmpfs /run[:OPTIONS]` (HostConfig.Tmpfs): an absolute path, mount(8)-style options."""
    path = _check_target(target, target)
    for option in filter(None, options.split(",")):
        key = option.split("=", 1)[0]
        if key not in _TMPFS_FLAGS and key not in _TMPFS_DATA:
            raise InvalidArgument(
                f"invalid tmpfs option {option!r} for {target}",
                hint="e.g. --tmpfs /run:rw,noexec,size=64m",
            )
    return path, options


def parse_restart(text: str) -> tuple[str, int]:
    """`--restart` value: no | always | unless-stopped | on-failure[:N]."""
    name, sep, count = text.partition(":")
    return check_restart(name or "no", count if sep else "")


def check_restart(name: str, count: str | int) -> tuple[str, int]:
    if name not in RESTART_POLICIES:
        raise InvalidArgument(
            f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always',"
            " 'on-failure', or 'unless-stopped'"
        )
    if count in ("", 0):
        return name, 0
    if name != "on-failure":
        raise InvalidArgument(
            f"invalid restart policy: maximum retry count can only be used with 'on-failure'"
            f" (got '{name}:{count}')"
        )
    if isinstance(count, str) and not (count.isascii() and count.isdigit()):
        raise InvalidArgument(f"invalid restart policy format: maximum retry count {count!r}"
                              " must be an integer")  # fmt: skip
    number = int(count)
    if not 0 <= number <= 1_000_000:
        raise InvalidArgument("invalid restart policy: maximum retry count must be 0 or more")
    return name, number


def parse_user(text: str) -> str:
    """`-u` value: UID[:GID] or NAME[:GROUP] (resolved in the container's /etc/passwd)."""
    user, sep, group = text.partition(":")
    if not user or (sep and not group) or ":" in group:
        raise InvalidArgument(f"invalid user {text!r}", hint="use UID[:GID] or NAME[:GROUP]")
    for part in (user, group):
        if any(c in part for c in "\x00\n/ "):
            raise InvalidArgument(f"invalid user {text!r}", hint="use UID[:GID] or NAME[:GROUP]")
    return text


def parse_workdir(text: str) -> str:
    if not text.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{text}' is invalid, it needs to be an absolute path"
        )
    if "\x00" in text:
        raise InvalidArgument("the working directory must not contain NUL")
    return text


def parse_label(text: str) -> tuple[str, str]:
    """`--label KEY[=VALUE]`."""
    key, _, value = text.partition("=")
    if not key.strip():
        raise InvalidArgument(f"invalid label '{text}': empty name")
    return key, value


def parse_link(text: str) -> tuple[str, str]:
    """`--link NAME[:ALIAS]` (the alias defaults to the name)."""
    from boxnet.parsing.names import validate_container_name, validate_dns_name

    name, _, alias = text.lstrip("/").partition(":")
    if not name:
        raise InvalidArgument(f"invalid link '{text}'", hint="use NAME[:ALIAS]")
    validate_container_name(name)
    alias = alias or name
    validate_dns_name(alias, kind="link alias", allow_underscore=True)
    return name, alias
