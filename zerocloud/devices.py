"""Storage for the all-in-one cluster's devices that holds what Swift writes.

Swift keeps an object's metadata in ``user.*`` extended attributes of its
file, in values of up to 64 KiB (the chunk size of its ``write_metadata``).
An object with the most metadata Swift allows (``max_meta_overall_size``),
encrypted at rest, needs more than ext4 gives the attributes of one file
(one 4 KiB block): ``setxattr`` fails with "No space left on device", the
object servers answer 507 and the proxy error-limits them, so later PUTs
get 503.  tmpfs and XFS hold 64 KiB values.

:func:`attach` probes the devices directory by setting one 64 KiB
attribute on a file in it.  Where that fails and we are root, it does what
Swift's SAIO guide does: a sparse XFS image file beside the devices
directory (``<workdir>/srv.xfs``, 8 GiB at most, its blocks taken as data
is stored), made once with ``mkfs.xfs`` (Debian's ``xfsprogs``) and
loop-mounted on the devices directory at every start; whatever an older
launcher stored there on the short filesystem is moved in first.
:func:`detach` unmounts it when the cluster stops (a launcher killed with
SIGKILL leaves it mounted: the next start adopts it, or ``umount
<workdir>/srv`` releases it).  Where no such storage can be had (not root,
no ``mkfs.xfs``, mounting refused), :func:`attach` raises
:class:`StorageError` with one line saying why and what to do.
"""

import os
import shutil
import subprocess
import tempfile
from typing import Optional

#: Swift's largest single metadata value (``write_metadata``'s xattr_size).
XATTR_PROBE_BYTES = 65536
XATTR_PROBE_NAME = 'user.zerocloud.probe'
IMAGE_BYTES = 8 << 30
IMAGE_SUFFIX = '.xfs'
#: Where the old content of the devices directory waits while it is moved.
MOVING_SUFFIX = '.moving'
MKFS = 'mkfs.xfs'
MKFS_PACKAGE = 'xfsprogs'


class StorageError(Exception):
    """One line: why the devices cannot be given enough xattr room."""


def xattr_shortfall(directory: str) -> Optional[str]:
    """None if files in ``directory`` take a 64 KiB ``user.*`` attribute,
    else the reason they do not."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory) as probe:
            os.setxattr(probe.name, XATTR_PROBE_NAME,
                        b'\0' * XATTR_PROBE_BYTES)
    except OSError as err:
        return err.strerror or str(err)
    return None


def holds_swift_metadata(directory: str) -> bool:
    return xattr_shortfall(directory) is None


def image_path(devices_root: str) -> str:
    return os.path.realpath(devices_root) + IMAGE_SUFFIX


def attach(devices_root: str) -> bool:
    """Make ``devices_root`` hold Swift's metadata; True when it is our
    image, mounted there (then :func:`detach` it when done)."""
    os.makedirs(devices_root, exist_ok=True)
    if _backing_file(devices_root) == image_path(devices_root):
        return True  # left mounted by a launcher that was killed
    shortfall = xattr_shortfall(devices_root)
    if shortfall is None:
        return False
    advice = 'or use --workdir on tmpfs or XFS (e.g. /dev/shm/saio)'
    if os.path.ismount(devices_root):
        raise StorageError(
            'the filesystem mounted on %s cannot hold the 64 KiB extended '
            'attributes Swift writes (%s); mount tmpfs or XFS there %s'
            % (devices_root, shortfall, advice))
    if os.geteuid() != 0:
        raise StorageError(
            '%s cannot hold the 64 KiB extended attributes Swift writes for '
            'an object with the most metadata it allows (%s); run as root to '
            'use a loop-mounted XFS image there, %s'
            % (devices_root, shortfall, advice))
    _mount_image(devices_root)
    shortfall = xattr_shortfall(devices_root)
    if shortfall is not None:
        detach(devices_root)
        raise StorageError('the XFS image mounted on %s still cannot hold '
                           '64 KiB extended attributes (%s)'
                           % (devices_root, shortfall))
    return True


def detach(devices_root: str) -> None:
    """Unmount our image from ``devices_root`` if it is mounted there."""
    if _backing_file(devices_root) == image_path(devices_root):
        subprocess.run(['umount', devices_root], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def _mount_image(devices_root: str) -> None:
    image = image_path(devices_root)
    if not os.path.exists(image):
        _make_image(image)
    moving = os.path.realpath(devices_root) + MOVING_SUFFIX
    moved = bool(os.listdir(devices_root))
    if moved:
        os.rename(devices_root, moving)
        os.mkdir(devices_root)
    try:
        _run(['mount', '-o', 'loop,noatime', image, devices_root],
             'cannot loop-mount %s on %s' % (image, devices_root))
    except StorageError:
        if moved:
            os.rmdir(devices_root)
            os.rename(moving, devices_root)
        raise
    if os.path.isdir(moving):
        # Objects stored by an older launcher on the short filesystem:
        # copied with their xattrs, then the old copy is removed.
        shutil.copytree(moving, devices_root, symlinks=True,
                        dirs_exist_ok=True)
        shutil.rmtree(moving)


def _make_image(image: str) -> None:
    mkfs = shutil.which(MKFS) or shutil.which(MKFS, path='/usr/sbin:/sbin')
    if mkfs is None:
        raise StorageError(
            '%s not found: install the Debian package %s (apt-get install '
            '%s) so the devices get an XFS image, or use --workdir on tmpfs '
            'or XFS' % (MKFS, MKFS_PACKAGE, MKFS_PACKAGE))
    partial = image + '.new'
    with open(partial, 'wb') as handle:
        handle.truncate(IMAGE_BYTES)
    _run([mkfs, '-q', '-f', partial], 'mkfs.xfs on %s failed' % partial)
    os.rename(partial, image)


def _run(argv: list[str], failure: str) -> None:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if done.returncode != 0:
        lines = done.stdout.strip().splitlines() or ['exit status %d'
                                                     % done.returncode]
        raise StorageError('%s: %s; use --workdir on tmpfs or XFS instead'
                           % (failure, lines[-1]))


def _backing_file(mount_point: str) -> Optional[str]:
    """The file behind the loop device mounted at ``mount_point``, if any."""
    source = None
    target = os.path.realpath(mount_point)
    try:
        with open('/proc/self/mountinfo') as mounts:
            for line in mounts:
                fields = line.split()
                separator = fields.index('-')
                if _unescape(fields[4]) == target:
                    source = fields[separator + 2]  # the last mount wins
    except (OSError, ValueError):
        return None
    if source is None or not source.startswith('/dev/loop'):
        return None
    try:
        with open('/sys/block/%s/loop/backing_file'
                  % os.path.basename(source)) as backing:
            return backing.read().strip()
    except OSError:
        return None


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal."""
    return (field.replace('\\040', ' ').replace('\\011', '\t')
            .replace('\\012', '\n').replace('\\134', '\\'))
