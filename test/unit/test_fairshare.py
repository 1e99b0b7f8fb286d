"""The proxy's per-account shares: waiting places and deferred jobs."""

import eventlet
from eventlet.event import Event

from test.unit.test_proxy_filter import ACCOUNT, EXECUTE, JSON, Pipeline
from zerocloud.fairshare import AccountShare, half
from zerocloud.proxy.nodeclient import NodeClient, Timeouts


def test_an_account_takes_up_to_its_limit_and_is_forgotten_when_idle():
    share = AccountShare(2)
    assert share.take('AUTH_a') and share.take('AUTH_a')
    assert not share.take('AUTH_a')
    assert share.take('AUTH_b')
    share.give_back('AUTH_a')
    assert share.held('AUTH_a') == 1 and share.take('AUTH_a')
    for account in ('AUTH_a', 'AUTH_a', 'AUTH_b'):
        share.give_back(account)
    assert share._held == {}


def test_half_rounds_up():
    assert [half(n) for n in (0, 1, 2, 5, 64)] == [0, 1, 1, 3, 32]


def test_one_account_waits_in_at_most_half_of_the_places():
    client = NodeClient(Timeouts(connect=1, node=1, answer=1), 4,
                        lambda node, message: None)
    never = Event()
    waiters = [eventlet.spawn(client.wait_for_busy, 60, never, 'AUTH_flood')
               for _ in range(2)]
    eventlet.sleep(0)
    assert client.waiting == 2
    # Its third node may not wait; another account's may.
    assert client.wait_for_busy(60, never, 'AUTH_flood') is False
    assert client.wait_for_busy(0, never, 'AUTH_other') is True
    never.send()
    assert [waiter.wait() for waiter in waiters] == [True, True]
    assert client.waiting == 0 and client.waiting_share._held == {}


def deferred_job(pipeline: Pipeline):
    return pipeline.send('/v1/' + ACCOUNT, body=b'{"not": "a list"}',
                         **EXECUTE, **JSON, **{'X-Zerovm-Deferred': 'always'})


def test_an_account_at_its_deferred_share_is_503_before_anything_runs():
    pipeline = Pipeline(zerovm_account_deferred='1', zerovm_timeout='7')
    assert pipeline.filter.deferred_jobs.take(ACCOUNT)   # one runs already
    resp = deferred_job(pipeline)
    assert resp.status_int == 503
    assert resp.headers['Retry-After'] == '7'
    assert 'zerovm_account_deferred' in resp.body.decode()
    assert pipeline.swift.calls == []   # nothing read, nothing run
    assert pipeline.filter.deferred_jobs.held(ACCOUNT) == 1


def test_a_deferred_job_that_fails_before_running_gives_its_share_back():
    pipeline = Pipeline(zerovm_account_deferred='1')
    resp = deferred_job(pipeline)
    assert resp.status_int == 400   # the description was read, and refused
    assert pipeline.filter.deferred_jobs.held(ACCOUNT) == 0
    assert deferred_job(pipeline).status_int == 400   # not 503
