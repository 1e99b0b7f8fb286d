"""How much memory a storage server's sandboxes may claim, against how much
the server can have.

Each server process runs up to ``zerovm_maxpool`` sandboxes and each may
grow its guest memory to ``zerovm_maxnexemem``; a server runs ``workers``
processes.  A filter cannot know what else runs on the machine (other
servers, their sandboxes), so it only warns when its own worst case
already exceeds the memory it can see: the smallest cgroup memory limit
that applies to it, or the machine's RAM.  (With Swift's
``servers_per_port`` an object server runs that many processes per disk
port; only ``workers`` is counted here.)
"""

import os
import posixpath
from typing import Callable, List, Optional

from swift.common.utils import config_auto_int_value

#: cgroup v2 (one hierarchy) and v1 (the ``memory`` controller's own).
CGROUP_V2_LIMIT = 'memory.max'
CGROUP_V1_LIMIT = 'memory.limit_in_bytes'


def meminfo_total(text: str) -> Optional[int]:
    """``MemTotal`` of a ``/proc/meminfo`` text, in bytes."""
    for line in text.splitlines():
        name, _, value = line.partition(':')
        fields = value.split()
        if name == 'MemTotal' and fields and fields[0].isdigit():
            return int(fields[0]) * (1024 if fields[1:] == ['kB'] else 1)
    return None


def cgroup_limit_files(proc_self_cgroup: str) -> List[str]:
    """Memory limit files, relative to ``/sys/fs/cgroup``, of the process's
    cgroup and all its ancestors (from a ``/proc/self/cgroup`` text).

    Every ancestor's limit binds too.  Walking up to the hierarchy's root
    also finds the limit when the cgroup path is the host's but the mount
    shows only the container's own cgroup (no cgroup namespace).
    """
    files = []
    for line in proc_self_cgroup.splitlines():
        fields = line.split(':', 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == '0' and controllers == '':
            mount, limit = '', CGROUP_V2_LIMIT
        elif 'memory' in controllers.split(','):
            mount, limit = controllers, CGROUP_V1_LIMIT
        else:
            continue
        parts = [part for part in path.split('/') if part]
        for depth in range(len(parts), -1, -1):
            files.append(posixpath.join(mount, *parts[:depth], limit))
    return files


def cgroup_limit(text: str) -> Optional[int]:
    """A limit file's value in bytes; ``max`` (no limit) gives ``None``."""
    value = text.strip()
    return int(value) if value.isdigit() else None


def _read(path: str) -> str:
    """A small text file's content; '' when it cannot be read."""
    try:
        with open(path) as fp:
            return fp.read()
    except OSError:
        return ''


def visible_memory(proc: str = '/proc',
                   cgroup_root: str = '/sys/fs/cgroup') -> Optional[int]:
    """Bytes this process may use at most: the smallest of the machine's
    RAM and the cgroup limits that apply (``None`` when nothing says)."""
    amounts = [meminfo_total(_read(os.path.join(proc, 'meminfo')))]
    for name in cgroup_limit_files(
            _read(os.path.join(proc, 'self', 'cgroup'))):
        amounts.append(cgroup_limit(_read(os.path.join(cgroup_root, name))))
    known = [amount for amount in amounts if amount is not None]
    return min(known) if known else None


def server_processes(workers: Optional[str], cpu_count: int) -> int:
    """Processes a Swift server runs for its ``workers`` option (unset or
    ``auto``: one per CPU; ``0``: the server runs in one process)."""
    return max(1, config_auto_int_value(workers, cpu_count))


def overcommit_warning(pool: int, processes: int, cap: int,
                       memory: Optional[int]) -> Optional[str]:
    """A log line when ``pool`` × ``processes`` sandboxes at ``cap`` bytes
    each could claim more than ``memory``; ``None`` when they fit."""
    claim = pool * processes * cap
    if memory is None or claim <= memory:
        return None
    return ('zerovm_maxpool (%d) x workers (%d) x zerovm_maxnexemem (%d) = '
            '%d bytes of guest memory, more than the %d bytes this server '
            'can use; lower zerovm_maxnexemem, zerovm_maxpool or workers'
            % (pool, processes, cap, claim, memory))


#: Filesystems whose files live in memory only.
RAM_FILESYSTEMS = ('tmpfs', 'ramfs')


def filesystem_type(path: str, proc_mounts: str) -> Optional[str]:
    """The type of the filesystem ``path`` (absolute, resolved) is on, from
    a ``/proc/self/mounts`` text: the longest mount point containing it."""
    best, kind = '', None
    for line in proc_mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        # Mount points escape blanks as octal (\040).
        point = fields[1].encode().decode('unicode_escape')
        inside = path == point or path.startswith(point.rstrip('/') + '/')
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def not_in_ram_warning(path: str, proc: str = '/proc') -> Optional[str]:
    """A log line when ``zerovm_ram_dir`` is not on a RAM filesystem: the
    plaintext inputs kept there would reach a disk."""
    real = os.path.realpath(path)
    kind = filesystem_type(real, _read(os.path.join(proc, 'self', 'mounts')))
    if kind in RAM_FILESYSTEMS:
        return None
    return ('zerovm_ram_dir %s is on %s, not tmpfs: node inputs (decrypted '
            'objects among them) are written to that filesystem'
            % (path, kind or 'an unknown filesystem'))


#: Directories of nodes in ``zerovm_ram_dir``: ``<prefix><pid>-<random>``,
#: the pid of the server process that made it.
NODE_DIR_PREFIX = 'zerocloud-node-'


def node_dir_prefix(pid: int) -> str:
    return '%s%d-' % (NODE_DIR_PREFIX, pid)


def orphaned_node_dirs(names: List[str], alive: Callable[[int], bool]
                       ) -> List[str]:
    """Node directories (of ``names``) whose server process is gone: a
    server killed mid-run leaves its nodes' plaintext inputs in RAM."""
    orphans = []
    for name in names:
        if not name.startswith(NODE_DIR_PREFIX):
            continue
        pid = name[len(NODE_DIR_PREFIX):].split('-', 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            orphans.append(name)
    return orphans


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
