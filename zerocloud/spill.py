"""A sealed file that grows while it is read: data between running nodes.

When a job's connected nodes run at once, what an upstream node writes
for a downstream one arrives while that one may not read it yet: it
reads another input first, or has not started.  It waits here, on a
disk, sealed (AES-CTR under a key made for this file and held only in
memory, :mod:`zerocloud.cipher`), so memory never grows with it.  The
writer appends and finally ends it (or fails it); readers go at their own
pace from any offset, waiting (green threads) for bytes not written yet.
The proxy keeps a whole edge this way, so a downstream node sent again
(its servers were busy) reads it again from the start; an object server
spills there only what its program does not take at once
(:mod:`zerocloud.object.edges`).
"""

import os
import tempfile
from typing import Iterator, Optional

from eventlet.event import Event

from zerocloud.cipher import CipherKey, KeyStream

#: Bytes read back at once.
CHUNK = 1 << 16


class SpillFull(Exception):
    """Appending would take a spill past its budget (its message says
    which)."""


class SpillBudget:
    """Bytes that several spills may hold in all."""

    def __init__(self, limit: int, why: str):
        """``why``: what is said when it is exceeded (``%d``: the limit)."""
        self.limit = limit
        self.why = why
        self.used = 0

    def take(self, size: int) -> None:
        if self.used + size > self.limit:
            raise SpillFull(self.why % self.limit)
        self.used += size


class SpillBroken(Exception):
    """The writer failed: the data ends short, and must not be taken for
    whole."""


class GrowingSpill:
    """One sealed spill file (see the module docstring)."""

    def __init__(self, directory: Optional[str], prefix: str,
                 budget: Optional[SpillBudget] = None):
        """``budget``: shared with other spills; an append past it raises
        :class:`SpillFull`."""
        self._budget = budget
        fd, self.path = tempfile.mkstemp(prefix=prefix, dir=directory)
        self._fp = os.fdopen(fd, 'r+b', buffering=0)
        key = CipherKey.fresh()
        self._seal = KeyStream(key)
        self._unseal = KeyStream(key)
        #: Bytes written so far.
        self.size = 0
        self.ended = False
        #: Why the writer failed, if it did.
        self.failure: Optional[str] = None
        self._grown = Event()

    def append(self, data: bytes) -> None:
        if self.ended:
            raise ValueError('append after the end')
        if self._budget is not None:
            self._budget.take(len(data))
        os.pwrite(self._fp.fileno(), self._seal.apply(self.size, data),
                  self.size)
        self.size += len(data)
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def fail(self, why: str) -> None:
        """End it short: readers get :class:`SpillBroken` at its end."""
        if not self.ended:
            self.failure = why
            self.end()

    def _wake(self) -> None:
        grown, self._grown = self._grown, Event()
        grown.send()

    def read(self, offset: int, size: int = CHUNK) -> bytes:
        """Up to ``size`` bytes from ``offset``, waiting for them to be
        written; ``b''`` at the end, :class:`SpillBroken` at a failed
        end."""
        while offset >= self.size and not self.ended:
            self._grown.wait()
        if offset >= self.size:
            if self.failure is not None:
                raise SpillBroken(self.failure)
            return b''
        data = os.pread(self._fp.fileno(), min(size, self.size - offset),
                        offset)
        return self._unseal.apply(offset, data)

    def chunks(self, offset: int = 0) -> Iterator[bytes]:
        """Everything from ``offset`` on, as it comes."""
        while True:
            data = self.read(offset)
            if not data:
                return
            offset += len(data)
            yield data

    def remove(self) -> None:
        """Drop the file (readers still waiting see a failed end)."""
        self.fail('removed')
        self._fp.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
