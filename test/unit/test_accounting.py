"""The accounting spool: lines of each job kept locally, stored by interval,
none lost when a worker dies."""

import logging
import os
import subprocess
import sys

from zerocloud.proxy.accounting import (
    SPOOL_SUFFIX, AccountingSpool, object_name, split_spool, spool_record)

LOG = logging.getLogger('test-accounting')


class Stored:
    """What a spool stored, by (account, object name); ``refuse`` makes
    every store fail."""

    def __init__(self):
        self.objects = {}
        self.refuse = False

    def __call__(self, account, name, body):
        if self.refuse:
            return False
        self.objects[(account, name)] = body
        return True


def spool_files(directory):
    return sorted(n for n in os.listdir(directory)
                  if n.endswith(SPOOL_SUFFIX))


def test_records_are_stored_as_one_object_per_account(tmp_path):
    stored = Stored()
    spool = AccountingSpool(str(tmp_path), 10, stored, LOG)
    spool.record('AUTH_a', b'l1 job1 node (1) [ok]\n')
    spool.record('AUTH_b b', b'l2 job2 n1 (2) [ok]\nl3 job2 n2 (3) [ok]\n')
    spool.record('AUTH_a', b'l4 job3 node (4) [ok]\n')
    [name] = spool_files(tmp_path)
    spool.flush()
    assert spool_files(tmp_path) == []
    assert sorted(stored.objects) == [('AUTH_a', object_name(name)),
                                      ('AUTH_b b', object_name(name))]
    assert stored.objects[('AUTH_a', object_name(name))] == \
        b'l1 job1 node (1) [ok]\nl4 job3 node (4) [ok]\n'
    assert stored.objects[('AUTH_b b', object_name(name))] == \
        b'l2 job2 n1 (2) [ok]\nl3 job2 n2 (3) [ok]\n'
    # The next records go to a new spool file, stored under a new name.
    spool.record('AUTH_a', b'l5 job4 node (5) [ok]\n')
    spool.flush()
    assert len(stored.objects) == 3


def test_a_spool_that_could_not_be_stored_is_stored_later(tmp_path):
    stored = Stored()
    stored.refuse = True
    spool = AccountingSpool(str(tmp_path), 10, stored, LOG)
    spool.record('AUTH_a', b'line\n')
    spool.flush()
    [kept] = spool_files(tmp_path)
    assert stored.objects == {}
    stored.refuse = False
    spool.flush()
    assert spool_files(tmp_path) == []
    assert stored.objects == {('AUTH_a', object_name(kept)): b'line\n'}


def test_the_spool_of_a_dead_worker_is_stored_by_another(tmp_path):
    # A worker that records a job and dies without storing it.
    subprocess.run([sys.executable, '-c', (
        'import logging, sys\n'
        'from zerocloud.proxy.accounting import AccountingSpool\n'
        'AccountingSpool(sys.argv[1], 10, None, logging).record(\n'
        '    "AUTH_a", b"orphaned line\\n")\n'
        'import os; os._exit(0)\n'), str(tmp_path)], check=True)
    [orphan] = spool_files(tmp_path)
    stored = Stored()
    AccountingSpool(str(tmp_path), 10, stored, LOG).flush()
    assert stored.objects == {('AUTH_a', object_name(orphan)):
                              b'orphaned line\n'}
    assert spool_files(tmp_path) == []


def test_the_spool_of_a_live_worker_is_left_to_it(tmp_path):
    # A live worker holds a lock on its spool file (flock: also against
    # another open file of the same process).
    live = AccountingSpool(str(tmp_path), 10, Stored(), LOG)
    live.record('AUTH_a', b'line\n')
    [held] = spool_files(tmp_path)
    other = Stored()
    AccountingSpool(str(tmp_path), 10, other, LOG).flush()
    assert other.objects == {}
    assert spool_files(tmp_path) == [held]


def test_spool_lines_keep_their_account_and_a_torn_line_is_dropped():
    data = spool_record('AUTH_x y', b'one\ntwo\n') + \
        spool_record('AUTH_z', b'three\n') + b'AUTH_z torn'
    assert split_spool(data) == {'AUTH_x y': b'one\ntwo\n',
                                 'AUTH_z': b'three\n'}


def test_objects_are_dated_by_their_spool():
    # 2026-12-07 00:00:00 UTC in milliseconds, as the name starts.
    name = '%011x-0123456789ab%s' % (1796601600 * 1000, SPOOL_SUFFIX)
    assert object_name(name) == '2026/12/07/%s.log' % name[:-len(
        SPOOL_SUFFIX)]
