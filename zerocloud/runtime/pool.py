"""Sandbox worker pool: where the object-server filter runs sessions.

A Swift object-server worker is one eventlet-patched OS thread, so it must
never run WebAssembly itself (the wasm call would stall every request, and the
runtime's timeout thread would be a green thread that never fires).  Each
object-server worker process therefore owns one :class:`SandboxPool` of
sandbox worker *processes* (:mod:`zerocloud.runtime.worker`), and talks to
them through green pipes, so a running session only parks the green thread
that asked for it.

Behaviour an operator sees:

* Workers start lazily, on the first request that needs one, never when the
  filter is loaded (Swift loads filters in the parent before it forks).  At
  most ``size`` (``zerovm_maxpool``) run at once; idle workers are kept and
  reused, so compiled modules stay mapped and the next run starts warm.
* When all ``size`` workers are busy, up to ``queue`` (``zerovm_maxqueue``)
  callers wait for one; the next caller gets :class:`PoolFull` at once, which
  the filter answers with 503 and ``Retry-After``.  A caller may bound its
  wait (``queue_wait``): when no worker frees up in time it gets
  :class:`PoolFull` too.
* Accounts share the pool (``account_size``, ``account_queue``): one
  account's runs hold at most ``account_size`` workers at once and at most
  ``account_queue`` of its runs wait for more; beyond that its next run gets
  :class:`PoolFull` at once, while other accounts' runs still find workers.
  Runs waiting because their account holds its share count against the
  pool's ``queue`` as well, so the waiting of all accounts stays bounded.
* The runtime stops a session at its manifest ``Timeout`` by itself, in one
  of two ways (``wall_clock``, see :mod:`zerocloud.runtime.limits`).  With
  ``exit`` (the default) workers run guests compiled without epoch checks,
  about 20 % faster when CPU-bound; a worker whose session overruns answers
  it (status ``session timeout``, exit status 4) and exits, and the pool
  reaps it (SIGKILL if it has not exited ``EXIT_GRACE`` seconds after
  answering) and never reuses it, so the next run in that slot starts a new
  worker (measured here: a first ``print(1)`` in the Python image takes
  0.2 s on a new worker, 35 ms on a warm one).  With ``epoch`` the worker
  interrupts the guest and lives on.
* As a last resort, a worker that has not answered ``timeout +
  kill_timeout`` seconds after the request (``zerovm_kill_timeout``) is
  SIGKILLed and reaped; the caller gets a result with status ``Killed``
  (exit status 4, EINTR as in ZeroVM).  Its slot starts
  a fresh worker next time.  The deadline covers the whole request, including
  a first compile of the program when the module cache is cold (seconds for a
  large image), so warm the cache at start (:meth:`SandboxPool.warm`).  A
  run gives a user program's compile at most its own timeout; one that
  needs longer is answered ``program is being compiled; retry later`` and
  left to :meth:`SandboxPool.warm`, which allows
  ``cache_limits.compile_seconds``
  (:class:`~zerocloud.runtime.limits.CacheLimits`, handed to the
  workers).  A new worker's start-up (loading the runtime) is not counted:
  it has its own limit of ``STARTUP_TIMEOUT`` seconds.
* A worker that dies during a session (OOM killer, crash) gives status
  ``sandbox worker died``; one that cannot start gives ``sandbox worker did
  not start``; an unexpected exception inside the worker gives ``sandbox
  worker error`` (details go to the log, not to the user).  All three use exit
  status 5 (EIO: the session's outcome is unknown).
* Workers die with their object-server process: they stay in its process
  group (Swift stops servers with ``killpg``), exit when their stdin closes,
  and on Linux are SIGKILLed by the kernel when the parent dies.
  :meth:`SandboxPool.close` stops them explicitly.  Every worker that ends is
  reaped; an idle worker that died on its own is reaped at the next request.
* A process forked from one that used the pool never shares its parent's
  workers: they are not its children, so they look dead to it (ECHILD) and it
  starts its own.

Workers inherit the server's stderr (``/dev/null`` once Swift has captured
stdio); what matters to the operator is logged through the pool's logger.

Call the pool from green threads of one OS thread (the object server, or a
plain test process: the eventlet calls used here work without
monkey-patching).  A worker receives SIGKILL when the OS thread that started
it ends, so do not use the pool from short-lived real threads.
"""

import errno
import logging
import os
import sys
import time
from typing import Any, Dict, List, Optional

import eventlet
from eventlet.green import subprocess as green_subprocess
from eventlet.semaphore import Semaphore

from zerocloud.runtime import worker as protocol
from zerocloud.cipher import CipherKey
from zerocloud.runtime.limits import (WALL_CLOCK_EXIT, CacheLimits,
                                      check_wall_clock)
from zerocloud.runtime.report import Report, ReportError, parse_report
from zerocloud.runtime.session import SessionResult

STATUS_KILLED = 'Killed'
STATUS_WORKER_DIED = 'sandbox worker died'
STATUS_WORKER_NOT_STARTED = 'sandbox worker did not start'
STATUS_WORKER_ERROR = 'sandbox worker error'
EXIT_KILLED = errno.EINTR
EXIT_WORKER_FAILED = errno.EIO

#: Seconds a new worker may take to load the runtime and say it is ready.
STARTUP_TIMEOUT = 30.0
#: Seconds a warm request (one first compile) may take.
WARM_TIMEOUT = 600.0
#: Seconds a worker that announced its exit may take to end.
EXIT_GRACE = 2.0


class PoolFull(Exception):
    """All workers busy and the wait queue is full.

    The object filter answers 503 with ``Retry-After``.
    """


class _Share:
    """One account's part of the pool: its slots, and its runs waiting
    because it holds them all."""

    def __init__(self, size: int):
        self.size = size
        self.slots = Semaphore(size)
        self.waiting = 0

    @property
    def idle(self) -> bool:
        return self.slots.balance >= self.size and self.waiting == 0


class SandboxWorkerError(Exception):
    """A worker failed a request that has no report to carry the failure."""


class _WorkerTimeout(Exception):
    """The worker did not answer in time."""


class _WorkerGone(Exception):
    """The worker's pipes closed, or it broke the protocol."""


class _WorkerNotStarted(Exception):
    """A new worker could not be executed or did not say it is ready."""


class _Worker:
    """One sandbox worker process and its two protocol pipes."""

    def __init__(self, argv: List[str]):
        self.process = green_subprocess.Popen(
            argv, stdin=green_subprocess.PIPE, stdout=green_subprocess.PIPE,
            close_fds=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: Dict[str, Any]) -> None:
        try:
            self.process.stdin.write(protocol.encode_message(message))
            self.process.stdin.flush()
        except (OSError, ValueError) as exc:
            raise _WorkerGone('sandbox worker %d: cannot write to it: %s'
                              % (self.pid, exc))

    def receive(self, limit: float) -> Dict[str, Any]:
        timeout = _WorkerTimeout('sandbox worker %d did not answer within '
                                 '%.1f s' % (self.pid, limit))
        try:
            with eventlet.Timeout(limit, timeout):
                line = self.process.stdout.readline()
        except (OSError, ValueError) as exc:  # closed by close()
            raise _WorkerGone('sandbox worker %d: pipe closed: %s'
                              % (self.pid, exc))
        if not line:
            raise _WorkerGone('sandbox worker %d died (exit status %s)'
                              % (self.pid, self._exit_status_soon()))
        try:
            return protocol.decode_message(line)
        except protocol.RequestError as exc:
            raise _WorkerGone('sandbox worker %d broke the protocol: %s'
                              % (self.pid, exc))

    def _exit_status_soon(self) -> Optional[int]:
        """The exit status of a worker that closed its pipe, if it exits."""
        try:
            return self.process.wait(timeout=1.0)
        except green_subprocess.TimeoutExpired:
            return None

    def ask(self, message: Dict[str, Any], limit: float) -> Dict[str, Any]:
        self.send(message)
        return self.receive(limit)

    def kill(self) -> None:
        """SIGKILL and reap; safe on a worker that already ended."""
        self.process.kill()  # a no-op once the process has been reaped
        self.process.wait()
        self.close_pipes()

    def stop(self, grace: float) -> None:
        """Close its stdin and SIGTERM it; SIGKILL and reap after grace.

        Its stdout stays open: a green thread may be reading it, and only
        the EOF that follows the exit wakes that reader (closing the pipe
        under it would not).
        """
        try:
            self.process.stdin.close()
        except OSError:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except green_subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _failure(status: str, exit_status: int = EXIT_WORKER_FAILED
             ) -> SessionResult:
    return SessionResult(exit_status=exit_status, report=Report(status=status),
                         fuel=None)


def _check_count(what: str, value: Any, minimum: int) -> None:
    """Refuse a count that is not an integer of at least ``minimum`` (0 or
    1; a bool is no count)."""
    if isinstance(value, bool) or not isinstance(value, int) or \
            value < minimum:
        raise ValueError('%s must be a %s integer, got %r' % (
            what, 'positive' if minimum else 'non-negative', value))


def _left(deadline: Optional[float]) -> Optional[float]:
    """Seconds until ``deadline`` (monotonic; None: no bound)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class SandboxPool:
    """Bounded, lazily started set of warm sandbox worker processes."""

    def __init__(self, size: int, queue: int, kill_timeout: float, *,
                 cache_dir: Optional[str] = None,
                 logger: Optional[logging.Logger] = None,
                 python: str = sys.executable,
                 wall_clock: str = WALL_CLOCK_EXIT,
                 account_size: Optional[int] = None,
                 account_queue: Optional[int] = None,
                 cache_limits: CacheLimits = CacheLimits()):
        _check_count('pool size', size, 1)
        _check_count('pool queue', queue, 0)
        account_size = size if account_size is None else account_size
        account_queue = queue if account_queue is None else account_queue
        _check_count('account share', account_size, 1)
        _check_count('account queue', account_queue, 0)
        if kill_timeout < 0:
            raise ValueError('kill timeout must not be negative, got %r'
                             % (kill_timeout,))
        self.size = size
        self.queue = queue
        self.account_size = min(account_size, size)
        self.account_queue = min(account_queue, queue)
        self.kill_timeout = float(kill_timeout)
        self.logger = logger or logging.getLogger(__name__)
        self._argv = [python, '-m', protocol.MODULE,
                      '--wall-clock', check_wall_clock(wall_clock),
                      '--cache-limits', cache_limits.to_json()]
        if cache_dir:
            self._argv += ['--cache-dir', cache_dir]
        self._slots = Semaphore(size)
        self._waiting = 0
        #: Accounts that hold workers or wait; the others are forgotten.
        self._shares: Dict[str, _Share] = {}
        self._idle: List[_Worker] = []
        self._workers: List[_Worker] = []

    def run(self, manifest_path: str, timeout: float, *,
            skip_validation: bool = False,
            validate_only: bool = False,
            queue_wait: Optional[float] = None,
            account: str = '',
            ciphers: Optional[Dict[str, CipherKey]] = None,
            tees: Optional[Dict[str, str]] = None) -> SessionResult:
        """Run one session in a worker for ``account``; raises PoolFull
        when none is free for it (within ``queue_wait`` seconds, if
        given).  ``ciphers``: keys of channels read or written encrypted;
        ``tees``: FIFOs sealed outputs are also written to, by alias
        (``zerocloud.runtime.served.TeedFile``)."""
        request = {'manifest': manifest_path,
                   'skip_validation': skip_validation,
                   'validate_only': validate_only,
                   'ciphers': {alias: key.to_json()
                               for alias, key in (ciphers or {}).items()},
                   'tees': dict(tees or {})}
        try:
            reply = self._exchange(request, timeout + self.kill_timeout,
                                   queue_wait, account)
        except _WorkerNotStarted as exc:
            self.logger.error('sandbox worker did not start: %s', exc)
            return _failure(STATUS_WORKER_NOT_STARTED)
        except _WorkerTimeout as exc:
            self.logger.warning('%s running %s; killed', exc, manifest_path)
            return _failure(STATUS_KILLED, EXIT_KILLED)
        except _WorkerGone as exc:
            self.logger.error('%s running %s', exc, manifest_path)
            return _failure(STATUS_WORKER_DIED)
        return self._result_from(reply)

    def warm(self, program_path: str, member: Optional[str] = None, *,
             fuel: bool = False, deterministic: bool = False) -> None:
        """Compile a program into the module cache using a pool worker, for
        the workers' engine settings with ``fuel`` and ``deterministic``.

        Raises PoolFull, or SandboxWorkerError when the compile failed.
        """
        try:
            reply = self._exchange({'warm': program_path, 'member': member,
                                    'fuel': fuel,
                                    'deterministic': deterministic},
                                   WARM_TIMEOUT)
        except (_WorkerGone, _WorkerTimeout) as exc:
            raise SandboxWorkerError('warming %s failed: %s'
                                     % (program_path, exc))
        if protocol.ERROR in reply:
            raise SandboxWorkerError('warming %s failed: %s'
                                     % (program_path, reply[protocol.ERROR]))

    @property
    def full(self) -> bool:
        """Every worker busy, the wait queue full: a run would be refused."""
        return self._slots.balance <= 0 and self._waiting >= self.queue

    def worker_pids(self) -> List[int]:
        """Pids of the running workers (busy and idle), for logs and tests."""
        return [worker.pid for worker in self._workers]

    def close(self) -> None:
        """Stop every worker and reap it; a later run starts new ones."""
        workers, idle = self._workers, self._idle
        self._workers, self._idle = [], []
        for worker in workers:
            worker.stop(self.kill_timeout)
        for worker in idle:  # busy ones are closed by the run that holds them
            worker.close_pipes()

    def refuses(self, account: str) -> bool:
        """A run for ``account`` would be refused at once: its share is
        held and its queue full, or every worker busy and the queue full."""
        share = self._shares.get(account)
        if share is not None and share.slots.balance <= 0 and (
                share.waiting >= self.account_queue or
                self._waiting >= self.queue):
            return True
        return self.full

    def _share(self, account: str) -> _Share:
        share = self._shares.get(account)
        if share is None:
            share = self._shares[account] = _Share(self.account_size)
        return share

    def _forget_if_idle(self, account: str) -> None:
        share = self._shares.get(account)
        if share is not None and share.idle:
            del self._shares[account]

    def _admit(self, account: str, queue_wait: Optional[float] = None
               ) -> None:
        """Take a worker slot within ``account``'s share (both released by
        :meth:`_release`); PoolFull when the account's share or the pool
        is taken and its queue full, or nothing freed up in time."""
        deadline = None if queue_wait is None else \
            time.monotonic() + queue_wait
        share = self._share(account)
        queued = False
        try:
            if share.slots.balance <= 0:
                if share.waiting >= self.account_queue or \
                        self._waiting >= self.queue:
                    raise PoolFull('account %s holds its %d sandbox workers '
                                   'and %d of its requests are waiting'
                                   % (account, self.account_size,
                                      share.waiting))
                queued = True
                self._waiting += 1
                share.waiting += 1
                try:
                    admitted = share.slots.acquire(
                        timeout=_left(deadline))
                finally:
                    share.waiting -= 1
                if not admitted:
                    raise PoolFull('no sandbox worker became free within '
                                   '%g s' % queue_wait)
            else:
                share.slots.acquire()
            try:
                self._take_slot(queued, deadline, queue_wait)
            except BaseException:
                share.slots.release()
                raise
        finally:
            if queued:
                self._waiting -= 1
            self._forget_if_idle(account)

    def _take_slot(self, queued: bool, deadline: Optional[float],
                   queue_wait: Optional[float]) -> None:
        """One of the pool's ``size`` slots; a run already queued (for its
        account's share) keeps its place in the queue."""
        if self._slots.balance > 0:
            self._slots.acquire()
            return
        if not queued:
            if self._waiting >= self.queue:
                raise PoolFull('all %d sandbox workers are busy and %d '
                               'requests are waiting' % (self.size,
                                                         self._waiting))
            self._waiting += 1
        try:
            admitted = self._slots.acquire(timeout=_left(deadline))
        finally:
            if not queued:
                self._waiting -= 1
        if not admitted:
            raise PoolFull('no sandbox worker became free within '
                           '%g s' % queue_wait)

    def _release(self, account: str) -> None:
        self._slots.release()
        self._shares[account].slots.release()
        self._forget_if_idle(account)

    def _exchange(self, request: Dict[str, Any], limit: float,
                  queue_wait: Optional[float] = None,
                  account: str = '') -> Dict[str, Any]:
        """Send one request to a free worker and return its reply.

        A worker that times out or breaks down is killed and reaped here.
        """
        self._admit(account, queue_wait)
        try:
            worker = self._checkout()
            try:
                reply = worker.ask(request, limit)
            except (_WorkerTimeout, _WorkerGone):
                self._discard(worker)
                raise
            if reply.get(protocol.EXITING) is True:
                self._reap_exiting(worker)
            else:
                self._idle.append(worker)
            return reply
        finally:
            self._release(account)

    def _result_from(self, reply: Dict[str, Any]) -> SessionResult:
        if protocol.ERROR in reply:
            self.logger.error('sandbox worker failed a session: %s',
                              reply[protocol.ERROR])
            return _failure(STATUS_WORKER_ERROR)
        try:
            report = parse_report(reply['report'])
            return SessionResult(exit_status=int(reply['exit_status']),
                                 report=report, fuel=reply.get('fuel'))
        except (KeyError, TypeError, ValueError, ReportError) as exc:
            self.logger.error('sandbox worker sent a bad reply %r: %s',
                              reply, exc)
            return _failure(STATUS_WORKER_ERROR)

    def _checkout(self) -> _Worker:
        """An idle live worker, or a new one; reaps idle ones that died."""
        for worker in list(self._idle):
            if not worker.alive():
                self._idle.remove(worker)
                self._discard(worker)
        if self._idle:
            return self._idle.pop()
        return self._spawn()

    def _spawn(self) -> _Worker:
        argv = self._argv + ['--parent-pid', str(os.getpid())]
        try:
            worker = _Worker(argv)
        except OSError as exc:
            raise _WorkerNotStarted('cannot execute %s: %s' % (argv[0], exc))
        self._workers.append(worker)
        try:
            hello = worker.receive(STARTUP_TIMEOUT)
        except (_WorkerGone, _WorkerTimeout) as exc:
            self._discard(worker)
            raise _WorkerNotStarted(str(exc))
        if protocol.READY not in hello:
            self._discard(worker)
            raise _WorkerNotStarted('sandbox worker %d: %s' % (
                worker.pid, hello.get(protocol.ERROR) or
                'unexpected first line %r' % (hello,)))
        return worker

    def _reap_exiting(self, worker: _Worker) -> None:
        """Reap a worker that answered and announced its exit.

        Waiting (while still holding its slot) means the caller's result
        comes after the worker's mounts and limits are gone, and the pool
        never runs more than ``size`` workers.
        """
        try:
            worker.process.wait(timeout=EXIT_GRACE)
        except green_subprocess.TimeoutExpired:
            self.logger.warning('sandbox worker %d announced its exit but '
                                'was still running after %.1f s; killed',
                                worker.pid, EXIT_GRACE)
        self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        if worker in self._workers:
            self._workers.remove(worker)
