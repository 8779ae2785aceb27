"""File descriptors that a daemon with a thousand containers keeps open.

glibc's FD_SET aborts the process for a descriptor at or past FD_SETSIZE (1024), and a C library
the daemon uses calls select(): libnftables waits for its netlink replies that way. Every
container holds about three long-lived descriptors (its resolver's UDP and TCP sockets, the pidfd
that tells its shim exited), so at ~340 containers a fresh libnftables context got a descriptor
past 1024 and boxnetd died with "bit out of range 0 - FD_SETSIZE on fd_set". Long-lived
descriptors are therefore parked at 1024 and above (poll and epoll take any number), which keeps
the low range for the short-lived ones that C code may select() on.
"""

from __future__ import annotations

import fcntl
import os
import resource
import socket

FD_SETSIZE = 1024


def raise_limit() -> int:
    """Lift the soft limit on open files to the hard one (systemd gives services a soft 1,024
    and a hard 524,288: 1,000 containers need ~3,000). Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def park(fd: int) -> int:
    """Move fd to a number >= FD_SETSIZE (close-on-exec) and return it; where the limit does
    not allow that, fd stays where it is."""
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FD_SETSIZE)
    except OSError:  # EINVAL: the limit is at or below FD_SETSIZE; EMFILE: it is full
        return fd
    os.close(fd)
    return high


def park_socket(sock: socket.socket) -> socket.socket:
    """The same socket, its descriptor parked (see park)."""
    fd = sock.detach()
    high = park(fd)
    return socket.socket(fileno=high)
