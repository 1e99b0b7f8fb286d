"""The pure-Python Parquet reader, against files pyarrow writes."""

import io
import struct
import uuid
from datetime import date, datetime, time, timezone
from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zerocloud.s3select.errors import SelectError
from zerocloud.s3select.model import ScanRange
from zerocloud.s3select.parquet import ParquetFile, snappy_decompress


UTC = timezone.utc


def write(table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def open_parquet(data: bytes, **options) -> ParquetFile:
    return ParquetFile(io.BytesIO(data), len(data), **options)


def read(data: bytes):
    return list(open_parquet(data).records())


def select_error(data: bytes, **options) -> SelectError:
    with pytest.raises(SelectError) as caught:
        read(data) if not options else open_parquet(data, **options)
    return caught.value


ALL_TYPES = pa.table({
    'int32': pa.array([1, None, -3], pa.int32()),
    'int64': pa.array([2 ** 40, -5, None], pa.int64()),
    'int8': pa.array([-128, None, 127], pa.int8()),
    'uint8': pa.array([255, 0, None], pa.uint8()),
    'uint32': pa.array([2 ** 32 - 1, 1, None], pa.uint32()),
    'uint64': pa.array([2 ** 64 - 1, 0, None], pa.uint64()),
    'text': pa.array(['a', 'bé', None]),
    'bool': pa.array([True, None, False]),
    'float': pa.array([1.5, -2.25, None], pa.float32()),
    'double': pa.array([1.25, None, 3.0]),
    'micros': pa.array([datetime(2020, 1, 2, 3, 4, 5, 123456), None,
                        datetime(1960, 1, 1)], pa.timestamp('us', tz='UTC')),
    'millis': pa.array([datetime(2020, 1, 2, 3, 4, 5, 123000), None,
                        datetime(1969, 12, 31, 23, 59, 59)],
                       pa.timestamp('ms')),
    'nanos': pa.array([1_500_000_001, -1, None], pa.timestamp('ns')),
    'date': pa.array([date(2021, 5, 6), None, date(1900, 1, 1)]),
    'decimal': pa.array([Decimal('1.23'),
                         Decimal('-99999999999999999999999.99'), None],
                        pa.decimal128(25, 2)),
    'enum': pa.array(['x', 'y', 'x']).dictionary_encode(),
})

ALL_TYPES_ROWS = [
    {'int32': 1, 'int64': 2 ** 40, 'int8': -128, 'uint8': 255,
     'uint32': 2 ** 32 - 1, 'uint64': 2 ** 64 - 1, 'text': 'a',
     'bool': True, 'float': 1.5, 'double': 1.25,
     'micros': datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
     'millis': datetime(2020, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
     'nanos': datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC),
     'date': datetime(2021, 5, 6, tzinfo=UTC),
     'decimal': Decimal('1.23'), 'enum': 'x'},
    {'int32': None, 'int64': -5, 'int8': None, 'uint8': 0, 'uint32': 1,
     'uint64': 0, 'text': 'bé', 'bool': None, 'float': -2.25,
     'double': None, 'micros': None, 'millis': None,
     'nanos': datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
     'date': None, 'decimal': Decimal('-99999999999999999999999.99'),
     'enum': 'y'},
    {'int32': -3, 'int64': None, 'int8': 127, 'uint8': None,
     'uint32': None, 'uint64': None, 'text': None, 'bool': False,
     'float': None, 'double': 3.0,
     'micros': datetime(1960, 1, 1, tzinfo=UTC),
     'millis': datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
     'nanos': None, 'date': datetime(1900, 1, 1, tzinfo=UTC),
     'decimal': None, 'enum': 'x'},
]


@pytest.mark.parametrize('page_version', ['1.0', '2.0'])
@pytest.mark.parametrize('codec', ['NONE', 'SNAPPY', 'GZIP'])
@pytest.mark.parametrize('dictionary', [True, False])
def test_every_type_in_every_layout(page_version, codec, dictionary):
    data = write(ALL_TYPES, data_page_version=page_version,
                 compression=codec, use_dictionary=dictionary)
    parquet = open_parquet(data)
    assert parquet.columns == ALL_TYPES.column_names
    rows = list(parquet.records())
    assert rows == ALL_TYPES_ROWS
    assert all(type(row['int64']) is int for row in rows[:2])
    assert type(rows[0]['bool']) is bool
    assert type(rows[0]['decimal']) is Decimal


def test_required_columns_have_no_nulls_to_read():
    schema = pa.schema([pa.field('id', pa.int64(), nullable=False),
                        pa.field('name', pa.string(), nullable=False)])
    table = pa.table({'id': [1, 2], 'name': ['a', 'b']}, schema=schema)
    assert read(write(table)) == [{'id': 1, 'name': 'a'},
                                  {'id': 2, 'name': 'b'}]


def test_all_null_column():
    table = pa.table({'x': pa.array([None, None], pa.int32()),
                      'n': pa.array([None, None], pa.null())})
    assert read(write(table)) == [{'x': None, 'n': None}] * 2


def test_many_row_groups_keep_order_and_count_bytes():
    table = pa.table({'n': list(range(1000)),
                      's': ['v%d' % (i % 7) for i in range(1000)]})
    data = write(table, row_group_size=300, data_page_size=512)
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    assert metadata.num_row_groups == 4
    counter = SimpleNamespace(bytes_scanned=0, bytes_processed=0)
    rows = list(open_parquet(data).records(counter))
    assert [row['n'] for row in rows] == list(range(1000))
    assert rows[999]['s'] == 'v%d' % (999 % 7)
    chunks = [metadata.row_group(group).column(column)
              for group in range(4) for column in range(2)]
    assert counter.bytes_scanned == sum(
        chunk.total_compressed_size for chunk in chunks)
    assert counter.bytes_processed == sum(
        chunk.total_uncompressed_size for chunk in chunks)


def test_scan_ranges_take_the_row_groups_that_start_in_them():
    table = pa.table({'n': list(range(1000))})
    data = write(table, row_group_size=250)
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    chunks = [metadata.row_group(g).column(0) for g in range(4)]
    starts = [c.dictionary_page_offset if c.has_dictionary_page
              else c.data_page_offset for c in chunks]
    parquet = open_parquet(data)

    def numbers(start, end):
        return [row['n'] for row in parquet.records(
            scan_range=ScanRange(start, end))]
    assert numbers(0, starts[1] - 1) == list(range(250))
    assert numbers(starts[1], starts[3]) == list(range(250, 1000))
    assert numbers(starts[1] + 1, starts[3] - 1) == list(range(500, 750))
    # Split anywhere: every row once.
    cut = (starts[1] + starts[2]) // 2
    assert numbers(0, cut) + numbers(cut + 1, None) == list(range(1000))
    assert [row['n'] for row in parquet.records(
        scan_range=ScanRange(None, len(data) - starts[3]))] == \
        list(range(750, 1000))


def test_only_the_columns_asked_for_are_read_and_counted():
    table = pa.table({'n': list(range(600)),
                      'Name': ['v%d' % i for i in range(600)],
                      'big': ['x' * 100] * 600})
    data = write(table, row_group_size=200)
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    counter = SimpleNamespace(bytes_scanned=0, bytes_processed=0)
    rows = list(open_parquet(data).records(counter, fields={'n', 'name'}))
    assert rows[599] == {'n': 599, 'Name': 'v599'}
    assert len(rows) == 600
    assert counter.bytes_scanned == sum(
        metadata.row_group(group).column(column).total_compressed_size
        for group in range(3) for column in (0, 1))
    # No column at all (COUNT(*)): one empty row per row, nothing read.
    counter = SimpleNamespace(bytes_scanned=0, bytes_processed=0)
    assert list(open_parquet(data).records(counter, fields=set())) == \
        [{}] * 600
    assert counter.bytes_scanned == 0


def test_counter_grows_row_group_by_row_group():
    data = write(pa.table({'n': list(range(10))}), row_group_size=5)
    counter = SimpleNamespace(bytes_scanned=0, bytes_processed=0)
    records = open_parquet(data).records(counter)
    next(records)
    after_first_group = counter.bytes_scanned
    list(records)
    assert 0 < after_first_group < counter.bytes_scanned


def test_long_runs_and_many_pages():
    values = [None if i % 10 == 0 else i % 3 for i in range(20000)]
    table = pa.table({'x': pa.array(values, pa.int64())})
    for version in ('1.0', '2.0'):
        data = write(table, data_page_size=1024, data_page_version=version)
        assert [row['x'] for row in read(data)] == values


@pytest.mark.parametrize('encoding,array', [
    ('DELTA_BINARY_PACKED', pa.array([5, -3, None, 2 ** 31 - 1, -2 ** 31]
                                     + list(range(300)), pa.int32())),
    ('DELTA_BINARY_PACKED', pa.array([2 ** 63 - 1, -2 ** 63, 0, None]
                                     + [i * i for i in range(300)])),
    ('DELTA_LENGTH_BYTE_ARRAY', pa.array(['', 'abc', None, 'é' * 40]
                                         + ['s%d' % i for i in range(200)])),
    ('DELTA_BYTE_ARRAY', pa.array(['apple', 'apply', None, 'ape', 'b']
                                  + ['k%05d' % i for i in range(200)])),
    ('BYTE_STREAM_SPLIT', pa.array([1.5, None, -0.25, 1e300]
                                   + [i / 3 for i in range(100)])),
    ('BYTE_STREAM_SPLIT', pa.array([1.5, None, -0.25]
                                   + [i / 4 for i in range(100)],
                                   pa.float32())),
    ('BYTE_STREAM_SPLIT', pa.array([7, None, -7, 2 ** 40])),
    ('RLE', pa.array([True] * 100 + [False, None, True] * 50)),
])
@pytest.mark.parametrize('page_version', ['1.0', '2.0'])
def test_other_encodings(encoding, array, page_version):
    data = write(pa.table({'x': array}), use_dictionary=False,
                 column_encoding={'x': encoding},
                 data_page_version=page_version)
    encodings = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0) \
        .column(0).encodings
    assert encoding in encodings
    assert [row['x'] for row in read(data)] == array.to_pylist()


def test_int96_legacy_timestamps():
    moments = [datetime(2001, 2, 3, 4, 5, 6, 789012), None,
               datetime(1850, 1, 1)]
    table = pa.table({'t': pa.array(moments, pa.timestamp('us'))})
    data = write(table, use_deprecated_int96_timestamps=True)
    schema = pq.ParquetFile(io.BytesIO(data)).schema
    assert schema.column(0).physical_type == 'INT96'
    assert [row['t'] for row in read(data)] == [
        moment and moment.replace(tzinfo=UTC) for moment in moments]


def test_decimals_stored_as_integers():
    table = pa.table({
        'small': pa.array([Decimal('1.25'), Decimal('-0.01'), None],
                          pa.decimal128(5, 2)),
        'medium': pa.array([Decimal('123456789012.345'), None,
                            Decimal('-1.000')], pa.decimal128(15, 3)),
        'whole': pa.array([Decimal(7), None, Decimal(-8)],
                          pa.decimal128(4, 0))})
    data = write(table, store_decimal_as_integer=True)
    schema = pq.ParquetFile(io.BytesIO(data)).schema
    assert [schema.column(i).physical_type for i in range(3)] == \
        ['INT32', 'INT64', 'INT32']
    rows = read(data)
    assert rows[0] == {'small': Decimal('1.25'),
                       'medium': Decimal('123456789012.345'),
                       'whole': Decimal(7)}
    assert rows[2]['medium'] == Decimal('-1.000')
    assert str(rows[2]['medium']) == '-1.000'


def test_uuid_float16_and_large_strings():
    identifier = uuid.UUID('12345678-9abc-def0-1234-56789abcdef0')
    table = pa.table({
        'id': pa.array([identifier.bytes, None], pa.uuid()),
        'half': pa.array([1.5, None], pa.float16()),
        'big': pa.array(['long text', None], pa.large_string())})
    assert read(write(table)) == [
        {'id': str(identifier), 'half': 1.5, 'big': 'long text'},
        {'id': None, 'half': None, 'big': None}]


def test_raw_binary_utf8_is_text_and_other_bytes_refused():
    data = write(pa.table({'b': pa.array([b'plain', None], pa.binary())}))
    assert read(data) == [{'b': 'plain'}, {'b': None}]
    data = write(pa.table({'b': pa.array([b'\xff\xfe'], pa.binary())}))
    error = select_error(data)
    assert error.code == 'UnsupportedParquetType'
    assert "'b'" in error.message


def test_fixed_size_binary_text():
    table = pa.table({'f': pa.array([b'abc', b'xyz'], pa.binary(3))})
    assert read(write(table)) == [{'f': 'abc'}, {'f': 'xyz'}]


@pytest.mark.parametrize('array', [
    pa.array([{'a': 1}], pa.struct([('a', pa.int64())])),
    pa.array([[1, 2]], pa.list_(pa.int64())),
    pa.array([[('k', 1)]], pa.map_(pa.string(), pa.int64())),
])
def test_nested_columns_refused_by_name(array):
    data = write(pa.table({'ok': [1], 'deep': array}))
    with pytest.raises(SelectError) as caught:
        open_parquet(data)
    assert caught.value.code == 'UnsupportedParquetType'
    assert "'deep'" in caught.value.message


def test_time_type_refused():
    data = write(pa.table({'t': pa.array([time(1, 2)], pa.time64('us'))}))
    with pytest.raises(SelectError) as caught:
        open_parquet(data)
    assert caught.value.code == 'UnsupportedParquetType'
    assert 'TIME' in caught.value.message


@pytest.mark.parametrize('codec', ['ZSTD', 'BROTLI', 'LZ4'])
def test_other_codecs_refused(codec):
    data = write(pa.table({'x': [1, 2]}), compression=codec)
    error = select_error(data)
    assert error.code == 'ParquetUnsupportedCompressionCodec'
    assert codec in error.message


@pytest.mark.parametrize('data', [
    b'', b'a,b,c\n1,2,3\n', b'PAR1' + b'\0' * 20,
    b'PAR1' + b'\0' * 8 + struct.pack('<I', 10 ** 6) + b'PAR1'])
def test_not_parquet_refused(data):
    with pytest.raises(SelectError) as caught:
        open_parquet(data)
    assert caught.value.code == 'ParquetParsingError'


def test_damaged_footer_refused():
    data = bytearray(write(pa.table({'x': [1, 2, 3]})))
    footer_length = struct.unpack('<I', data[-8:-4])[0]
    footer_start = len(data) - 8 - footer_length
    data[footer_start:len(data) - 8] = b'\xff' * footer_length
    with pytest.raises(SelectError) as caught:
        open_parquet(bytes(data))
    assert caught.value.code == 'ParquetParsingError'


def test_damaged_column_data_names_the_column():
    values = list(range(100))
    data = bytearray(write(pa.table({'x': values}), compression='SNAPPY',
                           use_dictionary=False))
    metadata = pq.ParquetFile(io.BytesIO(bytes(data))).metadata
    chunk = metadata.row_group(0).column(0)
    start = chunk.data_page_offset
    end = start + chunk.total_compressed_size
    data[end - 40:end] = b'\xee' * 40
    error = select_error(bytes(data))
    assert error.code == 'ParquetParsingError'
    assert "'x'" in error.message


def test_truncated_file_refused():
    data = write(pa.table({'x': [1, 2, 3]}))
    with pytest.raises(SelectError) as caught:
        ParquetFile(io.BytesIO(data[:-3]), len(data))
    assert caught.value.code == 'ParquetParsingError'


def test_row_group_over_the_limit_refused():
    data = write(pa.table({'x': list(range(5000))}))
    assert len(open_parquet(data, max_row_group_bytes=1 << 20).columns) == 1
    error = select_error(data, max_row_group_bytes=1000)
    assert error.code == 'OverMaxParquetBlockSize'


class ShortReads(io.BytesIO):
    """A file that returns at most 7 bytes a read, as sockets may."""

    def read(self, size=-1):
        return super().read(min(size, 7) if size >= 0 else 7)


def test_short_reads_are_completed():
    data = write(pa.table({'x': ['a', 'b']}))
    parquet = ParquetFile(ShortReads(data), len(data))
    assert list(parquet.records()) == [{'x': 'a'}, {'x': 'b'}]


def test_snappy_literal_and_copies():
    # 'abcd' literal, then a 1-byte-offset copy of 8 overlapping 'abcd'
    # twice, then a 2-byte-offset copy of 2 bytes from 12 back.
    block = bytes([14, 3 << 2]) + b'abcd' + bytes([1 | (4 << 2), 4]) \
        + bytes([2 | (1 << 2), 12, 0])
    assert snappy_decompress(block) == b'abcd' + b'abcdabcd' + b'ab'


def test_snappy_long_literal_and_4_byte_offset():
    text = bytes(range(256)) * 2
    literal = bytes([61 << 2]) + struct.pack('<H', len(text) - 1) + text
    copy = bytes([3 | (9 << 2)]) + struct.pack('<I', 512)
    block = bytes([0x8A, 0x04]) + literal + copy  # length 522 as varint
    assert snappy_decompress(block) == text + text[:10]


@pytest.mark.parametrize('block', [
    bytes([4, 1 | (0 << 2), 9]),  # copy before any output
    bytes([9, 3 << 2]) + b'abcd',  # header says 9 bytes, block has 4
    bytes([4, 10 << 2]) + b'ab',  # literal longer than the block
])
def test_snappy_damaged_blocks_refused(block):
    with pytest.raises(ValueError):
        snappy_decompress(block)


@pytest.mark.parametrize('element,raw,value', [
    # Older writers give only the legacy ConvertedType (SchemaElement
    # field 6), with DECIMAL's scale in field 7.
    ({1: 2, 6: 9}, 1500, datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)),
    ({1: 2, 6: 10}, -1, datetime(1969, 12, 31, 23, 59, 59, 999999,
                                 tzinfo=UTC)),
    ({1: 1, 6: 13}, -1, 2 ** 32 - 1),
    ({1: 1, 6: 6}, 1, datetime(1970, 1, 2, tzinfo=UTC)),
    ({1: 2, 6: 5, 7: 3, 8: 10}, -12345, Decimal('-12.345')),
    ({1: 6, 6: 0}, 'é'.encode(), 'é'),
])
def test_legacy_converted_types(element, raw, value):
    from zerocloud.s3select.parquet import _Column
    column = _Column({**element, 3: 1, 4: b'c'})
    assert column.convert(raw) == value
