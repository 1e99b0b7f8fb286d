"""Finding a named member near the start of an untrusted, maybe gzipped tar.

A zapp or user image may be a decompression bomb: a few hundred KB of gzip
that expand to gigabytes.  Looking in it for ``boot/system.map`` (proxy) or
for the program (object server) must not expand it, so a scan sees only the
members whose header lies within the first ``max_bytes`` of the uncompressed
tar and among its first ``max_members`` members.  A member whose data would
carry the scan past that bound is never skipped: the scan stops at its
header, having expanded next to nothing.  A member is read only after the
caller checked its size from the header, and every read of the uncompressed
stream is capped besides, so no header trick (GNU long names, pax records)
expands more than the bound either.

Plain and gzip tars are read (gzip told by its magic), as the runtime does.
Member names are compared as :func:`member_path` reads them, on both
servers and in the sandbox (:mod:`zerocloud.runtime.image`), so a member a
check finds is the one that runs.  The scan is blocking code: callers on an eventlet hub run it in a real thread
(``eventlet.tpool``) so their other requests go on meanwhile.
"""

import gzip
import tarfile
import zlib
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional

DEFAULT_SCAN_BYTES = 64 << 20
DEFAULT_SCAN_MEMBERS = 10000
GZIP_MAGIC = b'\x1f\x8b'
COPY_CHUNK = 65536
#: What a damaged tar or gzip stream raises while being read (tarfile's
#: pax headers recurse, so a long chain of them ends in RecursionError).
READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error,
               RecursionError)


def member_path(name: str) -> Optional[str]:
    """The path a tar member name stands for below the tar's root, or
    None when it leaves the root (absolute, or with a ``..`` part).

    ``./bin/prog`` and ``bin//prog/`` are ``bin/prog``; ``.`` and ``./``
    are ``''`` (the root itself); ``.hidden`` stays ``.hidden``.  Every
    place that looks a member up by name or unpacks one uses this, so
    that tars made with ``tar -C dir .`` work everywhere alike.
    """
    if name.startswith('/'):
        return None
    parts = [part for part in name.split('/') if part not in ('', '.')]
    if '..' in parts:
        return None
    return '/'.join(parts)


class UnreadableTar(Exception):
    """Not a plain or gzip tar, or damaged within the scanned part."""


class BoundReached(Exception):
    """The scan stopped at a bound before the tar ended.

    ``bound`` says which, for the user: ``the first 10000 members``.
    """

    def __init__(self, bound: str):
        super().__init__(bound)
        self.bound = bound


@dataclass(frozen=True)
class ScanBounds:
    """How far into an image a named member is looked for."""
    max_bytes: int = DEFAULT_SCAN_BYTES
    max_members: int = DEFAULT_SCAN_MEMBERS

    def __post_init__(self) -> None:
        if self.max_bytes < tarfile.BLOCKSIZE or self.max_members < 1:
            raise ValueError('image scan bounds must allow one member, not '
                             '%d bytes and %d members'
                             % (self.max_bytes, self.max_members))

    @property
    def bytes_bound(self) -> str:
        return 'the first %d bytes (uncompressed)' % self.max_bytes

    @property
    def members_bound(self) -> str:
        return 'the first %d members' % self.max_members


def expanded_stream(raw: BinaryIO) -> BinaryIO:
    """The uncompressed tar bytes of ``raw`` (a plain or gzip file)."""
    gzipped = raw.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw, mode='rb') if gzipped else raw


class _CappedStream:
    """A stream that refuses to give out more than ``limit`` bytes.

    Reads return at most what is left, so the tar reader, which loops on
    short reads, asks again only when it truly needs a byte beyond it.
    """

    def __init__(self, stream: BinaryIO, limit: int, bound: str):
        self.stream = stream
        self.limit = limit
        self.bound = bound
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        room = self.limit - self.consumed
        if room <= 0:
            raise BoundReached(self.bound)
        data = self.stream.read(room if size < 0 else min(size, room))
        self.consumed += len(data)
        return data


@contextmanager
def _reading() -> Iterator[None]:
    try:
        yield
    except READ_ERRORS as err:
        raise UnreadableTar(str(err)) from err


class TarScan:
    """One pass over a tar's first members, within :class:`ScanBounds`."""

    def __init__(self, tar: tarfile.TarFile, stream: _CappedStream,
                 bounds: ScanBounds):
        self._tar = tar
        self._stream = stream
        self.bounds = bounds

    def members(self) -> Iterator[tarfile.TarInfo]:
        """Each member in turn; :class:`BoundReached` where the bounds end
        before the tar does."""
        with _reading():
            for count, info in enumerate(self._tar, 1):
                yield info
                if count >= self.bounds.max_members:
                    raise BoundReached(self.bounds.members_bound)
                # ``offset`` is where the next header starts: past the
                # bound, reaching it would mean expanding this member.
                if self._tar.offset + tarfile.BLOCKSIZE > \
                        self.bounds.max_bytes:
                    raise BoundReached(self.bounds.bytes_bound)

    def copy(self, info: tarfile.TarInfo, out: BinaryIO) -> None:
        """Copy the data of ``info``, the member just given by
        :meth:`members`; its size is the caller's to check first."""
        self._stream.limit = max(self._stream.limit,
                                 info.offset_data + info.size)
        with _reading():
            source = self._tar.extractfile(info)
        while True:
            with _reading():
                chunk = source.read(COPY_CHUNK)
            if not chunk:
                return
            out.write(chunk)


@contextmanager
def scan(path: str, bounds: ScanBounds) -> Iterator[TarScan]:
    """Open the tar at ``path`` for one bounded pass (:class:`TarScan`).

    Raises :class:`UnreadableTar` or :class:`BoundReached` (also from the
    scan's methods).
    """
    with ExitStack() as stack:
        with _reading():
            raw = stack.enter_context(open(path, 'rb'))
            expanded = stack.enter_context(expanded_stream(raw))
            stream = _CappedStream(expanded, bounds.max_bytes,
                                   bounds.bytes_bound)
            tar = stack.enter_context(tarfile.open(fileobj=stream,
                                                   mode='r|'))
        yield TarScan(tar, stream, bounds)
