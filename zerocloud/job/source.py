"""Reading an execution request's body into a job description and an image.

A ``POST`` with ``X-Zerovm-Execute`` carries one of three bodies, told apart
by ``Content-Type`` (parameters after ``;`` ignored):

* ``application/json``: the job description itself, at most
  ``zerovm_maxconfig`` bytes;
* ``application/x-tar``, ``-gtar``, ``-ustar`` or ``-gzip``: a zapp, i.e. a
  plain or gzip tar holding ``boot/system.map`` (or ``boot/cluster.map``,
  which wins) of at most ``zerovm_maxconfig`` bytes among its first members
  (``zerovm_image_scan_members``, 10000) and first bytes, uncompressed
  (``zerovm_image_scan_bytes``, 64 MiB; :mod:`zerocloud.tarscan`); the whole
  tar becomes every node's user image;
* anything else: a script whose first line is a shebang naming the
  interpreter; it becomes the member ``script`` of a one-file user image.

Errors are :class:`zerocloud.job.model.JobError` with the status and message the
client sees.
"""

import io
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Iterator, Optional, Tuple

from zerocloud import protocol, tarscan
from zerocloud.cipher import CipherKey, SealedWriter, unsealed_chunks
from zerocloud.job.model import JobError

JSON_TYPE = 'application/json'
TAR_TYPES = ('application/x-tar', 'application/x-gtar', 'application/x-ustar',
             'application/x-gzip')
SYSTEM_MAPS = ('boot/cluster.map', 'boot/system.map')
SCRIPT_MEMBER = 'script'
NO_SYSTEM_MAP = 'System boot map was not found in request'
TOO_LARGE = 'Job description is larger than %d bytes'
BODY_TOO_LARGE = 'Request body is larger than %d bytes'
DISCONNECTED = 'Client disconnected before sending the whole body'
CHUNK = 65536


class NoSystemMap(JobError):
    """A tar with no system map where it was looked for: not a zapp."""


@dataclass
class Spooled:
    """Bytes kept in a local temp file: an uploaded image, a request body,
    what a node returned (sealed with ``key``: see :mod:`zerocloud.cipher`;
    read it through :meth:`chunks`)."""
    path: str
    size: int
    key: Optional[CipherKey] = None

    def chunks(self) -> Iterator[bytes]:
        if self.key is not None:
            return unsealed_chunks(self.path, self.key)
        return protocol.iter_file(self.path)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def body_kind(content_type: str) -> str:
    """``json``, ``tar`` or ``script``, by the media type alone (exact)."""
    ctype = content_type.split(';')[0].strip().lower()
    if ctype in TAR_TYPES:
        return 'tar'
    if ctype == JSON_TYPE:
        return 'json'
    return 'script'


def read_limited(read: Callable[[int], bytes], content_length: Optional[int],
                 limit: int) -> bytes:
    """Read a whole body of at most ``limit`` bytes (413 beyond, 499 short).

    ``content_length`` None: the body's length is known only at its end
    (a chunked request).
    """
    parts = []
    total = 0
    while True:
        chunk = read(CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise JobError(TOO_LARGE % limit, 413)
        parts.append(chunk)
    if content_length is not None and total != content_length:
        raise JobError('application/json POST unfinished', 499)
    return b''.join(parts)


def _copy_body(read: Callable[[int], bytes], content_length: Optional[int],
               limit: int, fp: BinaryIO) -> int:
    """Copy ``content_length`` bytes (None: all, to the end) to ``fp``.

    Returns how many; 413 beyond ``limit`` bytes, 499 for a short body.
    """
    if content_length is not None and content_length > limit:
        raise JobError(BODY_TOO_LARGE % limit, 413)
    copied = 0
    while content_length is None or copied < content_length:
        want = CHUNK if content_length is None else \
            min(CHUNK, content_length - copied)
        chunk = read(want)
        if not chunk:
            if content_length is None:
                break
            raise JobError(DISCONNECTED, 499)
        copied += len(chunk)
        if copied > limit:
            raise JobError(BODY_TOO_LARGE % limit, 413)
        fp.write(chunk)
    return copied


@contextmanager
def spool_file(spool_dir: Optional[str], prefix: str = 'zerocloud-image-',
               sealed: bool = False) -> Iterator[Tuple[Any, Spooled]]:
    """A new temp file to fill (with ``sealed``, through a writer that
    seals what it is given); removed again if filling it fails."""
    fd, path = tempfile.mkstemp(prefix=prefix, dir=spool_dir)
    spooled = Spooled(path, 0, CipherKey.fresh() if sealed else None)
    try:
        with os.fdopen(fd, 'w+b') as fp:
            yield (SealedWriter(fp, spooled.key) if spooled.key is not None
                   else fp), spooled
        spooled.size = os.path.getsize(path)
    except BaseException:
        spooled.remove()
        raise


def spool(read: Callable[[int], bytes], content_length: Optional[int],
          limit: int, spool_dir: Optional[str] = None) -> Spooled:
    """Copy a body to a temp file (see :func:`_copy_body`)."""
    with spool_file(spool_dir) as (fp, spooled):
        _copy_body(read, content_length, limit, fp)
    return spooled


def find_system_map(image: Spooled, content_type: str,
                    bounds: tarscan.ScanBounds, max_size: int) -> bytes:
    """The job description inside a zapp, looked for within ``bounds``.

    A map larger than ``max_size`` is refused (413) from its header, unread.
    Blocking: callers on the hub run it in a thread.
    """
    found: Dict[str, bytes] = {}
    ctype = content_type.split(';')[0].strip()
    try:
        with tarscan.scan(image.path, bounds) as tar:
            for member in tar.members():
                name = tarscan.member_path(member.name)
                if name not in SYSTEM_MAPS or not member.isreg():
                    continue
                if member.size > max_size:
                    raise JobError(TOO_LARGE % max_size, 413)
                data = io.BytesIO()
                tar.copy(member, data)
                found[name] = data.getvalue()
                if name == SYSTEM_MAPS[0]:
                    break
    except tarscan.UnreadableTar:
        if not found:
            raise JobError('Error reading %s stream' % ctype, 422)
    except tarscan.BoundReached as err:
        if not found:
            raise NoSystemMap('System boot map was not found within %s of '
                              'the tar' % err.bound)
    for name in SYSTEM_MAPS:
        if name in found:
            return found[name]
    raise NoSystemMap(NO_SYSTEM_MAP)


def read_script_head(read: Callable[[int], bytes]) -> bytes:
    """Read enough of a script to see its shebang line (or give up)."""
    head = b''
    while b'\n' not in head and len(head) < CHUNK:
        chunk = read(CHUNK - len(head))
        if not chunk:
            break
        head += chunk
    return head


def script_image(head: bytes, read: Callable[[int], bytes],
                 content_length: Optional[int], limit: int,
                 spool_dir: Optional[str] = None) -> Spooled:
    """Wrap a script as a tar with one member ``script`` (plus end blocks).

    The script's length may be known only at its end (a chunked request):
    its header block is written last, over the block kept for it.
    """
    buffered = io.BytesIO(head)

    def rest(size: int) -> bytes:
        return buffered.read(size) or read(size)
    with spool_file(spool_dir) as (fp, spooled):
        fp.seek(protocol.BLOCK)
        size = _copy_body(rest, content_length, limit, fp)
        fp.write(protocol.padding(size) + b'\0' * (2 * protocol.BLOCK))
        fp.seek(0)
        # A USTAR header of a short name: exactly the block kept for it.
        fp.write(protocol.member_header(SCRIPT_MEMBER, size))
    return spooled
