"""Interface index, MAC and "up" through the classic interface ioctls, on a socket of the namespace.

Why not netlink for these two: each pyroute2 verb costs a round trip plus message parsing in
Python (~0.3-0.5 ms in the daemon), while these ioctls are one syscall (~10 us) - the ones
libc's if_nametoindex() and `ifconfig IF up` use. The ioctl acts in the namespace of the socket
it is made on (any family, a netlink socket included), so no thread has to enter the namespace.
Addresses and routes stay on netlink (pyroute2), which owns everything else.
"""

from __future__ import annotations

import fcntl
import struct

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFINDEX = 0x8933
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
IFREQ_SIZE = 40  # struct ifreq: 16 bytes of name, then a 24-byte union


def _ifreq(ifname: str, payload: bytes = b"") -> bytes:
    return struct.pack("16s", ifname.encode()) + payload.ljust(IFREQ_SIZE - 16, b"\0")


def index(sock_fd: int, ifname: str) -> int:
    """ifname's ifindex in the socket's namespace; OSError (ENODEV) when there is none."""
    answer = fcntl.ioctl(sock_fd, SIOCGIFINDEX, _ifreq(ifname))
    return int(struct.unpack_from("i", answer, 16)[0])


def set_up(sock_fd: int, ifname: str) -> None:
    """Bring ifname up in the socket's namespace (no-op when it is up)."""
    answer = fcntl.ioctl(sock_fd, SIOCGIFFLAGS, _ifreq(ifname))
    flags = struct.unpack_from("H", answer, 16)[0]
    if not flags & IFF_UP:
        fcntl.ioctl(sock_fd, SIOCSIFFLAGS, _ifreq(ifname, struct.pack("H", flags | IFF_UP)))


def hwaddr(sock_fd: int, ifname: str) -> str:
    """ifname's MAC address ("aa:bb:..") in the socket's namespace; OSError (ENODEV) when
    there is no such interface."""
    answer = fcntl.ioctl(sock_fd, SIOCGIFHWADDR, _ifreq(ifname))
    return answer[18:24].hex(":")  # a struct sockaddr: 2 bytes of family, then the address
