"""Tar images: safe unpacking of a user image and reading a program member.

A user image (the zapp tar, an ``image`` device) is unpacked into a per-run
directory that becomes a read-only preopen (normally the guest's ``/``).
Plain and gzip-compressed tars are accepted (gzip detected by its magic).
Unpacking refuses, each with its own status text (exit status EFAULT 14):

* ``image <alias>: not a tar file``
* ``image <alias>: absolute member name <name>``
* ``image <alias>: member name with .. <name>``
* ``image <alias>: link member <name> refused``
* ``image <alias>: special file member <name> refused`` (devices, fifos)
* ``image <alias>: member <name> larger than <n> bytes``
* ``image <alias>: more than <n> bytes unpacked``
* ``image <alias>: more than <n> members``
* ``image <alias>: member <name> clashes with a directory``
* ``image <alias>: cannot unpack member <name> (<reason>)`` (EIO 5), e.g.
  a member below a member that is a file
* ``image <alias>: unreadable tar (<reason>)`` (EIO 5)

A system image gives programs by member (``ProgramMember``): the member is
read straight from the tar at its data offset, never unpacked to disk.
Member names are read as :func:`zerocloud.tarscan.member_path` reads
them (``./bin/prog`` is ``bin/prog``), here and where the servers check
that a program exists.
"""

import errno
import functools
import os
import tarfile
from typing import Dict, List, Optional, Tuple

from zerocloud.runtime.errors import SessionFailure, reason
from zerocloud.tarscan import member_path

MAX_MEMBER_BYTES = 1 << 30
MAX_IMAGE_BYTES = 2 << 30
MAX_MEMBERS = 100000
#: System images whose member index is kept (a few per server).
INDEXED_IMAGES = 16
GZIP_MAGIC = b'\x1f\x8b'
_COPY_CHUNK = 1 << 20


def _is_gzip(path: str) -> bool:
    with open(path, 'rb') as handle:
        return handle.read(2) == GZIP_MAGIC


def _open_tar(path: str, alias: str) -> tarfile.TarFile:
    try:
        mode = 'r:gz' if _is_gzip(path) else 'r:'
        return tarfile.open(path, mode)
    except (tarfile.TarError, OSError, EOFError):
        raise SessionFailure('image %s: not a tar file' % alias)


def _check_member(alias: str, info: tarfile.TarInfo) -> str:
    name = info.name
    relative = member_path(name)
    if relative is None:
        raise SessionFailure(
            'image %s: %s %s' % (alias, 'absolute member name'
                                 if name.startswith('/') else
                                 'member name with ..', name))
    if info.issym() or info.islnk():
        raise SessionFailure('image %s: link member %s refused'
                             % (alias, name))
    if not (info.isfile() or info.isdir()):
        raise SessionFailure('image %s: special file member %s refused'
                             % (alias, name))
    if info.size > MAX_MEMBER_BYTES:
        raise SessionFailure('image %s: member %s larger than %d bytes'
                             % (alias, name, MAX_MEMBER_BYTES))
    return relative


def unpack(tar_path: str, dest: str, alias: str,
           max_bytes: int = MAX_IMAGE_BYTES) -> int:
    """Unpack ``tar_path`` into the existing dir ``dest``; returns bytes."""
    total = 0
    with _open_tar(tar_path, alias) as archive:
        try:
            for count, info in enumerate(archive, 1):
                if count > MAX_MEMBERS:
                    raise SessionFailure('image %s: more than %d members'
                                         % (alias, MAX_MEMBERS))
                relative = _check_member(alias, info)
                if not relative:
                    continue
                if info.isfile():
                    total += info.size
                    if total > max_bytes:
                        raise SessionFailure('image %s: more than %d bytes '
                                             'unpacked' % (alias, max_bytes))
                try:
                    _place_member(archive, info, os.path.join(dest, relative),
                                  alias)
                except OSError as err:
                    # str(err) would name our host path; the member is theirs.
                    raise SessionFailure(
                        'image %s: cannot unpack member %s (%s)'
                        % (alias, info.name, reason(err)), errno.EIO)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise SessionFailure('image %s: unreadable tar (%s)'
                                 % (alias, reason(err)), errno.EIO)
    return total


def _place_member(archive: tarfile.TarFile, info: tarfile.TarInfo,
                  target: str, alias: str) -> None:
    """Create the directory or file of one checked member at ``target``."""
    if info.isdir():
        os.makedirs(target, mode=0o755, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if os.path.lexists(target) and not os.path.isfile(target):
        raise SessionFailure('image %s: member %s clashes with a directory'
                             % (alias, info.name))
    source = archive.extractfile(info)
    with open(target, 'wb') as out:
        while True:
            chunk = source.read(_COPY_CHUNK)
            if not chunk:
                break
            out.write(chunk)
    os.chmod(target, 0o644)


@functools.lru_cache(maxsize=INDEXED_IMAGES)
def _member_index(tar_path: str, version: Tuple[int, int, int, int]
                  ) -> Dict[str, tarfile.TarInfo]:
    """Every member of one version (device, inode, size, mtime) of a tar
    by :func:`member_path` (``./bin/prog`` is ``bin/prog``), the last of a
    name winning as in tar."""
    index: Dict[str, tarfile.TarInfo] = {}
    with tarfile.open(tar_path, 'r:*') as tar:
        for info in tar:
            name = member_path(info.name)
            if name:
                index[name] = info
    return index


def system_member(tar_path: str, member: str
                  ) -> Optional[tarfile.TarInfo]:
    """The member of a system image (the operator's, trusted) that
    ``member`` names, or ``None``.

    A system image's headers are spread over hundreds of megabytes: reading
    them costs ~20 ms, on every run.  They are read once per version of
    the file instead (a replaced image has a new inode or mtime).
    Raises what :func:`tarfile.open` and reading raise.
    """
    return _index_of(tar_path).get(member_path(member))


def system_member_names(tar_path: str) -> List[str]:
    """The member names of a system image, read as :func:`system_member`
    reads them."""
    return list(_index_of(tar_path))


def _index_of(tar_path: str) -> Dict[str, tarfile.TarInfo]:
    stat = os.stat(tar_path)
    version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return _member_index(tar_path, version)


def _locate(tar_path: str, member: str
            ) -> Tuple[bool, tarfile.TarInfo]:
    """(gzip-compressed?, the member's header) of a program member.

    Raises SessionFailure: ENOEXEC when the file is not a tar, ENOENT when
    the member is missing or not a regular file.
    """
    try:
        compressed = _is_gzip(tar_path)
        info = system_member(tar_path, member)
    except FileNotFoundError:
        raise SessionFailure('program not found', errno.ENOENT)
    except (tarfile.TarError, EOFError, OSError):
        raise SessionFailure('program is not a tar image', errno.ENOEXEC)
    if info is None or not info.isfile():
        raise SessionFailure('program member %s not found in its image'
                             % member, errno.ENOENT)
    return compressed, info


def read_member(tar_path: str, member: str) -> bytes:
    """Bytes of ``member``, read by offset (or decompressed when gzipped)."""
    compressed, info = _locate(tar_path, member)
    size = info.size
    try:
        if compressed:
            with tarfile.open(tar_path, 'r:gz') as tar:
                data = tar.extractfile(info).read()
        else:
            with open(tar_path, 'rb') as handle:
                handle.seek(info.offset_data)
                data = handle.read(size)
    except (OSError, tarfile.TarError, EOFError) as err:
        raise SessionFailure('program member %s: cannot read it (%s)'
                             % (member, reason(err)), errno.EIO)
    if len(data) != size:
        raise SessionFailure('program member %s is truncated' % member,
                             errno.EIO)
    return data
