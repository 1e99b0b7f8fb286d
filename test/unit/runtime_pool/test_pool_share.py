"""SandboxPool's per-account share: one account cannot take every worker."""

import eventlet
import pytest

from zerocloud.runtime.pool import PoolFull


def spawn_runs(pool, command, account: str, count: int, seconds: float):
    runs = [eventlet.spawn(pool.run, command('sleep %g' % seconds), 5,
                           account=account) for _ in range(count)]
    eventlet.sleep(0)   # let them take slots or queue
    return runs


def test_an_account_over_its_share_is_refused_while_others_run(
        make_pool, fake_python, command):
    pool = make_pool(2, 4, 1.0, python=fake_python, account_size=1,
                     account_queue=1)
    flood = spawn_runs(pool, command, 'AUTH_flood', 2, 0.5)
    # One runs, one waits for the flood's share: its next run is refused,
    # though a worker is free.
    assert pool.refuses('AUTH_flood') and not pool.refuses('AUTH_other')
    with pytest.raises(PoolFull, match='account AUTH_flood holds its 1'):
        pool.run(command('ok 0'), 5, account='AUTH_flood')
    # Another account runs at once, on the free worker.
    assert pool.run(command('ok 7'), 5, account='AUTH_other'
                    ).report.retcode == 7
    assert [run.wait().report.ok for run in flood] == [True, True]
    assert pool._shares == {}   # idle accounts are forgotten


def test_a_run_waiting_for_its_share_times_out_and_leaves_the_queue(
        make_pool, fake_python, command):
    pool = make_pool(2, 2, 1.0, python=fake_python, account_size=1,
                     account_queue=1)
    [busy] = spawn_runs(pool, command, 'AUTH_flood', 1, 0.5)
    with pytest.raises(PoolFull, match='no sandbox worker became free'):
        pool.run(command('ok 0'), 5, queue_wait=0.05, account='AUTH_flood')
    assert not pool.refuses('AUTH_flood')   # its place in the queue is free
    assert busy.wait().report.ok
    assert pool.run(command('ok 1'), 5, account='AUTH_flood'
                    ).report.retcode == 1


def test_waiting_for_a_share_counts_against_the_pools_queue(
        make_pool, fake_python, command):
    pool = make_pool(2, 1, 1.0, python=fake_python, account_size=1,
                     account_queue=1)
    flood = spawn_runs(pool, command, 'AUTH_a', 2, 0.3)   # 1 runs, 1 waits
    # The queue (1) is taken by AUTH_a's waiter: AUTH_b holds nothing and
    # still gets the free worker, but AUTH_c cannot queue behind it.
    other = spawn_runs(pool, command, 'AUTH_b', 1, 0.3)
    assert pool.refuses('AUTH_c')
    with pytest.raises(PoolFull, match='all 2 sandbox workers are busy'):
        pool.run(command('ok 0'), 5, account='AUTH_c')
    assert all(run.wait().report.ok for run in flood + other)


def test_a_share_as_large_as_the_pool_changes_nothing(
        make_pool, fake_python, command):
    pool = make_pool(2, 0, 1.0, python=fake_python)
    runs = spawn_runs(pool, command, 'AUTH_a', 2, 0.3)
    with pytest.raises(PoolFull, match='all 2 sandbox workers are busy'):
        pool.run(command('ok 0'), 5, account='AUTH_b')
    assert all(run.wait().report.ok for run in runs)


@pytest.mark.parametrize('kwargs', [{'account_size': 0},
                                    {'account_queue': -1},
                                    {'account_size': True}])
def test_bad_shares_are_refused(make_pool, fake_python, kwargs):
    with pytest.raises(ValueError, match='account'):
        make_pool(2, 2, 1.0, python=fake_python, **kwargs)
