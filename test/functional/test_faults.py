"""Faults of the cluster under jobs: a frozen object server, an overload.

These tests freeze servers and fill every sandbox, so they run on a private
cluster of their own (``private_cluster``).

- An object server answers ``100 Continue`` before it reads the body (so
  before the run): the proxy's short ``node_timeout`` for it bounds only the
  server's checks, never a node's run.
- An object server frozen with SIGSTOP (it accepts connections and answers
  nothing): jobs whose input has its first replica there wait the proxy's
  ``node_timeout`` for its ``100 Continue``, then run on the next replica
  and answer 200; the proxy reports the frozen server to Swift's error
  limiter.  After SIGCONT the server runs jobs again.
- Wide jobs that overload every sandbox pool (the object servers answer
  ``503`` + ``Retry-After``) all finish, and plain object GETs right after
  all answer 200: a busy pool is never counted as a failed server, so Swift
  never stops serving objects from it.

Each test prints what it measured (job times, GET statuses).
"""

import os
import signal
import socket
import threading
import time
from typing import List

import pytest
import requests

from .helpers import (
    Account, LogWatch, ProxyLog, assert_all_ok, nexe_list, primary_servers,
    python_node, signal_server, unique, zapp)

#: Jobs posted while a server is frozen (fewer than Swift's
#: ``error_suppression_limit``, so the server is not error-limited after).
FROZEN_JOBS = 4
#: Objects created to find enough whose first replica is on one server.
CANDIDATE_OBJECTS = 40
#: One account's overload: its nodes may hold half of each sandbox pool and
#: of the proxy's waiting places (the fair share), so two clients of one
#: account overload that half as four overloaded the whole.
OVERLOAD_CLIENTS = 2
OVERLOAD_WIDTH = 30
GET_COUNT = 24
CAT = 'import sys\nsys.stdout.write(sys.stdin.read())\n'
#: WASI Python cannot sleep (clocks never block in the sandbox): a node
#: that keeps its sandbox for a second spins.
SPINNER = """import time
end = time.monotonic() + 1
while time.monotonic() < end:
    pass
print("done")
"""


@pytest.fixture(scope='module')
def account(private_cluster):
    return Account(private_cluster)


def in_threads(count: int, work) -> List:
    """``work(i)`` for i in range(count), at once; the results in order."""
    results: List = [None] * count

    def run(index: int) -> None:
        results[index] = work(index)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def cat_job(container: str, image: str, obj: str) -> list:
    return [python_node('cat', 'swift://~/%s/%s' % (container, image),
                        devices=[{'name': 'stdin', 'path': 'swift://~/%s/%s'
                                  % (container, obj)}, {'name': 'stdout'}])]


def test_an_object_server_says_100_continue_before_the_body(
        private_cluster, account):
    server = 'object-server-1'
    request = '\r\n'.join([
        'POST /sdb1/0/%s HTTP/1.1' % account.name,
        'Host: localhost',
        'X-Zerovm-Execute: 1.0',
        'X-Zerocloud-Id: %s' % unique('job'),
        'Content-Type: application/x-tar',
        'Content-Length: 10240',
        'Expect: 100-continue',
        '', ''])
    with socket.create_connection(
            private_cluster.addresses[server], timeout=10) as sock:
        sock.sendall(request.encode())
        status_line = sock.makefile('rb').readline()
    assert status_line.startswith(b'HTTP/1.1 100 '), status_line


def test_a_frozen_object_server_costs_a_node_timeout_then_a_replica(
        private_cluster, account):
    container = unique('frozen')
    account.put_container(container)
    victim = 'object-server-1'
    host, port = private_cluster.addresses[victim]

    def holders(name: str) -> List[str]:
        return primary_servers(private_cluster, account.name, container,
                               name)
    # The program lives off the frozen server: the proxy's own GET of it
    # would wait for it too.
    image = next(name for name in ('cat%d.tar' % n for n in range(100))
                 if victim not in holders(name))
    account.put_object(container, image, zapp({'main.py': CAT}))
    texts = {'obj%02d' % n: 'text of object %d\n' % n
             for n in range(CANDIDATE_OBJECTS)}
    for name, text in texts.items():
        account.put_object(container, name, text.encode(), 'text/plain')
    on_victim = [name for name in sorted(texts)
                 if holders(name)[0] == victim]
    assert len(on_victim) > FROZEN_JOBS

    watch = LogWatch(private_cluster)
    proxy_log = ProxyLog(private_cluster)
    signal_server(private_cluster, victim, signal.SIGSTOP)
    try:
        def post(index: int):
            started = time.monotonic()
            resp = account.post_job(cat_job(container, image,
                                            on_victim[index]))
            return resp, time.monotonic() - started
        answers = in_threads(FROZEN_JOBS, post)
    finally:
        signal_server(private_cluster, victim, signal.SIGCONT)
    print('with %s frozen: %s' % (victim, ', '.join(
        '%d after %.1f s' % (resp.status_code, took)
        for resp, took in answers)))
    for index, (resp, _took) in enumerate(answers):
        assert resp.status_code == 200, resp.text
        assert resp.text == texts[on_victim[index]]
    ran_on = watch.servers_that_ran()['cat']
    assert len(ran_on) == FROZEN_JOBS and victim not in ran_on
    blamed = proxy_log.new_text().count(
        'zerocloud: no answer from %s:%d: ResponseTimeout' % (host, port))
    assert blamed == FROZEN_JOBS

    # Thawed, the server runs what is placed on it again.
    watch = LogWatch(private_cluster)
    started = time.monotonic()
    resp = account.post_job(cat_job(container, image,
                                    on_victim[FROZEN_JOBS]))
    print('thawed: %d after %.1f s' % (resp.status_code,
                                      time.monotonic() - started))
    assert resp.status_code == 200, resp.text
    assert resp.text == texts[on_victim[FROZEN_JOBS]]
    assert watch.servers_that_ran()['cat'] == [victim]


def test_an_overload_of_wide_jobs_leaves_plain_gets_served(
        private_cluster, account):
    container = unique('overload')
    account.put_container(container)
    account.put_object(container, 'spin.tar', zapp({'main.py': SPINNER}))
    objects = {'get%02d' % n: os.urandom(64) for n in range(GET_COUNT)}
    for name, data in objects.items():
        account.put_object(container, name, data)

    proxy_log = ProxyLog(private_cluster)
    started = time.monotonic()
    jobs = in_threads(OVERLOAD_CLIENTS, lambda _index: account.post_job([
        python_node('spinner', 'swift://~/%s/spin.tar' % container,
                    devices=[{'name': 'stdout'}], count=OVERLOAD_WIDTH)]))
    took = time.monotonic() - started
    gets = [requests.get('%s/%s/%s' % (account.url, container, name),
                         headers=account.headers(), timeout=30)
            for name in objects]
    served = sum(1 for resp in gets if resp.status_code == 200)
    log = proxy_log.new_text()
    print('overload: %d clients x %d one-second nodes answered %s in %.1f s; '
          'then %d of %d plain GETs answered 200' % (
              OVERLOAD_CLIENTS, OVERLOAD_WIDTH,
              [resp.status_code for resp in jobs], took, served, GET_COUNT))
    for resp in jobs:
        assert resp.status_code == 200, resp.text
        assert len(nexe_list(resp, 'X-Nexe-System')) == OVERLOAD_WIDTH
        assert_all_ok(resp, OVERLOAD_WIDTH)
        assert resp.text == 'done\n' * OVERLOAD_WIDTH
    assert [resp.content for resp in gets] == list(objects.values())
    assert 'waits' in log and 'for busy servers' in log   # it did overload
    assert 'Slot not available' not in log   # never reported as a failure
    assert 'error limited' not in log
