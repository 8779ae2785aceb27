"""Container runtime: images, the per-container shim and its daemon-side launcher.

`shim.py` is a stand-alone stdlib-only script (run as `python -I -S shim.py SPEC`); it is not
imported here, nor `shimio.py`, which the shim loads (its output relay and json-file log writer;
`logfile.py` reads those logs). Everything else is re-exported for the core layer.
"""

from boxnet.runtime.images import (
    HOST_IMAGE,
    Image,
    ImageStore,
    list_images,
    lookup,
    resolve,
)
from boxnet.runtime.launcher import (
    ExecProcess,
    ExitStatus,
    PidFd,
    ProcessSpec,
    SetupFailed,
    Started,
    StartFailed,
    exec_in,
    is_alive,
    open_pidfd,
    read_exit,
    read_pid,
    send_signal,
    spawn_exec,
    start,
)

__all__ = [
    "HOST_IMAGE",
    "ExecProcess",
    "ExitStatus",
    "Image",
    "ImageStore",
    "PidFd",
    "ProcessSpec",
    "SetupFailed",
    "StartFailed",
    "Started",
    "exec_in",
    "is_alive",
    "list_images",
    "lookup",
    "open_pidfd",
    "read_exit",
    "read_pid",
    "resolve",
    "send_signal",
    "spawn_exec",
    "start",
]
