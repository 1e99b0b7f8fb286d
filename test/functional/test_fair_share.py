"""One tenant cannot starve the others (issue 15, item 12).

A private cluster with small shares: each of the 4 object servers runs 2
sandboxes without a queue (``zerovm_maxpool``, ``zerovm_maxqueue``), of
which one account may hold 1 (``zerovm_account_maxpool``); the proxy runs
at most 2 deferred jobs of one account (``zerovm_account_deferred``).

One account floods it: two deferred jobs of 5 nodes that sleep 6 s each
(10 nodes, more than the cluster's 8 sandboxes), and a third deferred job,
which is refused.  Another account's hello then runs while the flood
lasts (neither flood job has stored its result yet), on the sandbox the
flood may not take: its node never waited, while the flood's nodes were
answered busy and wait in the proxy.  Busy answers never make Swift
error-limit a server, and the flood's own jobs end well, later.
"""

import time

import pytest
import requests
import wasmtime

from .helpers import (
    Account, ProxyLog, assert_all_ok, configure,
    started_cluster, unique)
from .lab import hello_wat, sleeper_wat

#: Seconds each flood node sleeps (in the host: no CPU used).
SLEEP_SECONDS = 6
#: Nodes of each flood job: with two of them, more than the cluster's
#: sandboxes (4 × 2), so that without shares every one would be taken.
FLOOD_NODES = 5
#: Seconds a busy node may wait in the proxy before it is sent again.
BUSY_BACKOFF = 15
#: Seconds the flood may take to fill the servers.
FLOOD_START_WAIT = 60


def small_shares(cluster) -> None:
    for number in range(1, 5):
        configure(cluster, 'object-server-%d' % number, 'filter:object_query',
                  zerovm_maxpool='2', zerovm_maxqueue='0',
                  zerovm_account_maxpool='1')
    configure(cluster, 'proxy-server', 'filter:proxy_query',
              zerovm_account_deferred='2', zerovm_job_deadline='300')


@pytest.fixture(scope='module')
def shared_cluster():
    with started_cluster('zerocloud-fair-', small_shares) as cluster:
        yield cluster


def store_program(account: Account, container: str, wat: str) -> str:
    name = unique('program') + '.wasm'
    account.put_object(container, name, wasmtime.wat2wasm(wat),
                       'application/wasm')
    return 'swift://~/%s/%s' % (container, name)


def deferred_flood(account: Account, program: str) -> requests.Response:
    return account.post_job([{
        'name': 'flood', 'exec': {'path': program}, 'count': FLOOD_NODES,
        'devices': [{'name': 'stdout'}]}],
        headers={'X-Zerovm-Deferred': 'always'})


def wait_for_busy_flood(log: ProxyLog) -> str:
    """The proxy's log once a flood node waits for busy servers."""
    deadline = time.monotonic() + FLOOD_START_WAIT
    while time.monotonic() < deadline:
        text = log.new_text()
        if 'node flood-' in text and 'waits' in text:
            return text
        time.sleep(0.2)
    pytest.fail('no flood node waited for busy servers:\n' + log.new_text())


def wait_for_result(account: Account, path: str) -> requests.Response:
    """A deferred result, once stored: the flood runs one node per server
    at a time, so it takes 3 rounds of ``SLEEP_SECONDS``, and its waiting
    nodes come back after a backoff of up to ``BUSY_BACKOFF``, with room
    for a loaded machine."""
    deadline = time.monotonic() + 2 * 3 * (SLEEP_SECONDS + BUSY_BACKOFF)
    while time.monotonic() < deadline:
        resp = account.get(path)
        if resp.status_code == 200:
            return resp
        time.sleep(1)
    pytest.fail('no deferred result at %s' % path)


def test_a_flooding_account_does_not_delay_another_accounts_job(
        shared_cluster):
    flooder = Account(shared_cluster, 'tester')
    other = Account(shared_cluster, 'tester2')
    container = unique('flood')
    flooder.put_container(container)
    other.put_container(container)
    sleeper = store_program(flooder, container, sleeper_wat(SLEEP_SECONDS))
    hello = store_program(other, container, hello_wat('hello\n'))
    log = ProxyLog(shared_cluster)

    started = [deferred_flood(flooder, sleeper) for _ in range(2)]
    assert [resp.status_code for resp in started] == [200, 200], \
        [resp.text for resp in started]
    refused = deferred_flood(flooder, sleeper)
    assert refused.status_code == 503, refused.text
    assert 'zerovm_account_deferred' in refused.text
    assert 'Retry-After' in refused.headers

    wait_for_busy_flood(log)
    resp = other.post_job([{'name': 'hello', 'exec': {'path': hello},
                            'devices': [{'name': 'stdout'}]}])
    assert resp.status_code == 200, resp.text
    assert resp.text == 'hello\n'
    assert_all_ok(resp, 1)
    results = [job.text.strip().split('/', 3)[3] for job in started]
    # The hello ran while the flood lasted.
    assert [flooder.get(result + '.headers').status_code
            for result in results] == [404, 404]
    text = log.new_text()
    assert 'node hello waits' not in text
    assert 'node flood-' in text
    assert 'error limited' not in text
    # The flood's own work is delayed, not lost.
    for result in results:
        recorded = wait_for_result(flooder, result + '.headers').json()
        assert recorded['X-Nexe-Status'].split(',') == ['ok'] * FLOOD_NODES
