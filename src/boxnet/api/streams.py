"""Docker's stream framing, so the Docker CLI and SDK can read boxnet's output.

Without a TTY, Docker multiplexes stdout and stderr on one connection: each frame is an 8-byte
header (stream 1 or 2, three zero bytes, big-endian length) and the payload. With a TTY the stream
is raw bytes.
"""

from __future__ import annotations

import struct

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
STDOUT, STDERR = 1, 2


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload
