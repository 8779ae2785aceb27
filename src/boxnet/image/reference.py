"""Image references as Docker normalises them.

`alpine` = `alpine:latest` = `library/alpine:latest` = `docker.io/library/alpine:latest`. The first
path component is a registry only when it looks like a host (has a '.' or a ':', or is
`localhost`) and more follows it. Tags are stored in the canonical long form and shown in the
familiar short one (`alpine:latest`, `203.0.113.1:5000/busybox:latest`), as `docker images` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from boxnet.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
_ID_RE = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_SHORT_ID_RE = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# distribution/reference's grammar (what `docker pull` accepts), minus IPv6 registry hosts; the
# same as parsing/names.py's, kept here so the image layer needs nothing above it.
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?", re.ASCII)
_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
NAME_MAX = 255


@dataclass(frozen=True)
class Reference:
    domain: str  # "docker.io" or "203.0.113.1:5000"
    path: str  # "library/alpine", "team/app"
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """Canonical repository: docker.io/library/alpine."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """What `docker images` shows: alpine, team/app, 203.0.113.1:5000/busybox."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        return self.path.removeprefix(OFFICIAL_PREFIX)

    def tagged(self) -> Reference:
        """With the default tag when neither tag nor digest was given."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG)
        return self

    def __str__(self) -> str:
        """Canonical: docker.io/library/alpine:latest (the key in the tag store)."""
        return self.repository + self._suffix()

    def familiar(self) -> str:
        return self.familiar_repository + self._suffix()

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")


def _invalid(text: str, why: str) -> InvalidArgument:
    return InvalidArgument(
        f'invalid reference format "{text}": {why}',
        hint="e.g. busybox, busybox:1.36 or registry.example:5000/team/app:v1",
    )


def parse(text: str) -> Reference:
    """A reference as users write it, `[REGISTRY/]PATH[:TAG][@DIGEST]`; refuses what Docker
    refuses (uppercase, bad tags, empty components)."""
    name, _, digest = text.partition("@")
    if digest and not _DIGEST_RE.fullmatch(digest):
        raise _invalid(text, "only sha256 digests of 64 lowercase hex digits are supported")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise _invalid(text, f"the tag {tag!r} is not 1-128 letters, digits, '_', '.', '-'")
    if not name or len(name) > NAME_MAX:
        raise _invalid(text, f"the name is empty or longer than {NAME_MAX} characters")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
        if not _DOMAIN_RE.fullmatch(domain):
            raise _invalid(text, f"{domain!r} is not a registry host[:port]")
    else:
        domain, path = DEFAULT_DOMAIN, name
    for component in path.split("/"):
        if not _COMPONENT_RE.fullmatch(component):
            why = (
                "repository name must be lowercase"
                if component != component.lower()
                else (
                    f"the path component {component!r} is not lowercase letters and digits"
                    " separated by '.', '_', '__' or '-'"
                )
            )
            raise _invalid(text, why)
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return Reference(domain, path, tag, digest or None)


def parse_tagged(text: str) -> Reference:
    return parse(text).tagged()


def full_id(text: str) -> str | None:
    """`sha256:<64 hex>` when text is a full image id (with or without the prefix)."""
    m = _ID_RE.fullmatch(text)
    return f"sha256:{m.group(1)}" if m else None


def id_prefix(text: str) -> str | None:
    """The hex part when text could be an id prefix (Docker searches ids after tags)."""
    m = _SHORT_ID_RE.fullmatch(text)
    return m.group(1) if m else None


def familiar(canonical: str) -> str:
    """docker.io/library/alpine:3.10 -> alpine:3.10 (tags are stored canonical)."""
    return parse(canonical).familiar()
