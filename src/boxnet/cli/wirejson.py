"""JSON for the daemon's wire, from the C accelerator `_json` alone: the json package imports
`re` (its decoder's patterns), ~5 ms of a short verb's start-up. Same output as json.dumps
with its defaults, and json.loads' result for valid documents; anything else is a ValueError.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # importing typing costs ~2 ms; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Context:
    """What _json.make_scanner reads from a json.JSONDecoder (its defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}  # the scanner's key cache, as JSONDecoder's


def _no_default(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(
    None, _no_default, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
)
_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed decoder


def dumps(obj: Any) -> str:
    return "".join(_encode(obj, 0))


def loads(data: bytes | str) -> Any:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not a JSON document") from None
    finally:
        _Context.memo.clear()
    if text[end:].strip(_WHITESPACE):
        raise ValueError("extra data after the JSON document")
    return value
