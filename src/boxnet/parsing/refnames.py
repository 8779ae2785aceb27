"""Container and image names, checked without `re` on the common path: `boxnet run` validates
both before it contacts the daemon, and importing `re` (with enum and functools behind it) costs
~5 ms of a CLI call (issue #20). parsing/names.py re-exports both validators.

The container-name rule is simple enough to check character by character. The image grammar is
not: a name inside a plain subset of it (lowercase path components of letters and digits, an
optional tag) is accepted here, anything else goes through the full grammar (compiled on first
use), so both paths accept exactly the same names.
"""

from __future__ import annotations

from boxnet.errors import InvalidArgument

IMAGE_NAME_MAX = 255
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_CONTAINER_REST = _ALNUM | frozenset("_.-")
_PATH_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_FIRST = _ALNUM | frozenset("_")  # \w in ASCII
_TAG_REST = _TAG_FIRST | frozenset(".-")

# distribution/reference grammar (what `docker pull` accepts), minus IPv6 registry hosts.
_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"  # noqa: E501
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_PATTERN = (
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
_grammar: list[object] = []  # the compiled pattern, once needed


def bad_name(kind: str, value: str, rule: str, hint: str | None = None) -> InvalidArgument:
    """The refusal of every name validator (parsing/names.py uses it too)."""
    return InvalidArgument(f'invalid {kind} "{value}": {rule}', hint)


def validate_container_name(name: str) -> str:
    """Docker's rule `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`; returns the name without the leading '/'."""
    bare = name[1:] if name.startswith("/") else name
    if len(bare) > 128:
        # Docker sets no limit; boxnet caps names (they become DNS names and log keys).
        raise bad_name("container name", name[:40] + "…", "use at most 128 characters")
    if len(bare) < 2 or bare[0] not in _ALNUM or not _CONTAINER_REST.issuperset(bare):
        raise bad_name(
            "container name",
            name,
            "use at least 2 characters from [a-zA-Z0-9_.-], starting with a letter or digit",
            "e.g. web-1",
        )
    return bare


def _plainly_valid_image(name: str) -> bool:
    """True for names like busybox, library/busybox:1.36 (a subset of the grammar)."""
    path, colon, tag = name.partition(":")
    if colon and not (0 < len(tag) <= 128 and tag[0] in _TAG_FIRST and _TAG_REST.issuperset(tag)):
        return False
    return all(part and _PATH_PLAIN.issuperset(part) for part in path.split("/"))


def _matches_grammar(name: str) -> bool:
    if not _grammar:
        import re

        _grammar.append(re.compile(_IMAGE_PATTERN, re.ASCII))
    return _grammar[0].fullmatch(name) is not None  # type: ignore[attr-defined]


def validate_image_name(name: str) -> str:
    """An image reference `[REGISTRY/]PATH[:TAG][@DIGEST]` as Docker accepts it; unchanged."""
    if not name:
        raise bad_name("image name", name, "it is empty", "e.g. busybox or host")
    valid = _plainly_valid_image(name) or _matches_grammar(name)
    if not valid or len(name.partition("@")[0]) > IMAGE_NAME_MAX:
        rest = name.rsplit("/", 1)[-1].split(":")[0].split("@")[0]
        if rest != rest.lower():
            raise bad_name("image name", name, "repository name must be lowercase")
        raise bad_name(
            "image name",
            name,
            "expected [REGISTRY/]PATH[:TAG][@DIGEST]: lowercase path components separated by"
            " '/', a tag of letters, digits, '_', '.', '-' (at most 128)",
            "e.g. busybox, busybox:1.36 or registry.example:5000/team/app:v1",
        )
    return name
