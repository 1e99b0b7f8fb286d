"""SandboxPool with real sandbox workers running small WASI programs."""

import hashlib

import eventlet
import pytest
import wasmtime

from zerocloud.runtime.pool import EXIT_KILLED, PoolFull, STATUS_KILLED
from zerocloud.runtime.session import Runtime

from test.unit.runtime_pool.conftest import (
    process_gone, saw_every_worker_busy)

HELLO_WAT = '''
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1)
                          (i32.const 8)))))
'''
SPIN_WAT = '''
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop br 0)))
'''


@pytest.fixture
def programs(tmp_path):
    paths = {}
    for name, wat in (('hello', HELLO_WAT), ('spin', SPIN_WAT)):
        path = tmp_path / (name + '.wasm')
        path.write_bytes(wasmtime.wat2wasm(wat))
        paths[name] = str(path)
    return paths


@pytest.fixture
def manifest(tmp_path):
    """Write a manifest for a program; returns (manifest path, run dir)."""
    counter = iter(range(10 ** 6))

    def write(program: str, timeout: int = 5):
        run_dir = tmp_path / ('run-%d' % next(counter))
        run_dir.mkdir()
        text = '\n'.join([
            'Version=20130611',
            'Program=%s' % program,
            'Timeout=%d' % timeout,
            'Memory=67108864,0',
            'Channel=/dev/null,/dev/stdin,0,0,1024,1048576,0,0',
            'Channel=%s/stdout,/dev/stdout,0,1,0,0,1024,1048576' % run_dir,
            'Channel=%s/stderr,/dev/stderr,0,0,0,0,1024,1048576' % run_dir,
        ]) + '\n'
        path = run_dir / 'manifest'
        path.write_text(text)
        return str(path), run_dir
    return write


@pytest.fixture
def real_pool(make_pool, tmp_path, programs):
    """A pool of real workers; with ``compiled``, the programs are in its
    module cache already, so a run's timeout is the guest's alone (a
    compile in a child process takes seconds on a loaded machine)."""
    def make(size=1, queue=0, kill_timeout=1.0, wall_clock='exit',
             compiled=True):
        cache_dir = str(tmp_path / 'modules')
        if compiled:
            runtime = Runtime(cache_dir, wall_clock=wall_clock)
            for program in programs.values():
                runtime.warm(program)
        return make_pool(size, queue, kill_timeout, cache_dir=cache_dir,
                         wall_clock=wall_clock)
    return make


def test_run_reports_and_writes_stdout_in_a_reused_worker(
        real_pool, programs, manifest):
    pool = real_pool()
    path, run_dir = manifest(programs['hello'])
    result = pool.run(path, 5)
    assert result.exit_status == 0, result.report.status
    assert result.report.ok
    assert result.report.retcode == 0
    assert (run_dir / 'stdout').read_bytes() == b'hi\n'
    assert result.report.etag_of('/dev/stdout') == hashlib.md5(
        b'hi\n').hexdigest()
    [pid] = pool.worker_pids()
    path, run_dir = manifest(programs['hello'])
    assert pool.run(path, 5).report.ok
    assert (run_dir / 'stdout').read_bytes() == b'hi\n'
    assert pool.worker_pids() == [pid]


@pytest.mark.parametrize('wall_clock', ['epoch', 'exit'])
def test_concurrent_runs_use_two_workers(real_pool, programs, manifest,
                                         wall_clock):
    pool = real_pool(size=2, wall_clock=wall_clock)
    warmups = [eventlet.spawn(pool.run, manifest(programs['hello'])[0], 5)
               for _ in range(2)]
    assert all(run.wait().report.ok for run in warmups)
    pids = pool.worker_pids()
    spins = [eventlet.spawn(pool.run, manifest(programs['spin'], 1)[0], 1)
             for _ in range(2)]
    assert saw_every_worker_busy(pool, spins), 'the spins did not overlap'
    results = [run.wait() for run in spins]
    # the runtime's own timeout ends each spin; the pool never had to kill
    assert [r.report.status for r in results] == ['session timeout'] * 2
    assert [r.exit_status for r in results] == [4, 4]
    if wall_clock == 'epoch':  # interrupted guests, workers live on
        assert sorted(pool.worker_pids()) == sorted(pids)
    else:  # each worker answered, exited and was reaped
        assert pool.worker_pids() == []
        assert all(process_gone(pid) for pid in pids)


@pytest.mark.parametrize('wall_clock', ['epoch', 'exit'])
def test_timeout_then_the_next_run_works(real_pool, programs, manifest,
                                         wall_clock):
    # kill_timeout 5: the last-resort kill would come at 6 s, not 1 s
    pool = real_pool(kill_timeout=5.0, wall_clock=wall_clock)
    assert pool.run(manifest(programs['hello'])[0], 5).report.ok
    [old_pid] = pool.worker_pids()
    result = pool.run(manifest(programs['spin'], 1)[0], 1)
    # The runtime's own 'session timeout', not the kill path's 'Killed'.
    assert (result.exit_status, result.report.status) == (
        EXIT_KILLED, 'session timeout')
    assert result.report.validation == 0 and result.fuel is None
    assert process_gone(old_pid) == (wall_clock == 'exit')
    path, run_dir = manifest(programs['hello'])
    assert pool.run(path, 5).report.ok
    assert (run_dir / 'stdout').read_bytes() == b'hi\n'
    [new_pid] = pool.worker_pids()
    assert (new_pid == old_pid) == (wall_clock == 'epoch')


def test_pool_full_while_the_only_worker_spins(real_pool, programs, manifest):
    pool = real_pool(size=1, queue=0)
    spinning = eventlet.spawn(pool.run, manifest(programs['spin'], 1)[0], 1)
    eventlet.sleep(0)
    with pytest.raises(PoolFull):
        pool.run(manifest(programs['hello'])[0], 5)
    assert spinning.wait().report.status == 'session timeout'
    assert pool.run(manifest(programs['hello'])[0], 5).report.ok


def test_worker_overrunning_the_deadline_is_killed(
        real_pool, programs, manifest):
    pool = real_pool(kill_timeout=0.5)
    assert pool.run(manifest(programs['hello'])[0], 5).report.ok
    [old_pid] = pool.worker_pids()
    # the manifest allows 30 s but the caller's deadline is 0.5 + 0.5 s
    result = pool.run(manifest(programs['spin'], 30)[0], 0.5)
    assert result.report.status == STATUS_KILLED
    assert result.exit_status == EXIT_KILLED
    assert process_gone(old_pid)
    path, run_dir = manifest(programs['hello'])
    assert pool.run(path, 5).report.ok
    assert (run_dir / 'stdout').read_bytes() == b'hi\n'
    assert pool.worker_pids() != [old_pid]


def test_warm_then_run_and_close_leaves_no_processes(
        real_pool, programs, manifest, tmp_path):
    pool = real_pool(size=2, compiled=False)
    pool.warm(programs['hello'])
    assert any((tmp_path / 'modules').rglob('*.cwasm'))
    runs = [eventlet.spawn(pool.run, manifest(programs['hello'])[0], 5)
            for _ in range(2)]
    assert all(run.wait().report.ok for run in runs)
    pids = pool.worker_pids()
    assert len(pids) == 2
    pool.close()
    assert all(process_gone(pid) for pid in pids)
