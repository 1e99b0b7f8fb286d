"""Streaming readers of the queried object and writers of the result rows.

Input: ``open_input`` undoes ``GZIP``/``BZIP2`` incrementally (multi-member
and multi-stream files too) and counts S3's scanned/processed bytes;
``csv_records`` and ``json_records`` turn the bytes into records.  They read
``CHUNK_SIZE`` bytes at a time, so memory is bounded by the largest record
(S3's limit: 1 MiB, ``OverMaxRecordSize``), never by the object.

CSV is parsed with the C ``csv`` module whenever a block of input allows it
(single-character field delimiter and quote, record delimiter ``\\n`` or
``\\r\\n`` when quoted record delimiters are allowed, no quote escape
character other than the quote itself in the block, no stray ``\\r``/``\\n``).
Any other block, and any block the C parser rejects, goes through the
hand-written tokenizer, which is the reference for the rules:

* every record delimiter ends a record unless ``AllowQuotedRecordDelimiter``
  is TRUE and it is inside quotes; with FALSE a quoted one is an error
  (``CSVEscapingRecordDelimiter``, as S3 says);
* a field is quoted only when it starts with the quote character; inside
  it a doubled quote or the escape character followed by a quote is one
  quote, the escape character doubled is one escape character, anything
  else is literal; after the closing quote only a field or record
  delimiter may follow (``CSVUnescapedQuote``); a quote at EOF still open
  is ``CSVParsingError``; quotes inside an unquoted field are literal;
* empty records are skipped, and so are records starting with the
  ``Comments`` character (the whole record up to the next record delimiter);
* the header (``FileHeaderInfo`` USE/IGNORE) is the first record left.

``ScanRange`` (offsets of the uncompressed object): a record belongs to the
range its first byte is in.  S3 supports it only for CSV without quoted
record delimiters and for JSON LINES, both uncompressed; so here a range
with ``AllowQuotedRecordDelimiter`` TRUE, with JSON DOCUMENT or with a
record delimiter that can overlap itself (``||``) is
``UnsupportedScanRangeInput``.  Refusing compressed objects is the
caller's part: this module only sees the decompressed stream.

The CSV fast path raises ``csv.field_size_limit`` (process wide) to the
record limit so that big fields reach the 1 MiB check.
"""

import bz2
import codecs
import csv
import io
import itertools
import json
import math
import re
import zlib
from decimal import Decimal
from typing import (Any, BinaryIO, Callable, Iterable, Iterator, List,
                    Optional, Sequence, Tuple)

from .errors import SelectError
from .model import (
    CSVInput, CSVOutput, JSONInput, JSONOutput, ScanRange, byte_bounds)
from .values import MISSING

#: S3's limit on one input or output record, in bytes.
MAX_RECORD_SIZE = 1 << 20
#: Bytes read from the object at a time.
CHUNK_SIZE = 64 * 1024

if csv.field_size_limit() <= MAX_RECORD_SIZE:
    csv.field_size_limit(MAX_RECORD_SIZE + 1)


class InputCounter:
    """The byte counts S3 reports in ``Stats`` and ``Progress`` events."""

    def __init__(self) -> None:
        self.bytes_scanned = 0
        self.bytes_processed = 0


# ---------------------------------------------------------------- compression

class _CountingReader(io.RawIOBase):
    """An uncompressed object: scanned and processed bytes are the same."""

    def __init__(self, raw: BinaryIO, counter: InputCounter):
        self._raw = raw
        self._counter = counter

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self._raw, 'seekable', lambda: False)())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self._counter.bytes_scanned += size
        self._counter.bytes_processed += size
        return size


class _GzipMember:
    """One gzip member, with ``bz2.BZ2Decompressor``'s interface."""

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b''

    @property
    def needs_input(self) -> bool:
        return not self._tail

    @property
    def eof(self) -> bool:
        return self._inflater.eof

    @property
    def unused_data(self) -> bytes:
        return self._inflater.unused_data

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._inflater.decompress(self._tail + data, max_length)
        self._tail = self._inflater.unconsumed_tail
        return out


class _DecompressingReader(io.RawIOBase):
    """Decompresses member after member, never more than asked at once.

    Bounding each step by the caller's buffer keeps a compression bomb
    from filling memory.
    """

    def __init__(self, raw: BinaryIO, counter: InputCounter,
                 new_member: Callable[[], Any], name: str):
        self._raw = raw
        self._counter = counter
        self._new_member = new_member
        self._name = name
        self._member: Any = None
        self._input = b''
        self._raw_done = False

    def readable(self) -> bool:
        return True

    def _read_raw(self) -> bytes:
        data = b'' if self._raw_done else self._raw.read(CHUNK_SIZE)
        self._counter.bytes_scanned += len(data)
        self._raw_done = not data
        return data

    def readinto(self, buffer: Any) -> int:
        out = self._produce(len(buffer))
        buffer[:len(out)] = out
        self._counter.bytes_processed += len(out)
        return len(out)

    def _produce(self, limit: int) -> bytes:
        """Up to ``limit`` decompressed bytes; ``b''`` only at the end."""
        while True:
            if self._member is None:
                if not self._input:
                    self._input = self._read_raw()
                    if not self._input:
                        return b''
                self._member = self._new_member()
            if self._member.needs_input and not self._input:
                self._input = self._read_raw()
            data, self._input = self._input, b''
            try:
                out = self._member.decompress(data, limit)
            except (OSError, EOFError, ValueError, zlib.error) as exc:
                raise SelectError(
                    'InvalidCompressionFormat',
                    'The object is not valid %s data: %s.' % (self._name, exc))
            if self._member.eof:
                self._input = self._member.unused_data
                self._member = None
            elif not out and self._raw_done and self._member.needs_input:
                raise SelectError(
                    'TruncatedInput',
                    'The %s data ends before its end marker.' % self._name)
            if out:
                return out


def open_input(raw: BinaryIO, compression: str,
               counter: InputCounter) -> BinaryIO:
    """The object's decompressed bytes, counted into ``counter``."""
    if compression == 'NONE':
        reader: io.RawIOBase = _CountingReader(raw, counter)
    elif compression == 'GZIP':
        reader = _DecompressingReader(raw, counter, _GzipMember, 'GZIP')
    elif compression == 'BZIP2':
        reader = _DecompressingReader(raw, counter, bz2.BZ2Decompressor,
                                      'BZIP2')
    else:
        raise SelectError('InvalidCompressionFormat',
                          'Unknown CompressionType %r.' % compression)
    return io.BufferedReader(reader, CHUNK_SIZE)  # type: ignore[return-value]


# ---------------------------------------------------------- byte positioning

class _ByteSource:
    """A stream read forward with an absolute position and a push-back.

    Non-seekable streams are moved forward by reading and discarding.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._seekable = bool(getattr(stream, 'seekable', lambda: False)())
        self._pushed = b''
        self.pos = 0

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        if self._pushed:
            data, self._pushed = self._pushed[:size], self._pushed[size:]
        else:
            data = self._stream.read(size)
        self.pos += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self._pushed = data + self._pushed
        self.pos -= len(data)

    def goto(self, offset: int) -> None:
        if offset == self.pos:
            return
        if self._seekable:
            self._stream.seek(offset)
            self._pushed = b''
            self.pos = offset
            return
        if offset < self.pos:
            raise ValueError('cannot move a non-seekable stream backwards')
        while self.pos < offset:
            if not self.read(min(CHUNK_SIZE, offset - self.pos)):
                return

    def read_exact(self, size: int) -> bytes:
        parts = []
        while size > 0:
            data = self.read(size)
            if not data:
                break
            parts.append(data)
            size -= len(data)
        return b''.join(parts)

    def chunks(self) -> Iterator[bytes]:
        while True:
            data = self.read()
            if not data:
                return
            yield data


def _self_overlapping(delimiter: bytes) -> bool:
    """True if two occurrences can overlap, as in ``||``."""
    return any(delimiter[:k] == delimiter[-k:]
               for k in range(1, len(delimiter)))


def _first_record_at_or_after(source: _ByteSource, start: int, floor: int,
                              delimiter: bytes) -> Optional[int]:
    """Where the first record beginning at or after ``start`` begins.

    ``floor <= start`` is a known record beginning (0 or after the header),
    so the bytes before it never need looking at.  Leaves ``source`` at the
    answer; ``None`` when no record begins there.
    """
    if start == floor:
        source.goto(floor)
        return floor
    width = len(delimiter)
    look_from = max(floor, start - width)
    source.goto(look_from)
    before = source.read_exact(start - look_from)
    if len(before) < start - look_from:
        return None
    if before == delimiter:
        return start
    window_pos = look_from + 1 if len(before) == width else look_from
    window = before[window_pos - look_from:]
    while True:
        found = window.find(delimiter)
        if found >= 0:
            begin = window_pos + found + width
            source.unread(window[found + width:])
            return begin
        data = source.read()
        if not data:
            return None
        keep = window[len(window) - width + 1:] if width > 1 else b''
        window_pos += len(window) - len(keep)
        window = keep + data


def _range_chunks(source: _ByteSource, stop: int,
                  delimiter: bytes) -> Iterator[bytes]:
    """Bytes from the current position to the end of the record that
    starts last before ``stop``; delimiter occurrences cannot overlap, so
    the first one ending at or after ``stop`` closes it."""
    width = len(delimiter)
    search_from = max(source.pos, stop - width)
    carry = b''
    for chunk in source.chunks():
        chunk_pos = source.pos - len(chunk)
        if source.pos <= search_from:
            yield chunk
            continue
        skip = max(search_from - chunk_pos, 0)
        if skip:
            yield chunk[:skip]
        scan = carry + chunk[skip:]
        found = scan.find(delimiter)
        if found >= 0:
            yield scan[:found + width]
            return
        keep = width - 1
        if len(scan) > keep:
            yield scan[:len(scan) - keep]
            scan = scan[len(scan) - keep:]
        carry = scan
    if carry:
        yield carry


# ----------------------------------------------------------------- text help

def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode('utf-8'))


def _too_big(text: str) -> bool:
    return len(text) > MAX_RECORD_SIZE or (
        4 * len(text) > MAX_RECORD_SIZE and _utf8_size(text) > MAX_RECORD_SIZE)


def _over_max(what: str) -> SelectError:
    return SelectError(
        'OverMaxRecordSize',
        'A %s in the input is longer than the limit of %d bytes.'
        % (what, MAX_RECORD_SIZE))


def _decode(data: bytes, offset: int) -> str:
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise SelectError(
            'InvalidTextEncoding',
            'The object is not valid UTF-8 at byte %d; S3 Select reads '
            'UTF-8 only.' % (offset + exc.start))


def _snippet(text: str, start: int) -> str:
    return repr(text[start:start + 40])


def _delimited_blocks(chunks: Iterable[bytes], delimiter: bytes,
                      parse: Callable[[str, bool], Tuple[List[Any], int]],
                      what: str) -> Iterator[List[Any]]:
    """Feed ``parse`` text ending just after a record delimiter.

    ``parse(text, final)`` gives the records it finished and where it
    stopped; the rest (a record not yet complete) is kept for the next
    block, so a record may span any number of chunks.
    """
    carry = b''
    carry_pos = 0
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        cut = data.rfind(delimiter)
        if cut < 0:
            carry = data
            if len(carry) > MAX_RECORD_SIZE:
                raise _over_max(what)
            continue
        cut += len(delimiter)
        text = _decode(data[:cut], carry_pos)
        records, used = parse(text, False)
        rest = text[used:].encode('utf-8') if used < len(text) else b''
        carry_pos += cut - len(rest)
        carry = rest + data[cut:]
        if len(carry) > MAX_RECORD_SIZE:
            raise _over_max(what)
        if records:
            yield records
    if carry:
        records, _ = parse(_decode(carry, carry_pos), True)
        if records:
            yield records


# ----------------------------------------------------------------------- CSV

class _CSVParser:
    """Turns text of whole (or, at a block's end, partial) records into
    rows, by the C ``csv`` module when the block allows it."""

    def __init__(self, options: CSVInput):
        self.field_delimiter = options.field_delimiter
        self.record_delimiter = options.record_delimiter
        self.quote = options.quote_character
        self.escape = options.quote_escape_character or self.quote
        self.comment = options.comments
        self.quoted_record_delimiters = options.allow_quoted_record_delimiter
        for name, value in (('FieldDelimiter', self.field_delimiter),
                            ('RecordDelimiter', self.record_delimiter)):
            if not value:
                raise SelectError('InvalidRequestParameter',
                                  'The CSV %s must not be empty.' % name)
        self._csv_options = self._csv_dialect()

    def _csv_dialect(self) -> Optional[dict]:
        """Options for ``csv.reader`` when it can follow our rules."""
        record = self.record_delimiter
        if self.quoted_record_delimiters and record not in ('\n', '\r\n'):
            return None
        if _self_overlapping(record.encode('utf-8')):
            return None
        if len(self.field_delimiter) != 1 or len(self.quote) > 1:
            return None
        options = dict(delimiter=self.field_delimiter, strict=True,
                       doublequote=True, skipinitialspace=False)
        if self.quote:
            options.update(quotechar=self.quote, quoting=csv.QUOTE_MINIMAL)
        else:
            options.update(quotechar=None, quoting=csv.QUOTE_NONE)
        try:
            csv.reader([], **options)
        except (TypeError, csv.Error):
            return None
        return options

    def _block_is_plain(self, text: str) -> bool:
        """No character in ``text`` that ``csv`` reads differently."""
        if self.escape != self.quote and self.escape in text:
            return False
        if self.record_delimiter == '\n':
            return '\r' not in text
        if self.record_delimiter == '\r\n':
            lf = text.count('\n')
            return text.count('\r') == lf == text.count('\r\n')
        return '\r' not in text and '\n' not in text

    def parse(self, text: str, final: bool) -> Tuple[List[List[str]], int]:
        """Rows of ``text`` and where the unfinished record starts."""
        if (self._csv_options is not None and self._block_is_plain(text)
                and not _too_big(text)):
            if self.quoted_record_delimiters:
                return self._parse_lines_by_csv(text, final)
            rows = self._parse_records_by_csv(text)
            if rows is not None:
                return rows, len(text)
        return self.tokenize(text, final)

    def _parse_records_by_csv(self, text: str) -> Optional[List[List[str]]]:
        """Every delimiter ends a record: split, then let ``csv`` read each
        one; a quote left open joins two records, which shows as fewer
        rows, and the tokenizer then says what is wrong."""
        records = text.split(self.record_delimiter)
        comment = self.comment
        if comment:
            records = [r for r in records if r and not r.startswith(comment)]
        else:
            records = [r for r in records if r]
        try:
            rows = list(csv.reader(records, **self._csv_options))
        except csv.Error:
            return None
        return rows if len(rows) == len(records) else None

    def _parse_lines_by_csv(self, text: str,
                            final: bool) -> Tuple[List[List[str]], int]:
        """Quoted record delimiters allowed: ``csv`` reads whole lines."""
        comment = self.comment
        if comment and (text.startswith(comment)
                        or ('\n' + comment) in text):
            return self.tokenize(text, final)
        lines = io.StringIO(text, newline='').readlines()
        reader = csv.reader(lines, **self._csv_options)
        rows: List[List[str]] = []
        lines_done = 0
        try:
            for row in reader:
                lines_done = reader.line_num
                if row:
                    rows.append(row)
        except csv.Error:
            done = sum(len(line) for line in lines[:lines_done])
            more, used = self.tokenize(text[done:], final)
            return rows + more, done + used
        return rows, len(text)

    def tokenize(self, text: str, final: bool,
                 max_rows: Optional[int] = None
                 ) -> Tuple[List[List[str]], int]:
        """The reference parser; stops at a record that may continue in
        the next block unless ``final``."""
        rows: List[List[str]] = []
        record_delimiter = self.record_delimiter
        comment = self.comment
        size = len(text)
        pos = 0
        while pos < size and (max_rows is None or len(rows) < max_rows):
            start = pos
            if text.startswith(record_delimiter, pos):
                pos += len(record_delimiter)
                continue
            delimiter_at = text.find(record_delimiter, pos)
            if comment and text.startswith(comment, pos):
                if delimiter_at < 0:
                    if not final:
                        return rows, start
                    pos = size
                else:
                    pos = delimiter_at + len(record_delimiter)
                continue
            fields = self._record(text, pos, delimiter_at, final)
            if fields is None:
                return rows, start
            row, pos, record_end = fields
            if (record_end - start > MAX_RECORD_SIZE // 4
                    and _too_big(text[start:record_end])):
                raise _over_max('record')
            rows.append(row)
        return rows, pos

    def _record(self, text: str, pos: int, delimiter_at: int, final: bool
                ) -> Optional[Tuple[List[str], int, int]]:
        """The fields of the record at ``pos``, where the next starts and
        where this one's text ends; ``None`` if it may not be complete."""
        field_delimiter = self.field_delimiter
        record_delimiter = self.record_delimiter
        quote = self.quote
        size = len(text)
        row: List[str] = []
        while True:
            if quote and text.startswith(quote, pos):
                quoted = self._quoted(text, pos, delimiter_at, final)
                if quoted is None:
                    return None
                value, pos = quoted
                row.append(value)
                if 0 <= delimiter_at < pos:
                    delimiter_at = text.find(record_delimiter, pos)
                if text.startswith(field_delimiter, pos):
                    pos += len(field_delimiter)
                    continue
                if pos == delimiter_at:
                    return row, pos + len(record_delimiter), pos
                if pos == size:
                    return (row, pos, pos) if final else None
                raise SelectError(
                    'CSVUnescapedQuote',
                    'A closing quote is followed by %r instead of a field '
                    'or record delimiter, near %s.'
                    % (text[pos], _snippet(text, max(pos - 20, 0))))
            next_field = text.find(field_delimiter, pos)
            if 0 <= next_field and (delimiter_at < 0
                                    or next_field < delimiter_at):
                row.append(text[pos:next_field])
                pos = next_field + len(field_delimiter)
                continue
            if delimiter_at < 0:
                if not final:
                    return None
                row.append(text[pos:])
                return row, size, size
            row.append(text[pos:delimiter_at])
            return row, delimiter_at + len(record_delimiter), delimiter_at

    def _quoted(self, text: str, pos: int, delimiter_at: int, final: bool
                ) -> Optional[Tuple[str, int]]:
        """A quoted field's value and the position after its closing quote."""
        quote = self.quote
        escape = self.escape
        size = len(text)
        parts = []
        cursor = pos + len(quote)
        while True:
            close = text.find(quote, cursor)
            escaped = (text.find(escape, cursor) if escape != quote else -1)
            if 0 <= escaped and (close < 0 or escaped < close):
                follower = escaped + len(escape)
                if follower >= size and not final:
                    return None
                if text.startswith(quote, follower):
                    parts.append(text[cursor:escaped] + quote)
                    cursor = follower + len(quote)
                elif text.startswith(escape, follower):
                    parts.append(text[cursor:escaped] + escape)
                    cursor = follower + len(escape)
                else:
                    parts.append(text[cursor:follower])
                    cursor = follower
                continue
            if close < 0:
                self._check_unquoted_record_end(text, pos, delimiter_at, size)
                if not final:
                    return None
                raise SelectError(
                    'CSVParsingError',
                    'The input ends inside the quoted field starting %s.'
                    % _snippet(text, pos))
            self._check_unquoted_record_end(text, pos, delimiter_at, close)
            after = close + len(quote)
            if after >= size and not final:
                return None
            if text.startswith(quote, after):
                parts.append(text[cursor:after])
                cursor = after + len(quote)
                continue
            parts.append(text[cursor:close])
            return ''.join(parts), after

    def _check_unquoted_record_end(self, text: str, pos: int,
                                   delimiter_at: int, limit: int) -> None:
        if (not self.quoted_record_delimiters
                and 0 <= delimiter_at < limit):
            raise SelectError(
                'CSVEscapingRecordDelimiter',
                'A record delimiter is inside the quoted field starting %s; '
                'set AllowQuotedRecordDelimiter to TRUE to allow it.'
                % _snippet(text, pos))


class CSVSource:
    """The rows of a CSV object (or of its ``ScanRange``), read lazily.

    ``header`` holds the column names with ``FileHeaderInfo`` USE (an
    empty list for an empty object), else ``None``.  Iterate once.
    """

    def __init__(self, stream: BinaryIO, options: CSVInput,
                 scan_range: Optional[ScanRange] = None,
                 size: Optional[int] = None):
        self.header: Optional[List[str]] = None
        self._parser = _CSVParser(options)
        self._delimiter = options.record_delimiter.encode('utf-8')
        has_header = options.file_header_info in ('USE', 'IGNORE')
        source = _ByteSource(stream)
        if scan_range is None:
            rows = self._rows(source.chunks())
            if has_header:
                header = next(rows, None)
                if options.file_header_info == 'USE':
                    self.header = header if header is not None else []
            self._iterator = rows
            return
        if options.allow_quoted_record_delimiter or _self_overlapping(
                self._delimiter):
            raise SelectError(
                'UnsupportedScanRangeInput',
                'ScanRange is not supported for CSV with quoted record '
                'delimiters or this RecordDelimiter.')
        start, stop = byte_bounds(scan_range, size)
        floor = 0
        if has_header:
            header, floor = self._read_header(source)
            if options.file_header_info == 'USE':
                self.header = header
        self._iterator = self._range_rows(source, max(start, floor), floor,
                                          stop)

    def __iter__(self) -> Iterator[List[str]]:
        return self._iterator

    def _rows(self, chunks: Iterable[bytes]) -> Iterator[List[str]]:
        return itertools.chain.from_iterable(_delimited_blocks(
            chunks, self._delimiter, self._parser.parse, 'record'))

    def _range_rows(self, source: _ByteSource, start: int, floor: int,
                    stop: Optional[int]) -> Iterator[List[str]]:
        begin = _first_record_at_or_after(source, start, floor,
                                          self._delimiter)
        if begin is None or (stop is not None and begin >= stop):
            return iter(())
        chunks = (source.chunks() if stop is None
                  else _range_chunks(source, stop, self._delimiter))
        return self._rows(chunks)

    def _read_header(self, source: _ByteSource) -> Tuple[List[str], int]:
        """The file's first record and the offset just after it."""
        source.goto(0)
        data = b''
        while True:
            chunk = source.read()
            final = not chunk
            data += chunk
            cut = len(data) if final else data.rfind(self._delimiter)
            if cut >= 0:
                if not final:
                    cut += len(self._delimiter)
                text = _decode(data[:cut], 0)
                rows, used = self._parser.tokenize(text, final, max_rows=1)
                if rows:
                    end = len(text[:used].encode('utf-8'))
                    source.unread(data[end:])
                    return rows[0], end
            if final:
                return [], len(data)
            if len(data) > MAX_RECORD_SIZE:
                raise _over_max('record')


def csv_records(stream: BinaryIO, options: CSVInput,
                scan_range: Optional[ScanRange] = None,
                size: Optional[int] = None) -> CSVSource:
    """The rows of CSV ``stream`` (see ``CSVSource``)."""
    return CSVSource(stream, options, scan_range, size)


# ---------------------------------------------------------------------- JSON

def _reject_constant(name: str) -> Any:
    raise ValueError('%s is not JSON' % name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_JSON_SPACE = re.compile(r'[ \t\n\r]*')


def _json_error(exc: Exception, text: str, pos: int) -> SelectError:
    return SelectError('JSONParsingError',
                       'The input is not valid JSON (%s) near %s.'
                       % (exc, _snippet(text, pos)))


def _parse_json_lines(text: str, final: bool) -> Tuple[List[Any], int]:
    lines = text.split('\n')
    if not final:
        lines.pop()
    check_size = 4 * len(text) > MAX_RECORD_SIZE
    values = []
    decode = _DECODER.decode
    for line in lines:
        if not line or line.isspace():
            continue
        if check_size and _too_big(line):
            raise _over_max('JSON record')
        try:
            values.append(decode(line))
        except (ValueError, RecursionError) as exc:
            raise _json_error(exc, line, 0)
    return values, len(text)


def _may_be_cut_short(exc: ValueError, buffered: str) -> bool:
    """Whether a decoding error may only mean the value goes on."""
    if not isinstance(exc, json.JSONDecodeError):
        return False
    return (exc.pos >= len(buffered) - 16
            or exc.msg.startswith('Unterminated string'))


def _json_document_values(stream: BinaryIO) -> Iterator[Any]:
    """Concatenated JSON values, each possibly over many lines and chunks.

    A value ending exactly where the buffered text ends may go on (a
    number), and a failure at the end may just be a value cut short: both
    are retried with more input, up to the 1 MiB record limit.
    """
    decoder = codecs.getincrementaldecoder('utf-8')()
    raw_decode = _DECODER.raw_decode
    buffered = ''
    pos = 0
    eof = False
    decoded_bytes = 0

    def read_more() -> None:
        nonlocal buffered, pos, eof, decoded_bytes
        chunk = stream.read(CHUNK_SIZE)
        eof = not chunk
        try:
            text = decoder.decode(chunk, final=eof)
        except UnicodeDecodeError as exc:
            raise SelectError(
                'InvalidTextEncoding',
                'The object is not valid UTF-8 near byte %d; S3 Select reads '
                'UTF-8 only.' % (decoded_bytes + exc.start))
        decoded_bytes += len(chunk)
        buffered = buffered[pos:] + text
        pos = 0

    while True:
        pos = _JSON_SPACE.match(buffered, pos).end()
        if pos == len(buffered):
            if eof:
                return
            read_more()
            continue
        try:
            value, end = raw_decode(buffered, pos)
        except (ValueError, RecursionError) as exc:
            if eof or not isinstance(exc, ValueError) or (
                    not _may_be_cut_short(exc, buffered)):
                raise _json_error(exc, buffered, pos)
            if _too_big(buffered[pos:]):
                raise _over_max('JSON record')
            read_more()
            continue
        if end == len(buffered) and not eof:
            read_more()
            continue
        if end - pos > MAX_RECORD_SIZE // 4 and _too_big(buffered[pos:end]):
            raise _over_max('JSON record')
        pos = end
        yield value


def json_records(stream: BinaryIO, options: JSONInput,
                 scan_range: Optional[ScanRange] = None,
                 size: Optional[int] = None) -> Iterator[Any]:
    """The JSON values of ``stream``: one per line (LINES) or every
    top-level value (DOCUMENT)."""
    if options.type == 'DOCUMENT':
        if scan_range is not None:
            raise SelectError(
                'UnsupportedScanRangeInput',
                'ScanRange is supported for JSON of Type LINES only.')
        return _json_document_values(stream)
    source = _ByteSource(stream)
    chunks: Iterable[bytes] = source.chunks()
    if scan_range is not None:
        start, stop = byte_bounds(scan_range, size)
        begin = _first_record_at_or_after(source, start, 0, b'\n')
        if begin is None or (stop is not None and begin >= stop):
            return iter(())
        if stop is not None:
            chunks = _range_chunks(source, stop, b'\n')
    return itertools.chain.from_iterable(_delimited_blocks(
        chunks, b'\n', _parse_json_lines, 'JSON record'))


# ------------------------------------------------------------------- writers

class CSVWriter:
    """Result rows as CSV records, quoted as S3's ``QuoteFields`` says."""

    def __init__(self, options: CSVOutput):
        self._field_delimiter = options.field_delimiter
        self._record_delimiter = options.record_delimiter
        self._quote = options.quote_character
        self._escaped_quote = (options.quote_escape_character
                               or self._quote) + self._quote
        self._always = options.quote_fields == 'ALWAYS'
        specials = {options.field_delimiter, options.record_delimiter,
                    '\r', '\n'}
        if self._quote:
            specials.add(self._quote)
        self._needs_quotes = re.compile(
            '|'.join(re.escape(s) for s in sorted(specials) if s)).search

    def _quoted(self, text: str) -> str:
        quote = self._quote
        return quote + text.replace(quote, self._escaped_quote) + quote

    def row(self, texts: Sequence[Optional[str]]) -> bytes:
        """One record, its delimiter included; ``None`` is an empty field."""
        fields = ['' if text is None else text for text in texts]
        if self._quote:
            if self._always:
                fields = [self._quoted(text) for text in fields]
            else:
                needs = self._needs_quotes
                fields = [self._quoted(text) if needs(text) else text
                          for text in fields]
        record = self._field_delimiter.join(fields) + self._record_delimiter
        return record.encode('utf-8')


_encode_json_string = json.encoder.encode_basestring  # type: ignore


def _json_text(value: Any) -> str:
    """``value`` as compact JSON; ``Decimal`` as a number, exactly."""
    if isinstance(value, str):
        return _encode_json_string(value)
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return (float.__repr__(value) if math.isfinite(value)
                else json.dumps(value))
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps(float(value))
    if isinstance(value, dict):
        return '{' + ','.join(
            _encode_json_string(str(key)) + ':' + _json_text(item)
            for key, item in value.items() if item is not MISSING) + '}'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(_json_text(item) for item in value) + ']'
    raise TypeError('cannot write %r as JSON' % (value,))


class JSONWriter:
    """Result rows as compact JSON objects, S3 style: ``{"a":1}``."""

    def __init__(self, options: JSONOutput):
        self._record_delimiter = options.record_delimiter

    def row(self, pairs: Sequence[Tuple[str, Any]]) -> bytes:
        """One object, its delimiter included; MISSING values left out."""
        body = ','.join(_encode_json_string(name) + ':' + _json_text(value)
                        for name, value in pairs if value is not MISSING)
        return ('{' + body + '}' + self._record_delimiter).encode('utf-8')
