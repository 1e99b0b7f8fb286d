"""Cluster jobs survive a dead object server, or fail cleanly.

These tests kill object servers, so they run on a private cluster of their
own (tmpfs when usable), started once for the module and stopped at its end;
the session cluster other tests share is never touched.

- An object server that is already down when a job is posted: every node
  whose input has a replica on it runs on the next replica; the job answers
  200 with the right result.
- An object server killed while the word count runs: the answer is either
  the right counts (200, the lost node re-ran elsewhere) or a clean 503 that
  left no output object behind.  The test prints which one happened.
"""

import collections
import shutil
import tempfile
import threading
import time
from typing import Dict, List

import pytest

from zerocloud.saio import Cluster, LaunchError

from .conftest import fast_tmp_dir
from .helpers import (
    BOOK_COUNT, WORD_COUNT_SYSTEM, Account, LogWatch, assert_all_ok,
    expected_word_count, is_zombie, kill_server, nexe_list, primary_servers,
    python_node, server_pids, unique, upload_books, upload_word_count_zapp,
    word_count_job, zapp)

#: Seconds after the POST starts before the object server is killed.
KILL_DELAY = 0.3


@pytest.fixture(scope='module')
def private_cluster():
    workdir = tempfile.mkdtemp(prefix='zerocloud-failover-',
                               dir=fast_tmp_dir())
    cluster = Cluster(workdir, port=0)
    try:
        cluster.start()
    except LaunchError as err:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail('the failover cluster did not start: %s' % err,
                    pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


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


def test_server_killed_during_word_count_retries_or_fails_cleanly(
        private_cluster, account, books):
    container, texts, image = books
    results = unique('results')
    account.put_container(results)
    # The server that would run the most mappers.
    placed = collections.Counter(first_live_holders(
        private_cluster, account, container).values())
    victim = placed.most_common(1)[0][0]
    killed = {}

    def kill_soon() -> None:
        time.sleep(KILL_DELAY)
        try:
            kill_server(private_cluster, victim)
        except BaseException as err:
            killed['error'] = err
        killed['at'] = time.monotonic()

    killer = threading.Thread(target=kill_soon)
    watch = LogWatch(private_cluster)
    started = time.monotonic()
    killer.start()
    try:
        resp = account.post_job(word_count_job(image, container, results))
    finally:
        killer.join()
    answered = time.monotonic()
    assert 'error' not in killed, killed
    assert killed['at'] < answered, 'the job ended before the kill'
    outputs = account.listing(results)
    finished_on_victim = sorted(
        name for name, servers in watch.servers_that_ran().items()
        if victim in servers)
    print('killed %s (first choice for %d mappers; it finished %s) %.1f s '
          'after the POST; answer %d after %.1f s; outputs: %s' % (
              victim, placed[victim], finished_on_victim or 'nothing',
              killed['at'] - started, resp.status_code, answered - started,
              outputs))
    if resp.status_code == 200:
        print('outcome: the lost nodes were retried on other replicas')
        assert nexe_list(resp, 'X-Nexe-System') == WORD_COUNT_SYSTEM
        assert_all_ok(resp, len(WORD_COUNT_SYSTEM))
        assert resp.content == b''
        assert outputs == sorted(['book%02d.words' % number for number in
                                  range(1, BOOK_COUNT + 1)] + ['total'])
        assert account.get('%s/total' % results).content == \
            expected_word_count(texts)
        for name, text in texts.items():
            stored = account.get('%s/%s' % (results, name.replace(
                '.txt', '.words')))
            assert stored.text == '%d\n' % len(text.split())
    else:
        print('outcome: clean 503, nothing stored')
        assert resp.status_code == 503, resp.text
        assert 'Traceback' not in resp.text
        assert outputs == []
