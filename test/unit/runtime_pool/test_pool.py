"""SandboxPool admission, reuse, kill and reaping, against a fake worker."""

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time

import eventlet
import pytest

from zerocloud.runtime import pool as pool_module
from zerocloud.cipher import CipherKey
from zerocloud.runtime.pool import PoolFull, SandboxPool, SandboxWorkerError

from test.unit.runtime_pool.conftest import (
    process_gone, saw_every_worker_busy, write_executable)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def test_run_returns_the_workers_report_and_reuses_the_worker(
        make_pool, fake_python, command):
    pool = make_pool(2, 0, 1.0, python=fake_python)
    assert pool.worker_pids() == []  # lazy: nothing started yet
    first = pool.run(command('ok 3'), 5)
    assert first.exit_status == 0
    assert first.report.ok and first.report.retcode == 3
    assert first.fuel == 7
    [pid] = pool.worker_pids()
    second = pool.run(command('ok 4'), 5, validate_only=True)
    assert second.report.retcode == 4
    assert second.report.status == 'validated only'
    assert pool.worker_pids() == [pid]


def test_cipher_keys_reach_the_worker_with_the_run(
        make_pool, fake_python, command):
    pool = make_pool(1, 0, 1.0, python=fake_python)
    key = CipherKey(b'k' * 32, b'i' * 16)
    result = pool.run(command('ciphers'), 5,
                      ciphers={'/dev/input': key, '/dev/stdin': key})
    digest = hashlib.sha256(key.key + key.iv).hexdigest()[:8]
    assert result.report.status == '/dev/input=%s /dev/stdin=%s' % (
        digest, digest)
    assert pool.run(command('ciphers'), 5).report.status == ''
    assert pool.run(command('tees'), 5, tees={
        '/dev/output': '/ram/tee.output'}).report.status == \
        '/dev/output=/ram/tee.output'


def test_concurrent_green_runs_use_separate_workers(
        make_pool, fake_python, command):
    pool = make_pool(2, 0, 1.0, python=fake_python)
    pool.run(command('ok 0'), 5)  # start one warm worker first
    runs = [eventlet.spawn(pool.run, command('sleep 0.6'), 5)
            for _ in range(2)]
    assert saw_every_worker_busy(pool, runs), 'the runs did not overlap'
    assert [run.wait().report.status for run in runs] == ['ok', 'ok']
    assert len(pool.worker_pids()) == 2


def test_pool_full_without_queue(make_pool, fake_python, command):
    pool = make_pool(1, 0, 1.0, python=fake_python)
    busy = eventlet.spawn(pool.run, command('sleep 0.3'), 5)
    eventlet.sleep(0)  # let it take the only slot
    with pytest.raises(PoolFull):
        pool.run(command('ok 0'), 5)
    assert busy.wait().report.ok
    assert pool.run(command('ok 0'), 5).report.ok  # the slot is free again


def test_queue_admits_waiters_up_to_its_size(make_pool, fake_python, command):
    pool = make_pool(1, 1, 1.0, python=fake_python)
    busy = eventlet.spawn(pool.run, command('sleep 0.3'), 5)
    eventlet.sleep(0)
    waiter = eventlet.spawn(pool.run, command('ok 5'), 5)
    eventlet.sleep(0)
    with pytest.raises(PoolFull):
        pool.run(command('ok 0'), 5)
    assert busy.wait().report.ok
    assert waiter.wait().report.retcode == 5
    assert len(pool.worker_pids()) == 1


def test_a_bounded_queue_wait_ends_in_pool_full(
        make_pool, fake_python, command):
    pool = make_pool(1, 1, 1.0, python=fake_python)
    busy = eventlet.spawn(pool.run, command('sleep 0.5'), 5)
    eventlet.sleep(0)
    with pytest.raises(PoolFull, match='no sandbox worker became free'):
        pool.run(command('ok 0'), 5, queue_wait=0.05)
    assert not pool.full   # the waiter left the queue
    assert busy.wait().report.ok
    assert pool.run(command('ok 1'), 5, queue_wait=0.05).report.retcode == 1


def test_overrunning_worker_is_killed_and_replaced(
        make_pool, fake_python, command, caplog):
    pool = make_pool(1, 0, 0.2, python=fake_python)
    [old_pid] = (pool.run(command('ok 0'), 5), pool.worker_pids())[1]
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        result = pool.run(command('hang'), 0.2)
    assert result.exit_status == pool_module.EXIT_KILLED == 4
    assert result.report.status == 'Killed' and result.fuel is None
    # Not before its timeout and kill_timeout (the worker hangs for ever).
    assert time.monotonic() - started >= 0.4
    assert process_gone(old_pid)
    assert 'did not answer within 0.4 s' in caplog.text
    assert pool.run(command('ok 1'), 5).report.retcode == 1
    assert pool.worker_pids() != [old_pid]


def test_worker_dying_mid_run_is_reported_and_replaced(
        make_pool, fake_python, command):
    pool = make_pool(1, 0, 1.0, python=fake_python)
    result = pool.run(command('die'), 5)
    assert result.exit_status != 0
    assert result.report.status == 'sandbox worker died'
    assert pool.worker_pids() == []
    assert pool.run(command('ok 2'), 5).report.retcode == 2


def test_runtime_exception_is_an_error_result_and_worker_survives(
        make_pool, fake_python, command, caplog):
    pool = make_pool(1, 0, 1.0, python=fake_python)
    with caplog.at_level(logging.ERROR):
        result = pool.run(command('raise'), 5)
    assert result.exit_status != 0
    assert result.report.status == 'sandbox worker error'
    assert 'RuntimeError: runtime exploded' in caplog.text
    [pid] = pool.worker_pids()
    assert pool.run(command('ok 0'), 5).report.ok
    assert pool.worker_pids() == [pid]


def test_worker_that_cannot_start(make_pool, tmp_path, command):
    missing = make_pool(1, 0, 1.0, python=str(tmp_path / 'no-such-python'))
    result = missing.run(command('ok 0'), 5)
    assert result.report.status == 'sandbox worker did not start'
    assert result.exit_status != 0
    quitter = make_pool(1, 0, 1.0, python=write_executable(
        tmp_path / 'quitter', '#!/bin/sh\nexit 3\n'))
    result = quitter.run(command('ok 0'), 5)
    assert result.report.status == 'sandbox worker did not start'
    assert quitter.worker_pids() == []


def test_warm_uses_a_worker_and_reports_failure(
        make_pool, fake_python, tmp_path):
    pool = make_pool(1, 0, 1.0, python=fake_python)
    program = tmp_path / 'prog.wasm'
    program.write_bytes(b'\0asm')
    pool.warm(str(program))
    with pytest.raises(SandboxWorkerError, match='FileNotFoundError'):
        pool.warm(str(tmp_path / 'missing.wasm'))
    assert len(pool.worker_pids()) == 1


def test_close_stops_and_reaps_idle_and_busy_workers(
        fake_python, command):
    pool = SandboxPool(2, 0, 0.5, python=fake_python)
    warmups = [eventlet.spawn(pool.run, command('sleep 0.2'), 5)
               for _ in range(2)]
    assert all(run.wait().report.ok for run in warmups)
    busy = eventlet.spawn(pool.run, command('hang'), 30)
    eventlet.sleep(0.3)
    pids = pool.worker_pids()
    assert len(pids) == 2
    pool.close()
    assert busy.wait().report.status == 'sandbox worker died'
    assert pool.worker_pids() == []
    assert all(process_gone(pid) for pid in pids)
    assert pool.run(command('ok 0'), 5).report.ok  # usable again
    [pid] = pool.worker_pids()
    pool.close()
    assert process_gone(pid)


def test_idle_worker_that_died_is_reaped_at_next_use(
        make_pool, fake_python, command):
    pool = make_pool(1, 0, 1.0, python=fake_python)
    pool.run(command('ok 0'), 5)
    [pid] = pool.worker_pids()
    pool._idle[0].process.kill()
    eventlet.sleep(0.1)
    assert pool.run(command('ok 0'), 5).report.ok
    assert process_gone(pid)
    assert pool.worker_pids() != [pid]


@pytest.mark.parametrize('args', [(0, 0, 1.0), (True, 0, 1.0), (1, -1, 1.0),
                                  (1, 0, -1)])
def test_bad_settings_are_refused(args):
    with pytest.raises(ValueError):
        SandboxPool(*args)


def test_unknown_wall_clock_is_refused():
    with pytest.raises(ValueError, match="wall clock must be 'epoch' or "
                       "'exit', got 'fast'"):
        SandboxPool(1, 0, 1.0, wall_clock='fast')


def test_workers_get_the_pools_wall_clock(make_pool, fake_python, command):
    default = make_pool(1, 0, 1.0, python=fake_python)
    assert default.run(command('wall-clock'), 5).report.status == 'exit'
    epoch = make_pool(1, 0, 1.0, python=fake_python, wall_clock='epoch')
    assert epoch.run(command('wall-clock'), 5).report.status == 'epoch'


def test_worker_exiting_after_an_overrun_is_reaped_and_replaced(
        make_pool, fake_python, command):
    pool = make_pool(1, 0, 5.0, python=fake_python)
    pool.run(command('ok 0'), 5)
    [old_pid] = pool.worker_pids()
    result = pool.run(command('overrun'), 5)
    assert (result.exit_status, result.fuel) == (4, None)
    # The worker's own answer, not the kill path's 'Killed'.
    assert result.report.status == 'session timeout'
    assert result.report.validation == 0
    assert pool.worker_pids() == []
    assert process_gone(old_pid)
    assert pool.run(command('ok 1'), 5).report.retcode == 1
    assert pool.worker_pids() not in ([], [old_pid])


def test_worker_lingering_after_its_exit_notice_is_killed(
        make_pool, fake_python, command, caplog, monkeypatch):
    monkeypatch.setattr(pool_module, 'EXIT_GRACE', 0.2)
    pool = make_pool(1, 0, 5.0, python=fake_python)
    pool.run(command('ok 0'), 5)
    [pid] = pool.worker_pids()
    with caplog.at_level(logging.WARNING):
        result = pool.run(command('overrun-linger'), 5)
    assert result.report.status == 'session timeout'
    assert process_gone(pid)
    assert 'still running after 0.2 s; killed' in caplog.text
    assert pool.worker_pids() == []


def test_a_running_session_does_not_block_other_green_threads(
        make_pool, fake_python, command):
    pool = make_pool(1, 0, 1.0, python=fake_python)
    pool.run(command('ok 0'), 5)
    run = eventlet.spawn(pool.run, command('sleep 0.8'), 5)
    # This green thread ran while the only worker was busy.
    assert saw_every_worker_busy(pool, [run])
    assert run.wait().report.ok


PATCHED_PARENT = '''
import eventlet, os, sys, time
eventlet.monkey_patch(all=False, socket=True, select=True, thread=True)
from zerocloud.runtime.pool import SandboxPool
sys.path.insert(0, sys.argv[3])
from test.unit.runtime_pool.conftest import saw_every_worker_busy
pool = SandboxPool(2, 0, 1.0, python=sys.argv[1])
runs = [eventlet.spawn(pool.run, sys.argv[2], 5) for _ in range(2)]
side_by_side = saw_every_worker_busy(pool, runs)
statuses = [run.wait().report.status for run in runs]
pids = pool.worker_pids()
pool.close()
print(statuses, len(set(pids)), side_by_side,
      any(os.path.exists('/proc/%d' % pid) for pid in pids))
'''


def test_pool_in_a_swift_style_monkey_patched_process(fake_python, command):
    proc = subprocess.run(
        [sys.executable, '-c', PATCHED_PARENT, fake_python,
         command('sleep 0.8'), REPO], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split('\n')[0] == "['ok', 'ok'] 2 True False"


DYING_PARENT = '''
import eventlet, os, signal, sys
from zerocloud.runtime.pool import SandboxPool
pool = SandboxPool(1, 0, 1.0, python=sys.argv[1])
pool.run(sys.argv[2], 5)
print(pool.worker_pids()[0], flush=True)
eventlet.spawn(pool.run, sys.argv[3], 3600)
eventlet.sleep(0.3)  # the worker is now inside a session, not reading stdin
os.kill(os.getpid(), signal.SIGKILL)
'''


def test_busy_worker_dies_with_its_parent(fake_python, command):
    proc = subprocess.run(
        [sys.executable, '-c', DYING_PARENT, fake_python, command('ok 0'),
         command('hang')], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid = int(proc.stdout)
    deadline = time.monotonic() + 5
    while not worker_ended(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_ended(pid)


def worker_ended(pid: int) -> bool:
    """Gone, or a zombie waiting for an init that does not reap."""
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except FileNotFoundError:
        return True


FORKING_PARENT = '''
import os, sys
import eventlet.hubs
from zerocloud.runtime.pool import SandboxPool
pool = SandboxPool(1, 0, 1.0, python=sys.argv[1])
pool.run(sys.argv[2], 5)
[parent_worker] = pool.worker_pids()
read_end, write_end = os.pipe()
child = os.fork()
if child == 0:
    eventlet.hubs.use_hub()  # a fresh hub per forked worker, as Swift does
    ok = pool.run(sys.argv[2], 5).report.ok
    [child_worker] = pool.worker_pids()
    pool.close()
    os.write(write_end, b'%d %d' % (ok, child_worker))
    os._exit(0)
os.waitpid(child, 0)
ok, child_worker = map(int, os.read(read_end, 100).split())
print(ok, child_worker != parent_worker, pool.run(sys.argv[2], 5).report.ok,
      pool.worker_pids() == [parent_worker])
pool.close()
'''


def test_forked_process_starts_its_own_workers(fake_python, command):
    proc = subprocess.run(
        [sys.executable, '-c', FORKING_PARENT, fake_python, command('ok 0')],
        capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [b'1', b'True', b'True', b'True']
