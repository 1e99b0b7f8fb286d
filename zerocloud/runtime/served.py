"""Channels the host serves: encrypted files, streams in and out.

These channels are not read or written by wasmtime's own calls:

* **Ciphered files.**  Swift's at-rest encryption stores an object's body
  as AES-256-CTR ciphertext, the same length as the plaintext.  CTR is
  seekable: the keystream of byte ``n`` depends only on the key, the IV
  and ``n``.  So a node next to an encrypted object reads the ``.data``
  file itself, bound like any read channel, and each read the guest makes
  of it is read here from the host file straight into the guest's buffer
  and decrypted there.  No plaintext copy exists outside the guest's
  memory, whatever the object's size, and a random-access read decrypts
  just the bytes it returns.
* **Sealed outputs.**  What a node writes to a file on a device disk (an
  output stored after the run, the answer when it does not stream,
  stderr) is encrypted the same way as written, under a key the object
  server makes for that file and keeps in memory
  (:mod:`zerocloud.cipher`): the program's plaintext never lands on a
  disk.  Writes go anywhere; a hole or a larger size reads back as zeros
  (encrypted zeros are written for it).
* **Teed outputs.**  A sealed output the object server may store while
  the node runs (:class:`TeedFile`): each write goes to its sealed file
  as above and, as long as the program writes in order from the start,
  its plaintext also goes to a FIFO the server reads (with a full FIFO
  holding the guest back).  The first write out of that order or a new
  size ends the copy, never the program's write: the file stays what the
  program wrote, and the server, which compares what it read with the
  file's md5 and size once the run ended, sends the file instead.  A FIFO
  whose reader went away (the answer was dropped, or went past the
  output's limit) fails the write with ``EPIPE``, as for stdout.
* **Streams.**  A named device on a FIFO (an input the object server feeds
  while the node runs): wasmtime reads files at a position it keeps, which
  a pipe refuses, so reads are served here in order.  A seek, ``fd_tell``
  or ``fd_pread`` on one is ``ESPIPE``.  (``stdin`` on a FIFO is wasmtime's
  own stream and needs none of this.)
* **An output stream.**  ``stdout`` on a FIFO (an answer the object server
  reads while the node runs): each ``fd_write`` of descriptor 1 is written
  here, with one ``writev`` straight from the guest's buffers, so a full
  FIFO holds the guest back and nothing is copied or buffered on the way
  (wasmtime's own writer of a custom stdout hands over 4 KiB at a time, and
  its file writer writes at a position, which a pipe refuses).  A FIFO
  whose reader went away fails the write with ``EPIPE``.

A served channel is known by its file's identity as the guest sees it
(WASI ``(dev, ino)``, taken as :mod:`zerocloud.runtime.guard` takes those
of read-only channels).  Which descriptors are open on it is followed
through the calls that make, move or drop descriptors: ``path_open``
(checked after the real call, with the rights it gave), ``fd_renumber``
and ``fd_close``; a ciphered stdin is descriptor 0 from the start, a
sealed or streamed stdout descriptor 1, a sealed stderr descriptor 2.
Reads, writes, seeks, ``fd_tell`` and new sizes of those descriptors are
answered here; wasmtime keeps the descriptor itself (its rights,
``fd_filestat_get``, ``fd_close``), and every other descriptor's call goes
to wasmtime's own implementation.  Only runs with a served channel use
these shadowed calls at all, and runs whose only served channels are
stdout and stderr only their writes
(:func:`zerocloud.runtime.guard.guarded_linker`), so other calls run at
wasmtime's speed.

Keys reach the sandbox worker over its private request pipe
(:mod:`zerocloud.runtime.worker`), never in a file.
"""

import errno
import hashlib
import os
import struct
from abc import ABC
from typing import Any, Callable, Dict, List, Optional, Tuple

from zerocloud.cipher import CipherKey, KeyStream

ERRNO_SUCCESS = 0
ERRNO_BADF = 8
ERRNO_DQUOT = 19
ERRNO_FAULT = 21
ERRNO_FBIG = 22
ERRNO_INVAL = 28
ERRNO_IO = 29
ERRNO_NOSPC = 51
ERRNO_PIPE = 64
ERRNO_SPIPE = 70
#: WASI's numbers of the host errors a served call passes on.
WASI_ERRNO = {errno.EBADF: ERRNO_BADF, errno.EPIPE: ERRNO_PIPE,
              errno.EFBIG: ERRNO_FBIG, errno.ENOSPC: ERRNO_NOSPC,
              errno.EDQUOT: ERRNO_DQUOT}
WHENCE_SET, WHENCE_CUR, WHENCE_END = 0, 1, 2
U32_MASK = (1 << 32) - 1
U64_MASK = (1 << 64) - 1
#: Encrypted zeros are written this many at a time.
ZERO_CHUNK = 1 << 20
#: Rights of a descriptor that reads, and that changes its file (as
#: wasmtime decides access from ``path_open``'s rights).
RIGHTS_READ = 1 << 1
RIGHTS_WRITE = (1 << 0) | (1 << 6) | (1 << 8) | (1 << 22)
IOVEC = struct.Struct('<II')
U32 = struct.Struct('<I')
U64 = struct.Struct('<Q')

Inode = Tuple[int, int]


class ServedFile(ABC):
    """A served channel's host file, open for the run."""

    #: Reads and writes go anywhere (``True``) or only on, in order (a
    #: stream).
    seekable = True

    def __init__(self, path: str, writable: bool = False):
        self.fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY)
                          | os.O_CLOEXEC)

    @property
    def size(self) -> int:
        return os.fstat(self.fd).st_size if self.seekable else 0

    def read(self, views: List[memoryview], offset: int) -> int:
        """Fill ``views`` from ``offset`` (ignored by a stream) as far as
        the data goes; the bytes read.  Raises OSError (``EBADF``: not
        open for reading)."""
        raise OSError(errno.EBADF, 'not open for reading')

    def write(self, views: List[memoryview], offset: int) -> int:
        """Write ``views`` in order at ``offset`` (ignored by a stream);
        the bytes written.  Raises OSError (``EBADF``: a read channel)."""
        raise OSError(errno.EBADF, 'not open for writing')

    def set_size(self, size: int) -> None:
        raise OSError(errno.EBADF, 'not open for writing')

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class CipheredFile(ServedFile):
    """A file stored encrypted: read and written anywhere, decrypted as
    read and encrypted as written.  Bytes a write or a new size adds past
    the end (a hole, elsewhere zeros) are written as encrypted zeros, so
    they read back as zeros."""

    def __init__(self, path: str, key: CipherKey, writable: bool = False):
        super().__init__(path, writable)
        self.stream = KeyStream(key)

    def read(self, views: List[memoryview], offset: int) -> int:
        done = 0
        for view in views:
            got = os.preadv(self.fd, [view], offset + done)
            if got:
                view[:got] = self.stream.apply(offset + done, view[:got])
            done += got
            if got < len(view):
                break
        return done

    def _zeros(self, start: int, end: int) -> None:
        while start < end:
            length = min(end - start, ZERO_CHUNK)
            os.pwrite(self.fd, self.stream.apply(start, bytes(length)),
                      start)
            start += length

    def write(self, views: List[memoryview], offset: int) -> int:
        self._zeros(self.size, offset)
        done = 0
        for view in views:
            done += os.pwrite(self.fd, self.stream.apply(offset + done, view),
                              offset + done)
        return done

    def set_size(self, size: int) -> None:
        current = self.size
        if size < current:
            os.ftruncate(self.fd, size)
        self._zeros(current, size)


def _open_fifo(path: str, flags: int) -> int:
    """A blocking descriptor on a FIFO, opened without waiting for the
    other side: a reader opened this way sees the end until a writer comes
    (the object server holds one open already, a test's may come later); a
    writer fails (``ENXIO``) without a reader (the object server opens
    its end before the run)."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    os.set_blocking(fd, True)
    return fd


class StreamedFile(ServedFile):
    """A FIFO: read in order, as its writer feeds it."""

    seekable = False

    def __init__(self, path: str):
        self.fd = _open_fifo(path, os.O_RDONLY)

    def read(self, views: List[memoryview], offset: int) -> int:
        return os.readv(self.fd, views) if views else 0


class StreamedOutput(ServedFile):
    """A FIFO the guest writes to, in order, as its reader takes it."""

    seekable = False

    def __init__(self, path: str):
        self.fd = _open_fifo(path, os.O_WRONLY)

    def write(self, views: List[memoryview], offset: int) -> int:
        return os.writev(self.fd, views) if views else 0


class TeedFile(CipheredFile):
    """A sealed output whose bytes written in order from its start are
    also written to a FIFO, for the object server to store them while the
    node runs.  ``teed``: the bytes the FIFO got; the copy ends (its end
    of the FIFO closed) at the first write elsewhere than there or at a
    new size, and the server then sends the file.  Raises OSError
    (``EPIPE``) when the FIFO's reader went away."""

    def __init__(self, path: str, key: CipherKey, fifo: str):
        super().__init__(path, key, writable=True)
        self.tee = _open_fifo(fifo, os.O_WRONLY)
        self.teed = 0
        self._digest = hashlib.md5(usedforsecurity=False)

    def write(self, views: List[memoryview], offset: int) -> int:
        done = super().write(views, offset)
        if self.tee >= 0:
            if offset == self.teed:
                _write_all(self.tee, views)
                for view in views:
                    self._digest.update(view)
                self.teed += done
            else:
                self._end_copy()
        return done

    def whole_md5(self) -> Optional[str]:
        """The md5 of the file when the FIFO got all of it (hashed as it
        went, so the run's report need not read the file again)."""
        if self.tee >= 0 and self.teed == self.size:
            return self._digest.hexdigest()
        return None

    def set_size(self, size: int) -> None:
        super().set_size(size)
        if size != self.teed:
            self._end_copy()

    def _end_copy(self) -> None:
        if self.tee >= 0:
            os.close(self.tee)
            self.tee = -1

    def close(self) -> None:
        self._end_copy()
        super().close()


def _write_all(fd: int, views: List[memoryview]) -> None:
    """Write every byte of ``views`` to blocking descriptor ``fd`` (a
    write to a pipe may take fewer bytes than given)."""
    views = [view for view in views if len(view)]
    while views:
        done = os.writev(fd, views)
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if done:
            views[0] = views[0][done:]


class _Open:
    """A guest descriptor open on a served channel: its position, what it
    may do, and whether it is a stream for the guest (stdio: no seeks,
    writes go on at the position)."""

    def __init__(self, file: ServedFile, read: bool = True,
                 write: bool = True, append: bool = False,
                 stream: bool = False):
        self.file = file
        self.position = 0
        self.read = read
        self.write = write
        self.append = append
        self.seekable = file.seekable and not stream


#: ``(caller, name, *args) -> errno``: wasmtime's own WASI call.
OriginalCall = Callable[..., int]
#: ``(caller, fd) -> inode or None``: the identity of an open descriptor.
IdentifyFd = Callable[[Any, int], Optional[Inode]]


class ServedCalls:
    """Per-run state behind the shadowed calls of one store."""

    def __init__(self, files: Dict[Inode, ServedFile],
                 original: OriginalCall, identify_fd: IdentifyFd,
                 stdio: Optional[Dict[int, ServedFile]] = None):
        """``stdio``: served files of descriptors 0 (stdin, read as a
        file), 1 and 2 (stdout and stderr, written as streams)."""
        self._files = files
        self._original = original
        self._identify_fd = identify_fd
        self._open: Dict[int, _Open] = {}
        for fd, file in (stdio or {}).items():
            self._open[fd] = _Open(file, write=False) if fd == 0 else \
                _Open(file, read=False, stream=True)

    # -- reading into, and writing from, the guest's memory ----------------

    @staticmethod
    def _buffers(caller: Any, iovs: int, count: int
                 ) -> Optional[List[memoryview]]:
        """Views of the guest buffers an iovec (or ciovec: the same
        layout) array names, or ``None`` when one lies outside the guest's
        memory."""
        memory = caller.get('memory')
        end = memory.data_len(caller)
        if count < 0 or iovs + count * IOVEC.size > end:
            return None
        raw = memory.read(caller, iovs, iovs + count * IOVEC.size)
        views = []
        for index in range(count):
            buf, length = IOVEC.unpack_from(raw, index * IOVEC.size)
            if buf + length > end:
                return None
            if length:
                views.append(memoryview(memory.get_buffer_ptr(
                    caller, length, buf)).cast('B'))
        return views

    @staticmethod
    def _store(caller: Any, pointer: int, layout: struct.Struct,
               value: int) -> int:
        memory = caller.get('memory')
        if pointer + layout.size > memory.data_len(caller):
            return ERRNO_FAULT
        memory.write(caller, layout.pack(value), pointer)
        return ERRNO_SUCCESS

    def _transfer(self, caller: Any, state: _Open, writing: bool,
                  iovs: int, count: int, offset: int, counted: int
                  ) -> Tuple[int, int]:
        """(errno, bytes moved) of a read into, or a write from, the
        guest's buffers at ``offset`` of ``state``'s file; the count is
        stored at guest pointer ``counted``."""
        if not (state.write if writing else state.read):
            return ERRNO_BADF, 0
        views = self._buffers(caller, iovs & U32_MASK, count)
        if views is None:
            return ERRNO_FAULT, 0
        try:
            done = (state.file.write if writing else state.file.read)(
                views, offset)
        except OSError as err:
            return WASI_ERRNO.get(err.errno, ERRNO_IO), 0
        return self._store(caller, counted & U32_MASK, U32, done), done

    def _in_order(self, name: str, writing: bool, caller, fd, iovs, count,
                  counted) -> int:
        """``fd_read`` or ``fd_write``: at the descriptor's position."""
        state = self._open.get(fd)
        if state is None:
            return self._original(caller, name, fd, iovs, count, counted)
        if writing and state.append and state.seekable:
            state.position = state.file.size
        status, done = self._transfer(caller, state, writing, iovs, count,
                                      state.position, counted)
        if status == ERRNO_SUCCESS:
            state.position += done
        return status

    def _positioned(self, name: str, writing: bool, caller, fd, iovs, count,
                    offset, counted) -> int:
        """``fd_pread`` or ``fd_pwrite``: at ``offset``, position kept."""
        state = self._open.get(fd)
        if state is None:
            return self._original(caller, name, fd, iovs, count, offset,
                                  counted)
        if not state.seekable:
            return ERRNO_SPIPE
        return self._transfer(caller, state, writing, iovs, count,
                              offset & U64_MASK, counted)[0]

    # -- the shadowed calls (pointers arrive as signed i32) -----------------

    def fd_read(self, caller, fd, iovs, count, nread):
        return self._in_order('fd_read', False, caller, fd, iovs, count,
                              nread)

    def fd_write(self, caller, fd, iovs, count, nwritten):
        return self._in_order('fd_write', True, caller, fd, iovs, count,
                              nwritten)

    def fd_pread(self, caller, fd, iovs, count, offset, nread):
        return self._positioned('fd_pread', False, caller, fd, iovs, count,
                                offset, nread)

    def fd_pwrite(self, caller, fd, iovs, count, offset, nwritten):
        return self._positioned('fd_pwrite', True, caller, fd, iovs, count,
                                offset, nwritten)

    def fd_filestat_set_size(self, caller, fd, size):
        state = self._open.get(fd)
        if state is None:
            return self._original(caller, 'fd_filestat_set_size', fd, size)
        if not state.write or not state.seekable:
            return ERRNO_BADF if state.seekable else ERRNO_INVAL
        try:
            state.file.set_size(size & U64_MASK)
        except OSError as err:
            return WASI_ERRNO.get(err.errno, ERRNO_IO)
        return ERRNO_SUCCESS

    def fd_seek(self, caller, fd, delta, whence, new_offset):
        state = self._open.get(fd)
        if state is None:
            return self._original(caller, 'fd_seek', fd, delta, whence,
                                  new_offset)
        if not state.seekable:
            return ERRNO_SPIPE
        base = {WHENCE_SET: 0, WHENCE_CUR: state.position,
                WHENCE_END: state.file.size}.get(whence & 0xFF)
        if base is None or base + delta < 0:
            return ERRNO_INVAL
        status = self._store(caller, new_offset & U32_MASK, U64,
                             base + delta)
        if status == ERRNO_SUCCESS:
            state.position = base + delta
        return status

    def fd_tell(self, caller, fd, offset):
        state = self._open.get(fd)
        if state is None:
            return self._original(caller, 'fd_tell', fd, offset)
        if not state.seekable:
            return ERRNO_SPIPE
        return self._store(caller, offset & U32_MASK, U64, state.position)

    def opened(self, caller, opened: int, rights: int, append: bool
               ) -> None:
        """After a successful ``path_open`` with ``rights`` (and
        ``append``): follow the new descriptor if it is open on a served
        channel (its number may be a reused one)."""
        memory, opened = caller.get('memory'), opened & U32_MASK
        fd = U32.unpack(bytes(memory.read(caller, opened,
                                          opened + U32.size)))[0]
        self._open.pop(fd, None)
        if not self._files:
            # Only stdio is served, and no path leads to it: asking
            # wasmtime what the new descriptor is would cost each open a
            # filesystem call.
            return
        file = self._files.get(self._identify_fd(caller, fd))
        if file is not None:
            self._open[fd] = _Open(file, read=bool(rights & RIGHTS_READ),
                                   write=bool(rights & RIGHTS_WRITE),
                                   append=append)

    def fd_close(self, caller, fd):
        status = self._original(caller, 'fd_close', fd)
        if status == ERRNO_SUCCESS:
            self._open.pop(fd, None)
        return status

    def fd_renumber(self, caller, fd, to):
        status = self._original(caller, 'fd_renumber', fd, to)
        if status == ERRNO_SUCCESS and fd != to:
            state = self._open.pop(fd, None)
            self._open.pop(to, None)
            if state is not None:
                self._open[to] = state
        return status
