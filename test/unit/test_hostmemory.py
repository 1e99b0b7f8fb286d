"""The guest memory a server's sandboxes may claim, against the memory the
server can see (fake /proc and /sys/fs/cgroup texts)."""

from pathlib import Path

import pytest

from zerocloud.object.hostmemory import (
    cgroup_limit, cgroup_limit_files, meminfo_total, overcommit_warning,
    server_processes, visible_memory)
from zerocloud.object.filter import ObjectQueryMiddleware

GIB = 1 << 30
MEMINFO = ('MemTotal:        8000000 kB\n'
           'MemFree:         6000000 kB\n'
           'MemAvailable:    7000000 kB\n')
#: A cgroup v2 host: one hierarchy, named ``0::``.
CGROUP_V2 = '0::/system.slice/swift-object.service\n'
#: A hybrid host: v1 controllers, and an (empty) v2 hierarchy beside them.
CGROUP_V1 = ('5:cpu,cpuacct:/\n'
             '4:memory:/docker/abc\n'
             '0::/\n')


def test_meminfo_total_in_bytes():
    assert meminfo_total(MEMINFO) == 8000000 * 1024
    assert meminfo_total('MemFree: 1 kB\n') is None
    assert meminfo_total('') is None


def test_cgroup_v2_limit_files_cover_the_cgroup_and_its_ancestors():
    assert cgroup_limit_files(CGROUP_V2) == [
        'system.slice/swift-object.service/memory.max',
        'system.slice/memory.max',
        'memory.max']
    assert cgroup_limit_files('0::/\n') == ['memory.max']


def test_cgroup_v1_limit_files_are_the_memory_controllers():
    assert cgroup_limit_files(CGROUP_V1) == [
        'memory/docker/abc/memory.limit_in_bytes',
        'memory/docker/memory.limit_in_bytes',
        'memory/memory.limit_in_bytes',
        'memory.max']
    assert cgroup_limit_files('') == []


def test_cgroup_limit():
    assert cgroup_limit('2147483648\n') == 2 * GIB
    assert cgroup_limit('max\n') is None
    assert cgroup_limit('') is None


def fake_host(root: Path, proc_cgroup: str, limits: dict) -> tuple:
    """A /proc and a /sys/fs/cgroup holding the given texts."""
    proc, cgroup = root / 'proc', root / 'cgroup'
    (proc / 'self').mkdir(parents=True)
    (proc / 'meminfo').write_text(MEMINFO)
    (proc / 'self' / 'cgroup').write_text(proc_cgroup)
    for name, text in limits.items():
        (cgroup / name).parent.mkdir(parents=True, exist_ok=True)
        (cgroup / name).write_text(text)
    return str(proc), str(cgroup)


def test_visible_memory_is_the_smallest_limit(tmp_path):
    proc, cgroup = fake_host(tmp_path, CGROUP_V2, {
        'system.slice/swift-object.service/memory.max': 'max\n',
        'system.slice/memory.max': '%d\n' % (3 * GIB)})
    assert visible_memory(proc, cgroup) == 3 * GIB


def test_visible_memory_without_cgroup_limit_is_memtotal(tmp_path):
    proc, cgroup = fake_host(tmp_path, CGROUP_V2, {
        'system.slice/swift-object.service/memory.max': 'max\n'})
    assert visible_memory(proc, cgroup) == 8000000 * 1024


def test_visible_memory_reads_cgroup_v1(tmp_path):
    # No cgroup namespace: the mount shows the container's cgroup as its
    # root, so the limit is found there, not under /docker/abc.
    proc, cgroup = fake_host(tmp_path, CGROUP_V1, {
        'memory/memory.limit_in_bytes': '%d\n' % GIB})
    assert visible_memory(proc, cgroup) == GIB


def test_visible_memory_unknown(tmp_path):
    assert visible_memory(str(tmp_path / 'proc'),
                          str(tmp_path / 'cgroup')) is None


def test_server_processes():
    assert server_processes(None, 4) == 4
    assert server_processes('auto', 4) == 4
    assert server_processes('0', 4) == 1
    assert server_processes('3', 4) == 3
    with pytest.raises(ValueError):
        server_processes('many', 4)


def test_overcommit_warning_names_the_numbers_and_options():
    assert overcommit_warning(2, 2, GIB, 4 * GIB) is None
    assert overcommit_warning(2, 2, GIB, None) is None
    warning = overcommit_warning(2, 4, 4 * GIB, 8 * GIB)
    assert warning == (
        'zerovm_maxpool (2) x workers (4) x zerovm_maxnexemem (4294967296) '
        '= 34359738368 bytes of guest memory, more than the 8589934592 '
        'bytes this server can use; lower zerovm_maxnexemem, zerovm_maxpool '
        'or workers')


class WarningRecorder:
    def __init__(self):
        self.warnings = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def test_object_query_warns_at_start_when_sandboxes_outgrow_the_host():
    recorder = WarningRecorder()
    ObjectQueryMiddleware(None, {'workers': '3', 'zerovm_maxpool': '2',
                                 'zerovm_maxnexemem': str(1 << 50)},
                          logger=recorder)
    assert len(recorder.warnings) == 1
    assert recorder.warnings[0].startswith(
        'zerovm_maxpool (2) x workers (3) x zerovm_maxnexemem (%d) = '
        % (1 << 50))
    fitting = WarningRecorder()
    ObjectQueryMiddleware(None, {'workers': '1', 'zerovm_maxpool': '1',
                                 'zerovm_maxnexemem': str(1 << 20)},
                          logger=fitting)
    assert fitting.warnings == []
