"""Limits enforced while the guest runs: wall clock and file size.

* Wall clock: a real OS thread (``threading.Timer``) calls
  ``Engine.increment_epoch()`` when ``Timeout`` expires; the store's epoch
  deadline is one tick, so the guest traps at its next loop or call.  wasm
  runs with the GIL released, so the timer fires on time.  A guest blocked in
  a host call (a sleep, a read from a FIFO) is not interrupted; the worker's
  parent kills it after ``Timeout`` + its kill timeout.  The epoch is
  per-engine: a ``Runtime`` runs one guest at a time.
* File size: ``RLIMIT_FSIZE`` is set on the process only around the guest
  call and restored right after (so cache writes are never hit), with
  ``SIGXFSZ`` ignored so an oversized write fails with EFBIG inside the guest
  instead of killing the worker.
"""

import contextlib
import ctypes
import resource
import signal
import threading
from typing import Iterator

import wasmtime

_libc = ctypes.CDLL(None, use_errno=True)
_sigxfsz_ignored = False


class WallClock:
    """Interrupt the engine's running guests after ``seconds``."""

    def __init__(self, engine: wasmtime.Engine, seconds: float):
        self.expired = False
        self._engine = engine
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired = True
        self._engine.increment_epoch()

    def __enter__(self) -> 'WallClock':
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self._timer.join()


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
