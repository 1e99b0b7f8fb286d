"""Map-reduce benchmark (P3): ``.venv/bin/python bench/mapreduce.py``.

Does running a word count inside the cluster cost less than downloading the
data and counting it at home?  One run starts its own all-in-one cluster
(tmpfs when usable; stopped at the end, also on Ctrl-C), stores
``--objects`` text objects of ``--mb-per-object`` MiB each (default 16 x 16
MiB = 256 MiB; deterministic text over a seeded 4000-word vocabulary,
streamed to Swift from a generator while the expected counts are computed
locally), and measures:

P3 sandbox
    one JSON job: a Python mapper per object (``swift://~/<books>/*.txt``,
    run next to its object) -> ``reduce`` with ``count: 3`` -> one
    ``merge`` whose stdout is the response; wall time from POST to the last
    byte.  The response must equal the expected counts (``correct: yes``).
P3 baseline
    ``swift download`` of the same objects (the real CLI, default
    ``--object-threads``) into a temporary directory, then the SAME Python
    program natively (``python3 wordcount.py map|reduce|merge`` subprocesses,
    one mapper per file, then the three reducers, then the merger, at most
    two processes at a time to match the two cores).  Time = download +
    count.  Target: sandbox / baseline <= 1.0 ("the sandbox must not cost
    more than the download saves").
C mapper
    the same job with the mapper replaced by ``bench/wcmap.c`` compiled
    for WASI at bench time (``clang --target=wasm32-wasi -O2``), stored with
    ``Content-Type: application/wasm`` and run as ``exec.path``; its ratio
    is taken against the same Python baseline, and, for reference, against
    the download plus the same C mapper compiled natively.

Every job runs once untimed over a few small objects first (starts the
sandbox workers, fills the compiled-module cache).  The summary prints per
stage, from ``X-Nexe-Cdr-Line`` (``<proxy job s>, <node s>, <sys s> <user
s> <8 counters>,<node s>, ...`` in ``X-Nexe-System`` order), the longest
node, the CPU seconds of all nodes and, for the mappers, CPU per MiB,
against the same numbers of the native processes.

The all-in-one cluster stops a node after ``zerovm_timeout`` (30 s; a
request can only lower it): if a mapper hits that, use smaller objects
(``--mb-per-object``).  Options: ``--objects 16``, ``--mb-per-object 16``,
``--skip-c``.  A quick run::

    .venv/bin/python bench/mapreduce.py --objects 4 --mb-per-object 2

Exit status: 0 after a complete run with correct results (whatever the
targets), 1 when a measure could not be taken or a result was wrong, 130 on
Ctrl-C.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

import requests

from common import (
    EXECUTE_HEADER, MIB, ROOT, Account, BenchError, Cluster,
    add_encryption_flag, fast_tmp_dir, print_table, running_cluster, tar_of,
    yes_no)

BOOKS = 'bench-mr-books'
WARM_BOOKS = 'bench-mr-warm'
CODE = 'bench-mr-code'
PROGRAM = 'wordcount.py'
IMAGE = 'wordcount.tar'
PYTHON_EXEC = 'file://python:python'
C_MAPPER = 'wcmap.wasm'
C_SOURCE = os.path.join(ROOT, 'bench', 'wcmap.c')
REDUCERS = 3
#: Native processes at a time in the baseline: one per core of the target box.
NATIVE_PROCESSES = 2
#: The real interpreter behind the venv (no venv wrapper start-up counted).
NATIVE_PYTHON = os.path.realpath(sys.executable)
P3_TARGET = 1.0
SEED = 20240605
VOCABULARY_SIZE = 4000
LINE_POOL = 8192
WARM_OBJECTS = 8
WARM_OBJECT_BYTES = 64 * 1024
#: (connect, read) seconds for a job: the proxy answers only when every
#: stage is done, which for 256 MiB may take a while on two cores.
JOB_TIMEOUT = (10, 600)
UPLOAD_TIMEOUT = (10, 300)

#: One program, three roles; it runs unchanged in the sandbox (with the
#: ``/dev`` directories ZeroCloud binds) and natively (with plain ones).
WORDCOUNT = '''"""Word count, map | reduce | merge, on "word count" lines."""
import collections
import os
import sys


def partitions(directory):
    return sorted(os.listdir(directory))


def read_counts(directory):
    total = collections.Counter()
    for name in partitions(directory):
        with open(os.path.join(directory, name), 'rb') as part:
            for line in part:
                word, count = line.split()
                total[word] += int(count)
    return total


def write_counts(counts, out):
    out.write(b''.join(b'%s %d\\n' % (word, counts[word])
                       for word in sorted(counts)))


def map_words(out_dir):
    counts = collections.Counter()
    stdin = sys.stdin.buffer
    while True:
        lines = stdin.readlines(1 << 20)
        if not lines:
            break
        counts.update(b''.join(lines).split())
    reducers = partitions(out_dir)
    parts = [collections.Counter() for _ in reducers]
    for word, count in counts.items():
        parts[sum(word) % len(reducers)][word] = count
    for reducer, part in zip(reducers, parts):
        with open(os.path.join(out_dir, reducer), 'wb') as out:
            write_counts(part, out)


def reduce_counts(in_dir, out_dir):
    (merger,) = partitions(out_dir)
    with open(os.path.join(out_dir, merger), 'wb') as out:
        write_counts(read_counts(in_dir), out)


def merge_counts(in_dir):
    write_counts(read_counts(in_dir), sys.stdout.buffer)
    sys.stdout.flush()


ROLES = {'map': map_words, 'reduce': reduce_counts, 'merge': merge_counts}

if __name__ == '__main__':
    ROLES[sys.argv[1]](*sys.argv[2:])
'''


# -- the text ----------------------------------------------------------------

@dataclass
class Corpus:
    """Deterministic text: random lines drawn from a fixed pool of lines.

    Drawing whole lines (not words) makes 256 MiB in seconds, and the
    expected counts follow from how often each line was drawn.
    """
    lines: list
    line_counts: list
    drawn: collections.Counter = field(default_factory=collections.Counter)

    @classmethod
    def build(cls) -> 'Corpus':
        rng = random.Random(SEED)
        letters = 'abcdefghijklmnopqrstuvwxyz'
        vocabulary: dict = {}
        while len(vocabulary) < VOCABULARY_SIZE:
            word = ''.join(rng.choices(letters, k=rng.randint(2, 9)))
            vocabulary[word.encode()] = None
        words = list(vocabulary)
        weights = [1.0 / (rank + 1) for rank in range(len(words))]
        lines, line_counts = [], []
        for _ in range(LINE_POOL):
            chosen = rng.choices(words, weights, k=rng.randint(6, 18))
            lines.append(b' '.join(chosen) + b'\n')
            line_counts.append(collections.Counter(chosen))
        return cls(lines, line_counts)

    def text(self, index: int, size: int) -> Iterator[bytes]:
        """Object ``index``: at least ``size`` bytes, in ~1 MiB chunks."""
        rng = random.Random(SEED * 1000 + index)
        chunk: list = []
        chunk_bytes = written = 0
        while written < size:
            for line_index in rng.choices(range(len(self.lines)), k=4096):
                line = self.lines[line_index]
                self.drawn[line_index] += 1
                chunk.append(line)
                chunk_bytes += len(line)
                written += len(line)
                if written >= size:
                    break
            if chunk_bytes >= MIB or written >= size:
                yield b''.join(chunk)
                chunk, chunk_bytes = [], 0

    def expected(self) -> bytes:
        """The merger's output for every object drawn so far."""
        total: collections.Counter = collections.Counter()
        for line_index, times in self.drawn.items():
            for word, count in self.line_counts[line_index].items():
                total[word] += count * times
        return b''.join(b'%s %d\n' % (word, total[word])
                        for word in sorted(total))


def book_name(index: int) -> str:
    return 'book-%03d.txt' % index


def upload_books(account: Account, session: requests.Session,
                 container: str, count: int, size: int,
                 policy: Optional[str] = None) -> tuple[bytes, int]:
    """Stores ``count`` objects in a container of storage policy
    ``policy``; (expected merger output, total bytes)."""
    account.put_container(session, container, policy)
    corpus = Corpus.build()
    total = 0
    for index in range(1, count + 1):
        sizes: list = []

        def counted(chunks: Iterator[bytes]) -> Iterator[bytes]:
            for chunk in chunks:
                sizes.append(len(chunk))
                yield chunk
        resp = session.put('%s/%s/%s' % (account.url, container,
                                         book_name(index)),
                           data=counted(corpus.text(index, size)),
                           headers={'Content-Type': 'text/plain'},
                           timeout=UPLOAD_TIMEOUT)
        if resp.status_code != 201:
            raise BenchError('PUT %s/%s: %d %s' % (
                container, book_name(index), resp.status_code,
                resp.text.strip()))
        total += sum(sizes)
    return corpus.expected(), total


# -- the jobs ----------------------------------------------------------------

def swift_path(container: str, name: str) -> str:
    return 'swift://~/%s/%s' % (container, name)


def python_node(name: str, args: str, devices: list, **extra) -> dict:
    node = {'name': name,
            'exec': {'path': PYTHON_EXEC, 'args': '%s %s' % (PROGRAM, args)},
            'devices': [{'name': 'python'},
                        {'name': 'image', 'path': swift_path(CODE, IMAGE)}]
            + devices}
    node.update(extra)
    return node


def word_count_job(books: str, c_mapper: bool) -> list:
    """map (one per ``*.txt``) -> reduce x3 -> merge, stdout the response."""
    stdin = [{'name': 'stdin', 'path': swift_path(books, '*.txt')}]
    if c_mapper:
        mapper = {'name': 'map', 'exec': {'path': swift_path(CODE, C_MAPPER)},
                  'devices': stdin, 'connect': ['reduce']}
    else:
        mapper = python_node('map', 'map /dev/out', stdin,
                             connect=['reduce'])
    return [
        mapper,
        python_node('reduce', 'reduce /dev/in /dev/out', [],
                    count=REDUCERS, connect=['merge']),
        python_node('merge', 'merge /dev/in', [{'name': 'stdout'}]),
    ]


@dataclass
class NodeCdr:
    """One node's entry of ``X-Nexe-Cdr-Line``."""
    name: str
    elapsed: float
    cpu: float


def parse_cdr(resp: requests.Response) -> tuple[float, list]:
    """(proxy job seconds, [NodeCdr] in ``X-Nexe-System`` order)."""
    names = resp.headers['X-Nexe-System'].split(',')
    fields = [item.strip() for item in
              resp.headers['X-Nexe-Cdr-Line'].split(',')]
    if len(fields) != 1 + 2 * len(names):
        raise BenchError('X-Nexe-Cdr-Line has %d fields for %d nodes: %s' % (
            len(fields), len(names), resp.headers['X-Nexe-Cdr-Line']))
    nodes = []
    for position, name in enumerate(names):
        accounting = fields[2 + 2 * position].split()
        nodes.append(NodeCdr(name, float(fields[1 + 2 * position]),
                             float(accounting[0]) + float(accounting[1])))
    return float(fields[0]), nodes


class ProxyLog:
    """Counts the objects the proxy streamed to nodes (GETs a job made)."""

    def __init__(self, cluster: Cluster) -> None:
        self.path = cluster.log_path('proxy-server')
        self.offset = os.path.getsize(self.path)

    def streamed(self, account: Account, container: str) -> int:
        """Job GETs of objects of ``container`` logged since this was made.
        """
        prefix = ' GET /v1/%s/%s/' % (account.url.rsplit('/', 1)[1],
                                      container)
        with open(self.path, 'rb') as log:
            log.seek(self.offset)
            lines = log.read().decode('utf-8', 'replace').splitlines()
        return sum(1 for line in lines if prefix in line and ' ZC ' in line)


@dataclass
class JobRun:
    label: str
    seconds: float
    correct: bool
    proxy_seconds: float
    nodes: list
    #: Mapper inputs the proxy streamed instead of a local read.
    streamed: int = 0


def run_job(account: Account, session: requests.Session, label: str,
            job: list, expected: bytes, node_timeout: int) -> JobRun:
    """POST the job, read the whole answer; timed, checked, its CDR parsed."""
    started = time.perf_counter()
    resp = session.post(account.url, data=json.dumps(job),
                        headers=dict(EXECUTE_HEADER, **{
                            'Content-Type': 'application/json'}),
                        timeout=JOB_TIMEOUT)
    body = resp.content
    seconds = time.perf_counter() - started
    statuses = resp.headers.get('X-Nexe-Status', '')
    if resp.status_code != 200 or set(statuses.split(',')) != {'ok'}:
        hint = ''
        if 'session timeout' in statuses or 'Killed' in statuses:
            hint = ('; the cluster stops a node after zerovm_timeout = %d s: '
                    'try a smaller --mb-per-object' % node_timeout)
        raise BenchError('%s: %d, X-Nexe-Status %s, X-Nexe-Error %s, body %r%s'
                         % (label, resp.status_code, statuses,
                            resp.headers.get('X-Nexe-Error'), body[:300],
                            hint))
    retcodes = resp.headers.get('X-Nexe-Retcode', '')
    if set(retcodes.split(',')) != {'0'}:
        raise BenchError('%s: exit codes %s, X-Nexe-Error %s' % (
            label, retcodes, resp.headers.get('X-Nexe-Error')))
    proxy_seconds, nodes = parse_cdr(resp)
    return JobRun(label, seconds, body == expected, proxy_seconds, nodes)


# -- the baseline ------------------------------------------------------------

@dataclass
class ProcessRun:
    name: str
    elapsed: float
    cpu: float


def run_process(name: str, argv: list, stdin_path: Optional[str],
                stdout_path: str) -> ProcessRun:
    """Run one native role; its wall time and CPU time (from wait4)."""
    stderr_path = stdout_path + '.err'
    started = time.perf_counter()
    with open(stdin_path or os.devnull, 'rb') as stdin, \
            open(stdout_path, 'wb') as stdout, \
            open(stderr_path, 'wb') as stderr:
        proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout,
                                stderr=stderr)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        with open(stderr_path, 'rb') as err:
            lines = err.read().decode('utf-8', 'replace').strip().splitlines()
        raise BenchError('native %s exited %d: %s' % (
            name, proc.returncode, lines[-1] if lines else '(no stderr)'))
    return ProcessRun(name, elapsed, usage.ru_utime + usage.ru_stime)


def node_dirs(work: str, name: str, outputs: list) -> tuple[str, str]:
    """(in, out) directories of a native node, outputs created empty.

    Like the sandbox's ``/dev/out``: the entries name the connected nodes.
    """
    in_dir = os.path.join(work, name, 'in')
    out_dir = os.path.join(work, name, 'out')
    os.makedirs(in_dir)
    os.makedirs(out_dir)
    for output in outputs:
        open(os.path.join(out_dir, output), 'wb').close()
    return in_dir, out_dir


@dataclass
class NativeRun:
    label: str
    seconds: float
    correct: bool
    processes: list


def count_natively(label: str, work: str, files: list,
                   mapper_argv: Callable[[str], list],
                   script: str, expected: bytes) -> NativeRun:
    """The job's DAG as native processes, two at a time, in ``work``."""
    reducers = ['reduce-%d' % n for n in range(1, REDUCERS + 1)]
    mappers = ['map-%d' % n for n in range(1, len(files) + 1)]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(NATIVE_PROCESSES) as pool:
        map_jobs = []
        for name, path in zip(mappers, files):
            _in, out_dir = node_dirs(work, name, reducers)
            map_jobs.append(pool.submit(
                run_process, name, mapper_argv(out_dir), path,
                os.path.join(work, name, 'stdout')))
        runs = [job.result() for job in map_jobs]
        reduce_jobs = []
        for reducer in reducers:
            in_dir, out_dir = node_dirs(work, reducer, ['merge'])
            for mapper in mappers:
                os.link(os.path.join(work, mapper, 'out', reducer),
                        os.path.join(in_dir, mapper))
            reduce_jobs.append(pool.submit(
                run_process, reducer,
                [NATIVE_PYTHON, script, 'reduce', in_dir, out_dir], None,
                os.path.join(work, reducer, 'stdout')))
        runs += [job.result() for job in reduce_jobs]
    in_dir, _out = node_dirs(work, 'merge', [])
    for reducer in reducers:
        os.link(os.path.join(work, reducer, 'out', 'merge'),
                os.path.join(in_dir, reducer))
    merged = os.path.join(work, 'merge', 'stdout')
    runs.append(run_process('merge', [NATIVE_PYTHON, script, 'merge', in_dir],
                            None, merged))
    seconds = time.perf_counter() - started
    with open(merged, 'rb') as result:
        correct = result.read() == expected
    return NativeRun(label, seconds, correct, runs)


def swift_download(cluster: Cluster, container: str, target: str,
                   count: int, total: int) -> tuple[float, list]:
    """``swift download`` of a container; (seconds, downloaded files)."""
    swift = os.path.join(cluster.bin_dir, 'swift')
    if not os.access(swift, os.X_OK):
        raise BenchError('the swift CLI is missing next to %s: install '
                         'python-swiftclient' % sys.executable)
    started = time.perf_counter()
    done = subprocess.run([swift, 'download', container, '-D', target],
                          env=cluster.env_for('tester'), capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError('swift download exited %d: %s' % (
            done.returncode, ' '.join(done.stderr.split())[-300:]))
    files = sorted(os.path.join(target, name) for name in os.listdir(target))
    size = sum(os.path.getsize(path) for path in files)
    if len(files) != count or size != total:
        raise BenchError('swift download gave %d files, %d bytes; expected '
                         '%d, %d' % (len(files), size, count, total))
    return seconds, files


# -- the C mapper -------------------------------------------------------------

def compile_mapper(build_dir: str) -> tuple[str, str]:
    """(WASI module, native binary) of bench/wcmap.c, built into build_dir."""
    wasm = os.path.join(build_dir, C_MAPPER)
    native = os.path.join(build_dir, 'wcmap')
    for argv in (['clang', '--target=wasm32-wasi', '-O2', '-o', wasm,
                  C_SOURCE],
                 ['clang', '-O2', '-o', native, C_SOURCE]):
        try:
            built = subprocess.run(argv, capture_output=True, text=True)
        except FileNotFoundError:
            raise BenchError('clang is missing: install the Debian packages '
                             'clang lld wasi-libc libclang-rt-14-dev-wasm32, '
                             'or run with --skip-c') from None
        if built.returncode != 0:
            raise BenchError('%s failed: %s' % (' '.join(argv), ' '.join(
                built.stderr.split())[-300:]))
    return wasm, native


# -- report ------------------------------------------------------------------

def stage_of(name: str) -> str:
    """``map-12`` -> ``map``; ``merge`` stays ``merge``."""
    stem, _dash, number = name.rpartition('-')
    return stem if stem and number.isdigit() else name


def longest_per_stage(nodes: list) -> dict:
    """Stage -> elapsed seconds of its slowest node."""
    longest: dict = {}
    for node in nodes:
        stage = stage_of(node.name)
        longest[stage] = max(longest.get(stage, 0.0), node.elapsed)
    return longest


def stage_rows(label: str, entries: list, mapped_mib: float) -> list:
    """Per stage: nodes, longest node, CPU total, CPU per MiB for mappers."""
    stages: dict = {}
    for entry in entries:
        stages.setdefault(stage_of(entry.name), []).append(entry)
    rows = []
    for stage, members in stages.items():
        cpu = sum(member.cpu for member in members)
        rows.append([label, stage, len(members),
                     '%.2f' % max(member.elapsed for member in members),
                     '%.2f' % cpu,
                     '%.0f' % (1000 * cpu / mapped_mib)
                     if stage == 'map' else '-'])
    return rows


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='ZeroCloud map-reduce benchmark (P3): word count in the '
        'cluster vs swift download + native count.')
    parser.add_argument('--objects', type=int, default=16,
                        help='text objects to count (default %(default)s)')
    parser.add_argument('--mb-per-object', type=int, default=16,
                        help='MiB per object (default %(default)s)')
    parser.add_argument('--skip-c', action='store_true',
                        help='leave out the C-compiled mapper')
    parser.add_argument('--policy', default=None,
                        help='storage policy of the books container, e.g. '
                        'ec (default: the cluster\'s default policy)')
    add_encryption_flag(parser)
    args = parser.parse_args(argv)
    if args.objects < 1:
        parser.error('--objects must be at least 1')
    if args.mb_per_object < 1:
        parser.error('--mb-per-object must be at least 1')
    return args


def load_average() -> str:
    return ' '.join('%.2f' % load for load in os.getloadavg())


def measure(cluster: Cluster, args: argparse.Namespace, scratch: str) -> bool:
    """Runs every measure, prints the tables; False if a result was wrong."""
    account = Account(cluster)
    session = account.session()
    account.put_container(session, CODE)
    account.put_object(session, CODE, IMAGE, tar_of({PROGRAM: WORDCOUNT}),
                       'application/x-tar')
    script = os.path.join(scratch, PROGRAM)
    with open(script, 'w') as handle:
        handle.write(WORDCOUNT)
    variants = [('python mapper', False)]
    native_c = None
    if not args.skip_c:
        wasm, native_c = compile_mapper(scratch)
        with open(wasm, 'rb') as handle:
            account.put_object(session, CODE, C_MAPPER, handle.read(),
                               'application/wasm')
        variants.append(('C mapper (wasm)', True))

    print('warm-up: %d objects of %d KiB through every job, untimed' % (
        WARM_OBJECTS, WARM_OBJECT_BYTES // 1024), flush=True)
    warm_expected, _ = upload_books(account, session, WARM_BOOKS,
                                    WARM_OBJECTS, WARM_OBJECT_BYTES)
    for label, c_mapper in variants:
        warm = run_job(account, session, label,
                       word_count_job(WARM_BOOKS, c_mapper), warm_expected,
                       cluster.zerovm_timeout)
        if not warm.correct:
            raise BenchError('%s: wrong result in the warm-up' % label)

    size = args.mb_per_object * MIB
    print('storing %d objects of %d MiB...' % (args.objects,
                                               args.mb_per_object),
          flush=True)
    upload_seconds = time.perf_counter()
    expected, total = upload_books(account, session, BOOKS, args.objects,
                                   size, args.policy)
    upload_seconds = time.perf_counter() - upload_seconds
    mib = total / MIB
    print('stored %.1f MiB in %.1f s (%d distinct words); load average %s'
          % (mib, upload_seconds, expected.count(b'\n'), load_average()),
          flush=True)

    jobs = []
    for label, c_mapper in variants:
        print('running the job with the %s...' % label, flush=True)
        proxy_log = ProxyLog(cluster)
        job = run_job(account, session, label,
                      word_count_job(BOOKS, c_mapper), expected,
                      cluster.zerovm_timeout)
        job.streamed = proxy_log.streamed(account, BOOKS)
        jobs.append(job)

    print('baseline: swift download + native count...', flush=True)
    download_dir = os.path.join(scratch, 'download')
    download_seconds, files = swift_download(cluster, BOOKS, download_dir,
                                             args.objects, total)
    natives = [count_natively(
        'python3 mapper', os.path.join(scratch, 'native-python'), files,
        lambda out_dir: [NATIVE_PYTHON, script, 'map', out_dir], script,
        expected)]
    if native_c:
        natives.append(count_natively(
            'C mapper (native)', os.path.join(scratch, 'native-c'), files,
            lambda out_dir: [native_c, out_dir], script, expected))
    baseline = natives[0]
    baseline_seconds = download_seconds + baseline.seconds

    print('\nP3  word count over %d objects, %.1f MiB: map x%d -> reduce x%d '
          '-> merge' % (args.objects, mib, args.objects, REDUCERS))
    print('    books in policy %s, encryption at rest %s; mapper inputs read '
          'in place: %s' % (
              args.policy or 'default', 'on' if args.encryption else 'off',
              ', '.join('%s %d of %d' % (
                  job.label, args.objects - job.streamed, args.objects)
                  for job in jobs)))
    print('    baseline = swift download (%.2f s, %.0f MiB/s) + native '
          'count, %d processes at a time (%s)' % (
              download_seconds, mib / download_seconds, NATIVE_PROCESSES,
              NATIVE_PYTHON))
    rows = []
    all_correct = baseline.correct
    for job in jobs:
        ratio = job.seconds / baseline_seconds
        all_correct = all_correct and job.correct
        rows.append([job.label, '%.2f s' % job.seconds,
                     '%.2f + %.2f = %.2f s' % (download_seconds,
                                               baseline.seconds,
                                               baseline_seconds),
                     '%.2f' % ratio, '<= %g' % P3_TARGET,
                     yes_no(ratio <= P3_TARGET), yes_no(job.correct)])
    if native_c and len(jobs) > 1:
        reference = download_seconds + natives[1].seconds
        rows.append(['C mapper vs C baseline (reference)',
                     '%.2f s' % jobs[1].seconds,
                     '%.2f + %.2f = %.2f s' % (download_seconds,
                                               natives[1].seconds, reference),
                     '%.2f' % (jobs[1].seconds / reference), '-', '-',
                     yes_no(natives[1].correct)])
        all_correct = all_correct and natives[1].correct
    print_table(['job', 'sandbox', 'baseline (download + count)', 'ratio',
                 'target', 'target met', 'correct'], rows)
    print('    native results correct: %s' % ', '.join(
        '%s %s' % (run.label, yes_no(run.correct)) for run in natives))

    print('\nwhere the time goes (sandbox: X-Nexe-Cdr-Line per node; native: '
          'wait4 per process)')
    breakdown = []
    for job in jobs:
        breakdown += stage_rows('sandbox ' + job.label, job.nodes, mib)
    for run in natives:
        breakdown += stage_rows('native ' + run.label, run.processes, mib)
    print_table(['run', 'stage', 'nodes', 'longest node s', 'CPU s',
                 'map CPU ms/MiB'], breakdown)
    for job in jobs:
        stages = longest_per_stage(job.nodes)
        print('    sandbox %s: client %.2f s = proxy job %.2f s + %.2f s '
              'outside it; longest node per stage %s (the stages overlap: '
              'connected nodes run together); the job beyond its longest '
              'node, %.2f s, is placement, dispatch, nodes waiting for a '
              'sandbox (a stage wider than the pools runs in waves) and '
              'data still flowing after it' % (
                  job.label, job.seconds, job.proxy_seconds,
                  job.seconds - job.proxy_seconds,
                  ' + '.join('%.2f' % value for value in stages.values()),
                  job.proxy_seconds - max(stages.values())))
    print('    load average now %s; other work on the machine skews the '
          'numbers' % load_average())
    return all_correct


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    try:
        print('starting a cluster...', flush=True)
        with running_cluster(args.encryption) as cluster:
            print('cluster up in %s (encryption at rest %s); load average '
                  '%s' % (cluster.workdir,
                          'on' if args.encryption else 'off',
                          load_average()), flush=True)
            scratch = tempfile.mkdtemp(prefix='zerocloud-mr-',
                                       dir=fast_tmp_dir())
            try:
                correct = measure(cluster, args, scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    except KeyboardInterrupt:
        print('\ninterrupted; the cluster was stopped', file=sys.stderr)
        return 130
    except (BenchError, requests.RequestException, OSError) as err:
        print('bench/mapreduce.py: %s' % err, file=sys.stderr)
        return 1
    if not correct:
        print('bench/mapreduce.py: a result differs from the expected counts',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
