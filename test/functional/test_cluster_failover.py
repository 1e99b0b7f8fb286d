"""Cluster jobs survive a dead object server, or fail cleanly.

These tests kill object servers, so they run on a private cluster of their
own (tmpfs when usable), started once for the module and stopped at its end;
the session cluster other tests share is never touched.

- An object server that is already down when a job is posted: every node
  whose input has a replica on it runs on the next replica; the job answers
  200 with the right result.
- An object server killed while it runs a node (the node's work directory
  is seen on its device first): the node runs again on the next replica,
  which logs it, and the job answers 200 with the right result.
- A proxy worker killed with a job's accounting line still in its spool:
  the worker that replaces it stores the line.
"""

import os
import signal
import threading
import time
from typing import Dict, List

import pytest
import requests

from zerocloud.proxy.accounting import object_name

from .helpers import (
    BOOK_COUNT, REQUEST_TIMEOUT, WORD_COUNT_SYSTEM, Account, LogWatch,
    assert_all_ok,
    expected_word_count, is_zombie, kill_server, nexe_list, primary_servers,
    python_node, server_pids, unique, upload_books, upload_word_count_zapp,
    word_count_job, zapp)

#: Seconds a posted node may take to reach its object server.
NODE_START_WAIT = 60
#: How object_query names a node's work directory on the device.
NODE_WORKDIR_PREFIX = 'zerocloud-'
#: Seconds the slow node spins: time enough to see it and kill its server.
SLOW_SECONDS = 3
#: Copies stdin to stdout after spinning (WASI Python has no time.sleep).
SLOW_CAT = '''import sys, time
data = sys.stdin.read()
end = time.monotonic() + %d
while time.monotonic() < end:
    pass
sys.stdout.write(data)
''' % SLOW_SECONDS


@pytest.fixture(scope='module')
def account(private_cluster):
    return Account(private_cluster)


@pytest.fixture(scope='module')
def books(account):
    """(container, texts, image URL): the word count's data and program."""
    container = unique('books')
    texts = upload_books(account, container)
    return container, texts, upload_word_count_zapp(account, container)


def live_object_servers(cluster) -> List[str]:
    return sorted(name for name in cluster.ports
                  if name.startswith('object-server') and
                  any(not is_zombie(pid)
                      for pid in server_pids(cluster, name)))


def first_live_holders(cluster, account: Account, container: str
                       ) -> Dict[str, str]:
    """Book -> the live server its mapper is placed on first."""
    live = live_object_servers(cluster)
    return {'book%02d.txt' % number: next(
        server for server in primary_servers(
            cluster, account.name, container, 'book%02d.txt' % number)
        if server in live) for number in range(1, BOOK_COUNT + 1)}


def test_dead_server_before_post_falls_back_to_next_replica(
        private_cluster, account, books):
    container, texts, image = books
    account.put_object(container, 'cat.tar', zapp({
        'main.py': 'import sys\nsys.stdout.write(sys.stdin.read())\n'}))
    book = 'book01.txt'
    holders = primary_servers(private_cluster, account.name, container, book)
    kill_server(private_cluster, first_live_holders(
        private_cluster, account, container)[book])

    watch = LogWatch(private_cluster)
    resp = account.post_job([python_node(
        'cat', 'swift://~/%s/cat.tar' % container, devices=[
            {'name': 'stdin', 'path': 'swift://~/%s/%s' % (container, book)},
            {'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert resp.text == texts[book]
    ran_on = watch.servers_that_ran()['cat']
    assert ran_on, 'no object server logged running cat'
    assert ran_on[-1] in holders
    assert ran_on[-1] in live_object_servers(private_cluster)

    resp = account.post_job(word_count_job(image, container))
    assert resp.status_code == 200, resp.text
    assert nexe_list(resp, 'X-Nexe-System') == WORD_COUNT_SYSTEM
    assert_all_ok(resp, len(WORD_COUNT_SYSTEM))
    assert resp.content == expected_word_count(texts)


def running_nodes(cluster, server: str) -> List[str]:
    """Work directories of the nodes an object server is handling now."""
    tmp = os.path.join(cluster.device_path(server_number(server)), 'tmp')
    try:
        return [name for name in os.listdir(tmp)
                if name.startswith(NODE_WORKDIR_PREFIX)]
    except FileNotFoundError:
        return []


def server_number(server: str) -> int:
    """``object-server-<n>`` → n, the storage node holding its device."""
    return int(server.rsplit('-', 1)[1])


def test_server_killed_while_running_a_node_is_retried_on_the_next_replica(
        private_cluster, account, books):
    """The node is seen running on its first server, which is then killed:
    only a retry can answer 200, and the next replica must be the one that
    logs having run it."""
    container, texts, _image = books
    account.put_object(container, 'slowcat.tar', zapp({
        'main.py': SLOW_CAT}))
    live = live_object_servers(private_cluster)
    holders = {name: [server for server in primary_servers(
        private_cluster, account.name, container, name) if server in live]
        for name in texts}
    book = min(name for name in holders if len(holders[name]) >= 2)
    victim, successor = holders[book][:2]
    assert running_nodes(private_cluster, victim) == []
    job = [python_node(
        'slowcat', 'swift://~/%s/slowcat.tar' % container, devices=[
            {'name': 'stdin', 'path': 'swift://~/%s/%s' % (container, book)},
            {'name': 'stdout'}])]
    watch = LogWatch(private_cluster)
    answer = {}
    poster = threading.Thread(target=lambda: answer.update(
        resp=account.post_job(job)))
    poster.start()
    try:
        deadline = time.monotonic() + NODE_START_WAIT
        while not running_nodes(private_cluster, victim):
            assert poster.is_alive(), 'the job ended before it was seen'
            assert time.monotonic() < deadline, \
                'the node never started on %s' % victim
            time.sleep(0.02)
        kill_server(private_cluster, victim)
    finally:
        poster.join()
    resp = answer['resp']
    assert resp.status_code == 200, resp.text
    assert resp.text == texts[book]
    assert_all_ok(resp, 1)
    # The victim died mid-node and logged nothing; the next live replica
    # ran the node again.
    assert watch.servers_that_ran()['slowcat'] == [successor]


def _proxy_worker(cluster) -> int:
    """The proxy's worker process (the child of its parent process)."""
    pids = [pid for pid in server_pids(cluster, 'proxy-server')
            if not is_zombie(pid)]
    children = [pid for pid in pids if _parent_of(pid) in pids]
    assert len(children) == 1, pids
    return children[0]


def _read(folder: str, name: str) -> bytes:
    with open(os.path.join(folder, name), 'rb') as handle:
        return handle.read()


def _parent_of(pid: int) -> int:
    with open('/proc/%d/stat' % pid) as stat:
        return int(stat.read().rsplit(')', 1)[1].split()[1])


def test_accounting_of_a_proxy_worker_killed_before_storing_it_is_kept(
        private_cluster):
    """A job's accounting line waits in its proxy worker's spool; the
    worker is killed (SIGKILL) before it stores the spool; the worker that
    takes its place stores the line, under the object named after that
    spool, and removes the spool."""
    cluster = private_cluster
    resp = requests.post(
        cluster.storage_url('tester'), timeout=REQUEST_TIMEOUT,
        data='#!file://python:python\nprint("accounted")\n',
        headers={'X-Zerovm-Execute': '1.0', 'Content-Type': 'text/plain',
                 'X-Auth-Token': cluster.token('tester')})
    assert resp.status_code == 200, resp.text
    txn = resp.headers['X-Trans-Id']
    spools = [name for name in os.listdir(cluster.accounting_dir)
              if txn.encode() in _read(cluster.accounting_dir, name)]
    assert len(spools) == 1, os.listdir(cluster.accounting_dir)
    stats = '%s/%s' % (cluster.storage_url('stats'),
                       cluster.storage_url('tester').rsplit('/', 1)[1])
    wanted = object_name(spools[0])
    token = {'X-Auth-Token': cluster.token('stats')}
    worker = _proxy_worker(cluster)
    os.kill(worker, signal.SIGKILL)

    text = ''
    deadline = time.monotonic() + NODE_START_WAIT
    while txn not in text and time.monotonic() < deadline:
        time.sleep(0.5)
        try:   # any request starts the new worker's store
            got = requests.get(stats + '/' + wanted, headers=token,
                               timeout=REQUEST_TIMEOUT)
        except requests.ConnectionError:
            continue   # no worker listens yet
        text = got.text if got.status_code == 200 else ''
    [line] = [line for line in text.splitlines() if txn in line]
    assert line.endswith(' [ok]')
    assert _proxy_worker(cluster) != worker
    assert spools[0] not in os.listdir(cluster.accounting_dir)
