"""Execution-path benchmark: ``.venv/bin/python bench/exec.py [options]``.

Starts its own all-in-one cluster (tmpfs when usable), measures, prints the
numbers and ratios against baselines taken in the same run, and stops the
cluster (also on Ctrl-C).  Timings are printed, never asserted; each target
gets a ``target met: yes/no`` line.

P1  latency of the seed's hello script, POSTed ``--requests`` times in a row
    (p50, p99), versus GETs of a 1 KB object on the same session, each in
    a block of its own; target POST p50 / GET p50 <= 2, POST p99 / GET
    p99 <= 3.  Then GET and POST interleaved (a GET right after each job):
    target interleaved GET p50 / sequential GET p50 <= 1.2, as a job must
    leave no work behind that delays the next request.  Also prints where
    the POST time goes, from ``X-Nexe-Cdr-Line`` (proxy job time,
    object-server node time); a JSON job running a stored C program
    (passthrough.wasm, empty stdin), target p50 <= 1.5 x GET p50; a
    pandas script (``import pandas``, a tiny DataFrame) POSTed as often,
    target pandas p50 / hello p50 <= 2; and the memory of the sandbox
    workers with the Python image loaded: RSS and PSS per worker and the
    total (PSS counts the shared compiled module once across them).
P5  a ``--size-mb`` object streamed through a stdin->stdout passthrough
    (``examples/passthrough.wasm``, then a Python one) versus a plain GET of
    the object: throughput ratio, target >= 0.9, and the first byte of
    the answer, target <= 0.1 s (issue 16); and the peak RSS of every
    ``swift-object-server`` process of the cluster meanwhile (sampled every
    0.1 s), target < 200 MB.  Sandbox workers' RSS is printed apart.
P6  ``--clients`` threads POSTing the hello script for ``--seconds``; every
    answer must be 200, or 503 with ``Retry-After`` (the sandbox pool's
    back-pressure): prints counts per status, share of 200s, req/s; then
    as many clients GETting a 1 KB object for as long, and the ratio of
    hello jobs per second to GETs per second.
P8  a zapp whose ``main.py`` imports ``sklearn.linear_model`` and
    ``scipy.stats`` and fits a 100-point line: its p50 before its app
    snapshot exists (3 runs; the machine's app snapshots are removed
    first), how long the snapshot took to appear after the first run and
    its size on disk, then ``--requests``/5 POSTs (at least 5) from it,
    p50 against the hello script's; target <= 1.5.

Options: ``--requests 200``, ``--size-mb 1024``, ``--seconds 30``,
``--clients 32``, ``--only P1,P5,P6,P8`` (default: all), ``--profile`` (P1
also prints a stage-by-stage profile of the hello script, sequential and
interleaved, and of the C job: the medians of the stages each job's proxy
log line gives, :mod:`zerocloud.stages`).  A quick run::

    .venv/bin/python bench/exec.py --requests 20 --size-mb 64 --seconds 5 \
        --clients 8
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import requests

from zerocloud import paths
from zerocloud.headers import STREAMING_STATUS
from zerocloud.runtime import appsnap
from zerocloud.stages import parse_stages

from common import (
    HELLO_OUTPUT, HELLO_SCRIPT, MIB, REQUEST_TIMEOUT, ROOT, Account,
    BenchError, Cluster, RssSampler, add_encryption_flag, children_of, drain,
    memory_kib, percentile, print_table, repeated_chunks, running_cluster,
    server_pids, tar_of, timed, yes_no)

CONTAINER = 'bench-exec'
SMALL_OBJECT = 'small-1k'
BIG_OBJECT = 'big'
WASM_PROGRAM = 'passthrough.wasm'
PYTHON_IMAGE = 'passthrough.tar'
WASM_SOURCE = os.path.join(ROOT, 'examples', 'passthrough.wasm')
WARMUP = 10
P1_TARGET = 2.0
P1_P99_TARGET = 3.0
INTERLEAVED_TARGET = 1.2
C_JOB_TARGET = 1.5
PANDAS_TARGET = 2.0
P5_RATIO_TARGET = 0.9
P5_FIRST_BYTE_TARGET = 0.1
P5_RSS_TARGET_MB = 200
OBJECT_SERVER = 'swift-object-server'
MEASURES = ('P1', 'P5', 'P6', 'P8')

PYTHON_PASSTHROUGH = '''import sys
source, sink = sys.stdin.buffer, sys.stdout.buffer
while True:
    chunk = source.read(1 << 20)
    if not chunk:
        break
    sink.write(chunk)
sink.flush()
'''


@dataclass
class Verdict:
    """One line of the closing summary."""
    measure: str
    value: str
    baseline: str
    ratio: str
    target: str
    met: bool


@dataclass
class Bench:
    """What every measure needs: the cluster, the account, the options."""
    cluster: Cluster
    account: Account
    args: argparse.Namespace
    verdicts: list = field(default_factory=list)
    wasm_uploaded: Optional[bool] = None


PANDAS_SCRIPT = '''#!file://python:python
import pandas as pd
frame = pd.DataFrame({"city": ["a", "b", "a"], "sales": [1, 2, 3]})
print(frame.groupby("city")["sales"].sum().to_dict())
'''
PANDAS_OUTPUT = b"{'a': 4, 'b': 2}\n"


def ms(seconds: float) -> str:
    return '%.1f ms' % (seconds * 1000)


def post_hello(account: Account, session) -> requests.Response:
    """POST the seed's hello script; its answer, checked."""
    resp = account.execute(session, HELLO_SCRIPT, 'application/python')
    if resp.status_code != 200 or resp.content != HELLO_OUTPUT:
        raise BenchError('hello script: %d %r (X-Nexe-Status %s)' % (
            resp.status_code, resp.content[:200],
            resp.headers.get('X-Nexe-Status')))
    return resp


def cdr_times(resp) -> tuple[float, float]:
    """(proxy job seconds, object-server node seconds) of a one-node job."""
    proxy_total, node_elapsed = resp.headers['X-Nexe-Cdr-Line'].split(',')[:2]
    return float(proxy_total), float(node_elapsed)


# -- P1 ----------------------------------------------------------------------

def measure_p1(bench: Bench) -> None:
    account, count = bench.account, bench.args.requests
    session = account.session()
    small_url = '%s/%s/%s' % (account.url, CONTAINER, SMALL_OBJECT)
    account.put_object(session, CONTAINER, SMALL_OBJECT, os.urandom(1024))

    def get_small():
        resp = session.get(small_url, timeout=REQUEST_TIMEOUT)
        if resp.status_code != 200 or len(resp.content) != 1024:
            raise BenchError('GET %s: %d' % (SMALL_OBJECT, resp.status_code))
        return resp

    def hello():
        return post_hello(account, session)

    for _ in range(WARMUP):
        get_small()
        hello()
    gets = [timed(get_small)[0] for _ in range(count)]
    posts, proxy_times, node_times = [], [], []
    profiles = {'hello script, sequential': {},
                'hello script, interleaved': {}}
    for _ in range(count):
        seconds, resp = timed(hello)
        posts.append(seconds)
        profiles['hello script, sequential'][
            resp.headers.get('X-Trans-Id')] = seconds
        proxy_total, node_elapsed = cdr_times(resp)
        proxy_times.append(proxy_total)
        node_times.append(node_elapsed)

    mixed_gets, mixed_posts = [], []
    for _ in range(count):
        seconds, resp = timed(hello)
        mixed_posts.append(seconds)
        profiles['hello script, interleaved'][
            resp.headers.get('X-Trans-Id')] = seconds
        mixed_gets.append(timed(get_small)[0])

    get_p50, post_p50 = percentile(gets, 50), percentile(posts, 50)
    ratio = post_p50 / get_p50
    print('P1  hello-script POST vs 1 KB GET, %d sequential requests each, '
          'one session' % count)
    print_table(['request', 'p50', 'p99'], [
        ['GET 1 KB', ms(get_p50), ms(percentile(gets, 99))],
        ['POST script', ms(post_p50), ms(percentile(posts, 99))],
        ['GET, interleaved', ms(percentile(mixed_gets, 50)),
         ms(percentile(mixed_gets, 99))],
        ['POST, interleaved', ms(percentile(mixed_posts, 50)),
         ms(percentile(mixed_posts, 99))],
    ])
    p99_ratio = percentile(posts, 99) / percentile(gets, 99)
    mixed_ratio = percentile(mixed_gets, 50) / get_p50
    print('    POST p99 / GET p99 = %.2f (target <= %g); target met: %s' % (
        p99_ratio, P1_P99_TARGET, yes_no(p99_ratio <= P1_P99_TARGET)))
    print('    GET right after a job: interleaved GET p50 / GET p50 = %.2f '
          '(target <= %g); target met: %s' % (
              mixed_ratio, INTERLEAVED_TARGET,
              yes_no(mixed_ratio <= INTERLEAVED_TARGET)))
    bench.verdicts.append(Verdict(
        'P1 POST p99 / GET p99', ms(percentile(posts, 99)),
        ms(percentile(gets, 99)), '%.2f' % p99_ratio,
        '<= %g' % P1_P99_TARGET, p99_ratio <= P1_P99_TARGET))
    bench.verdicts.append(Verdict(
        'P1 GET after job / GET', ms(percentile(mixed_gets, 50)),
        ms(get_p50), '%.2f' % mixed_ratio, '<= %g' % INTERLEAVED_TARGET,
        mixed_ratio <= INTERLEAVED_TARGET))
    proxy_p50 = percentile(proxy_times, 50)
    node_p50 = percentile(node_times, 50)
    print('    POST p50 split (X-Nexe-Cdr-Line): object-server node %s, '
          'rest of the proxy job %s, outside the job (client, HTTP, auth) '
          '%s' % (ms(node_p50), ms(proxy_p50 - node_p50),
                  ms(post_p50 - proxy_p50)))
    print('    ratio POST p50 / GET p50 = %.2f (target <= %g); target met: %s'
          % (ratio, P1_TARGET, yes_no(ratio <= P1_TARGET)))
    bench.verdicts.append(Verdict(
        'P1 POST p50 / GET p50', ms(post_p50), ms(get_p50), '%.2f' % ratio,
        '<= %g' % P1_TARGET, ratio <= P1_TARGET))
    measure_pandas(bench, session, post_p50)
    print_worker_memory(bench)
    if upload_wasm_passthrough(bench):
        profiles['C job (stored program)'] = print_c_reference(
            bench, session, get_p50)
    if bench.args.profile:
        print_profile(bench, profiles)


def measure_pandas(bench: Bench, session, hello_p50: float) -> None:
    """A pandas job's p50 against the hello script's."""
    def post_pandas():
        resp = bench.account.execute(session, PANDAS_SCRIPT,
                                     'application/python')
        if resp.status_code != 200 or resp.content != PANDAS_OUTPUT:
            raise BenchError('pandas script: %d %r (X-Nexe-Error %s)' % (
                resp.status_code, resp.content[:200],
                resp.headers.get('X-Nexe-Error')))
    for _ in range(WARMUP):
        post_pandas()
    seconds = [timed(post_pandas)[0] for _ in range(bench.args.requests)]
    p50 = percentile(seconds, 50)
    ratio = p50 / hello_p50
    print('    pandas script POST: p50 %s, p99 %s; ratio to hello p50 %.2f '
          '(target <= %g); target met: %s' % (
              ms(p50), ms(percentile(seconds, 99)), ratio, PANDAS_TARGET,
              yes_no(ratio <= PANDAS_TARGET)))
    bench.verdicts.append(Verdict(
        'pandas p50 / hello p50', ms(p50), ms(hello_p50), '%.2f' % ratio,
        '<= %g' % PANDAS_TARGET, ratio <= PANDAS_TARGET))


def print_worker_memory(bench: Bench) -> None:
    """RSS and PSS of every sandbox worker, now that they ran Python."""
    workers = children_of(server_pids(bench.cluster, OBJECT_SERVER))
    rows = []
    for pid in sorted(workers):
        rss, pss = memory_kib(pid)
        if rss is not None:
            rows.append((pid, rss, pss))
    if not rows:
        print('    (no sandbox worker running)')
        return
    print('    sandbox workers with the Python image loaded: %s; total RSS '
          '%d MB, total PSS %d MB' % (
              ', '.join('pid %d RSS %d MB PSS %d MB'
                        % (pid, rss >> 10, pss >> 10)
                        for pid, rss, pss in rows),
              sum(r[1] for r in rows) >> 10, sum(r[2] for r in rows) >> 10))


def print_c_reference(bench: Bench, session, get_p50: float
                      ) -> dict[str, float]:
    """Same POST path with a C program: what is left without CPython.
    Returns each request's seconds by transaction id (for the profile)."""
    job = json.dumps([{'name': 'c', 'exec': {'path': swift_path(WASM_PROGRAM)},
                       'devices': [{'name': 'stdout'}]}])

    def post_c():
        resp = bench.account.execute(session, job, 'application/json')
        status = resp.headers.get('X-Nexe-Status')
        if resp.status_code != 200 or status != 'ok':
            raise BenchError('C reference job: %d %s' % (
                resp.status_code, status))
        return resp

    for _ in range(WARMUP):
        post_c()
    samples = [timed(post_c) for _ in range(bench.args.requests)]
    seconds = [s for s, _ in samples]
    cdrs = [cdr_times(resp) for _, resp in samples]
    proxy_p50 = percentile([proxy for proxy, _ in cdrs], 50)
    node_p50 = percentile([node for _, node in cdrs], 50)
    c_p50 = percentile(seconds, 50)
    ratio = c_p50 / get_p50
    print('    JSON job running the stored %s (C, empty stdin): p50 %s, p99 '
          '%s; proxy job p50 %s, object-server node p50 %s; ratio to GET '
          'p50 %.2f (target <= %g); target met: %s' % (
              WASM_PROGRAM, ms(c_p50), ms(percentile(seconds, 99)),
              ms(proxy_p50), ms(node_p50), ratio, C_JOB_TARGET,
              yes_no(ratio <= C_JOB_TARGET)))
    bench.verdicts.append(Verdict(
        'C job p50 / GET p50', ms(c_p50), ms(get_p50), '%.2f' % ratio,
        '<= %g' % C_JOB_TARGET, ratio <= C_JOB_TARGET))
    return {resp.headers.get('X-Trans-Id'): seconds
            for seconds, resp in samples}


# -- the stage profile (--profile) ------------------------------------------

def logged_stages(cluster: Cluster) -> dict[str, dict[str, float]]:
    """Each job's stages (ms) by transaction id, from the proxy's log
    lines ``zerocloud job <id> txn <txn> stages ...`` (zerocloud.stages).

    A one-node job's node stages keep their names; the proxy's part of
    ``run+respond`` beyond its node is ``respond``.
    """
    jobs = {}
    with open(cluster.log_path('proxy-server'), errors='replace') as log:
        for line in log:
            head, found, tail = line.partition(' stages ')
            if not found or ' txn ' not in head:
                continue
            txn = head.rsplit(' txn ', 1)[1].split()[0]
            stages: dict[str, float] = {}
            nodes = 0
            for token in tail.split():
                name, _, value = token.partition('=')
                if name == 'subrequests':
                    stages[name] = float(value)
                    continue
                if name == 'memcache' and '/' in value:
                    hits, _, lookups = value.partition('/')
                    stages['memcache hits'] = float(hits)
                    stages['memcache lookups'] = float(lookups)
                    continue
                if ':' in token:
                    nodes += 1
                    token = token.split(':', 1)[1]
                for stage, seconds in parse_stages(token):
                    stages[stage] = stages.get(stage, 0.0) + seconds * 1000
            if nodes == 1 and 'run+respond' in stages:
                node_total = sum(v for k, v in stages.items()
                                 if k in PROXY_NODE_STAGES)
                stages['respond'] = stages.pop('run+respond') - node_total
            jobs[txn] = stages
    return jobs


#: The proxy's stages of one node (zerocloud.proxy.scheduler, nodeclient).
PROXY_NODE_STAGES = ('place', 'uploads', 'connect', 'send', 'wait',
                     'send+wait', 'read')
#: Rows of the profile, in the order a request goes through them.
PROFILE_ROWS = (
    ('request', 'proxy: parse, auth and object checks'),
    ('place', 'proxy: placement'),
    ('uploads', 'proxy: members to send (fetches start)'),
    ('connect', 'proxy: connect, 100-continue'),
    ('server.receive', 'object server: accept, 100-continue, body'),
    ('send', 'proxy: body sent'),
    ('server.prepare', 'object server: manifest, program lookup'),
    ('server.sandbox', 'object server: queue, worker run, report'),
    ('server.frame', 'object server: answer framing'),
    ('wait', 'proxy: waiting for the answer headers'),
    ('read', 'proxy: reading the answer'),
    ('respond', 'proxy: assembly, log, accounting'),
    ('subrequests', 'sub-requests below proxy_query (count)'),
    ('memcache lookups', 'memcache lookups of the job (count)'),
    ('memcache hits', 'of which hits (count)'),
)
#: Rows that count things rather than time them.
COUNTED = ('subrequests', 'memcache lookups', 'memcache hits')


def print_profile(bench: Bench, profiles: dict[str, dict[str, float]]
                  ) -> None:
    """Median of each stage, per kind of request (bench --profile)."""
    time.sleep(0.5)   # the last log lines reach the file
    stages = logged_stages(bench.cluster)
    columns = list(profiles)
    rows = []
    for key, label in PROFILE_ROWS:
        row = [label]
        for column in columns:
            values = [stages[txn][key] for txn in profiles[column]
                      if txn in stages and key in stages[txn]]
            row.append(('%d' if key in COUNTED else '%.2f ms') %
                       percentile(values, 50) if values else '-')
        rows.append(row)
    totals = ['client: whole request (p50)']
    outside = ['client, HTTP, auth: outside the job']
    for column in columns:
        seconds = sorted(profiles[column].values())
        totals.append(ms(percentile(seconds, 50)))
        inside = [sum(v for k, v in stages[txn].items()
                      if k not in COUNTED and
                      not k.startswith('server.')) / 1000
                  for txn in profiles[column] if txn in stages]
        outside.append(ms(percentile(seconds, 50) - percentile(inside, 50))
                       if inside else '-')
    print('    stage profile (p50 of each stage; stages on the object '
          'server overlap the proxy\'s send and wait):')
    print_table(['stage'] + columns, rows + [outside, totals])


# -- P5 ----------------------------------------------------------------------

def upload_wasm_passthrough(bench: Bench) -> bool:
    """Store examples/passthrough.wasm (built with make if missing) once.

    False, with a note printed, when it cannot be built: the measures that
    need it are then left out.
    """
    if bench.wasm_uploaded is None:
        if not os.path.exists(WASM_SOURCE):
            built = subprocess.run(['make', '-s', 'examples/passthrough.wasm'],
                                   cwd=ROOT, capture_output=True, text=True)
            if built.returncode != 0:
                print('    (left out: no %s, make failed: %s)' % (
                    WASM_SOURCE, ' '.join(built.stderr.split())[-300:]))
                bench.wasm_uploaded = False
                return False
        with open(WASM_SOURCE, 'rb') as handle:
            bench.account.put_object(bench.account.session(), CONTAINER,
                                     WASM_PROGRAM, handle.read(),
                                     'application/wasm')
        bench.wasm_uploaded = True
    return bench.wasm_uploaded


def swift_path(name: str) -> str:
    return 'swift://~/%s/%s' % (CONTAINER, name)


def passthrough_job(program: str) -> list:
    """A one-node job copying the big object from stdin to stdout."""
    devices = [{'name': 'stdin', 'path': swift_path(BIG_OBJECT)},
               {'name': 'stdout'}]
    if program == 'wasm':
        return [{'name': 'passthrough',
                 'exec': {'path': swift_path(WASM_PROGRAM)},
                 'devices': devices}]
    return [{'name': 'passthrough',
             'exec': {'path': 'file://python:python', 'args': 'main.py'},
             'devices': [{'name': 'python'},
                         {'name': 'image', 'path': swift_path(PYTHON_IMAGE)}]
             + devices}]


@dataclass
class Transfer:
    """One streamed read of the big object; ``error`` says why it failed."""
    label: str
    seconds: float
    first_byte: float
    size: int
    server_peak_kib: int
    sandbox_peak_kib: int
    error: Optional[str] = None

    @property
    def mb_per_s(self) -> float:
        return self.size / MIB / self.seconds


def measure_transfer(bench: Bench, label: str, request) -> Transfer:
    """Time ``request()`` (a streamed response) to its last byte, with RSS."""
    size = bench.args.size_mb * MIB

    def object_servers():
        return server_pids(bench.cluster, OBJECT_SERVER)

    def sandbox_workers():
        return children_of(object_servers())

    with RssSampler(object_servers) as servers, \
            RssSampler(sandbox_workers) as sandboxes:
        started = time.perf_counter()
        resp = request()
        first_byte, received = None, 0
        for chunk in resp.iter_content(MIB):
            if first_byte is None:
                first_byte = time.perf_counter() - started
            received += len(chunk)
        resp.close()
        seconds = time.perf_counter() - started
    error = None
    status = resp.headers.get('X-Nexe-Status')
    if resp.status_code != 200:
        error = '%d %s' % (resp.status_code, ' '.join(
            resp.headers.get('X-Nexe-Error', status or '').split()))
    elif status is not None and status not in ('ok', STREAMING_STATUS):
        error = 'X-Nexe-Status %s' % status
    elif received != size:
        error = 'got %d bytes, expected %d' % (received, size)
    return Transfer(label, seconds, first_byte or seconds, received,
                    servers.peak.single, sandboxes.peak.single, error)


def transfer_row(run: Transfer, get: Transfer) -> list[str]:
    server_rss = '%.0f MB' % (run.server_peak_kib / 1024)
    sandbox_rss = '-' if run is get else '%.0f MB' % (
        run.sandbox_peak_kib / 1024)
    if run.error:
        return [run.label, 'failed after %.2f s: %s' % (run.seconds,
                                                        run.error),
                '-', '-', '-', server_rss, sandbox_rss]
    ratio = '-' if run is get else '%.2f' % (run.mb_per_s / get.mb_per_s)
    return [run.label, '%.2f' % run.seconds, '%.2f' % run.first_byte,
            '%.0f' % run.mb_per_s, ratio, server_rss, sandbox_rss]


def measure_p5(bench: Bench) -> None:
    account, size_mb = bench.account, bench.args.size_mb
    session = account.session()
    put_seconds, _ = timed(lambda: account.put_object(
        session, CONTAINER, BIG_OBJECT, repeated_chunks(size_mb * MIB)))
    account.put_object(session, CONTAINER, PYTHON_IMAGE,
                       tar_of({'main.py': PYTHON_PASSTHROUGH}),
                       'application/x-tar')
    programs = ['wasm', 'python'] if upload_wasm_passthrough(bench) \
        else ['python']

    big_url = '%s/%s/%s' % (account.url, CONTAINER, BIG_OBJECT)
    get = measure_transfer(bench, 'GET', lambda: session.get(
        big_url, stream=True, timeout=REQUEST_TIMEOUT))
    if get.error:
        raise BenchError('GET of the %d MiB object: %s' % (size_mb,
                                                           get.error))
    runs = []
    for program in programs:
        job = json.dumps(passthrough_job(program))
        # One untimed run first: compiles the program and starts a sandbox
        # worker on the object server that holds the object.
        drain(account.execute(session, job, 'application/json', stream=True))
        runs.append(measure_transfer(
            bench, '%s passthrough' % program,
            lambda: account.execute(session, job, 'application/json',
                                    stream=True)))

    print('P5  %d MiB object: passthrough job vs plain GET (PUT took %.1f s, '
          '%.0f MB/s)' % (size_mb, put_seconds, size_mb / put_seconds))
    print_table(['transfer', 'seconds', 'first byte', 'MB/s',
                 'ratio to GET', 'peak RSS object-server',
                 'peak RSS sandbox'],
                [transfer_row(run, get) for run in [get] + runs])
    for run in runs:
        ratio = 0.0 if run.error else run.mb_per_s / get.mb_per_s
        peak_mb = run.server_peak_kib / 1024
        print('    %s: throughput ratio %s (target >= %g), target met: %s;'
              ' object-server peak RSS %.0f MB (target < %d MB), target met:'
              ' %s' % (run.label, 'failed' if run.error else '%.2f' % ratio,
                       P5_RATIO_TARGET, yes_no(ratio >= P5_RATIO_TARGET),
                       peak_mb, P5_RSS_TARGET_MB,
                       yes_no(peak_mb < P5_RSS_TARGET_MB)))
        bench.verdicts.append(Verdict(
            'P5 %s MB/s / GET MB/s' % run.label,
            'failed' if run.error else '%.0f' % run.mb_per_s,
            '%.0f' % get.mb_per_s, 'failed' if run.error else '%.2f' % ratio,
            '>= %g' % P5_RATIO_TARGET, ratio >= P5_RATIO_TARGET))
        bench.verdicts.append(Verdict(
            'P5 %s first byte' % run.label, '%.2f s' % run.first_byte, '-',
            '-', '<= %g s' % P5_FIRST_BYTE_TARGET,
            not run.error and run.first_byte <= P5_FIRST_BYTE_TARGET))
        bench.verdicts.append(Verdict(
            'P5 %s object-server peak RSS' % run.label, '%.0f MB' % peak_mb,
            '-', '-', '< %d MB' % P5_RSS_TARGET_MB,
            peak_mb < P5_RSS_TARGET_MB))


# -- P6 ----------------------------------------------------------------------

@dataclass
class ClientTally:
    statuses: collections.Counter = field(default_factory=collections.Counter)
    latencies_ok: list = field(default_factory=list)


def hammer(account: Account, deadline: float, stop: threading.Event,
           tally: ClientTally) -> None:
    """POST the hello script until the deadline; tally what comes back."""
    session = account.session()
    while time.monotonic() < deadline and not stop.is_set():
        started = time.perf_counter()
        try:
            resp = account.execute(session, HELLO_SCRIPT, 'application/python')
        except Exception as err:    # noqa: BLE001 - any failure is a result
            tally.statuses['error: %s' % type(err).__name__] += 1
            continue
        if resp.status_code == 200 and resp.content == HELLO_OUTPUT:
            tally.statuses['200'] += 1
            tally.latencies_ok.append(time.perf_counter() - started)
        elif resp.status_code == 200:
            tally.statuses['200 with a wrong body'] += 1
        elif resp.status_code == 503 and 'Retry-After' in resp.headers:
            tally.statuses['503 + Retry-After'] += 1
        else:
            tally.statuses[str(resp.status_code)] += 1


def hammer_gets(url: str, session, deadline: float, counts: list) -> None:
    """GET ``url`` until the deadline; count the 200s (``counts[0]``) and
    the rest (``counts[1]``)."""
    while time.monotonic() < deadline:
        try:
            ok = session.get(url, timeout=REQUEST_TIMEOUT).status_code == 200
        except requests.RequestException:
            ok = False
        counts[0 if ok else 1] += 1


def gets_per_second(bench: Bench) -> tuple[float, int]:
    """GETs of a 1 KB object per second by as many clients as P6 runs,
    for as long: the baseline of P6's throughput; (rate, failures)."""
    account, clients = bench.account, bench.args.clients
    account.put_object(account.session(), CONTAINER, SMALL_OBJECT,
                       os.urandom(1024))
    url = '%s/%s/%s' % (account.url, CONTAINER, SMALL_OBJECT)
    counts = [[0, 0] for _ in range(clients)]
    started = time.monotonic()
    deadline = started + bench.args.seconds
    threads = [threading.Thread(target=hammer_gets, daemon=True,
                                args=(url, account.session(), deadline,
                                      count))
               for count in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return sum(c[0] for c in counts) / elapsed, sum(c[1] for c in counts)


def measure_p6(bench: Bench) -> None:
    account, clients = bench.account, bench.args.clients
    session = account.session()
    for _ in range(WARMUP):
        post_hello(account, session)
    tallies = [ClientTally() for _ in range(clients)]
    stop = threading.Event()
    started = time.monotonic()
    deadline = started + bench.args.seconds
    threads = [threading.Thread(target=hammer, daemon=True,
                                args=(account, deadline, stop, tally))
               for tally in tallies]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        stop.set()
    elapsed = time.monotonic() - started
    statuses = sum((tally.statuses for tally in tallies),
                   collections.Counter())
    latencies = [s for tally in tallies for s in tally.latencies_ok]
    total = sum(statuses.values())
    allowed = {'200', '503 + Retry-After'}
    clean = total > 0 and set(statuses) <= allowed
    share_ok = statuses['200'] / total if total else 0.0

    print('P6  %d clients POSTing the hello script for %.1f s '
          '(zerovm_maxpool 2, zerovm_maxqueue 8 per object server)'
          % (clients, elapsed))
    print_table(['answer', 'count'],
                sorted(statuses.items(), key=lambda item: -item[1]))
    print('    %d answers, %.1f req/s, %.1f 200/s, share of 200: %.1f%%'
          % (total, total / elapsed, statuses['200'] / elapsed,
             100 * share_ok))
    if latencies:
        print('    latency of the 200s: p50 %s, p99 %s' % (
            ms(percentile(latencies, 50)), ms(percentile(latencies, 99))))
    get_rate, get_failures = gets_per_second(bench)
    print('    baseline: %d clients GETting a 1 KB object for as long: %.1f '
          'GET/s (%d not 200); jobs per second / GETs per second = %.2f'
          % (clients, get_rate, get_failures,
             statuses['200'] / elapsed / get_rate if get_rate else 0.0))
    print('    only 200 or 503 + Retry-After seen; target met: %s'
          % yes_no(clean))
    bench.verdicts.append(Verdict(
        'P6 answers other than 200 / 503+Retry-After',
        str(total - statuses['200'] - statuses['503 + Retry-After']),
        '-', '%.1f%% 200' % (100 * share_ok), '0', clean))


# -- main --------------------------------------------------------------------

def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='ZeroCloud execution benchmarks (P1, P5, P6, P8).')
    parser.add_argument('--requests', type=int, default=200,
                        help='P1: sequential requests of each kind')
    parser.add_argument('--size-mb', type=int, default=1024,
                        help='P5: object size in MiB')
    parser.add_argument('--seconds', type=float, default=30.0,
                        help='P6: how long the clients run')
    parser.add_argument('--clients', type=int, default=32,
                        help='P6: concurrent clients')
    parser.add_argument('--profile', action='store_true',
                        help='P1: print where each request\'s time goes, '
                        'stage by stage')
    parser.add_argument('--only', default=','.join(MEASURES),
                        help='comma-separated subset of %s' % ','.join(
                            MEASURES))
    add_encryption_flag(parser)
    args = parser.parse_args(argv)
    args.only = [name.strip().upper() for name in args.only.split(',')
                 if name.strip()]
    unknown = [name for name in args.only if name not in MEASURES]
    if unknown or not args.only:
        parser.error('--only takes a comma-separated subset of %s, not %r'
                     % (','.join(MEASURES), ','.join(unknown)))
    for name in ('requests', 'size_mb', 'clients'):
        if getattr(args, name) < 1:
            parser.error('--%s must be at least 1' % name.replace('_', '-'))
    if args.seconds <= 0:
        parser.error('--seconds must be positive')
    return args


# -- P8 ----------------------------------------------------------------------

#: A zapp whose start-up work is heavy: scikit-learn and scipy imports.
P8_MAIN = '''import numpy as np
from scipy import stats
from sklearn.linear_model import LinearRegression
x = np.arange(100, dtype=float)
y = 3.0 * x + 2.0 + np.sin(x)
model = LinearRegression().fit(x.reshape(-1, 1), y)
print("%.2f %.2f %.4f" % (model.coef_[0], model.intercept_,
                          stats.pearsonr(x, y)[0]))
'''
P8_SYSTEM_MAP = json.dumps([{
    'name': 'fit', 'exec': {'path': 'file://python:python',
                            'args': 'main.py'},
    'devices': [{'name': 'python'}, {'name': 'stdout'}]}])
P8_OUTPUT = b'3.00 2.05 1.0000\n'
P8_TARGET = 1.5
#: Seconds the app snapshot may take to be built (2 cores: about 120).
P8_BUILD_WAIT = 900


def _snapshot_bytes() -> int:
    """Disk taken by the app snapshots now: tars, compiled modules, files."""
    cache = paths.module_cache_dir()
    store = appsnap.AppSnapshots(cache, keep=0)
    total = 0
    for name in os.listdir(store.folder):
        if name.endswith('.tar'):
            key = name[:-len('.tar')]
            ready = store.ready(key)
            total += os.path.getsize(os.path.join(store.folder, name))
            for entry in os.listdir(cache):
                if ready is not None and entry.startswith(ready.digest):
                    total += os.path.getsize(os.path.join(cache, entry))
    return total


def measure_p8(bench: Bench) -> None:
    """The scikit-learn zapp's p50 against the hello script's: before its
    app snapshot exists (every run imports scikit-learn and scipy), the
    time until the snapshot is built in the background after the first
    run, then after (issue 17, item 3)."""
    account, count = bench.account, bench.args.requests
    session = account.session()
    body = tar_of({'boot/system.map': P8_SYSTEM_MAP, 'main.py': P8_MAIN})
    appsnap.AppSnapshots(paths.module_cache_dir(), keep=0).trim()

    def post_fit() -> str:
        resp = account.execute(session, body, 'application/x-tar')
        if resp.status_code != 200 or resp.content != P8_OUTPUT:
            raise BenchError('P8 zapp: %d %r (X-Nexe-Error %s)' % (
                resp.status_code, resp.content[:200],
                resp.headers.get('X-Nexe-Error')))
        return resp.headers.get('X-Nexe-Snapshot', '')

    started = time.monotonic()
    before = []
    for _ in range(3):
        seconds, status = timed(post_fit)
        if status == 'app':
            raise BenchError('P8: the app snapshot existed already')
        before.append(seconds)
    while post_fit() != 'app':
        if time.monotonic() - started > P8_BUILD_WAIT:
            raise BenchError('P8: no app snapshot after %d s'
                             % P8_BUILD_WAIT)
        time.sleep(5)
    built = time.monotonic() - started
    for _ in range(3):
        post_hello(account, session)
    rounds = max(5, count // 5)
    hello = [timed(lambda: post_hello(account, session))[0]
             for _ in range(rounds)]
    fits = [timed(post_fit)[0] for _ in range(rounds)]
    hello_p50, fit_p50 = percentile(hello, 50), percentile(fits, 50)
    ratio = fit_p50 / hello_p50
    print('P8  zapp importing sklearn.linear_model and scipy.stats, fitting '
          'a 100-point line, %d sequential POSTs' % rounds)
    print('    before its app snapshot: p50 %s (%d runs); snapshot built in '
          'the background within %.0f s of the first run, %.0f MB on disk '
          '(snapshot, usr/ files, compiled module)' % (
              ms(percentile(before, 50)), len(before), built,
              _snapshot_bytes() / 1e6))
    print('    with it: p50 %s, p99 %s; hello script p50 %s; ratio %.2f '
          '(target <= %g); target met: %s' % (
              ms(fit_p50), ms(percentile(fits, 99)), ms(hello_p50), ratio,
              P8_TARGET, yes_no(ratio <= P8_TARGET)))
    bench.verdicts.append(Verdict(
        'P8 sklearn zapp p50 / hello p50', ms(fit_p50), ms(hello_p50),
        '%.2f' % ratio, '<= %g' % P8_TARGET, ratio <= P8_TARGET))
    appsnap.AppSnapshots(paths.module_cache_dir(), keep=0).trim()


def load_average() -> str:
    return ' '.join('%.2f' % load for load in os.getloadavg())


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    measures = {'P1': measure_p1, 'P5': measure_p5, 'P6': measure_p6,
                'P8': measure_p8}
    try:
        print('starting a cluster...', flush=True)
        with running_cluster(args.encryption) as cluster:
            bench = Bench(cluster, Account(cluster), args)
            bench.account.put_container(bench.account.session(), CONTAINER)
            print('cluster up in %s (encryption at rest %s); load average '
                  '%s' % (cluster.workdir,
                          'on' if args.encryption else 'off',
                          load_average()), flush=True)
            for name in args.only:
                print(flush=True)
                measures[name](bench)
            print('\nsummary (load average now %s; other work on the machine '
                  'skews the numbers)' % load_average())
            print_table(['measure', 'value', 'baseline', 'ratio', 'target',
                         'target met'],
                        [[v.measure, v.value, v.baseline, v.ratio, v.target,
                          yes_no(v.met)] for v in bench.verdicts])
    except KeyboardInterrupt:
        print('\ninterrupted; the cluster was stopped', file=sys.stderr)
        return 130
    except (BenchError, requests.RequestException) as err:
        print('bench/exec.py: %s' % err, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
