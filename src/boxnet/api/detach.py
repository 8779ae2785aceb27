"""Docker's detach keys: a key sequence in an attached client's stdin that ends the attach
(the container goes on). Default ctrl-p,ctrl-q; `detachKeys` on attach and exec start, or the
client's config file (docker-py and the CLI send it as the query parameter).

The format is moby's: comma-separated keys, each a single character or `ctrl-X` with X in
a-z, @, [, \\, ], ^, _ .
"""

from __future__ import annotations

from boxnet.errors import InvalidArgument

DEFAULT = "ctrl-p,ctrl-q"
_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse(spec: str) -> bytes:
    """The byte sequence of a detachKeys value ("" -> Docker's default)."""
    keys = bytearray()
    for key in (spec or DEFAULT).split(","):
        low = key.strip().lower()
        if len(key) == 1:
            keys.append(ord(key))
        elif low.startswith("ctrl-") and len(low) == 6:
            c = low[5]
            if "a" <= c <= "z":
                keys.append(ord(c) - ord("a") + 1)
            elif c in _CTRL_SPECIAL:
                keys.append(_CTRL_SPECIAL[c])
            else:
                raise _invalid(spec)
        else:
            raise _invalid(spec)
    return bytes(keys)


def _invalid(spec: str) -> InvalidArgument:
    return InvalidArgument(
        f"Invalid detach keys ({spec}) provided",
        hint="use keys such as ctrl-p,ctrl-q: single characters or ctrl-<a-z@[\\]^_>",
    )


class Scanner:
    """Watches client input for the sequence: bytes that may start it are held back until it
    is either complete (detach) or broken (they are passed on, as moby's escape proxy does)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""
        self.detached = False

    def feed(self, data: bytes) -> bytes:
        """What to pass to the process; sets `detached` once the whole sequence was typed."""
        out = bytearray()
        for byte in data:
            if self.detached:
                break
            if self.keys and byte == self.keys[len(self.held)]:
                self.held += bytes([byte])
                if self.held == self.keys:
                    self.detached = True
                    self.held = b""
                continue
            out += self.held
            self.held = b""
            if self.keys and byte == self.keys[0]:
                self.held = bytes([byte])
                if self.held == self.keys:
                    self.detached = True
                    self.held = b""
                continue
            out.append(byte)
        return bytes(out)
