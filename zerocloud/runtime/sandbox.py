"""The guest's filesystem for one run, and the OS-level wall around it.

Layout: a per-run directory ``.zvm-run-*`` is created next to the manifest
(so the caller chooses the filesystem, e.g. Swift's ``<devices>/<dev>/tmp``)
and removed after the run.  It holds

* ``root/``: the guest's ``/``, preopened read-only: empty, or the image
  named by an nvram ``[fstab]`` entry with ``mountpoint=/``; other mount
  points get their own read-only directory;
* ``dev/``: the guest's ``/dev``; every channel except stdio appears there
  under its alias (``/dev/in/<node>`` in subdirectories).  It is writable
  only when the run has a write channel there;
* ``tmp/``: the guest's writable ``/tmp`` (absent when ``Scratch=0``).

Two walls keep a read channel (for example a Swift ``.data`` file, mode 0600)
from being changed by the guest:

1. ``zerocloud.runtime.guard`` refuses, by inode, WASI calls that would open a
   read channel for writing, truncate, rename, unlink or re-time it.
2. OS level.  When the process is root (or has CAP_SYS_ADMIN) the calling
   thread enters a private mount namespace once (``unshare(CLONE_NEWNS)``,
   ``/`` made recursively slave so nothing propagates back) and every read
   channel is bind-mounted *read-only* onto a placeholder in ``dev/``, so the
   kernel answers EROFS even if wall 1 had a bug; ``/tmp`` is a ``tmpfs``
   of exactly ``Scratch`` bytes.  Mounts are detached after the run and die
   with the namespace if the worker dies.  Without that privilege, read
   channels are *copied* into ``dev/`` (regular files up to 256 MiB, and
   ``/dev/null``; larger files or other devices are refused with status
   ``channel <alias>: read channel needs a private mount namespace (run as
   root)``, EPERM 1) and ``/tmp`` usage is checked after the run.

Write channels are created (mode 0600) or truncated on the host, then hard
linked into ``dev/``; across filesystems they are bind-mounted read-write
(root) or written to a file in ``dev/`` and copied to the host path after the
run (non-root).  A channel on a directory, socket or block device is refused
(EPROTONOSUPPORT 93); a missing read file is ``channel <alias>: cannot open:
<reason>`` (EFAULT 14).
"""

import ctypes
import errno
import os
import shutil
import stat
import tempfile
import threading
from typing import Dict, List, Optional, Tuple

from zerocloud.runtime.errors import SessionFailure
from zerocloud.runtime.manifest import Channel

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_NOSUID = 2
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_SLAVE = 1 << 19
MNT_DETACH = 2
MAX_COPIED_READ_CHANNEL = 256 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_namespace = threading.local()


def _mount(source: Optional[str], target: str, fstype: Optional[str],
           flags: int, data: Optional[str] = None) -> None:
    encode = (lambda s: s.encode() if s is not None else None)
    if _libc.mount(encode(source), encode(target), encode(fstype), flags,
                   encode(data)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), target)


def _umount(target: str) -> None:
    _libc.umount2(target.encode(), MNT_DETACH)


def private_mounts() -> bool:
    """True when this thread may bind-mount privately (entered once)."""
    ready = getattr(_namespace, 'ready', None)
    if ready is None:
        ready = False
        if os.geteuid() == 0 and _libc.unshare(CLONE_NEWNS) == 0:
            try:
                _mount(None, '/', None, MS_REC | MS_SLAVE)
                ready = True
            except OSError:
                ready = False
        _namespace.ready = ready
    return ready


def _host_kind(channel: Channel) -> str:
    """'file', 'char', 'fifo' or 'missing'; refuses unusable objects."""
    try:
        mode = os.stat(channel.uri).st_mode
    except FileNotFoundError:
        return 'missing'
    except OSError as err:
        raise SessionFailure('channel %s: cannot open: %s'
                             % (channel.alias, err.strerror))
    if stat.S_ISREG(mode):
        return 'file'
    if stat.S_ISCHR(mode):
        return 'char'
    if stat.S_ISFIFO(mode):
        return 'fifo'
    raise SessionFailure('channel %s: not a file, character device or fifo'
                         % channel.alias, errno.EPROTONOSUPPORT)


def prepare_host_channel(channel: Channel) -> str:
    """Check or create the host object of a channel; returns its kind."""
    kind = _host_kind(channel)
    if channel.writable and kind in ('file', 'missing'):
        flags = os.O_WRONLY | os.O_CREAT
        if not channel.readable:
            flags |= os.O_TRUNC
        try:
            os.close(os.open(channel.uri, flags, 0o600))
        except OSError as err:
            raise SessionFailure('channel %s: cannot open: %s'
                                 % (channel.alias, err.strerror),
                                 err.errno or errno.EIO)
        return 'file'
    if kind == 'missing':
        raise SessionFailure('channel %s: cannot open: No such file or '
                             'directory' % channel.alias)
    if channel.writable and channel.readable:
        raise SessionFailure('channel %s: a %s cannot be read and written'
                             % (channel.alias, kind), errno.EINVAL)
    return kind


class Workspace:
    """The per-run directory tree and the mounts made into it."""

    def __init__(self, parent: str, scratch: int):
        try:
            self.path = tempfile.mkdtemp(prefix='.zvm-run-', dir=parent)
        except OSError as err:
            raise SessionFailure('cannot create run directory: %s'
                                 % err.strerror, errno.EIO)
        self.private = private_mounts()
        self.root = self._mkdir('root')
        self.dev = self._mkdir('dev')
        self.tmp = self._mkdir('tmp') if scratch > 0 else None
        self.scratch = scratch
        self.mounts: List[str] = []
        self.copy_back: List[Tuple[str, str]] = []
        self.read_only: List[str] = []
        self.dev_writable = False
        self.extra_mounts: Dict[str, str] = {}
        if self.tmp and self.private:
            self._mount_scratch()

    def _mkdir(self, name: str) -> str:
        path = os.path.join(self.path, name)
        os.mkdir(path, 0o700)
        return path

    def _mount_scratch(self) -> None:
        try:
            _mount('tmpfs', self.tmp, 'tmpfs', MS_NOSUID,
                   'size=%d,mode=0700' % self.scratch)
            self.mounts.append(self.tmp)
        except OSError:
            pass  # plain directory; usage is checked after the run

    def _placeholder(self, alias: str) -> str:
        placed = os.path.join(self.dev, alias[len('/dev/'):])
        os.makedirs(os.path.dirname(placed), mode=0o700, exist_ok=True)
        return placed

    def _bind(self, source: str, target: str, read_only: bool) -> None:
        open(target, 'ab').close()
        _mount(source, target, None, MS_BIND)
        self.mounts.append(target)
        if read_only:
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)

    def add_read_channel(self, channel: Channel, kind: str) -> str:
        placed = self._placeholder(channel.alias)
        if self.private:
            try:
                self._bind(channel.uri, placed, read_only=True)
            except OSError as err:
                raise SessionFailure('channel %s: cannot bind: %s'
                                     % (channel.alias, err.strerror),
                                     errno.EIO)
        elif kind == 'file' and (os.path.getsize(channel.uri)
                                 <= MAX_COPIED_READ_CHANNEL):
            shutil.copyfile(channel.uri, placed)
            os.chmod(placed, 0o400)
        elif os.path.realpath(channel.uri) == os.devnull:
            open(placed, 'wb').close()
            os.chmod(placed, 0o400)
        else:
            raise SessionFailure('channel %s: read channel needs a private '
                                 'mount namespace (run as root)'
                                 % channel.alias, errno.EPERM)
        self.read_only.append(os.path.relpath(placed, self.dev))
        return placed

    def add_write_channel(self, channel: Channel) -> str:
        placed = self._placeholder(channel.alias)
        self.dev_writable = True
        try:
            os.link(channel.uri, placed)
            return placed
        except OSError:
            pass
        if self.private:
            try:
                self._bind(channel.uri, placed, read_only=False)
                return placed
            except OSError as err:
                raise SessionFailure('channel %s: cannot bind: %s'
                                     % (channel.alias, err.strerror),
                                     errno.EIO)
        if channel.readable:
            shutil.copyfile(channel.uri, placed)
        else:
            open(placed, 'wb').close()
        self.copy_back.append((placed, channel.uri))
        return placed

    def add_mount_dir(self, mountpoint: str) -> str:
        """Directory for an image mounted at ``mountpoint`` (not ``/``)."""
        if mountpoint in self.extra_mounts:
            raise SessionFailure('nvram: mountpoint %s used twice'
                                 % mountpoint)
        path = self._mkdir('mnt%d' % len(self.extra_mounts))
        self.extra_mounts[mountpoint] = path
        return path

    def scratch_exhausted(self) -> bool:
        """True when the guest filled (tmpfs) or overran (plain dir) /tmp."""
        if not self.tmp:
            return False
        if self.tmp in self.mounts:
            return os.statvfs(self.tmp).f_bavail == 0
        total = 0
        for folder, _, files in os.walk(self.tmp):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    pass
        return total > self.scratch

    def finish(self) -> None:
        """Copy non-root write channels back to their host paths."""
        for placed, host in self.copy_back:
            shutil.copyfile(placed, host)

    def close(self) -> None:
        """Detach every mount, then remove the run directory."""
        for target in reversed(self.mounts):
            _umount(target)
        self.mounts.clear()
        shutil.rmtree(self.path, ignore_errors=True)
