"""Read the rows of a Parquet file, one row group at a time, stdlib only.

The sandbox's Python has no pyarrow, so S3 Select's Parquet input comes
from this reader: the Thrift compact protocol of the footer and page
headers, the encodings and the codecs are decoded here in pure Python.

What it reads: flat schemas (``REQUIRED`` and ``OPTIONAL`` top-level
columns); every physical type; the logical (and legacy converted)
types STRING/UTF8, ENUM, JSON, UUID, DATE, TIMESTAMP (MILLIS, MICROS,
NANOS), DECIMAL, INTEGER/INT_8..UINT_64, FLOAT16; data pages v1 and v2;
the encodings PLAIN, PLAIN_DICTIONARY/RLE_DICTIONARY, RLE (booleans),
DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY and
BYTE_STREAM_SPLIT; the codecs UNCOMPRESSED, SNAPPY and GZIP, as S3
Select does.

Values come out as ``values.py`` has them: DATE and TIMESTAMP as a UTC
``datetime`` (a DATE at midnight; nanoseconds cut to microseconds, the
finest a ``datetime`` holds; a TIMESTAMP not adjusted to UTC is read as
if it were), DECIMAL as an exact ``Decimal``, text as ``str``.  A
BYTE_ARRAY with no logical type is read as UTF-8 text, as Hive and
Impala write strings that way; bytes that are not UTF-8 are
``UnsupportedParquetType``, since a value cannot be binary.

Limits: nested or repeated columns, TIME, INTERVAL, BSON and the other
types a flat SQL value cannot hold are ``UnsupportedParquetType``; the
codecs LZO, BROTLI, LZ4 and ZSTD are
``ParquetUnsupportedCompressionCodec``; encrypted files and column
chunks kept in another file are refused.  Memory: the column chunks of
one row group and their decoded values are held at once, so a row group
bigger than ``max_row_group_bytes`` is ``OverMaxParquetBlockSize``.
Only the columns a query names are read (``records(fields=...)``), as
S3 does; ``BytesScanned`` counts those.
"""

import struct
import zlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import (
    Any, BinaryIO, Callable, Dict, Iterator, List, Optional, Set, Tuple)

from .errors import SelectError
from .model import ScanRange, byte_bounds

MAGIC = b'PAR1'
ENCRYPTED_MAGIC = b'PARE'
DEFAULT_MAX_ROW_GROUP_BYTES = 256 * 1024 * 1024

# Physical types (parquet.thrift ``Type``).
BOOLEAN, INT32, INT64, INT96, FLOAT, DOUBLE, BYTE_ARRAY, FIXED_LEN = range(8)
_PHYSICAL_NAMES = ('BOOLEAN', 'INT32', 'INT64', 'INT96', 'FLOAT', 'DOUBLE',
                   'BYTE_ARRAY', 'FIXED_LEN_BYTE_ARRAY')

# Repetition types.
REQUIRED, OPTIONAL, REPEATED = range(3)

# Encodings.
PLAIN = 0
PLAIN_DICTIONARY = 2
RLE = 3
BIT_PACKED = 4
DELTA_BINARY_PACKED = 5
DELTA_LENGTH_BYTE_ARRAY = 6
DELTA_BYTE_ARRAY = 7
RLE_DICTIONARY = 8
BYTE_STREAM_SPLIT = 9
_DICTIONARY_ENCODINGS = (PLAIN_DICTIONARY, RLE_DICTIONARY)

# Page types.
DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = range(4)

# Compression codecs.
UNCOMPRESSED, SNAPPY, GZIP = 0, 1, 2
_CODEC_NAMES = {3: 'LZO', 4: 'BROTLI', 5: 'LZ4', 6: 'ZSTD', 7: 'LZ4_RAW'}

# Legacy converted types (parquet.thrift ``ConvertedType``).
_CONVERTED_NAMES = (
    'UTF8', 'MAP', 'MAP_KEY_VALUE', 'LIST', 'ENUM', 'DECIMAL', 'DATE',
    'TIME_MILLIS', 'TIME_MICROS', 'TIMESTAMP_MILLIS', 'TIMESTAMP_MICROS',
    'UINT_8', 'UINT_16', 'UINT_32', 'UINT_64', 'INT_8', 'INT_16', 'INT_32',
    'INT_64', 'JSON', 'BSON', 'INTERVAL')
# Members of the ``LogicalType`` union, by field id.
_LOGICAL_NAMES = {
    1: 'STRING', 2: 'MAP', 3: 'LIST', 4: 'ENUM', 5: 'DECIMAL', 6: 'DATE',
    7: 'TIME', 8: 'TIMESTAMP', 9: 'INTERVAL', 10: 'INTEGER', 11: 'UNKNOWN',
    12: 'JSON', 13: 'BSON', 14: 'UUID', 15: 'FLOAT16', 16: 'VARIANT',
    17: 'GEOMETRY', 18: 'GEOGRAPHY'}
_TIME_UNIT_MICROS = {1: 1000, 2: 1, 3: None}  # MILLIS, MICROS, NANOS

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_JULIAN_DAY_OF_EPOCH = 2440588

#: What decoding a damaged file raises, turned into ``ParquetParsingError``.
_CORRUPTION = (IndexError, ValueError, KeyError, TypeError, AttributeError,
               OverflowError, struct.error, zlib.error, EOFError)


def _parsing_error(message: str) -> SelectError:
    return SelectError('ParquetParsingError', message)


def _unsupported(column: str, what: str) -> SelectError:
    return SelectError(
        'UnsupportedParquetType',
        'Parquet column %r has %s, which S3 Select does not support.'
        % (column, what))


# --- Thrift compact protocol -------------------------------------------

class _CompactReader:
    """Decode Thrift compact protocol structs into ``{field id: value}``.

    Every field is decoded generically, so fields this reader does not
    use (statistics, key/value metadata, new additions to the format)
    are skipped correctly without knowing their schema.
    """

    _MAX_DEPTH = 32

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, length: int) -> bytes:
        end = self.pos + length
        if length < 0 or end > len(self.data):
            raise ValueError('Thrift value runs past its buffer')
        value = bytes(self.data[self.pos:end])
        self.pos = end
        return value

    def varint(self) -> int:
        result = shift = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ValueError('Thrift varint too long')

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def struct(self, depth: int = 0) -> Dict[int, Any]:
        if depth > self._MAX_DEPTH:
            raise ValueError('Thrift structs nested too deep')
        fields: Dict[int, Any] = {}
        field_id = 0
        while True:
            header = self.byte()
            if header == 0:
                return fields
            kind, delta = header & 0x0F, header >> 4
            field_id = field_id + delta if delta else self.zigzag()
            if kind in (1, 2):  # booleans live in the field header
                fields[field_id] = kind == 1
            else:
                fields[field_id] = self.value(kind, depth)

    def value(self, kind: int, depth: int) -> Any:
        if kind in (1, 2):  # a boolean inside a list: one byte
            return self.byte() == 1
        if kind == 3:
            return struct.unpack('<b', self.take(1))[0]
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            return struct.unpack('<d', self.take(8))[0]
        if kind == 8:
            return self.take(self.varint())
        if kind in (9, 10):
            return self.list(depth)
        if kind == 11:
            return self.map(depth)
        if kind == 12:
            return self.struct(depth + 1)
        raise ValueError('unknown Thrift type %d' % kind)

    def list(self, depth: int) -> List[Any]:
        header = self.byte()
        size, kind = header >> 4, header & 0x0F
        if size == 15:
            size = self.varint()
        if size > len(self.data) - self.pos:
            raise ValueError('Thrift list longer than its buffer')
        return [self.value(kind, depth + 1) for _ in range(size)]

    def map(self, depth: int) -> Dict[Any, Any]:
        size = self.varint()
        if not size:
            return {}
        if size > len(self.data) - self.pos:
            raise ValueError('Thrift map longer than its buffer')
        kinds = self.byte()
        return {self.value(kinds >> 4, depth + 1):
                self.value(kinds & 0x0F, depth + 1) for _ in range(size)}


# --- Codecs --------------------------------------------------------------

def snappy_decompress(data: bytes) -> bytes:
    """Decompress one raw Snappy block (no framing), as Parquet stores it.

    Format: the uncompressed length as a varint, then elements whose
    tag's low two bits say literal (0) or copy with a 1, 2 or 4 byte
    offset (1, 2, 3).  A copy may overlap what it writes, which repeats
    a pattern.
    """
    reader = _CompactReader(data)
    expected = reader.varint()
    out = bytearray()
    pos, end = reader.pos, len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos:pos + extra], 'little')
                pos += extra
            length += 1
            if pos + length > end:
                raise ValueError('Snappy literal runs past the block')
            out += data[pos:pos + length]
            pos += length
            continue
        if kind == 1:
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:
            size = 2 if kind == 2 else 4
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos:pos + size], 'little')
            pos += size
        _snappy_copy(out, offset, length)
    if len(out) != expected:
        raise ValueError('Snappy block is %d bytes, its header says %d'
                         % (len(out), expected))
    return bytes(out)


def _snappy_copy(out: bytearray, offset: int, length: int) -> None:
    if offset <= 0 or offset > len(out):
        raise ValueError('Snappy copy offset %d out of range' % offset)
    start = len(out) - offset
    if offset >= length:
        out += out[start:start + length]
        return
    pattern = bytes(out[start:])
    repeats, rest = divmod(length, offset)
    out += pattern * repeats + pattern[:rest]


def _decompress(codec: int, data: bytes, size: int, column: str) -> bytes:
    if codec == UNCOMPRESSED:
        result = data
    elif codec == SNAPPY:
        result = snappy_decompress(data)
    elif codec == GZIP:
        result = zlib.decompress(data, 47)  # gzip or zlib header
    else:
        raise SelectError(
            'ParquetUnsupportedCompressionCodec',
            'Parquet column %r is compressed with %s; S3 Select reads only '
            'UNCOMPRESSED, SNAPPY and GZIP.'
            % (column, _CODEC_NAMES.get(codec, 'codec %d' % codec)))
    if len(result) != size:
        raise ValueError('page decompressed to %d bytes, expected %d'
                         % (len(result), size))
    return result


# --- Encodings -----------------------------------------------------------

def _unpack_bits(data: bytes, pos: int, bit_width: int,
                 count: int) -> List[int]:
    """``count`` values of ``bit_width`` bits, packed least significant
    bit first, read 64 at a time so big runs stay linear."""
    if bit_width == 0:
        return [0] * count
    mask = (1 << bit_width) - 1
    values: List[int] = []
    chunk_bytes = 8 * bit_width  # 64 values
    while len(values) < count:
        chunk = data[pos:pos + chunk_bytes]
        if not chunk:
            raise ValueError('bit-packed values run past their page')
        pos += chunk_bytes
        number = int.from_bytes(chunk, 'little')
        values.extend((number >> shift) & mask
                      for shift in range(0, len(chunk) * 8 - bit_width + 1,
                                         bit_width))
    del values[count:]
    return values


def _read_hybrid(data: bytes, pos: int, end: int, bit_width: int,
                 count: int) -> List[int]:
    """The RLE/bit-packing hybrid: runs of one repeated value and groups
    of eight bit-packed values, up to ``count`` values."""
    values: List[int] = []
    value_bytes = (bit_width + 7) // 8
    reader = _CompactReader(data, pos)
    while len(values) < count:
        if reader.pos >= end:
            raise ValueError('RLE data ends after %d of %d values'
                             % (len(values), count))
        header = reader.varint()
        if header & 1:
            groups = header >> 1
            values += _unpack_bits(data, reader.pos, bit_width, groups * 8)
            reader.pos += groups * bit_width
        else:
            repeated = int.from_bytes(reader.take(value_bytes), 'little')
            values += [repeated] * (header >> 1)
    del values[count:]
    return values


def _read_length_prefixed_hybrid(data: bytes, pos: int, bit_width: int,
                                 count: int) -> Tuple[List[int], int]:
    """Hybrid data after a 4-byte length, as v1 levels and RLE booleans
    are stored; also returns where the data after it starts."""
    length = struct.unpack_from('<I', data, pos)[0]
    start = pos + 4
    return _read_hybrid(data, start, start + length, bit_width, count), \
        start + length


def _wrap_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _read_delta_binary_packed(data: bytes, pos: int,
                              bits: int) -> Tuple[List[int], int]:
    """DELTA_BINARY_PACKED integers and the position after them."""
    reader = _CompactReader(data, pos)
    block_size = reader.varint()
    miniblocks = reader.varint()
    total = reader.varint()
    value = reader.zigzag()
    if not miniblocks or block_size % miniblocks:
        raise ValueError('bad DELTA_BINARY_PACKED block layout')
    per_miniblock = block_size // miniblocks
    values = [value] if total else []
    while len(values) < total:
        min_delta = reader.zigzag()
        widths = reader.take(miniblocks)
        for width in widths:
            if len(values) >= total:
                break
            deltas = _unpack_bits(data, reader.pos, width, per_miniblock)
            reader.pos += per_miniblock * width // 8
            for delta in deltas[:total - len(values)]:
                value = _wrap_signed(value + min_delta + delta, bits)
                values.append(value)
    return values, reader.pos


def _read_delta_length(data: bytes, pos: int) -> Tuple[List[bytes], int]:
    lengths, pos = _read_delta_binary_packed(data, pos, 32)
    values = []
    for length in lengths:
        if length < 0 or pos + length > len(data):
            raise ValueError('DELTA_LENGTH_BYTE_ARRAY value out of range')
        values.append(bytes(data[pos:pos + length]))
        pos += length
    return values, pos


def _read_delta_byte_array(data: bytes, pos: int) -> List[bytes]:
    prefixes, pos = _read_delta_binary_packed(data, pos, 32)
    suffixes, _ = _read_delta_length(data, pos)
    values: List[bytes] = []
    previous = b''
    for prefix, suffix in zip(prefixes, suffixes, strict=True):
        previous = previous[:prefix] + suffix
        values.append(previous)
    return values


_STRUCT_CODES = {INT32: 'i', INT64: 'q', FLOAT: 'f', DOUBLE: 'd'}
_WIDTHS = {INT32: 4, INT64: 8, INT96: 12, FLOAT: 4, DOUBLE: 8}


def _read_byte_stream_split(data: bytes, pos: int, physical: int,
                            type_length: int, count: int) -> List[Any]:
    """Values whose k-th bytes were stored together, one stream per
    byte position, to compress better."""
    width = type_length if physical == FIXED_LEN else _WIDTHS[physical]
    size = width * count
    if pos + size > len(data):
        raise ValueError('BYTE_STREAM_SPLIT data shorter than its values')
    joined = bytearray(size)
    for index in range(width):
        start = pos + index * count
        joined[index::width] = data[start:start + count]
    return _read_plain(bytes(joined), 0, physical, type_length, count)


def _read_plain(data: bytes, pos: int, physical: int, type_length: int,
                count: int) -> List[Any]:
    if physical in _STRUCT_CODES:
        return list(struct.unpack_from(
            '<%d%s' % (count, _STRUCT_CODES[physical]), data, pos))
    if physical == BOOLEAN:
        return [bit == 1 for bit in _unpack_bits(data, pos, 1, count)]
    if physical == BYTE_ARRAY:
        return _read_plain_byte_arrays(data, pos, count)
    width = 12 if physical == INT96 else type_length
    if pos + width * count > len(data):
        raise ValueError('PLAIN data shorter than its values')
    return [bytes(data[start:start + width])
            for start in range(pos, pos + width * count, width)]


def _read_plain_byte_arrays(data: bytes, pos: int, count: int) -> List[bytes]:
    values = []
    unpack_length = struct.Struct('<I').unpack_from
    for _ in range(count):
        length = unpack_length(data, pos)[0]
        pos += 4
        if pos + length > len(data):
            raise ValueError('BYTE_ARRAY value runs past its page')
        values.append(bytes(data[pos:pos + length]))
        pos += length
    return values


# --- Logical types -------------------------------------------------------

Converter = Optional[Callable[[Any], Any]]


def _timestamp(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _int96_timestamp(raw: bytes) -> datetime:
    """The legacy Impala/Hive timestamp: nanoseconds of the day, then
    the Julian day, little-endian."""
    nanos, julian_day = struct.unpack('<qI', raw)
    days = julian_day - _JULIAN_DAY_OF_EPOCH
    return _EPOCH + timedelta(days=days, microseconds=nanos // 1000)


def _text(column: str, strict: bool) -> Callable[[bytes], str]:
    def convert(raw: bytes) -> str:
        try:
            return raw.decode('utf-8')
        except UnicodeDecodeError:
            if strict:
                raise
            raise _unsupported(column, 'binary values that are not UTF-8 '
                                       'text') from None
    return convert


def _uuid(raw: bytes) -> str:
    text = raw.hex()
    return '-'.join((text[:8], text[8:12], text[12:16], text[16:20],
                     text[20:]))


def _decimal(scale: int, from_bytes: bool) -> Callable[[Any], Decimal]:
    def convert(unscaled: Any) -> Decimal:
        if from_bytes:
            unscaled = int.from_bytes(unscaled, 'big', signed=True)
        return Decimal('%de-%d' % (unscaled, scale))  # exact, any precision
    return convert


def _unsigned(bits: int) -> Callable[[int], int]:
    mask = (1 << bits) - 1
    return lambda value: value & mask


def _logical_type(element: Dict[int, Any]) -> Tuple[Optional[str], Any]:
    """The column's logical type name and its parameters, from the
    ``LogicalType`` union, or else from the legacy converted type."""
    logical = element.get(10)
    if logical:
        field_id, params = next(iter(logical.items()))
        return _LOGICAL_NAMES.get(field_id, 'logical type %d' % field_id), \
            params
    converted = element.get(6)
    if converted is None:
        return None, {}
    if not 0 <= converted < len(_CONVERTED_NAMES):
        return 'converted type %d' % converted, {}
    name = _CONVERTED_NAMES[converted]
    if name == 'DECIMAL':
        return 'DECIMAL', {1: element.get(7, 0), 2: element.get(8)}
    if name.startswith('TIMESTAMP_'):
        return 'TIMESTAMP', {1: True, 2: {1 if name.endswith('MILLIS')
                                          else 2: {}}}
    if name.startswith(('INT_', 'UINT_')):
        return 'INTEGER', {2: name.startswith('INT_')}
    if name == 'UTF8':
        return 'STRING', {}
    return name, {}


def _converter(name: str, physical: int, element: Dict[int, Any]) -> Converter:
    """How a physical value of this column becomes a ``values.py`` value;
    ``None`` when it already is one."""
    logical, params = _logical_type(element)
    binary = physical in (BYTE_ARRAY, FIXED_LEN)
    if logical is None or logical == 'UNKNOWN':
        if physical == INT96:
            return _int96_timestamp
        return _text(name, strict=False) if binary else None
    if logical in ('STRING', 'ENUM', 'JSON') and binary:
        return _text(name, strict=True)
    if logical == 'UUID' and physical == FIXED_LEN:
        return _uuid
    if logical == 'FLOAT16' and physical == FIXED_LEN:
        return lambda raw: struct.unpack('<e', raw)[0]
    if logical == 'DATE' and physical == INT32:
        return lambda days: _EPOCH + timedelta(days=days)
    if logical == 'DECIMAL' and (binary or physical in (INT32, INT64)):
        return _decimal(params.get(1) or 0, from_bytes=binary)
    if logical == 'INTEGER' and physical in (INT32, INT64):
        signed = params.get(2, True)
        return None if signed else _unsigned(32 if physical == INT32 else 64)
    if logical == 'TIMESTAMP' and physical == INT64:
        unit = next(iter(params.get(2) or {2: {}}))
        scale = _TIME_UNIT_MICROS.get(unit, 1)
        if scale is None:
            return lambda nanos: _timestamp(nanos // 1000)
        return lambda value: _timestamp(value * scale)
    raise _unsupported(
        name, 'type %s on %s' % (logical, _PHYSICAL_NAMES[physical]))


class _Column:
    """One flat column: its name, how it is stored and how to convert it."""

    def __init__(self, element: Dict[int, Any]):
        self.name = element.get(4, b'').decode('utf-8')
        if element.get(5):
            raise _unsupported(self.name, 'nested fields (a group)')
        repetition = element.get(3, REQUIRED)
        if repetition == REPEATED:
            raise _unsupported(self.name, 'repeated values')
        if 1 not in element or not 0 <= element[1] < len(_PHYSICAL_NAMES):
            raise _parsing_error('Parquet column %r has no valid physical '
                                 'type.' % self.name)
        self.physical: int = element[1]
        self.type_length: int = element.get(2) or 0
        if self.physical == FIXED_LEN and self.type_length <= 0:
            raise _parsing_error('Parquet column %r has no byte length.'
                                 % self.name)
        self.max_definition = 1 if repetition == OPTIONAL else 0
        self.convert = _converter(self.name, self.physical, element)


# --- Column chunks -------------------------------------------------------

class _ChunkDecoder:
    """Turn the bytes of one column chunk into its list of values."""

    def __init__(self, column: _Column, codec: int):
        self.column = column
        self.codec = codec
        self.dictionary: Optional[List[Any]] = None

    def decode(self, chunk: bytes, num_values: int) -> List[Any]:
        values: List[Any] = []
        reader = _CompactReader(chunk)
        while len(values) < num_values:
            if reader.pos >= len(chunk):
                raise ValueError('column chunk ends after %d of %d values'
                                 % (len(values), num_values))
            header = reader.struct()
            body = reader.take(header[3])
            page_type = header.get(1)
            if page_type == DICTIONARY_PAGE:
                self._read_dictionary(header, body)
            elif page_type == DATA_PAGE:
                values += self._read_page_v1(header, body)
            elif page_type == DATA_PAGE_V2:
                values += self._read_page_v2(header, body)
        return values

    def _read_dictionary(self, header: Dict[int, Any], body: bytes) -> None:
        page = header[7]
        data = _decompress(self.codec, body, header[2], self.column.name)
        self.dictionary = self._convert(_read_plain(
            data, 0, self.column.physical, self.column.type_length, page[1]))

    def _read_page_v1(self, header: Dict[int, Any],
                      body: bytes) -> List[Any]:
        page = header[5]
        count = page[1]
        data = _decompress(self.codec, body, header[2], self.column.name)
        pos = 0
        levels = None
        if self.column.max_definition:
            if page.get(3, RLE) != RLE:
                raise self._unsupported_encoding(page[3])
            levels, pos = _read_length_prefixed_hybrid(data, 0, 1, count)
        present = count if levels is None else sum(levels)
        return self._with_nulls(
            self._read_values(page[2], data, pos, present), levels)

    def _read_page_v2(self, header: Dict[int, Any],
                      body: bytes) -> List[Any]:
        page = header[8]
        count, nulls = page[1], page[2]
        levels_end = page[5] + page[6]
        levels = None
        if self.column.max_definition:
            levels = _read_hybrid(body, page[6], levels_end, 1, count)
        values_data = body[levels_end:]
        if page.get(7, True):
            values_data = _decompress(self.codec, values_data,
                                      header[2] - levels_end,
                                      self.column.name)
        values = self._read_values(page[4], values_data, 0, count - nulls)
        return self._with_nulls(values, levels)

    def _read_values(self, encoding: int, data: bytes, pos: int,
                     count: int) -> List[Any]:
        if not count:
            return []
        if encoding in _DICTIONARY_ENCODINGS:
            if self.dictionary is None:
                raise ValueError('dictionary-encoded page without a '
                                 'dictionary')
            indexes = _read_hybrid(data, pos + 1, len(data), data[pos], count)
            dictionary = self.dictionary
            return [dictionary[index] for index in indexes]
        return self._convert(self._read_encoded(encoding, data, pos, count))

    def _read_encoded(self, encoding: int, data: bytes, pos: int,
                      count: int) -> List[Any]:
        physical, width = self.column.physical, self.column.type_length
        if encoding == PLAIN:
            return _read_plain(data, pos, physical, width, count)
        if encoding == RLE and physical == BOOLEAN:
            bits, _ = _read_length_prefixed_hybrid(data, pos, 1, count)
            return [bit == 1 for bit in bits]
        if encoding == DELTA_BINARY_PACKED and physical in (INT32, INT64):
            return _read_delta_binary_packed(
                data, pos, 32 if physical == INT32 else 64)[0][:count]
        if encoding == DELTA_LENGTH_BYTE_ARRAY and physical == BYTE_ARRAY:
            return _read_delta_length(data, pos)[0][:count]
        if encoding == DELTA_BYTE_ARRAY and physical in (BYTE_ARRAY,
                                                         FIXED_LEN):
            return _read_delta_byte_array(data, pos)[:count]
        if encoding == BYTE_STREAM_SPLIT and physical in (
                INT32, INT64, FLOAT, DOUBLE, FIXED_LEN):
            return _read_byte_stream_split(data, pos, physical, width, count)
        raise self._unsupported_encoding(encoding)

    def _convert(self, raw: List[Any]) -> List[Any]:
        convert = self.column.convert
        return raw if convert is None else [convert(value) for value in raw]

    @staticmethod
    def _with_nulls(values: List[Any],
                    levels: Optional[List[int]]) -> List[Any]:
        if levels is None:
            return values
        if len(values) != sum(levels):
            raise ValueError('page has %d values for %d non-null rows'
                             % (len(values), sum(levels)))
        present = iter(values)
        return [next(present) if level else None for level in levels]

    def _unsupported_encoding(self, encoding: int) -> SelectError:
        return _unsupported(self.column.name, 'encoding %d for %s' % (
            encoding, _PHYSICAL_NAMES[self.column.physical]))


# --- The file --------------------------------------------------------------

class _ChunkPlace:
    """Where a column chunk's bytes are and what they hold."""

    def __init__(self, column: _Column, chunk: Dict[int, Any]):
        meta = chunk.get(3)
        if chunk.get(1):  # a path to another file
            raise _unsupported(column.name, 'its data in another file')
        if meta is None:
            raise _parsing_error('Parquet column %r has no metadata (is the '
                                 'file encrypted?).' % column.name)
        if meta.get(1) != column.physical:
            raise _parsing_error('Parquet column %r is stored with another '
                                 'type than its schema says.' % column.name)
        self.column = column
        self.codec: int = meta[4]
        self.num_values: int = meta[5]
        self.uncompressed_size: int = meta[6]
        self.compressed_size: int = meta[7]
        data_offset = meta[9]
        dictionary_offset = meta.get(11)
        # Some writers put 0 here for "no dictionary page".
        if dictionary_offset and 4 <= dictionary_offset < data_offset:
            data_offset = dictionary_offset
        self.offset: int = data_offset


def _read_exactly(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    parts = []
    remaining = length
    while remaining > 0:
        part = f.read(remaining)
        if not part:
            raise _parsing_error('The Parquet file ends before byte %d.'
                                 % (offset + length))
        parts.append(part)
        remaining -= len(part)
    return b''.join(parts)


class ParquetFile:
    """A Parquet file's schema, and its rows one row group at a time."""

    def __init__(self, f: BinaryIO, size: int,
                 max_row_group_bytes: int = DEFAULT_MAX_ROW_GROUP_BYTES):
        """Read and check the footer, so a file S3 Select cannot read
        fails before any row is returned."""
        self._file = f
        self._size = size
        metadata = self._read_footer()
        try:
            self._columns = self._read_schema(metadata.get(2) or [])
            row_groups = metadata.get(4) or []
            self._row_groups = [self._place_row_group(row_group)
                                for row_group in row_groups]
            self._row_counts: List[int] = [int(row_group[3])
                                           for row_group in row_groups]
        except _CORRUPTION as exc:
            raise _parsing_error('The Parquet metadata is damaged: %s.'
                                 % exc) from exc
        self.columns: List[str] = [column.name for column in self._columns]
        for index, places in enumerate(self._row_groups):
            held = sum(max(place.compressed_size, place.uncompressed_size)
                       for place in places)
            if held > max_row_group_bytes:
                raise SelectError(
                    'OverMaxParquetBlockSize',
                    'Parquet row group %d is %d bytes, more than the %d '
                    'bytes S3 Select reads at once.'
                    % (index, held, max_row_group_bytes))

    def records(self, counter: Any = None,
                scan_range: Optional[ScanRange] = None,
                fields: Optional[Set[str]] = None
                ) -> Iterator[Dict[str, Any]]:
        """Every row as ``{column name: value}``; ``counter``, if given,
        has ``bytes_scanned`` (compressed) and ``bytes_processed``
        (uncompressed) added to as column chunks are read.  With
        ``scan_range``, only the row groups that start in it (S3 splits
        Parquet by row group).  With ``fields`` (lower-case names), only
        the columns named so are read, as S3 reads only the columns a
        query uses: the rows hold just those."""
        start, stop = byte_bounds(scan_range, self._size)
        for index, places in enumerate(self._row_groups):
            offset = min(place.offset for place in places)
            if offset < start or (stop is not None and offset >= stop):
                continue
            read = [place for place in places if fields is None
                    or place.column.name.lower() in fields]
            columns = []
            for place in read:
                columns.append(self._read_chunk(index, place))
                if counter is not None:
                    counter.bytes_scanned += place.compressed_size
                    counter.bytes_processed += place.uncompressed_size
            if not read:   # COUNT(*): the row group's own count
                yield from ({} for _ in range(self._row_counts[index]))
                continue
            names = [place.column.name for place in read]
            for row in zip(*columns):
                yield dict(zip(names, row))

    def _read_footer(self) -> Dict[int, Any]:
        if self._size < 12:
            raise _parsing_error('The object is too short to be Parquet.')
        head = _read_exactly(self._file, 0, 4)
        tail = _read_exactly(self._file, self._size - 8, 8)
        if tail[4:] == ENCRYPTED_MAGIC:
            raise _parsing_error('Encrypted Parquet files are not supported.')
        if head != MAGIC or tail[4:] != MAGIC:
            raise _parsing_error('The object is not a Parquet file (no PAR1 '
                                 'magic number).')
        length = struct.unpack('<I', tail[:4])[0]
        if length > self._size - 12:
            raise _parsing_error('The Parquet footer length %d is larger '
                                 'than the file.' % length)
        footer = _read_exactly(self._file, self._size - 8 - length, length)
        try:
            return _CompactReader(footer).struct()
        except _CORRUPTION as exc:
            raise _parsing_error('The Parquet footer is damaged: %s.'
                                 % exc) from exc

    @staticmethod
    def _read_schema(schema: List[Dict[int, Any]]) -> List[_Column]:
        if not schema:
            raise _parsing_error('The Parquet file has no schema.')
        root, elements = schema[0], schema[1:]
        columns = [_Column(element) for element in elements]
        if root.get(5) != len(columns):
            raise _parsing_error('The Parquet schema root has %s children '
                                 'but %d columns follow it.'
                                 % (root.get(5), len(columns)))
        return columns

    def _place_row_group(self, row_group: Dict[int, Any]) -> List[_ChunkPlace]:
        chunks = row_group.get(1) or []
        if len(chunks) != len(self._columns):
            raise ValueError('row group has %d columns, schema has %d'
                             % (len(chunks), len(self._columns)))
        places = [_ChunkPlace(column, chunk)
                  for column, chunk in zip(self._columns, chunks)]
        for place in places:
            if place.offset + place.compressed_size > self._size:
                raise ValueError('column %r lies outside the file'
                                 % place.column.name)
        return places

    def _read_chunk(self, row_group: int, place: _ChunkPlace) -> List[Any]:
        data = _read_exactly(self._file, place.offset, place.compressed_size)
        try:
            return _ChunkDecoder(place.column, place.codec).decode(
                data, place.num_values)
        except _CORRUPTION as exc:
            raise _parsing_error(
                'Parquet column %r in row group %d is damaged: %s.'
                % (place.column.name, row_group, exc)) from exc
