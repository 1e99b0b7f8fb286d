"""Data larger than RAM, one job per kind of input or output:
``.venv/bin/python bench/bigdata.py [--size-mb 768] [--no-encryption]``.

Starts its own all-in-one cluster (encryption at rest on, the object
servers' default ``zerovm_ram_limit`` of 256 MiB) and runs, each over
``--size-mb`` of data (three times that limit by default):

* an encrypted replicated object as ``/dev/input``, then as ``stdin``;
* an SLO of 12 segments as ``/dev/input`` (streamed by the proxy);
* an object half that size in the ``ec`` policy as ``/dev/input``;
* map → reduce: 4 mappers each copy a quarter-size object to one reducer;
* a node copying the object into a new output object;
* the object through a C stdin → stdout passthrough into a stored object
  (stdout with a path: stored as it comes);
* the object through a C stdin → stdout passthrough as the answer.

For each: the status, seconds, when the first byte of the answer came,
the peak RSS of an object server and of a sandbox worker, and the peak
bytes in the object servers' RAM directory (``zerovm_ram_dir``).  A plain
GET of the object is the baseline; the copies are also compared with a
plain PUT of as many bytes.  Every md5 the programs print is checked
against the data; nothing is asserted about time.
"""

import argparse
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional

import requests

from common import (
    MIB, REQUEST_TIMEOUT, ROOT, Account, BenchError, RssSampler,
    add_encryption_flag, children_of, print_table, running_cluster,
    server_pids, tar_of)
from zerocloud.headers import STREAMING_STATUS
from zerocloud.object.config import DEFAULT_RAM_DIR
from zerocloud.object.hostmemory import NODE_DIR_PREFIX

CONTAINER = 'bench-bigdata'
EC_CONTAINER = 'bench-bigdata-ec'
PASSTHROUGH = os.path.join(ROOT, 'examples', 'passthrough.wasm')
MAPPERS = 4
SEGMENTS = 12
#: Prints the md5 and size of an input (argv[1]: a device or ``stdin``).
HASHER = '''import hashlib, sys
name = sys.argv[1]
source = sys.stdin.buffer if name == 'stdin' else open(name, 'rb')
digest, size = hashlib.md5(), 0
for chunk in iter(lambda: source.read(1 << 20), b''):
    digest.update(chunk)
    size += len(chunk)
print(digest.hexdigest(), size)
'''
#: Copies ``/dev/input`` to the device argv[1], a MiB at a time.
COPIER = '''import shutil, sys
with open('/dev/input', 'rb') as src, open(sys.argv[1], 'wb') as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
'''
#: Prints the md5 and size of each of its inputs from the mappers.
REDUCER = '''import hashlib, os
for name in sorted(os.listdir('/dev/in')):
    digest, size = hashlib.md5(), 0
    with open('/dev/in/' + name, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
            size += len(chunk)
    print(name, digest.hexdigest(), size)
'''


PUT_LABEL = 'PUT (baseline for the copies)'
COPY_LABEL = 'copy into a new output object'
STDOUT_COPY_LABEL = 'C passthrough to a stored stdout'


def chunks(seed: int, total: int) -> Iterator[bytes]:
    """``total`` bytes of incompressible data that ``seed`` names."""
    block = hashlib.sha256(b'%d' % seed).digest() * (MIB // 32)
    sent = 0
    while sent < total:
        size = min(MIB, total - sent)
        # Each MiB differs, so a misplaced MiB shows in the md5.
        yield (b'%08d' % (sent // MIB) + block[8:])[:size]
        sent += size


def md5_of(seed: int, total: int) -> str:
    digest = hashlib.md5()
    for chunk in chunks(seed, total):
        digest.update(chunk)
    return digest.hexdigest()


class RamDirSampler:
    """Peak bytes in the object servers' node directories under the RAM
    dir, sampled every 0.1 s on a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> 'RamDirSampler':
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            total = 0
            for top in os.listdir(DEFAULT_RAM_DIR):
                if not top.startswith(NODE_DIR_PREFIX):
                    continue
                for folder, _, files in os.walk(
                        os.path.join(DEFAULT_RAM_DIR, top)):
                    for name in files:
                        try:
                            total += os.lstat(
                                os.path.join(folder, name)).st_size
                        except OSError:
                            pass   # gone meanwhile
            self.peak = max(self.peak, total)


@dataclass
class Row:
    label: str
    outcome: str
    seconds: float
    first_byte: float
    server_kib: int
    sandbox_kib: int
    ram_dir: int


class BigData:
    def __init__(self, cluster, size: int) -> None:
        self.cluster = cluster
        self.size = size
        self.account = Account(cluster)
        self.session = self.account.session()

    def url(self, path: str) -> str:
        return '%s/%s' % (self.account.url, path)

    def put(self, path: str, seed: int, size: int) -> None:
        resp = self.session.put(self.url(path), data=chunks(seed, size),
                                timeout=REQUEST_TIMEOUT)
        if resp.status_code != 201:
            raise BenchError('PUT %s: %d %s' % (path, resp.status_code,
                                                resp.text.strip()))

    @staticmethod
    def python_node(program: str, args: str, devices: list,
                    **more) -> dict:
        """A node named ``program`` running its ``<program>.tar``."""
        return dict({'name': program,
                     'exec': {'path': 'file://python:python',
                              'args': 'main.py ' + args},
                     'devices': [{'name': 'python'},
                                 {'name': 'image',
                                  'path': 'swift://~/%s/%s.tar' % (
                                      CONTAINER, program)}] + devices},
                    **more)

    def measure(self, label: str, request: Callable[[], requests.Response],
                check: Callable[[requests.Response, bytes], str]) -> Row:
        """Run one job; ``check(resp, body)`` says what went wrong, or
        '' when the answer is right."""
        def servers() -> List[int]:
            return server_pids(self.cluster, 'swift-object-server')
        with RssSampler(servers) as server_rss, \
                RssSampler(lambda: children_of(servers())) as sandbox_rss, \
                RamDirSampler() as ram_dir:
            started = time.perf_counter()
            resp = request()
            first_byte: Optional[float] = None
            body = []
            cut = False
            try:
                for chunk in resp.iter_content(MIB):
                    if first_byte is None:
                        first_byte = time.perf_counter() - started
                    if sum(map(len, body)) < MIB:
                        body.append(chunk)
            except requests.exceptions.ChunkedEncodingError:
                cut = True   # a streamed answer whose node failed
            seconds = time.perf_counter() - started
        text = b''.join(body)
        if cut:
            outcome = 'failed after its answer started streaming'
        elif resp.status_code not in (200, 201):
            outcome = '%d %s' % (resp.status_code,
                                 text[:120].decode('utf-8', 'replace'))
        elif resp.headers.get('X-Nexe-Status') == STREAMING_STATUS:
            outcome = check(resp, text) or 'ok (streamed)'
        elif set(resp.headers.get('X-Nexe-Status', 'ok').split(',')) != \
                {'ok'} or set(resp.headers.get(
                    'X-Nexe-Retcode', '0').split(',')) != {'0'}:
            outcome = 'failed: %s' % resp.headers.get('X-Nexe-Error')
        else:
            outcome = check(resp, text) or 'ok'
        return Row(label, ' '.join(outcome.split()), seconds,
                   first_byte or seconds, server_rss.peak.single,
                   sandbox_rss.peak.single, ram_dir.peak)

    def job(self, nodes: list) -> Callable[[], requests.Response]:
        return lambda: self.session.post(
            self.account.url, data=json.dumps(nodes), stream=True,
            timeout=REQUEST_TIMEOUT, headers={
                'X-Zerovm-Execute': '1.0',
                'Content-Type': 'application/json'})


def expect_md5(md5: str, size: int) -> Callable:
    def check(resp, text: bytes) -> str:
        got = text.decode().split()
        return '' if got == [md5, str(size)] else 'wrong answer %r' % got
    return check


def run(bench: BigData) -> List[Row]:
    size, session = bench.size, bench.session
    account = bench.account
    account.put_container(session, CONTAINER)
    account.put_container(session, EC_CONTAINER, 'ec')
    for name, source in (('hash', HASHER), ('copy', COPIER),
                         ('reduce', REDUCER)):
        account.put_object(session, CONTAINER, name + '.tar',
                           tar_of({'main.py': source}))
    with open(PASSTHROUGH, 'rb') as handle:
        account.put_object(session, CONTAINER, 'passthrough.wasm',
                           handle.read())
    print('uploading %d MiB four times...' % (size // MIB))
    started = time.perf_counter()
    bench.put('%s/object' % CONTAINER, 1, size)
    segment = size // SEGMENTS
    for number in range(SEGMENTS):
        bench.put('%s/segment-%02d' % (CONTAINER, number), 1 + number,
                  segment)
    resp = session.put(bench.url('%s/slo?multipart-manifest=put'
                                 % CONTAINER), timeout=REQUEST_TIMEOUT,
                       data=json.dumps([{'path': '%s/segment-%02d' % (
                           CONTAINER, n)} for n in range(SEGMENTS)]))
    if resp.status_code != 201:
        raise BenchError('PUT of the SLO: %d' % resp.status_code)
    bench.put('%s/object' % EC_CONTAINER, 100, size // 2)
    quarter = size // MAPPERS
    for number in range(MAPPERS):
        bench.put('%s/part-%d' % (CONTAINER, number), 200 + number,
                  quarter)
    print('uploaded in %.1f s' % (time.perf_counter() - started))
    slo_md5 = hashlib.md5()
    for number in range(SEGMENTS):
        for chunk in chunks(1 + number, segment):
            slo_md5.update(chunk)

    def get_object() -> requests.Response:
        return session.get(bench.url('%s/object' % CONTAINER), stream=True,
                           timeout=REQUEST_TIMEOUT)

    def stored_copy(resp, text: bytes) -> str:
        head = session.head(bench.url('%s/copy' % CONTAINER),
                            timeout=REQUEST_TIMEOUT)
        return '' if head.headers.get('Etag') == md5_of(1, size) else \
            'the copy is wrong (%s)' % head.status_code

    def put_object() -> requests.Response:
        return session.put(bench.url('%s/put-baseline' % CONTAINER),
                           data=chunks(1, size), timeout=REQUEST_TIMEOUT)

    def passed_through(resp, text: bytes) -> str:
        return '' if text[:MIB] == next(chunks(1, size)) else 'wrong bytes'

    source = {'path': 'swift://~/%s/object' % CONTAINER}
    rows = [bench.measure('GET (baseline)', get_object,
                          lambda resp, text: ''),
            bench.measure(PUT_LABEL, put_object, lambda resp, text: '')]
    cases = [
        ('encrypted object as /dev/input', [bench.python_node(
            'hash', '/dev/input', [{'name': 'stdout'},
                                   dict(source, name='input')])],
         expect_md5(md5_of(1, size), size)),
        ('encrypted object as stdin', [bench.python_node(
            'hash', 'stdin', [{'name': 'stdout'},
                              dict(source, name='stdin')])],
         expect_md5(md5_of(1, size), size)),
        ('SLO of %d segments as /dev/input' % SEGMENTS, [bench.python_node(
            'hash', '/dev/input', [
                {'name': 'stdout'},
                {'name': 'input',
                 'path': 'swift://~/%s/slo' % CONTAINER}])],
         expect_md5(slo_md5.hexdigest(), segment * SEGMENTS)),
        ('ec object (%d MiB) as /dev/input' % (size // 2 // MIB),
         [bench.python_node('hash', '/dev/input', [
             {'name': 'stdout'},
             {'name': 'input',
              'path': 'swift://~/%s/object' % EC_CONTAINER}])],
         expect_md5(md5_of(100, size // 2), size // 2)),
        ('map -> reduce, %d x %d MiB' % (MAPPERS, quarter // MIB), [
            bench.python_node('copy', '/dev/out/reduce', [
                {'name': 'input',
                 'path': 'swift://~/%s/part-*' % CONTAINER}],
                connect=['reduce']),
            bench.python_node('reduce', '', [{'name': 'stdout'}])],
         lambda resp, text: '' if len(text.splitlines()) == MAPPERS
         else 'wrong answer'),
        (COPY_LABEL, [bench.python_node(
            'copy', '/dev/output', [
                dict(source, name='input'),
                {'name': 'output',
                 'path': 'swift://~/%s/copy' % CONTAINER}])],
         stored_copy),
        (STDOUT_COPY_LABEL, [{
            'name': 'passthrough',
            'exec': {'path': 'swift://~/%s/passthrough.wasm' % CONTAINER},
            'devices': [dict(source, name='stdin'),
                        {'name': 'stdout',
                         'path': 'swift://~/%s/copy' % CONTAINER}]}],
         stored_copy),
        ('C passthrough to the answer', [{
            'name': 'passthrough',
            'exec': {'path': 'swift://~/%s/passthrough.wasm' % CONTAINER},
            'devices': [dict(source, name='stdin'), {'name': 'stdout'}]}],
         passed_through),
    ]
    for label, nodes, check in cases:
        rows.append(bench.measure(label, bench.job(nodes), check))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size-mb', type=int, default=768,
                        help='data per job, in MiB (default 768)')
    add_encryption_flag(parser)
    args = parser.parse_args()
    try:
        with running_cluster(args.encryption) as cluster:
            rows = run(BigData(cluster, args.size_mb * MIB))
    except BenchError as err:
        print('bench failed: %s' % err)
        return 1
    get, put = rows[0], rows[1]
    print('\n%d MiB per job, encryption at rest %s' % (
        args.size_mb, 'on' if args.encryption else 'off'))
    print_table(
        ['job', 'outcome', 'seconds', 'vs GET', 'first byte',
         'object-server peak RSS', 'sandbox peak RSS', 'RAM dir peak'],
        [[row.label, row.outcome, '%.2f' % row.seconds,
          '%.2f' % (row.seconds / get.seconds), '%.2f' % row.first_byte,
          '%.0f MB' % (row.server_kib / 1024),
          '%.0f MB' % (row.sandbox_kib / 1024)
          if row not in (get, put) else '-',
          '%.1f MB' % (row.ram_dir / MIB)] for row in rows])
    for row in rows:
        if row.label in (COPY_LABEL, STDOUT_COPY_LABEL):
            print('%s vs PUT (a client storing the same bytes): %.2f'
                  % (row.label, row.seconds / put.seconds))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
