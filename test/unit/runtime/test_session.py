"""Runtime.run with small WAT programs: channels, report, limits, cache."""

import errno
import hashlib
import os
import resource
import threading

import pytest

from zerocloud.runtime import guard, sandbox
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.limits import CacheLimits
from zerocloud.runtime.report import parse_report
from zerocloud.runtime.session import Runtime
from test.unit.runtime.helpers import (output, read_channel, write_channel,
                                       write_manifest)


def test_hello_report_lines(runtime, wat_programs, tmp_path):
    manifest = write_manifest(tmp_path, wat_programs['hello'], etag_stdout=1)
    result = runtime.run(manifest)
    assert result.exit_status == 0
    assert output(tmp_path) == b'hello\n'
    report = parse_report(result.report.render())
    assert (report.validation, report.daemon, report.retcode) == (0, 0, 0)
    assert report.etags == [('/dev/stdout',
                             hashlib.md5(b'hello\n').hexdigest())]
    reads, read_bytes, writes = report.accounting[2:5]
    # No input: what the runtime itself reads around the run, a few calls.
    assert read_bytes < 4096 and writes >= 1
    assert report.accounting[5:] == [6, 0, 0, 0, 0]
    assert report.status == 'ok'
    assert result.fuel is None
    assert [n for n in os.listdir(tmp_path) if n.startswith('.zvm')] == []


def test_skip_validation_and_no_etags(runtime, wat_programs, tmp_path):
    manifest = write_manifest(tmp_path, wat_programs['hello'])
    result = runtime.run(manifest, skip_validation=True)
    assert result.report.validation == 2
    assert result.report.etag_line() == 'disabled'


def test_validate_only_does_not_run(runtime, wat_programs, tmp_path):
    manifest = write_manifest(tmp_path, wat_programs['hello'])
    result = runtime.run(manifest, validate_only=True)
    assert (result.exit_status, result.report.status) == (0, 'ok')
    assert output(tmp_path) == b''


def test_guest_exit_code_is_report_line_3(runtime, wat_programs, tmp_path):
    result = runtime.run(write_manifest(tmp_path, wat_programs['exit7']))
    assert (result.exit_status, result.report.retcode) == (0, 7)


def test_stdin_and_dev_channels(runtime, wat_programs, tmp_path):
    stdin = tmp_path / 'in.txt'
    stdin.write_bytes(b'x' * 200000)
    data = tmp_path / 'data'
    data.write_bytes(b'channel data')
    manifest = write_manifest(
        tmp_path, wat_programs['copy'], stdin=str(stdin),
        channels=[read_channel(str(data), '/dev/input', etag=1),
                  write_channel(str(tmp_path / 'out'), '/dev/output',
                                etag=1)])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0)
    assert output(tmp_path) == b'x' * 200000
    assert output(tmp_path, 'out') == b'channel data'
    assert result.report.etags == [
        ('/dev/input', hashlib.md5(b'channel data').hexdigest()),
        ('/dev/output', hashlib.md5(b'channel data').hexdigest())]
    assert result.report.accounting[5] == 200000 + 12
    # The reads and writes the program made, counted by the kernel: at
    # least its input's bytes, and a call for each of its writes.
    reads, read_bytes, writes = result.report.accounting[2:5]
    assert read_bytes >= 200000 + 12
    assert reads >= 2 and writes >= 2


def test_dev_null_write_channel(runtime, wat_programs, tmp_path):
    data = tmp_path / 'data'
    data.write_bytes(b'to nowhere')
    manifest = write_manifest(
        tmp_path, wat_programs['copy'],
        channels=[read_channel(str(data), '/dev/input'),
                  write_channel('/dev/null', '/dev/output')])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0)


@pytest.mark.parametrize('mode,status', [
    ('u', 'guest trap: unreachable instruction executed'),
    ('s', 'guest trap: call stack exhausted'),
    ('m', 'guest trap: out of bounds memory access'),
])
def test_traps_are_clean_failures(runtime, wat_programs, tmp_path, mode,
                                  status):
    manifest = write_manifest(tmp_path, wat_programs['traps'],
                              args=['traps', mode])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.status) == (errno.EINTR,
                                                          status)


def test_memory_limit(runtime, wat_programs, tmp_path):
    manifest = write_manifest(tmp_path, wat_programs['traps'],
                              args=['traps', 'g'], memory=8 << 20)
    result = runtime.run(manifest)
    assert result.exit_status == errno.EINTR
    assert result.report.status == (
        'guest trap: unreachable instruction executed (memory limit of '
        '8388608 bytes reached)')


def test_memory_below_module_minimum(runtime, wat_programs, tmp_path):
    manifest = write_manifest(tmp_path, wat_programs['copy'], memory=65536)
    result = runtime.run(manifest)
    assert result.exit_status == errno.ENOMEM
    assert result.report.status == ('memory limit exceeded: the module needs '
                                    'more than 65536 bytes at start')


def test_timeout_stops_spinning_guest(runtime, wat_programs, tmp_path):
    threads = threading.active_count()
    manifest = write_manifest(tmp_path, wat_programs['traps'],
                              args=['traps', 'l'], timeout=1)
    # The guest loops for ever: only the timeout can end this run.
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.status) == (
        errno.EINTR, 'session timeout')
    assert threading.active_count() == threads


def test_fuel_cap_and_accounting(runtime, wat_programs, tmp_path):
    manifest = write_manifest(tmp_path, wat_programs['hello'], Fuel=10 ** 6)
    result = runtime.run(manifest)
    assert result.exit_status == 0
    assert 0 < result.fuel < 100
    manifest = write_manifest(tmp_path, wat_programs['traps'],
                              args=['traps', 'l'], Fuel=10 ** 6)
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.status) == (
        errno.EINTR, 'CPU limit exceeded')


def test_channel_write_limit(runtime, wat_programs, tmp_path):
    stdin = tmp_path / 'in.txt'
    stdin.write_bytes(b'y' * 5000)
    manifest = write_manifest(tmp_path, wat_programs['copy'],
                              stdin=str(stdin), stdout_putsize=1000)
    result = runtime.run(manifest)
    assert result.exit_status == errno.EDQUOT
    assert result.report.status == ('channel /dev/stdout: write limit '
                                    'exceeded (5000 > 1000 bytes)')


def test_disk_quota_via_rlimit(runtime, wat_programs, tmp_path):
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    manifest = write_manifest(tmp_path, wat_programs['noisy'],
                              args=['noisy', 'o'], stdout_putsize=1 << 20,
                              stderr_putsize=1 << 10, Scratch=0)
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.status) == (
        errno.EINTR, 'disk quota exceeded')
    # The cap sits one byte past putsize: exactly putsize bytes are allowed.
    assert os.path.getsize(tmp_path / 'stdout') == (1 << 20) + 1
    assert resource.getrlimit(resource.RLIMIT_FSIZE) == before


@pytest.mark.parametrize('tmpfs', [True, False])
def test_scratch_limit(runtime, wat_programs, tmp_path, monkeypatch, tmpfs):
    """A tmpfs of exactly Scratch bytes fills up; a plain directory (where
    /tmp cannot be mounted) is stopped by RLIMIT_FSIZE one byte past it,
    then counted.  Either way the same answer."""
    if tmpfs and not sandbox.private_mounts():
        pytest.skip('mounting a tmpfs needs a private mount namespace')
    if not tmpfs:
        monkeypatch.setattr(sandbox.Workspace, '_mount_scratch',
                            lambda self: None)
    manifest = write_manifest(tmp_path, wat_programs['noisy'],
                              args=['noisy', 't'], stdout_putsize=1 << 10,
                              stderr_putsize=1 << 10, Scratch=1 << 20)
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.status) == (
        errno.EDQUOT, 'scratch space exceeded (1048576 bytes)')


def test_deterministic_mode(runtime, wat_programs, tmp_path, monkeypatch):
    polls = []
    shim_poll = guard.RunGuard.poll_oneoff

    def counted_poll(self, caller, subscriptions, events, count, nevents):
        polls.append(count)
        return shim_poll(self, caller, subscriptions, events, count, nevents)
    monkeypatch.setattr(guard.RunGuard, 'poll_oneoff', counted_poll)

    def run_once(seed):
        manifest = write_manifest(tmp_path, wat_programs['clock'],
                                  etag_stdout=1, args=['clock'],
                                  Deterministic=1, Seed=seed)
        result = runtime.run(manifest)
        return result.report.etag_of('/dev/stdout'), output(tmp_path)

    first, data = run_once(7)
    # The guest's 50 ms sleep went to the shim, which never sleeps.
    assert polls == [1]
    assert run_once(7)[0] == first
    assert run_once(8)[0] != first
    assert data[:8] == bytes(8)  # nvram without [time]: the epoch
    assert data[24:32] == data[32:40]


def test_nondeterministic_clock_moves(runtime, wat_programs, tmp_path):
    manifest = write_manifest(tmp_path, wat_programs['clock'])
    runtime.run(manifest)
    data = output(tmp_path)
    assert int.from_bytes(data[:8], 'little') > 1.6e18
    assert data[24:32] != data[32:40]


@pytest.mark.parametrize('content,status,code', [
    (None, 'program not found', errno.ENOENT),
    (b'#!/bin/sh\necho hi\n', 'program is not a WebAssembly module',
     errno.ENOEXEC),
    (b'\0asm\x01\0\0\0\x99', None, errno.ENOEXEC),
])
def test_bad_programs(runtime, tmp_path, content, status, code):
    program = tmp_path / 'prog.wasm'
    if content is not None:
        program.write_bytes(content)
    result = runtime.run(write_manifest(tmp_path, str(program)))
    assert result.exit_status == code
    if status:
        assert result.report.status == status
    else:
        assert result.report.status.startswith('program failed validation')
        assert result.report.validation == 1


@pytest.mark.parametrize('wat,status', [
    ('(module (memory (export "memory") 1))',
     'program is not a WASI command: no _start or run function'),
    ('(module (import "env" "f" (func)) (memory (export "memory") 1) '
     '(func (export "_start")))', None),
])
def test_not_a_wasi_command(runtime, tmp_path, wat, status):
    import wasmtime
    program = tmp_path / 'prog.wasm'
    program.write_bytes(wasmtime.wat2wasm(wat))
    result = runtime.run(write_manifest(tmp_path, str(program)))
    assert result.exit_status == errno.ENOEXEC
    if status:
        assert result.report.status == status
    else:
        assert result.report.status.startswith(
            'program is not a WASI command: unknown import')
        assert 'env::f' in result.report.status


def test_reactor_runs_initialize_then_run(runtime, wat_programs, tmp_path):
    result = runtime.run(write_manifest(tmp_path, wat_programs['reactor']))
    assert (result.exit_status, result.report.status) == (0, 'ok')
    assert result.report.retcode == 41  # 40 + host.call's -1 + 2
    assert output(tmp_path) == b'reactor\n'


@pytest.mark.parametrize('wat', [
    '(module (memory (export "memory") 1) (func (export "run")))',
    '(module (memory (export "memory") 1) '
    '(func (export "run") (param i32) (result i32) i32.const 0))',
])
def test_run_with_wrong_signature_is_no_entry(runtime, tmp_path, wat):
    import wasmtime
    program = tmp_path / 'prog.wasm'
    program.write_bytes(wasmtime.wat2wasm(wat))
    result = runtime.run(write_manifest(tmp_path, str(program)))
    assert result.exit_status == errno.ENOEXEC
    assert result.report.status == (
        'program is not a WASI command: no _start or run function')


def test_deferring_runtime_leaves_large_modules_to_warm(
        wat_programs, tmp_path):
    from zerocloud.runtime import cache
    runtime = Runtime(cache_dir=str(tmp_path / 'cache'),
                      defer_large_compiles=True,
                      cache_limits=CacheLimits(in_run_compile_bytes=10))
    manifest = write_manifest(tmp_path, wat_programs['hello'])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.status) == (
        errno.EAGAIN, cache.STATUS_NOT_COMPILED)
    runtime.warm(wat_programs['hello'])
    assert runtime.run(manifest).report.status == 'ok'


def test_missing_read_channel(runtime, wat_programs, tmp_path):
    manifest = write_manifest(
        tmp_path, wat_programs['hello'],
        channels=[read_channel(str(tmp_path / 'nope'), '/dev/input')])
    result = runtime.run(manifest)
    assert result.exit_status == errno.EFAULT
    assert result.report.status == (
        'channel /dev/input: cannot open: No such file or directory')


def test_directory_channel_refused(runtime, wat_programs, tmp_path):
    manifest = write_manifest(
        tmp_path, wat_programs['hello'],
        channels=[read_channel(str(tmp_path), '/dev/input')])
    assert runtime.run(manifest).exit_status == errno.EPROTONOSUPPORT


def test_bad_manifest_reports(runtime, tmp_path):
    manifest = tmp_path / 'manifest'
    manifest.write_text('Version = 20130611\n')
    result = runtime.run(str(manifest))
    assert (result.exit_status, result.report.status,
            result.report.validation) == (
        errno.EFAULT, 'MANIFEST: Program not specified', 2)


def test_compiled_module_cache(wat_programs, tmp_path):
    def load(runtime):
        warm = runtime._warm_for(EngineSettings())
        return runtime.cache.load(warm.engine, warm.settings,
                                  wat_programs['hello'])

    cache_dir = tmp_path / 'cache'
    first = Runtime(str(cache_dir))
    loaded = load(first)
    assert not loaded.from_disk_cache
    assert os.listdir(cache_dir / 'user') == [os.path.basename(
        first.cache.cache_path(EngineSettings(), loaded.sha256, user=True))]
    second = Runtime(str(cache_dir))
    again = load(second)
    assert again.from_disk_cache and again.sha256 == loaded.sha256
    manifest = write_manifest(tmp_path, wat_programs['hello'])
    assert second.run(manifest).exit_status == 0


def test_no_fd_or_tempdir_leaks(runtime, wat_programs, tmp_path):
    manifest = write_manifest(
        tmp_path, wat_programs['copy'],
        channels=[write_channel(str(tmp_path / 'out'), '/dev/output')])
    runtime.run(manifest)
    fds = len(os.listdir('/proc/self/fd'))
    threads = threading.active_count()
    for _ in range(5):
        runtime.run(manifest)
    assert len(os.listdir('/proc/self/fd')) == fds
    assert threading.active_count() == threads
    assert sorted(os.listdir(tmp_path)) == ['manifest', 'out', 'stderr',
                                            'stdout']


def test_memory_etag_is_stable(runtime, wat_programs, tmp_path):
    digests = set()
    for _ in range(2):
        manifest = write_manifest(tmp_path, wat_programs['hello'])
        with open(manifest) as handle:
            text = handle.read().replace('Memory = %d, 0' % (256 << 20),
                                         'Memory = %d, 1' % (256 << 20))
        with open(manifest, 'w') as handle:
            handle.write(text)
        result = runtime.run(manifest)
        assert [a for a, _ in result.report.etags] == ['/dev/memory']
        digests.add(result.report.etag_of('/dev/memory'))
    assert len(digests) == 1
