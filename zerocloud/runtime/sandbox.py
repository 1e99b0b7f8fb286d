"""The guest's filesystem for one run, and the OS-level wall around it.

Layout: a per-run directory ``.zvm-run-*`` is created next to the manifest
(so the caller chooses the filesystem, e.g. Swift's ``<devices>/<dev>/tmp``)
and removed after the run.  It holds

* ``root/``: the guest's ``/``, preopened read-only: empty, or the image
  named by an nvram ``[fstab]`` entry with ``mountpoint=/``; other mount
  points get their own read-only directory;
* ``dev/``: the guest's ``/dev``; every channel except stdio appears there
  under its alias (``/dev/in/<node>`` in subdirectories).  It is writable
  only when the run has a write channel there, and then only its channels
  are: no entry can be added, removed or renamed (see below);
* ``tmp/``: the guest's writable ``/tmp`` (absent when ``Scratch=0``).

Two walls keep a read channel (for example a Swift ``.data`` file, mode 0600)
from being changed by the guest, and ``/dev`` holding exactly the channels
(a file made beside them would be counted by no output or scratch limit, and
a channel swapped for a link could make the host copy a host file):

1. ``zerocloud.runtime.guard`` refuses, by inode, WASI calls that would open a
   read channel for writing, truncate or re-time it, and every call that
   would create, link, unlink or rename an entry of ``/dev``.
2. OS level.  When the process is root (or has CAP_SYS_ADMIN) the calling
   thread enters a private mount namespace once (``unshare(CLONE_NEWNS)``,
   ``/`` made recursively slave so nothing propagates back) and every
   channel is bind-mounted onto a placeholder in ``dev/``, read channels
   *read-only*, so the kernel answers EROFS even if wall 1 had a bug; once
   the channels are in place ``dev/`` itself is bind-mounted read-only onto
   itself (``Workspace.fix_dev``), so the kernel refuses any new, removed or
   renamed entry while the write channels' own mounts stay writable.
   ``/tmp`` is a ``tmpfs`` of exactly ``Scratch`` bytes.  Mounts are
   detached after the run and die with the namespace if the worker dies.
   Without that privilege, read channels are *copied* into ``dev/``
   (regular files up to 256 MiB, and ``/dev/null``; larger files or other
   devices are refused with status ``channel <alias>: read channel needs a
   private mount namespace (run as root)``, EPERM 1), the directories of
   ``dev/`` are made mode 0500 (entries fixed for a non-root process) and
   ``/tmp`` usage is checked after the run.

Write channels are created (mode 0600) or truncated on the host, then
bind-mounted read-write (root) or hard linked into ``dev/`` (non-root).
Across filesystems, non-root, they are written to a file in ``dev/`` and
copied to the host path after the run: only when that is still the regular
file placed there, opened without following any link (otherwise the run
fails with ``channel <alias>: replaced by the program``, EPERM 1).  A channel
on a directory, socket or block device is refused (EPROTONOSUPPORT 93); a
missing read file is ``channel <alias>: cannot open: <reason>`` (EFAULT
14).
"""

import ctypes
import errno
import os
import shutil
import stat
import tempfile
import threading
from typing import Dict, List, Optional, Tuple

from zerocloud.runtime.errors import SessionFailure, reason
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
FIXED_FOLDER_MODE = 0o500

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
        self.copy_back: List[Tuple[Channel, str]] = []
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

    def add_read_channel(self, channel: Channel, kind: str,
                         stand_in: bool = False) -> str:
        """Place a read channel: a read-only bind mount (root), or a copy
        of a small file.  With ``stand_in`` the host serves every read
        (a FIFO: ``zerocloud.runtime.served``): an empty file only names
        it, and opening it never waits for the FIFO's writer."""
        placed = self._placeholder(channel.alias)
        if stand_in:
            open(placed, 'wb').close()
            os.chmod(placed, 0o400)
        elif self.private:
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

    def add_write_channel(self, channel: Channel, served: bool = False,
                          stand_in: bool = False) -> str:
        """Place a write channel: a bind mount (root, so it stays writable
        under the read-only ``dev/`` of ``fix_dev``), a hard link, or a
        file copied back after the run.  A ``served`` one is written by
        the host straight into its host file (``zerocloud.runtime.
        served``): its place only names it, nothing is copied back; with
        ``stand_in`` (a FIFO, every write served) an empty file does."""
        placed = self._placeholder(channel.alias)
        self.dev_writable = True
        if stand_in:
            open(placed, 'wb').close()
            if self.private:
                # Its own mount, so it stays open for writing under the
                # read-only dev/ of fix_dev.
                self._bind(placed, placed, read_only=False)
            return placed
        if self.private:
            try:
                self._bind(channel.uri, placed, read_only=False)
                return placed
            except OSError as err:
                raise SessionFailure('channel %s: cannot bind: %s'
                                     % (channel.alias, err.strerror),
                                     errno.EIO)
        try:
            os.link(channel.uri, placed)
            return placed
        except OSError:
            pass
        if channel.readable:
            shutil.copyfile(channel.uri, placed)
        else:
            open(placed, 'wb').close()
        if not served:
            self.copy_back.append((channel, placed))
        return placed

    def dev_folders(self) -> List[str]:
        """``dev/`` and its subdirectories, relative to ``dev/``."""
        return [os.path.relpath(folder, self.dev)
                for folder, _, _ in os.walk(self.dev)]

    def fix_dev(self) -> None:
        """Once every channel is placed: no entry of ``dev/`` may be added,
        removed or renamed any more (wall 2 of the module docstring)."""
        for relative in self.dev_folders():
            os.chmod(os.path.join(self.dev, relative), FIXED_FOLDER_MODE)
        if not self.private:
            return
        try:
            _mount(self.dev, self.dev, None, MS_BIND | MS_REC)
            self.mounts.append(self.dev)
            _mount(None, self.dev, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        except OSError as err:
            raise SessionFailure('cannot make /dev read-only: %s'
                                 % reason(err), errno.EIO)

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
        for channel, placed in self.copy_back:
            _copy_placed_file(channel, placed, self.dev)

    def close(self) -> None:
        """Detach every mount, then remove the run directory."""
        for target in reversed(self.mounts):
            _umount(target)
        self.mounts.clear()
        for folder, _, _ in os.walk(self.dev):
            os.chmod(folder, 0o700)
        shutil.rmtree(self.path, ignore_errors=True)


def _open_without_links(root: str, relative: str) -> int:
    """Read-only descriptor of ``root/relative`` that follows no symlink on
    the way (``relative`` is an alias below ``/dev``: no ``.`` or ``..``).
    Non-blocking, so a FIFO the guest made cannot stall the host."""
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        *parents, name = relative.split('/')
        for part in parents:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY |
                            os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                       dir_fd=folder)
    finally:
        os.close(folder)


def _copy_placed_file(channel: Channel, placed: str, dev: str) -> None:
    """Copy a write channel's file in ``dev`` to its host path, only if it
    is still a regular file reached without any link: never a host file a
    guest's symlink points to."""
    replaced = SessionFailure('channel %s: replaced by the program'
                              % channel.alias, errno.EPERM)
    try:
        source = _open_without_links(dev, os.path.relpath(placed, dev))
    except OSError:
        raise replaced
    with os.fdopen(source, 'rb') as reader:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise replaced
        with open(channel.uri, 'wb') as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
