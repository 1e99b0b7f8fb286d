"""Limits enforced while the guest runs (wall clock and file size), and
the bounds of compiling and caching programs (``CacheLimits``).

Wall clock, two modes (``Runtime(wall_clock=...)``):

* ``epoch`` (the default; safe inside any process, used by the ``zerovm``
  command): a real OS thread (the runtime's ``Alarm``, started once) calls
  ``Engine.increment_epoch()`` when ``Timeout`` expires; the store's epoch
  deadline is one tick, so the guest traps at its next loop or call and the
  run reports ``session timeout``.  wasm runs with the GIL released, so the
  timer fires on time.  A guest blocked in a host call (a sleep, a read from
  a FIFO) is not interrupted; the worker's parent kills it after
  ``Timeout`` + its kill timeout.  The epoch is per-engine: a ``Runtime``
  runs one guest at a time.  The price: compiled code checks the epoch at
  every loop head and call (a pure-Python loop in CPython-WASI runs about
  20 % slower than without).
* ``exit`` (for sandbox pool workers, processes the server can afford to
  lose): engines are built without epoch interruption, and a watchdog OS
  thread (``ExitWatchdog``, on the same ``Alarm``) ends the *process* when ``Timeout`` expires
  while the guest still runs: it hands the timeout result to a callback
  (the worker writes its reply there), flushes Python's stdout and stderr
  and calls ``os._exit(4)`` (EINTR, the session's exit status).  This also
  ends a guest blocked in a host call.  The process exit drops the run's
  private mount namespace and file-size limit; the run directory is left for
  the caller to remove.  A lock decides between "the guest returned" and
  "the deadline fired": once the guest's return is recorded the watchdog
  does nothing, and once the deadline fired the returning thread blocks
  until the process is gone, so a run is never reported twice.
* File size: ``RLIMIT_FSIZE`` is set on the process only around the guest
  call and restored right after (so cache writes are never hit), with
  ``SIGXFSZ`` ignored so an oversized write fails with EFBIG inside the guest
  instead of killing the worker.  (It is still in force while an ``exit``
  watchdog's callback runs; pipes are not subject to it.)
"""

import contextlib
import ctypes
import dataclasses
import errno
import json
import os
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Optional

if TYPE_CHECKING:  # the worker imports the mode names before wasmtime
    import wasmtime

WALL_CLOCK_EPOCH = 'epoch'
WALL_CLOCK_EXIT = 'exit'
WALL_CLOCKS = (WALL_CLOCK_EPOCH, WALL_CLOCK_EXIT)
#: Exit status of a process ended by an ``exit`` watchdog.
TIMEOUT_EXIT_STATUS = errno.EINTR

_libc = ctypes.CDLL(None, use_errno=True)
_sigxfsz_ignored = False


def check_wall_clock(mode: str) -> str:
    """``mode`` if it names a wall-clock mode, else ValueError."""
    if mode not in WALL_CLOCKS:
        raise ValueError('wall clock must be %s, got %r'
                         % (' or '.join(repr(m) for m in WALL_CLOCKS), mode))
    return mode


class Alarm:
    """One OS thread that runs an action at a deadline, armed and disarmed
    once per run.

    A ``threading.Timer`` per run costs a thread start and join, about half
    a millisecond of a small job; this thread is started once (at the first
    run) and then waits.  It is woken only when a deadline comes earlier
    than the one it waits for: runs that end in time never wake it (it
    wakes at a stale deadline, finds the next one later, and waits again).
    One deadline at a time: a ``Runtime`` runs one guest at a time and owns
    one.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._deadline: Optional[float] = None
        self._action: Optional[Callable[[], None]] = None
        self._firing = False
        #: When the thread wakes next by itself (None: only when notified).
        self._wakes_at: Optional[float] = None
        self._thread: Optional[threading.Thread] = None

    def arm(self, seconds: float, action: Callable[[], None]) -> None:
        """Run ``action`` on the alarm's thread in ``seconds``."""
        with self._changed:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name='zerocloud-alarm', daemon=True)
                self._thread.start()
            self._deadline = time.monotonic() + seconds
            self._action = action
            if self._wakes_at is None or self._deadline < self._wakes_at:
                self._changed.notify_all()

    def disarm(self) -> None:
        """Cancel the deadline; once this returns the action is not running
        and will not run."""
        with self._changed:
            self._deadline = self._action = None
            while self._firing:
                self._changed.wait()

    def _serve(self) -> None:
        with self._changed:
            while True:
                if self._deadline is None:
                    self._wakes_at = None
                    self._changed.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._wakes_at = self._deadline
                    self._changed.wait(left)
                    continue
                action, self._deadline, self._action = self._action, None, None
                self._firing = True
                self._changed.release()
                try:
                    action()
                finally:
                    self._changed.acquire()
                    self._firing = False
                    self._changed.notify_all()


class WallClock:
    """Interrupt the engine's running guests after ``seconds``."""

    def __init__(self, engine: 'wasmtime.Engine', seconds: float,
                 alarm: Alarm):
        self.expired = False
        self._engine = engine
        self._seconds = seconds
        self._alarm = alarm

    def _expire(self) -> None:
        self.expired = True
        self._engine.increment_epoch()

    def __enter__(self) -> 'WallClock':
        self._alarm.arm(self._seconds, self._expire)
        return self

    def __exit__(self, *exc) -> None:
        self._alarm.disarm()


class ExitWatchdog:
    """End the process after ``seconds`` unless the guest returned first.

    ``last_words`` runs on the watchdog thread just before the exit; an
    exception from it is printed as one line on stderr and the process
    exits anyway.
    """

    def __init__(self, seconds: float, last_words: Callable[[], None],
                 alarm: Optional[Alarm] = None):
        self.expired = False
        self._last_words = last_words
        self._decided = threading.Lock()
        self._returned = False
        self._seconds = seconds
        self._alarm = alarm or Alarm()

    def _expire(self) -> None:
        self._decided.acquire()
        if self._returned:
            self._decided.release()
            return
        # The lock stays taken: a guest returning now blocks in __exit__
        # until the process is gone.
        self.expired = True
        try:
            self._last_words()
        except BaseException as exc:
            os.write(2, ('zerocloud: timeout callback failed: %s: %s\n'
                         % (type(exc).__name__, exc)).encode())
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(TIMEOUT_EXIT_STATUS)

    def __enter__(self) -> 'ExitWatchdog':
        self._alarm.arm(self._seconds, self._expire)
        return self

    def __exit__(self, *exc) -> None:
        with self._decided:  # blocks for good once the deadline fired
            self._returned = True
        self._alarm.disarm()


def ignore_sigxfsz() -> None:
    """Make oversized writes return EFBIG instead of killing the process."""
    global _sigxfsz_ignored
    if _sigxfsz_ignored:
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    else:
        _libc.signal(int(signal.SIGXFSZ), ctypes.c_void_p(1))  # SIG_IGN
    _sigxfsz_ignored = True


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[int]:
    """Cap file sizes written by this process; yields the cap applied."""
    ignore_sigxfsz()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    cap = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, hard))
    try:
        yield cap
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@dataclass(frozen=True)
class CacheLimits:
    """How programs are compiled and how many compiled ones are kept.

    A user program is compiled in a child process of at most
    ``compile_memory`` bytes of address space and ``compile_seconds`` CPU
    and wall-clock seconds (``zerocloud.runtime.compiler``); a run compiles
    one of at most ``in_run_compile_bytes`` itself, a larger one is
    compiled in the background.  On disk, compiled user programs (and the
    remembered failures) are kept least-recently-used within
    ``disk_bytes`` and ``disk_files``; in a worker, loaded user modules
    within ``worker_modules`` and ``worker_bytes``.  System images are
    outside these bounds.  The object filter's options set them.
    """
    compile_memory: int = 1 << 30
    compile_seconds: float = 60.0
    in_run_compile_bytes: int = 64 << 20
    disk_bytes: int = 512 << 20
    disk_files: int = 4096
    worker_modules: int = 16
    worker_bytes: int = 256 << 20

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> 'CacheLimits':
        """Parsed and checked; ValueError names what is wrong."""
        try:
            values = json.loads(text)
            limits = cls(**values)
        except (ValueError, TypeError) as exc:
            raise ValueError('bad cache limits %r: %s' % (text, exc))
        for field in dataclasses.fields(cls):
            value = getattr(limits, field.name)
            if isinstance(value, bool) or not isinstance(
                    value, (int, float)) or value <= 0:
                raise ValueError('cache limit %s must be a positive number,'
                                 ' got %r' % (field.name, value))
        return limits
