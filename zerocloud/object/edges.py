"""Connections between nodes that run at the same time, on one server.

The proxy runs a job's connected nodes at once
(:data:`zerocloud.protocol.EDGE_STREAM_HEADER`).  Here, for one node:

* **In-edges** (``/dev/in/<peer>``, or a named device of a ``zvm://``
  path) are FIFOs in the node's RAM directory.  Their data comes after the
  node's other members in its request body (chunked), as pieces of all of
  them interleaved in the order the upstream nodes wrote them, each
  ended by a marker (:data:`zerocloud.protocol.PAX_EDGE`).  One green
  thread (:class:`EdgeDemux`) reads those pieces and gives each to its
  FIFO (:class:`EdgeInput`).  What the program does not take at once,
  because it reads another input first or is slower than its upstream,
  waits on the device, sealed (:mod:`zerocloud.spill`): the body is always
  read, so the nodes upstream never wait for one input the program reads
  last, and RAM holds at most a FIFO's buffer per input.  The program
  sees a sequential device: a seek fails (``ESPIPE``).
* **Out-edges** are FIFOs the server reads while the program writes
  (:class:`zerocloud.object.outstream.OutputStream`, so each is held to
  ``zerovm_maxoutput``).  The answer starts with the first bytes written
  to any of them (or at the end of the run): the pieces as they come,
  interleaved, each a member named after its device; then, once the run
  ended, the node's other outputs whole; then its final ``X-Nexe-*``
  headers (:class:`EdgeAnswer`).

An input that breaks off (the body ends before its marker) fails the node:
its status names the input.  A proxy that goes away closes the out-edges,
so the program's next write there fails (``EPIPE``).
"""

import os
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import eventlet
from eventlet.queue import LightQueue
from swift.common.swob import HTTPException

from zerocloud import protocol
from zerocloud.object.fifo import make_fifo, write_all
from zerocloud.object.outstream import (
    Frame, OutputStream, RunningAnswer, end_member)
from zerocloud.spill import GrowingSpill, SpillBroken

#: Pieces of out-edges read ahead of the answer (each up to a FIFO's
#: buffer, ``outstream.CHUNK``).
AHEAD = 4


class EdgeInput:
    """One in-edge: the FIFO the program reads, fed from the body; what
    the program does not take at once waits in a sealed spill."""

    def __init__(self, device: str, path: str, spill_dir: str):
        self.device = device
        #: The FIFO, in the node's RAM directory.
        self.path = path
        self._spill_dir = spill_dir
        # A reader of its own until the run is over: a FIFO that nobody
        # has open loses its data, and the program may open it after the
        # end of its data came.  The writer's close is the end.
        self._keeper = make_fifo(path, os.O_RDONLY)
        self._fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._spill: Optional[GrowingSpill] = None
        #: Bytes of the spill written to the FIFO.
        self._drained = 0
        self._feeder: Optional[eventlet.greenthread.GreenThread] = None
        #: Bytes received for it, and whether its end marker came.
        self.received = 0
        self.ended = False
        #: The body ended before this input did, while the node ran.
        self.broken = False

    @property
    def _backlog(self) -> int:
        return self._spill.size - self._drained if self._spill else 0

    def take(self, data: bytes) -> None:
        """The next piece: into the FIFO if it has room and nothing waits
        before it, else into the spill."""
        self.received += len(data)
        if self._fd < 0:
            return   # the run is over: dropped
        if not self._backlog:
            try:
                data = data[os.write(self._fd, data):]
            except BlockingIOError:
                pass
        if data:
            if self._spill is None:
                self._spill = GrowingSpill(self._spill_dir,
                                           'zerocloud-edge-')
            self._spill.append(data)
            if self._feeder is None:
                self._feeder = eventlet.spawn(self._feed)

    def _feed(self) -> None:
        spill = self._spill
        try:
            while True:
                data = spill.read(self._drained)
                if not data:
                    break
                write_all(self._fd, data)
                self._drained += len(data)
        except (SpillBroken, OSError):
            pass
        finally:
            self._close()

    def end(self, broken: bool = False) -> None:
        """Its end marker came (or, ``broken``, never will)."""
        if self.ended:
            return
        self.ended = True
        self.broken = broken and self._keeper >= 0
        if self._spill is None:
            self._close()
        elif broken:
            self._spill.fail('broken off')   # the feeder closes the FIFO
        else:
            self._spill.end()   # the feeder closes the FIFO when drained

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def drop(self) -> None:
        """Stop feeding (the run is over); what comes next is dropped."""
        if self._feeder is not None:
            self._feeder.kill()
        self._feeder = None
        self._close()
        if self._keeper >= 0:
            os.close(self._keeper)
            self._keeper = -1
        if self._spill is not None:
            self._spill.remove()


class EdgeDemux:
    """Reads the in-edges' pieces from the rest of the body (from member
    ``first`` on), each to its :class:`EdgeInput`, in a green thread."""

    def __init__(self, reader: protocol.MemberReader,
                 first: Optional[protocol.Member],
                 inputs: Dict[str, EdgeInput]):
        self._reader = reader
        self._first = first
        self.inputs = inputs
        self._thread: Optional[eventlet.greenthread.GreenThread] = None
        #: Why the inputs not ended broke off.
        self.reason = 'its data broke off'

    def start(self) -> None:
        self._thread = eventlet.spawn(self._run)

    def _run(self) -> None:
        reader, member = self._reader, self._first
        try:
            while member is not None:
                target = self.inputs.get(member.name)
                if target is None or protocol.PAX_EDGE not in member.pax:
                    raise protocol.FramingError(
                        'member %s is not an input of this node'
                        % member.name)
                if protocol.PAX_END in member.pax:
                    target.end()
                else:
                    while True:
                        chunk = reader.read()
                        if not chunk:
                            break
                        target.take(chunk)
                member = reader.next_member()
        except HTTPException as err:
            if err.status_int == 413:
                self.reason = 'the node\'s inputs went past zerovm_maxinput'
        except (protocol.FramingError, OSError, ValueError):
            pass   # the body broke off: the inputs not ended are broken
        finally:
            for target in self.inputs.values():
                target.end(broken=True)

    def stop(self) -> None:
        """After the run: every input dropped, the body left unread (the
        proxy reads the answer while it sends)."""
        for target in self.inputs.values():
            target.drop()   # first: the inputs not ended are not broken
        if self._thread is not None:
            self._thread.kill()
            self._thread = None

    @property
    def broken(self) -> List[str]:
        """The devices whose data broke off while the node ran."""
        return sorted(t.device for t in self.inputs.values() if t.broken)


class EdgeOutputs:
    """The out-edges' FIFOs, read at once; :meth:`pieces` interleaves what
    the program writes to them."""

    def __init__(self, streams: Dict[str, OutputStream]):
        #: By device.
        self.streams = streams
        self._queue: LightQueue = LightQueue(AHEAD)
        self._open = len(streams)
        self._held: Optional[Tuple[str, bytes]] = None
        self._readers = [eventlet.spawn(self._read, device, stream)
                         for device, stream in streams.items()]

    def _read(self, device: str, stream: OutputStream) -> None:
        try:
            while True:
                data = stream.read()
                if not data:
                    break
                self._queue.put((device, data))
        finally:
            self._queue.put((device, b''))

    def first(self) -> None:
        """Wait for the first piece, or for the end of a stream (which
        comes once the run has ended)."""
        self._held = self._queue.get()

    def run_ended(self) -> None:
        for stream in self.streams.values():
            stream.run_ended()

    def pieces(self) -> Iterator[Tuple[str, bytes]]:
        """(device, bytes) as written, until every out-edge ended."""
        held, self._held = self._held, None
        if held is not None:
            yield from self._count(held)
        while self._open:
            yield from self._count(self._queue.get())

    def _count(self, item: Tuple[str, bytes]) -> Iterator[Tuple[str, bytes]]:
        device, data = item
        if data:
            yield device, data
        else:
            self._open -= 1

    def close(self) -> None:
        for reader in self._readers:
            reader.kill()
        for stream in self.streams.values():
            stream.close()


class EdgeAnswer(RunningAnswer):
    """The body of a node's answer with out-edges: their pieces as they
    come, then (``finish()``: waits for the run's end) the other outputs'
    members and the final headers."""

    def __init__(self, outputs: EdgeOutputs,
                 finish: Callable[[], Tuple[List[Frame], Dict[str, str]]],
                 release: Callable[[], None]):
        self._outputs = outputs
        super().__init__(finish, release)

    def _iterate(self) -> Iterator[bytes]:
        for device, data in self._outputs.pieces():
            yield from protocol.iter_member(device, len(data), [data],
                                            {protocol.PAX_EDGE: '1'})
        frames, headers = self._final()
        for _, chunks in frames:
            yield from chunks
        yield from end_member(protocol.END_MEMBER, headers)

    def _close_streams(self) -> None:
        self._outputs.close()
