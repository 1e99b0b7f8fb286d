"""FIFOs between the object server and a sandbox worker.

An input fed while the node runs (:mod:`zerocloud.object.members`) goes
through a FIFO made in the node's RAM directory: it holds no data at rest,
and the program's reads set the pace.
"""

import fcntl
import os

from eventlet.hubs import trampoline

#: Pipe buffer asked for (Linux allows 1 MiB unprivileged).
PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031


def make_fifo(path: str, flags: int) -> int:
    """Make a FIFO at ``path`` and return this side's non-blocking
    descriptor on it, opened with ``flags`` (``O_RDONLY`` or ``O_RDWR``:
    neither waits for the other side)."""
    os.mkfifo(path, 0o600)
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass   # the default pipe size works too, in smaller steps
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking FIFO, waiting (green
    thread) while it is full: the reader sets the pace."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            trampoline(fd, write=True)
