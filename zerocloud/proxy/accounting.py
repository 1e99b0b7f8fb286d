"""Accounting: one log line per job and, when enabled, accounting objects.

With ``zerovm_accounting_enabled``, each job's per-node lines
(``<UTC time> <transaction> <node> (<cdr line>) [<status>]``) are appended to
a spool file of the proxy worker process (in ``zerovm_accounting_spool_dir``)
before its answer ends: one small local write per job, where each job once
cost a replicated (and encrypted) PUT that ran after its answer and slowed
the requests behind it.  Every ``zerovm_accounting_interval`` seconds the
worker starts a new spool file and stores the old one by the system (never
by the user) as one object per account:
``/v1/<user_stats_account>/<account>/<YYYY>/<MM>/<DD>/<spool name>.log``.

Nothing is lost on a crash or a restart: a worker holds an exclusive lock
on its spool file while it lives, and a spool file nobody holds (its worker
died) is stored by the next worker that stores its own.  Objects are named
after their spool file, so one stored twice (its worker died between the
PUTs and its removal) is written again, not duplicated.  A spool file that
could not be stored stays and is tried again at the next interval.  Lines
are written to the kernel at once; like Swift's own logs they may be lost
only if the machine loses power before it wrote them back.
"""

import errno
import fcntl
import os
import time
import uuid
from collections import defaultdict
from typing import Callable, Dict, List, Optional

import eventlet
from eventlet.event import Event
from swift.common.http import is_success
from swift.common.utils import generate_trans_id, quote, unquote
from swift.common.wsgi import make_pre_authed_request

from zerocloud.proxy.nodeclient import NodeResult

SWIFT_SOURCE = 'ZC'
UNRUN_CDR = '0.0 0.0 0 0 0 0 0 0 0 0'
UNRUN_STATUS = 'ZeroVM did not run'
SPOOL_SUFFIX = '.spool'
#: A spool file this large is stored at once, not at the interval's end,
#: so that storing one never holds much in memory.
SPOOL_ROTATE_BYTES = 4 << 20

#: Stores one account's lines as the named object; True when stored.
Store = Callable[[str, str, bytes], bool]


def accounting_lines(results: List[NodeResult], now: str, txn: str
                     ) -> bytes:
    """``<time> <txn> <node> (<cdr>) [<status>]``, one line per node."""
    return ''.join(
        '%s %s %s (%s) [%s]\n' % (
            now, txn, r.node.name,
            r.headers.get('X-Nexe-Cdr-Line', UNRUN_CDR),
            r.headers.get('X-Nexe-Status', UNRUN_STATUS))
        for r in results).encode('utf-8')


def spool_record(account: str, lines: bytes) -> bytes:
    """Each line prefixed with its account (quoted: no spaces, no
    newlines), so that one spool file holds every account's lines."""
    prefix = quote(account).encode('utf-8') + b' '
    return b''.join(prefix + line + b'\n'
                    for line in lines.splitlines() if line)


def split_spool(data: bytes) -> Dict[str, bytes]:
    """A spool file's lines by account, in their order."""
    by_account: Dict[str, List[bytes]] = defaultdict(list)
    for record in data.splitlines(keepends=True):
        prefix, sep, line = record.partition(b' ')
        if sep and line.endswith(b'\n'):   # a torn last line is dropped
            by_account[unquote(prefix.decode('utf-8'))].append(line)
    return {account: b''.join(lines) for account, lines in
            by_account.items()}


def object_name(spool_name: str) -> str:
    """``<YYYY>/<MM>/<DD>/<spool name>.log``, dated by the spool's start."""
    stem = spool_name[:-len(SPOOL_SUFFIX)]
    started = int(stem.split('-', 1)[0], 16) / 1000.0
    return '%s%s.log' % (time.strftime('%Y/%m/%d/', time.gmtime(started)),
                         stem)


def _new_spool_name() -> str:
    """Sortable by time; the time (ms, hex) dates its objects."""
    return '%011x-%s%s' % (int(time.time() * 1000), uuid.uuid4().hex[:12],
                           SPOOL_SUFFIX)


class _SpoolFile:
    """One spool file, open and exclusively locked by this process."""

    def __init__(self, path: str, fd: int):
        self.path = path
        self.name = os.path.basename(path)
        self.fd = fd

    @classmethod
    def create(cls, directory: str) -> '_SpoolFile':
        path = os.path.join(directory, _new_spool_name())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                     os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(path, fd)

    @classmethod
    def claim(cls, path: str) -> Optional['_SpoolFile']:
        """The spool file at ``path`` if no live process holds it."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = os.fstat(fd)
            now = os.stat(path)
            if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                return cls(path, fd)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.ENOENT):
                os.close(fd)
                raise
        os.close(fd)   # held by its live worker, or stored meanwhile
        return None

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def read(self) -> bytes:
        with open(self.path, 'rb') as handle:
            return handle.read()

    def close(self) -> None:
        os.close(self.fd)


class AccountingSpool:
    """The spool of one proxy worker process (see the module docstring).

    Its store runs in a green thread of the worker, started by the first
    request the worker serves (:meth:`start`).
    """

    def __init__(self, directory: str, interval: float, store: Store,
                 logger):
        self.directory = directory
        self.interval = interval
        self.store = store
        self.logger = logger
        self._current: Optional[_SpoolFile] = None
        self._pid: Optional[int] = None
        self._wake = Event()

    def start(self) -> None:
        """Start storing, once per process (a forked worker starts anew)."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._current = None
        eventlet.spawn_n(self._run)

    def record(self, account: str, lines: bytes) -> None:
        """Append one job's lines (one write, so never torn by a crash of
        this process)."""
        if self._current is None:
            self._current = _SpoolFile.create(self.directory)
        os.write(self._current.fd, spool_record(account, lines))
        if self._current.size() >= SPOOL_ROTATE_BYTES and \
                not self._wake.ready():
            self._wake.send()

    def _run(self) -> None:
        while True:
            try:
                self.flush()
            except Exception:
                self.logger.exception('zerocloud: storing accounting')
            with eventlet.Timeout(self.interval, False):
                self._wake.wait()
            self._wake = Event()

    def flush(self) -> None:
        """Store this worker's spool so far and every orphaned one."""
        full, self._current = self._current, None
        tried = set()
        if full is not None:
            tried.add(full.name)
            self._store(full)
        for name in sorted(os.listdir(self.directory)):
            if name.endswith(SPOOL_SUFFIX) and name not in tried:
                orphan = _SpoolFile.claim(os.path.join(self.directory, name))
                if orphan is not None:
                    self._store(orphan)

    def _store(self, spool: _SpoolFile) -> None:
        """Store ``spool`` as one object per account, remove it when every
        one was stored; close it (letting a later flush retry) either way."""
        try:
            stored = all(
                self.store(account, object_name(spool.name), lines)
                for account, lines in split_spool(spool.read()).items())
            if stored:
                os.unlink(spool.path)
        finally:
            spool.close()


class SwiftStore:
    """Stores accounting objects through the proxy's pipeline below
    ``proxy_query``, as the system; remembers the containers it made.

    ``cache`` is the worker's memcache client (``swift.cache`` of the
    requests it serves), so that container lookups are cached."""

    def __init__(self, app, stats_account: str, logger):
        self.app = app
        self.stats_account = stats_account
        self.logger = logger
        self.cache = None
        self._containers = set()

    def __call__(self, account: str, name: str, body: bytes) -> bool:
        env = {'REQUEST_METHOD': 'PUT', 'swift.cache': self.cache,
               'swift.trans_id': generate_trans_id('-accounting')}
        container = '/v1/%s/%s' % (self.stats_account, account)
        if container not in self._containers:
            make_pre_authed_request(env, 'PUT', quote(container),
                                    swift_source=SWIFT_SOURCE
                                    ).get_response(self.app)
            self._containers.add(container)
        path = '%s/%s' % (container, name)
        resp = make_pre_authed_request(
            env, 'PUT', quote(path), body=body,
            headers={'Content-Type': 'text/plain'},
            swift_source=SWIFT_SOURCE).get_response(self.app)
        if is_success(resp.status_int):
            return True
        self._containers.discard(container)
        self.logger.error('zerocloud: accounting %s: %s', path, resp.status)
        return False
