"""The select itself, as it runs in the sandbox next to the object.

``python -m _zerocloud_select`` (see ``__main__``) with:

* ``/select.json``, a member of the job's image: the request
  (``model.SelectRequest.to_json``);
* ``S3SELECT_SIZE``: the object's size in bytes (what a ``HEAD`` gave),
  for a ``ScanRange`` counted from the end and for Parquet's footer;
* the object on ``/dev/input`` (seekable when the object server reads it
  in place, a stream when the proxy feeds it).

It writes S3's event stream on stdout: ``Records`` events of at most
``RECORDS_EVENT_BYTES`` each, a ``Cont`` event whenever ``KEEP_ALIVE``
seconds pass with nothing else sent (a long scan that selects little keeps
its client's connection alive), ``Progress`` events as often when the
request asks for them, then ``Stats`` and ``End``.  A ``SelectError``
after the stream started (a value that does not cast, a record too long)
ends it with an ``error`` event and no ``End``, as S3 does; the program
still exits 0, because the answer it wrote is complete.
"""

import os
import sys
import time
from typing import Any, BinaryIO, Callable, Iterator, List, Tuple

from . import eventstream, formats, functions
from .errors import SelectError
from .model import SelectRequest
from .parquet import ParquetFile
from .sql import compile_query, too_deep

INPUT_DEVICE = '/dev/input'
#: The request, a member of the job's image (``/`` in the sandbox): an
#: expression of 256 KB would not fit a job description.
REQUEST_PATH = '/select.json'
SIZE_ENV = 'S3SELECT_SIZE'
#: Records payload per event: large enough to cost little framing, small
#: enough that a client sees rows soon.
RECORDS_EVENT_BYTES = 256 * 1024
#: Seconds without an event before a ``Cont`` (and ``Progress``) is sent.
KEEP_ALIVE = 1.0

Row = List[Tuple[str, Any]]


class EventWriter:
    """Batches encoded rows into events on ``out``, keeps the connection
    alive, and counts what it returned."""

    def __init__(self, out: BinaryIO, counter: formats.InputCounter,
                 progress: bool):
        self.out = out
        self.counter = counter
        self.progress = progress
        self.pending: List[bytes] = []
        self.pending_bytes = 0
        self.returned = 0
        self.last_event = time.monotonic()

    def add(self, record: bytes) -> None:
        self.pending.append(record)
        self.pending_bytes += len(record)
        if self.pending_bytes >= RECORDS_EVENT_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        payload = b''.join(self.pending)
        self.pending, self.pending_bytes = [], 0
        self.returned += len(payload)
        self._send(eventstream.records_event(payload))

    def tick(self) -> None:
        """Called now and then while scanning: keep the client informed."""
        if time.monotonic() - self.last_event < KEEP_ALIVE:
            return
        self.flush()
        if self.progress:
            self._send(eventstream.progress_event(*self._numbers()))
        self._send(eventstream.cont_event())

    def finish(self) -> None:
        self.flush()
        if self.progress:
            self._send(eventstream.progress_event(*self._numbers()))
        self._send(eventstream.stats_event(*self._numbers()))
        self._send(eventstream.end_event())

    def fail(self, err: SelectError) -> None:
        self.flush()
        self._send(eventstream.error_event(err.code, err.message))

    def _numbers(self) -> Tuple[int, int, int]:
        return (self.counter.bytes_scanned, self.counter.bytes_processed,
                self.returned)

    def _send(self, message: bytes) -> None:
        self.out.write(message)
        self.out.flush()
        self.last_event = time.monotonic()


class Watched:
    """The object's stream, calling ``on_read`` after every read: the
    clock of the keep-alive events is the scan itself, which goes on
    whether or not rows come out."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[], None]):
        self.raw = raw
        self.on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.on_read()
        return data

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        self.on_read()
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def encoder(request: SelectRequest) -> Callable[[Row], bytes]:
    """Output row → its bytes in the requested serialization."""
    if request.output.format == 'JSON':
        writer = formats.JSONWriter(request.output.json)
        return lambda row: writer.row(
            [(name, functions.to_json_value(value)) for name, value in row])
    csv_writer = formats.CSVWriter(request.output.csv)
    return lambda row: csv_writer.row(
        [functions.to_text(value) for _, value in row])


def selected_rows(request: SelectRequest, raw: BinaryIO, size: int,
                  counter: formats.InputCounter) -> Iterator[Row]:
    """The query's rows over the object's records."""
    query = compile_query(request.expression)
    inp = request.input
    if inp.format == 'Parquet':
        if not raw.seekable():
            raise SelectError(
                'ParquetParsingError', 'A Parquet object is read from its '
                'end, and this one reaches the select as a stream (an '
                'erasure-coded, large or symlinked object); store it as a '
                'plain object of a replicated policy.')
        return query.run_json(ParquetFile(raw, size).records(
            counter, request.scan_range, query.fields_read()))
    stream = formats.open_input(raw, inp.compression, counter)
    if inp.format == 'JSON':
        return query.run_json(formats.json_records(
            stream, inp.json, request.scan_range, size))
    source = formats.csv_records(stream, inp.csv, request.scan_range, size)
    return query.run_csv(source, source.header)


def run(request: SelectRequest, raw: BinaryIO, size: int,
        out: BinaryIO) -> None:
    """Answer ``request`` over ``raw`` as an event stream on ``out``."""
    counter = formats.InputCounter()
    events = EventWriter(out, counter, request.request_progress)
    encode = encoder(request)
    try:
        for row in selected_rows(request, Watched(raw, events.tick), size,
                                 counter):
            events.add(encode(row))
    except SelectError as err:
        events.fail(err)
        return
    except RecursionError:
        events.fail(too_deep())
        return
    events.finish()


def main() -> int:
    with open(REQUEST_PATH, encoding='utf-8') as text:
        request = SelectRequest.from_json(text.read())
    size = int(os.environ[SIZE_ENV])
    with open(INPUT_DEVICE, 'rb') as raw:
        run(request, raw, size, sys.stdout.buffer)
    return 0
