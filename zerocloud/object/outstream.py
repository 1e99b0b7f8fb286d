"""A node's stdout, read as the program writes it.

When the proxy says a node's answer may stream (``X-Zerocloud-Answer-
Stream``: a one-node job) and the node's only output is its stdout, the
client's answer (not CGI: its printed headers decide the status) or an
object to store, the output is bound to a FIFO in the node's RAM
directory instead of a file on the device.  The server
reads it while the node runs (:class:`OutputStream`), counting its bytes
and their md5 (the channel's etag) and holding it to ``zerovm_maxoutput``:
beyond that the FIFO is closed and the program's next write fails
(``EPIPE``).  Nothing the program writes there lands on a disk.

When that only output is a named device stored as an object, a file the
program may seek in, it stays a sealed file and the sandbox also writes
its bytes to a FIFO as long as the program writes them in order
(``zerocloud.runtime.served.TeedFile``).  The server reads that FIFO the
same way; once the run ended it compares what it read with the file (size
and md5), and sends the file again whole when they differ.

Up to ``STREAM_AFTER`` bytes are held back: a node that ends before that
is answered as usual, its output in one member.  A larger output starts
the answer at once (:class:`StreamedAnswer`, :mod:`zerocloud.protocol`):
the pieces as they come, then the node's final ``X-Nexe-*`` headers.
"""

import json
import os
from abc import ABC, abstractmethod
from hashlib import md5
from typing import Any, Callable, Dict, Iterator, List, Tuple

from eventlet.hubs import trampoline
from swift.common.swob import HTTPException

from zerocloud import protocol
from zerocloud.object.fifo import make_fifo

#: One member of an answer: its length on the wire, and its bytes.
Frame = Tuple[int, Iterator[bytes]]
#: Bytes taken from the FIFO at once (its whole buffer, ``fifo.PIPE_SIZE``).
CHUNK = 1 << 20


class OutputStream:
    """The reading end of the FIFO an immediate output is bound to.

    The server holds a writing end of its own until the run has ended
    (:meth:`run_ended`): until then an empty FIFO means "nothing yet" (the
    program has not opened it, or writes nothing for a while), never the
    end, and a read waits for the program's bytes without polling.  The
    sandbox writes each of the program's writes before the program goes on
    (``zerocloud.runtime.served``) and closes its end before it answers, so
    once the run has ended an empty FIFO with no writer left is the end of
    the output.
    """

    def __init__(self, path: str, limit: int):
        self.fd = make_fifo(path, os.O_RDONLY)
        self._keeper = os.open(path, os.O_WRONLY | os.O_NONBLOCK |
                               os.O_CLOEXEC)
        self.limit = limit
        self.size = 0
        self.digest = md5(usedforsecurity=False)
        #: The program wrote more than ``limit``: the FIFO was closed.
        self.over_limit = False

    def run_ended(self) -> None:
        """The run is over: an empty FIFO is now the end (a read waiting
        for bytes wakes up)."""
        if self._keeper >= 0:
            os.close(self._keeper)
            self._keeper = -1

    def read(self) -> bytes:
        """The next bytes the program wrote; ``b''`` once its run has ended
        and everything is read (or the output went past its limit)."""
        while self.fd >= 0:
            try:
                chunk = os.read(self.fd, CHUNK)
            except BlockingIOError:
                trampoline(self.fd, read=True)
                continue
            if not chunk:
                return b''
            self.size += len(chunk)
            if self.size > self.limit:
                self.over_limit = True
                self.close()
                return b''
            self.digest.update(chunk)
            return chunk
        return b''

    def close(self) -> None:
        self.run_ended()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def end_member(name: str, headers: Dict[str, str]) -> Iterator[bytes]:
    """The last member of an answer sent while its node ran: the node's
    final ``X-Nexe-*`` headers."""
    end = json.dumps(headers).encode('utf-8')
    return protocol.iter_member(name, len(end), [end],
                                {protocol.PAX_END: '1'})


class RunningAnswer(ABC):
    """The body of an answer that starts while its node runs.

    ``finish()`` waits for the run's end and returns what ends the body;
    ``release()`` frees what the request holds.  Closed early (the proxy
    went away), it closes what the program writes to
    (:meth:`_close_streams`: its next write there fails) and waits for the
    run before releasing."""

    def __init__(self, finish: Callable[[], Any],
                 release: Callable[[], None]):
        self._finish = finish
        self._release = release
        self._finished = False
        self._chunks = self._iterate()

    def _final(self) -> Any:
        """What ``finish()`` returns, once the run ended."""
        result = self._finish()
        self._finished = True
        return result

    @abstractmethod
    def _iterate(self) -> Iterator[bytes]:
        """The body's bytes."""

    @abstractmethod
    def _close_streams(self) -> None:
        """Close what the program writes to."""

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        try:
            self._chunks.close()
            self._close_streams()
            if not self._finished:
                try:
                    self._finish()   # waits for the run to end
                except HTTPException:
                    pass   # an input that broke off too: nobody listens
        finally:
            self._release()


class StreamedAnswer(RunningAnswer):
    """The body of a streamed answer: the output's pieces, then the final
    headers.  ``held`` is what was read before the answer started;
    ``finish()`` returns the members to send before the final headers (a
    teed output sent again whole, or none) and the node's ``X-Nexe-*``
    headers."""

    def __init__(self, device: str, pax: Dict[str, str], held: List[bytes],
                 stream: OutputStream,
                 finish: Callable[[], Tuple[List[Frame], Dict[str, str]]],
                 release: Callable[[], None]):
        """``pax``: the output's content type and metadata, sent with its
        first piece."""
        self._device = device
        self._pax = dict(pax)
        self._held = held
        self._stream = stream
        super().__init__(finish, release)

    def _member(self, data: bytes) -> Iterator[bytes]:
        pax, self._pax = self._pax, {}
        return protocol.iter_member(self._device, len(data), [data], pax)

    def _iterate(self) -> Iterator[bytes]:
        for data in self._held:
            yield from self._member(data)
        self._held = []
        while True:
            data = self._stream.read()
            if not data:
                break
            yield from self._member(data)
        frames, headers = self._final()
        for _length, chunks in frames:
            yield from chunks
        yield from end_member(self._device, headers)

    def _close_streams(self) -> None:
        self._stream.close()
