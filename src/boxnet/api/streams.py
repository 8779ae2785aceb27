"""Docker's stream framing, so the Docker CLI and SDK can read boxnet's output.

Without a TTY, Docker multiplexes stdout and stderr on one connection: each frame is an 8-byte
header (stream 1 or 2, three zero bytes, big-endian length) and the payload. With a TTY the stream
is raw bytes.
"""

from __future__ import annotations

import os
import selectors
import struct
from collections.abc import Iterator

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
STDOUT, STDERR = 1, 2


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def pump_pipes(stdout_fd: int, stderr_fd: int, tty: bool) -> Iterator[bytes]:
    """Yield framed (or raw, with a TTY) output of two pipes until both are closed."""
    selector = selectors.DefaultSelector()
    streams = {stdout_fd: STDOUT, stderr_fd: STDERR}
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    try:
        while streams:
            for key, _ in selector.select():
                fd = int(key.fd)
                data = os.read(fd, 65536)
                if not data:
                    selector.unregister(fd)
                    os.close(fd)
                    del streams[fd]
                    continue
                yield data if tty else frame(streams[fd], data)
    finally:
        for fd in streams:
            selector.unregister(fd)
            os.close(fd)
        selector.close()
