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


def parse(text: str) -> Reference:
    """A reference as users write it; refuses what Docker refuses (uppercase, bad tags)."""
    from boxnet.parsing.names import validate_image_name

    validate_image_name(text)
    name, _, digest = text.partition("@")
    if digest and not _DIGEST_RE.fullmatch(digest):
        raise InvalidArgument(
            f"invalid reference {text!r}: only sha256 digests of 64 hex digits are supported"
        )
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidArgument(f"invalid tag {tag!r} in {text!r}")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
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
