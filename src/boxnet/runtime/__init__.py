"""Container runtime: images, the per-container shim and its daemon-side launcher.

`shim.py` is a stand-alone stdlib-only script (run as `python -I -S shim.py SPEC`); it is not
imported here, nor `shimio.py`, which the shim loads (its output relay and json-file log writer;
`logfile.py` reads those logs). Everything else is re-exported for the core layer.
"""

from boxnet.runtime.images import (
    HOST_IMAGE,
    ImageInfo,
    ImageStore,
    import_image,
    list_images,
    remove_image,
    resolve,
    validate_name,
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
    "ImageInfo",
    "ImageStore",
    "PidFd",
    "ProcessSpec",
    "SetupFailed",
    "StartFailed",
    "Started",
    "exec_in",
    "import_image",
    "is_alive",
    "list_images",
    "open_pidfd",
    "read_exit",
    "read_pid",
    "remove_image",
    "resolve",
    "send_signal",
    "spawn_exec",
    "start",
    "validate_name",
]
