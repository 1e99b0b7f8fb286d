"""Shared pieces of the ZeroCloud benchmarks in ``bench/``.

A bench starts its own throwaway cluster (:func:`running_cluster`), talks to
it as ``test:tester`` (:class:`Account`), and reports plain numbers and
ratios against a baseline measured in the same run; nothing here asserts a
timing.  The cluster lives on tmpfs (``/dev/shm``) when that is usable, so
disk speed does not blur what is measured, and is always stopped and
removed at the end, also on Ctrl-C or SIGTERM.
"""

import argparse
import contextlib
import io
import os
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Sequence

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from zerocloud.devices import holds_swift_metadata  # noqa: E402
from zerocloud.saio import Cluster, LaunchError  # noqa: E402

#: Preferred place for throwaway clusters: Swift keeps object metadata in
#: user xattrs, which tmpfs supports, and it takes the disk out of the numbers.
PREFERRED_TMP = '/dev/shm'

#: The script of the seed document (``running-code.rst``), byte for byte.
HELLO_SCRIPT = '''#!file://python2.7:python
import sys
print("Hello from ZeroVM!")
print("sys.platform is '%s'" % sys.platform)
'''
HELLO_OUTPUT = b"Hello from ZeroVM!\nsys.platform is 'wasi'\n"

EXECUTE_HEADER = {'X-Zerovm-Execute': '1.0'}
MIB = 1 << 20
RSS_SAMPLE_INTERVAL = 0.1
#: (connect, read) seconds: no request of a bench may hang for ever.
REQUEST_TIMEOUT = (10, 120)


class BenchError(Exception):
    """A bench could not measure what it wanted; the message says why."""


def fast_tmp_dir() -> str:
    """tmpfs when it is writable and keeps user xattrs, else the usual tmp."""
    if os.path.isdir(PREFERRED_TMP) and os.access(PREFERRED_TMP, os.W_OK) \
            and holds_swift_metadata(PREFERRED_TMP):
        return PREFERRED_TMP
    return tempfile.gettempdir()


def _sigterm_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def running_cluster(encryption: bool = True) -> Iterator[Cluster]:
    """A started all-in-one cluster on free ports; stopped and removed after.
    ``encryption``: new objects are encrypted at rest (the launcher's
    default; ``--no-encryption`` of the benches turns it off).

    SIGTERM is turned into KeyboardInterrupt so that ``kill`` cleans up like
    Ctrl-C does.  The servers run in their own process groups, so Ctrl-C in
    the terminal reaches only the bench, which then stops them.
    """
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    workdir = tempfile.mkdtemp(prefix='zerocloud-bench-', dir=fast_tmp_dir())
    cluster = Cluster(workdir, port=0, encryption=encryption)
    try:
        try:
            cluster.start()
        except LaunchError as err:
            raise BenchError('the cluster did not start: %s' % err) from None
        yield cluster
    finally:
        # A second Ctrl-C must not leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cluster.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)


class Account:
    """One user's storage URL and token, and the requests a bench makes."""

    def __init__(self, cluster: Cluster, user: str = 'tester') -> None:
        self.url = cluster.storage_url(user)
        self.token = cluster.token(user)

    def session(self) -> requests.Session:
        """A session that sends this user's token with every request."""
        session = requests.Session()
        session.headers['X-Auth-Token'] = self.token
        return session

    def put_container(self, session: requests.Session, container: str,
                      policy: Optional[str] = None) -> None:
        """A container, in storage policy ``policy`` (default: the
        cluster's default policy)."""
        headers = {'X-Storage-Policy': policy} if policy else {}
        resp = session.put('%s/%s' % (self.url, container), headers=headers,
                           timeout=REQUEST_TIMEOUT)
        if resp.status_code not in (201, 202):
            raise BenchError('PUT container %s: %d %s' % (
                container, resp.status_code, resp.text.strip()))

    def put_object(self, session: requests.Session, container: str,
                   name: str, data,
                   content_type: Optional[str] = None) -> None:
        """PUT bytes, or an iterable of chunks (sent chunked, unbuffered)."""
        headers = {'Content-Type': content_type} if content_type else {}
        resp = session.put('%s/%s/%s' % (self.url, container, name),
                           data=data, headers=headers,
                           timeout=REQUEST_TIMEOUT)
        if resp.status_code != 201:
            raise BenchError('PUT %s/%s: %d %s' % (
                container, name, resp.status_code, resp.text.strip()))

    def execute(self, session: requests.Session, body, content_type: str,
                stream: bool = False) -> requests.Response:
        """POST a job (script, tar or JSON) to the account."""
        headers = dict(EXECUTE_HEADER, **{'Content-Type': content_type})
        return session.post(self.url, data=body, headers=headers,
                            stream=stream, timeout=REQUEST_TIMEOUT)


def add_encryption_flag(parser) -> None:
    """``--no-encryption``: compare against a cluster storing in clear."""
    parser.add_argument('--encryption', action=argparse.BooleanOptionalAction,
                        default=True, help='encrypt objects at rest, as the '
                        'all-in-one does by default (default: on)')


def repeated_chunks(total: int, chunk_size: int = MIB) -> Iterator[bytes]:
    """``total`` bytes of incompressible data, produced chunk by chunk."""
    block = os.urandom(chunk_size)
    sent = 0
    while sent < total:
        size = min(chunk_size, total - sent)
        yield block[:size] if size < chunk_size else block
        sent += size


def drain(resp: requests.Response, chunk_size: int = MIB) -> int:
    """Read a streamed body to the end, discarding it; returns its size."""
    received = 0
    for chunk in resp.iter_content(chunk_size):
        received += len(chunk)
    resp.close()
    return received


def timed(action: Callable[[], object]) -> tuple[float, object]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def percentile(samples: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100) of the samples."""
    if not samples:
        raise ValueError('percentile of no samples')
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def yes_no(flag: bool) -> str:
    return 'yes' if flag else 'no'


def print_table(header: Sequence[str],
                rows: Iterable[Sequence[object]]) -> None:
    """Left-aligned plain-text columns, for terminals and issue comments."""
    lines = [[str(cell) for cell in header]]
    lines += [[str(cell) for cell in row] for row in rows]
    widths = [max(len(line[col]) for line in lines)
              for col in range(len(header))]
    for line in lines:
        print('  '.join(cell.ljust(width)
                        for cell, width in zip(line, widths)).rstrip())


# -- memory of the cluster's processes ---------------------------------------

def _read_proc(pid: int, name: str) -> Optional[bytes]:
    try:
        with open('/proc/%d/%s' % (pid, name), 'rb') as handle:
            return handle.read()
    except OSError:     # the process ended meanwhile
        return None


def _status_field(pid: int, field: str) -> Optional[int]:
    status = _read_proc(pid, 'status')
    if status is None:
        return None
    prefix = field.encode() + b':'
    for line in status.splitlines():
        if line.startswith(prefix):
            return int(line.split()[1])
    return None


def memory_kib(pid: int) -> tuple[Optional[int], Optional[int]]:
    """(RSS, PSS) of a process in KiB; PSS shares shared pages out."""
    rollup = _read_proc(pid, 'smaps_rollup')
    if rollup is None:
        return None, None
    fields = {}
    for line in rollup.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in (b'Rss:', b'Pss:'):
            fields[parts[0]] = int(parts[1])
    return fields.get(b'Rss:'), fields.get(b'Pss:')


def server_pids(cluster: Cluster, program: str) -> list[int]:
    """Pids whose command line names ``program`` and the cluster's workdir.

    Swift servers are started with a config under the workdir, so that tells
    this cluster's processes from any other cluster's on the machine.
    """
    program_b, workdir_b = program.encode(), cluster.workdir.encode()
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        cmdline = _read_proc(int(entry), 'cmdline')
        if cmdline and program_b in cmdline and workdir_b in cmdline:
            pids.append(int(entry))
    return pids


def children_of(parents: Iterable[int]) -> list[int]:
    """Pids whose parent is one of ``parents`` (e.g. sandbox workers)."""
    wanted = set(parents)
    return [int(entry) for entry in os.listdir('/proc')
            if entry.isdigit() and _status_field(int(entry), 'PPid') in wanted]


@dataclass
class PeakRss:
    """Peak resident memory seen while sampling, in KiB."""
    single: int = 0     # the largest single process
    total: int = 0      # the largest sum over the sampled processes


class RssSampler:
    """Samples VmRSS of some processes every 0.1 s on a thread.

    ``find_pids`` runs at every sample so processes started meanwhile (a
    sandbox worker) are seen too.  Use as a context manager around the work;
    read ``peak`` afterwards.
    """

    def __init__(self, find_pids: Callable[[], Iterable[int]],
                 interval: float = RSS_SAMPLE_INTERVAL) -> None:
        self.find_pids = find_pids
        self.interval = interval
        self.peak = PeakRss()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> 'RssSampler':
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        sizes = [rss for rss in (_status_field(pid, 'VmRSS')
                                 for pid in self.find_pids()) if rss]
        self.samples += 1
        self.peak.single = max([self.peak.single] + sizes)
        self.peak.total = max(self.peak.total, sum(sizes))


def tar_of(files: dict) -> bytes:
    """A tar of ``{member: text}``: a Python image or a whole zapp."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
