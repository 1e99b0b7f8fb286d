"""A wide job is bounded, answers in sendable headers and leaves no files
(issue 15, item 13).

A private cluster whose proxy spools into a directory of its own
(``zerovm_spool_dir``), so that what a job leaves there can be seen.

- ``connect`` makes connections quadratically: 300 mappers × 300 reducers
  (a 220-byte job) is refused with ``400`` naming ``zerovm_max_connections``
  before anything runs.
- 150 nodes with long names that all fail with a long stderr line: every
  header line of the answer stays under 8 KiB; the lists end in the same
  ``...(<n> more)`` item.
- After a job with connections (its edges are spooled in the proxy), the
  same job with failing reducers, one failed by a trapping mapper, and a
  job whose client leaves before reading its spooled answer, the spool
  directory is empty.
- The data between a job's nodes is bounded (``zerovm_job_spool_limit``,
  1 MiB here): a mapper writing past it fails the job, naming the option.
- So is what a node writes (``zerovm_maxoutput``, 4 MiB here), also an
  output stored while it is written (stdout with a path, a named device
  teed): past it the node fails naming the limit, and nothing is stored.
"""

import json
import os
import re
import time
from typing import List

import pytest
import requests
import wasmtime

from .helpers import (
    Account, configure, configure_object_query, nexe_list, python_node,
    started_cluster, store_zapp, unique)

#: Bytes of one response header line (CRLF included) we stay under.
MAX_HEADER_LINE = 8192
#: Seconds the proxy may take to notice a client that left.
CLEANUP_WAIT = 30
#: This cluster's ``zerovm_job_spool_limit``.
JOB_SPOOL = 1 << 20
#: This cluster's ``zerovm_maxoutput``.
MAX_OUTPUT = 4 << 20

NOOP = '(module (memory (export "memory") 1) (func (export "_start")))'
TRAP = ('(module (memory (export "memory") 1) '
        '(func (export "_start") unreachable))')

#: Writes a 200-character line to stderr and exits 1.
FAILING = '''(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "%s\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 201))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1)
                          (i32.const 8)))
    (call $proc_exit (i32.const 1))))
''' % ('E' * 200)

#: Writes 2 MiB of zeros to stdout.
TALKER = '''(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $left i32)
    (local.set $left (i32.const 32))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $more
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1)
                            (i32.const 8)))
      (local.set $left (i32.sub (local.get $left) (i32.const 1)))
      (br_if $more (local.get $left)))))
'''


def own_spool_dir(cluster) -> None:
    spool = os.path.join(cluster.workdir, 'proxy-spool')
    os.makedirs(spool)
    configure(cluster, 'proxy-server', 'filter:proxy_query',
              zerovm_spool_dir=spool, zerovm_job_spool_limit=str(JOB_SPOOL))
    configure_object_query(cluster, zerovm_maxoutput=str(MAX_OUTPUT))


@pytest.fixture(scope='module')
def bounded_cluster():
    with started_cluster('zerocloud-bounds-', own_spool_dir) as cluster:
        yield cluster


@pytest.fixture(scope='module')
def account(bounded_cluster):
    return Account(bounded_cluster)


@pytest.fixture(scope='module')
def programs(account):
    """``name -> swift:// URL`` of the stored WAT programs."""
    container = unique('bounds')
    account.put_container(container)
    urls = {}
    for name, wat in (('noop', NOOP), ('failing', FAILING),
                      ('talker', TALKER), ('trap', TRAP)):
        account.put_object(container, name + '.wasm', wasmtime.wat2wasm(wat),
                           'application/wasm')
        urls[name] = 'swift://~/%s/%s.wasm' % (container, name)
    return urls


def spooled_files(cluster) -> List[str]:
    return os.listdir(os.path.join(cluster.workdir, 'proxy-spool'))


def map_reduce(mapper: str, reducer: str, mappers: int, reducers: int
               ) -> List[dict]:
    return [{'name': 'map', 'exec': {'path': mapper}, 'count': mappers,
             'connect': ['red']},
            {'name': 'red', 'exec': {'path': reducer}, 'count': reducers}]


def test_a_quadratic_job_is_refused_naming_the_option(
        bounded_cluster, account):
    job = map_reduce('file://python:python', 'file://python:python',
                     300, 300)
    assert len(json.dumps(job)) < 250
    resp = account.post_job(job)
    assert resp.status_code == 400, resp.text
    assert 'zerovm_max_connections' in resp.text
    assert '90000' in resp.text
    assert spooled_files(bounded_cluster) == []


def test_every_header_line_of_a_wide_failing_job_is_short(
        bounded_cluster, account, programs):
    name = 'f' * 56   # instances f…f-1 … f…f-150: 60 characters
    resp = account.post_job([{'name': name,
                              'exec': {'path': programs['failing']},
                              'count': 150,
                              'devices': [{'name': 'stdout'}]}])
    assert resp.status_code == 200, resp.text   # exit 1: X-Nexe-Error
    assert resp.headers['X-Nexe-Error'].endswith('...')
    for header, value in resp.headers.items():
        line = '%s: %s\r\n' % (header, value)
        assert len(line) < MAX_HEADER_LINE, (header, len(line))
    systems = resp.headers['X-Nexe-System'].split(',')
    retcodes = resp.headers['X-Nexe-Retcode'].split(',')
    assert systems[0] == name + '-1' and retcodes[0] == '1'
    assert systems[-1] == retcodes[-1] == '...(%d more)' % (
        151 - len(systems))
    assert spooled_files(bounded_cluster) == []


def test_a_job_with_connections_leaves_no_spooled_file(
        bounded_cluster, account, programs):
    resp = account.post_job(map_reduce(programs['noop'], programs['noop'],
                                       6, 4))
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-Status'].split(',') == ['ok'] * 10
    assert spooled_files(bounded_cluster) == []


def test_a_job_with_failing_reducers_leaves_no_spooled_file(
        bounded_cluster, account, programs):
    resp = account.post_job(map_reduce(programs['noop'], programs['failing'],
                                       6, 4))
    assert resp.status_code == 200, resp.text   # exit 1: X-Nexe-Error
    assert resp.headers['X-Nexe-Retcode'].split(',') == ['0'] * 6 + \
        ['1'] * 4
    assert 'bad return code' in resp.headers['X-Nexe-Error']
    assert spooled_files(bounded_cluster) == []


def test_a_failed_job_leaves_no_spooled_file(
        bounded_cluster, account, programs):
    """A mapper the sandbox stops fails the job while its peers run and
    spool their data (each ends, or is stopped); the reducers, which are
    sent only once all their mappers wrote, never run."""
    job = map_reduce(programs['noop'], programs['noop'], 6, 4)
    job.insert(1, {'name': 'bad', 'exec': {'path': programs['trap']},
                   'connect': ['red']})
    resp = account.post_job(job)
    assert resp.status_code == 422, resp.text
    statuses = resp.headers['X-Nexe-Status'].split(',')
    assert set(statuses[:6]) <= {'ok', 'stopped: node bad failed'}
    assert statuses[7:] == ['ZeroVM did not run'] * 4
    assert resp.text.startswith('Node bad failed')
    assert spooled_files(bounded_cluster) == []


def test_data_between_nodes_past_the_job_limit_fails_the_job(
        bounded_cluster, account):
    """The proxy keeps a job's connections whole until it ends: past
    ``zerovm_job_spool_limit`` the writing node fails, naming the option,
    and its peer, stopped, stores nothing."""
    container = unique('spool-limit')
    account.put_container(container)
    image = store_zapp(account, container, {
        'write.py': 'with open("/dev/out/red", "wb") as out:\n'
                    '    for _ in range(%d):\n'
                    '        out.write(bytes(65536))\n' % (2 * JOB_SPOOL
                                                          // 65536),
        'read.py': 'import sys\n'
                   'print(len(open("/dev/in/map", "rb").read()))\n'})
    output = 'swift://~/%s/count' % container
    resp = account.post_job([
        python_node('map', image, 'write.py', connect=['red']),
        python_node('red', image, 'read.py',
                    devices=[{'name': 'stdout', 'path': output}])])
    assert resp.status_code == 422, resp.text
    assert resp.text.startswith('Node map failed: the data between the '
                                "job's nodes went past %d bytes "
                                '(zerovm_job_spool_limit)' % JOB_SPOOL), \
        resp.text
    assert nexe_list(resp, 'X-Nexe-Status')[1] != 'ok'
    assert account.get('%s/count' % container).status_code == 404
    assert spooled_files(bounded_cluster) == []


@pytest.mark.parametrize('device', ['stdout', 'output'])
def test_an_output_stored_as_written_is_bounded_by_maxoutput(
        bounded_cluster, account, device):
    container = unique('max-output')
    account.put_container(container)
    image = store_zapp(account, container, {
        'write.py': 'import sys\n'
                    'out = sys.stdout.buffer if sys.argv[1] == "stdout" '
                    'else open("/dev/output", "wb")\n'
                    'for _ in range(%d):\n'
                    '    out.write(bytes(65536))\n'
                    'out.flush()\n' % (2 * MAX_OUTPUT // 65536)})
    target = '%s/written' % container
    resp = account.post_job([python_node(
        'writer', image, 'write.py ' + device, devices=[
            {'name': device, 'path': 'swift://~/' + target}])])
    assert resp.status_code == 422, resp.text
    [status] = nexe_list(resp, 'X-Nexe-Status')
    assert re.fullmatch(r'channel /dev/%s: write limit exceeded '
                        r'\(\d+ > %d bytes\)' % (device, MAX_OUTPUT),
                        status), status
    assert account.get(target).status_code == 404


def test_a_client_that_leaves_unread_leaves_no_spooled_file(
        bounded_cluster, account, programs):
    job = [{'name': 'talk', 'exec': {'path': programs['talker']},
            'count': 3, 'devices': [{'name': 'stdout'}]}]
    resp = requests.post(account.url, data=json.dumps(job), stream=True,
                         timeout=120, headers=account.headers(**{
                             'X-Zerovm-Execute': '1.0',
                             'Content-Type': 'application/json'}))
    assert resp.status_code == 200
    assert int(resp.headers['Content-Length']) == 3 * (2 << 20)
    resp.raw.read(1000)
    resp.close()   # gone, with most of the answer unread
    deadline = time.monotonic() + CLEANUP_WAIT
    while spooled_files(bounded_cluster) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert spooled_files(bounded_cluster) == []
