"""Error categories shared by every layer.

Each category maps to one HTTP status (rendered once, in the API server) and to one CLI
exit path. A message says what failed and why; a hint says the fix when it is guessable.
"""

from __future__ import annotations


class BoxnetError(Exception):
    """Base of every error boxnet reports to a user."""

    status = 500

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"Error: {self.message}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text

    def to_json(self) -> dict[str, str]:
        body = {"message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body


class InvalidArgument(BoxnetError):
    status = 400


class NotFound(BoxnetError):
    status = 404


class Conflict(BoxnetError):
    status = 409


class Forbidden(BoxnetError):
    status = 403


class NotModified(BoxnetError):
    status = 304


class Unavailable(BoxnetError):
    status = 503


class KernelError(BoxnetError):
    """A kernel operation failed (netlink, nftables, mounts)."""

    status = 500


class ConfigError(InvalidArgument):
    """A daemon configuration error: carries where the bad value came from."""
