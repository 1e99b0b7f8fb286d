import os
import stat
import sys
from typing import Iterable

import eventlet
import pytest

FAKE_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'fake_worker.py')


def process_gone(pid: int) -> bool:
    """True when pid no longer exists at all (reaped, not a zombie)."""
    return not os.path.exists('/proc/%d' % pid)


def saw_every_worker_busy(pool, runs: Iterable) -> bool:
    """Whether this green thread, looking while ``runs`` (green threads
    calling ``pool.run``) go on, ever saw every worker of ``pool`` busy
    (a pool without queue is then full).  Only runs that hold their workers
    side by side, leaving the hub free meanwhile, let it see that: proof
    of overlap without timing."""
    runs = list(runs)
    seen = False
    while not all(run.dead for run in runs):
        seen = seen or pool.full
        eventlet.sleep(0.01)
    return seen


def write_executable(path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def fake_python(tmp_path):
    """A `python` for the pool that runs the fake worker instead."""
    return write_executable(
        tmp_path / 'fake-python',
        '#!/bin/sh\nexec "%s" "%s" "$@"\n' % (sys.executable, FAKE_WORKER))


@pytest.fixture
def command(tmp_path):
    """Write a fake-worker command as a 'manifest' file; returns its path."""
    counter = iter(range(10 ** 6))

    def write(text: str) -> str:
        path = tmp_path / ('command-%d' % next(counter))
        path.write_text(text)
        return str(path)
    return write


@pytest.fixture
def make_pool():
    """Build pools that are closed (workers reaped) after the test."""
    from zerocloud.runtime.pool import SandboxPool
    pools = []

    def make(*args, **kwargs):
        pool = SandboxPool(*args, **kwargs)
        pools.append(pool)
        return pool
    yield make
    for pool in pools:
        pool.close()
