import bz2
import gzip
import io
import json
import random
from decimal import Decimal

import pytest

from zerocloud.s3select import formats
from zerocloud.s3select.errors import SelectError
from zerocloud.s3select.formats import (
    CSVWriter, InputCounter, JSONWriter, csv_records, json_records,
    open_input)
from zerocloud.s3select.model import (
    CSVInput, CSVOutput, JSONInput, JSONOutput, ScanRange)
from zerocloud.s3select.values import MISSING


class Unseekable(io.RawIOBase):
    """A stream like a socket: read only, short reads."""

    def __init__(self, data, piece=7):
        self._data = io.BytesIO(data)
        self._piece = piece

    def readable(self):
        return True

    def read(self, size=-1):
        return self._data.read(min(size, self._piece) if size > 0
                               else self._piece)


def rows(data, scan_range=None, size=None, **options):
    source = csv_records(io.BytesIO(data), CSVInput(**options), scan_range,
                         size)
    return source.header, list(source)


def error_code(call, *args, **kwargs):
    with pytest.raises(SelectError) as caught:
        call(*args, **kwargs)
    assert caught.value.message
    return caught.value.code


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(formats, 'CHUNK_SIZE', 5)


# ---------------------------------------------------------------- compression

def read_all(raw, compression):
    counter = InputCounter()
    stream = open_input(io.BytesIO(raw), compression, counter)
    data = b''.join(iter(lambda: stream.read(3), b''))
    return data, counter


def test_none_counts_scanned_equal_processed():
    data, counter = read_all(b'abc' * 100, 'NONE')
    assert data == b'abc' * 100
    assert counter.bytes_scanned == counter.bytes_processed == 300


def test_gzip_multi_member(small_chunks):
    raw = gzip.compress(b'first\n') + gzip.compress(b'second\n')
    data, counter = read_all(raw, 'GZIP')
    assert data == b'first\nsecond\n'
    assert counter.bytes_scanned == len(raw)
    assert counter.bytes_processed == len(data)


def test_bzip2_multi_stream():
    raw = bz2.compress(b'x' * 100000) + bz2.compress(b'tail')
    data, counter = read_all(raw, 'BZIP2')
    assert data == b'x' * 100000 + b'tail'
    assert counter.bytes_scanned == len(raw)


def test_empty_compressed_object_is_empty():
    assert read_all(b'', 'GZIP')[0] == b''


@pytest.mark.parametrize('compression', ['GZIP', 'BZIP2'])
def test_not_compressed_data(compression):
    assert error_code(read_all, b'plain text, not compressed',
                      compression) == 'InvalidCompressionFormat'


@pytest.mark.parametrize('compression,compress', [
    ('GZIP', gzip.compress), ('BZIP2', bz2.compress)])
def test_truncated_compressed_data(compression, compress):
    raw = compress(bytes(range(256)) * 200)
    assert error_code(read_all, raw[:len(raw) // 2],
                      compression) == 'TruncatedInput'


def test_compressed_stream_feeds_csv():
    raw = gzip.compress(b'a,b\n1,2\n')
    stream = open_input(io.BytesIO(raw), 'GZIP', InputCounter())
    assert list(csv_records(stream, CSVInput())) == [['a', 'b'], ['1', '2']]


# ----------------------------------------------------------------------- CSV

def test_csv_basic_quotes_comments_blank_lines():
    data = b'a,b\n1,"x,""y"""\n#comment, "open\n\n3,4'
    assert rows(data) == (None, [['a', 'b'], ['1', 'x,"y"'], ['3', '4']])


def test_csv_empty_fields_and_trailing_delimiter():
    assert rows(b',,1,\n""\n')[1] == [['', '', '1', ''], ['']]


def test_csv_quote_inside_unquoted_field_is_literal():
    assert rows(b'a"b,c\n')[1] == [['a"b', 'c']]


def test_csv_header_use_and_ignore():
    data = b'#note\nname,age\nann,3\n'
    assert rows(data, file_header_info='USE') == (
        ['name', 'age'], [['ann', '3']])
    assert rows(data, file_header_info='IGNORE') == (None, [['ann', '3']])
    assert rows(data, file_header_info='NONE')[1][0] == ['name', 'age']
    assert rows(b'', file_header_info='USE') == ([], [])


def test_csv_empty_comments_means_none():
    assert rows(b'#a,b\n', comments='')[1] == [['#a', 'b']]
    assert rows(b'#a,b\n;c\n', comments=';')[1] == [['#a', 'b']]


@pytest.mark.parametrize('record', ['|', ';', '\r\n', 'ab'])
def test_csv_record_delimiters(record):
    text = record.join(['1,2', '"x y",3', '', '4,5']) + record
    assert rows(text.encode(), record_delimiter=record)[1] == [
        ['1', '2'], ['x y', '3'], ['4', '5']]


def test_csv_lf_delimiter_keeps_carriage_return():
    assert rows(b'a,b\r\n')[1] == [['a', 'b\r']]


def test_csv_custom_field_delimiter_and_quote():
    assert rows(b"1\t'a\tb'\t'it''s'\n", field_delimiter='\t',
                quote_character="'", quote_escape_character="'")[1] == [
        ['1', 'a\tb', "it's"]]


def test_csv_multi_character_field_delimiter():
    assert rows(b'1::"a::b"::3\n', field_delimiter='::')[1] == [
        ['1', 'a::b', '3']]


def test_csv_escape_character_distinct_from_quote():
    data = b'"a\\"b","c\\\\","d\\x",""""\n'
    assert rows(data, quote_escape_character='\\')[1] == [
        ['a"b', 'c\\', 'd\\x', '"']]


def test_csv_allow_quoted_record_delimiter():
    data = b'1,"a\nb"\n2,"c\r\nd"\n'
    assert rows(data, allow_quoted_record_delimiter=True)[1] == [
        ['1', 'a\nb'], ['2', 'c\r\nd']]
    assert error_code(rows, data) == 'CSVEscapingRecordDelimiter'


def test_csv_no_quote_character():
    assert rows(b'"a,b"\n', quote_character='')[1] == [['"a', 'b"']]


def test_csv_trailing_record_without_delimiter_counts():
    assert rows(b'1\n2')[1] == [['1'], ['2']]


@pytest.mark.parametrize('data,options,code', [
    (b'1,"open\n', {}, 'CSVEscapingRecordDelimiter'),
    (b'1,"open', {}, 'CSVParsingError'),
    (b'1,"open\n', {'allow_quoted_record_delimiter': True},
     'CSVParsingError'),
    (b'1,"a"b,2\n', {}, 'CSVUnescapedQuote'),
    (b'1,\xff\n', {}, 'InvalidTextEncoding'),
])
def test_csv_malformed(data, options, code):
    assert error_code(rows, data, **options) == code


def test_csv_record_over_limit():
    big = b'x' * (formats.MAX_RECORD_SIZE + 1)
    assert error_code(rows, b'1\n' + big + b'\n') == 'OverMaxRecordSize'
    assert error_code(rows, big) == 'OverMaxRecordSize'
    assert rows(b'y' * 200000 + b'\n')[1] == [['y' * 200000]]


def test_csv_utf8_split_across_chunks(small_chunks):
    text = 'é,ü\n日本,"語"\n'
    assert rows(text.encode())[1] == [['é', 'ü'], ['日本', '語']]


ALPHABET = ['a', 'b', ' ', ',', '"', '\n', '\r', '|', '#', '\\', 'é']


def random_csv(rng, length):
    return ''.join(rng.choice(ALPHABET) for _ in range(length))


def outcome(call):
    try:
        return call()
    except SelectError as exc:
        return exc.code


OPTION_SETS = [
    {},
    {'record_delimiter': '\r\n'},
    {'record_delimiter': '|'},
    {'allow_quoted_record_delimiter': True},
    {'allow_quoted_record_delimiter': True, 'record_delimiter': '\r\n'},
    {'allow_quoted_record_delimiter': True, 'record_delimiter': '|'},
    {'quote_escape_character': '\\'},
    {'comments': ''},
]


@pytest.mark.parametrize('options', OPTION_SETS)
def test_csv_fast_path_matches_tokenizer(options):
    rng = random.Random(42)
    parser = formats._CSVParser(CSVInput(**options))
    for _ in range(1500):
        text = random_csv(rng, rng.randrange(30))
        assert outcome(lambda: parser.parse(text, True)) == outcome(
            lambda: parser.tokenize(text, True)), text


@pytest.mark.parametrize('options', OPTION_SETS)
def test_csv_chunking_does_not_change_rows(options, monkeypatch):
    rng = random.Random(7)
    for _ in range(300):
        data = random_csv(rng, rng.randrange(60)).encode()
        monkeypatch.setattr(formats, 'CHUNK_SIZE', 1 << 16)
        whole = outcome(lambda: rows(data, **options))
        monkeypatch.setattr(formats, 'CHUNK_SIZE', rng.randrange(1, 9))
        assert outcome(lambda: rows(data, **options)) == whole, data


# ----------------------------------------------------------------- ScanRange

def split_points(rng, size, count):
    return sorted(rng.randrange(size + 1) for _ in range(count))


def ranges_rows(data, cuts, stream_type=io.BytesIO, **options):
    """Rows of consecutive ranges [0, c1-1], [c1, c2-1], ..., [ck, end]."""
    found = []
    bounds = [0] + cuts + [len(data)]
    for first, after in zip(bounds, bounds[1:]):
        if after == first:
            continue
        scan = (ScanRange(start=first) if after == len(data)
                else ScanRange(start=first, end=after - 1))
        found.extend(csv_records(stream_type(data), CSVInput(**options),
                                 scan, len(data)))
    return found


RANGE_ALPHABET = ['a', 'b', ',', '"', '\n', '\r', '|', '#', 'é']


def valid_random_csv(rng, options):
    """A random file the whole-file reader accepts."""
    parser_options = CSVInput(**options)
    while True:
        text = ''.join(rng.choice(RANGE_ALPHABET)
                       for _ in range(rng.randrange(80)))
        data = text.encode()
        if not isinstance(outcome(lambda: rows(data, **options)), str):
            return data, parser_options


@pytest.mark.parametrize('options', [
    {}, {'record_delimiter': '\r\n'}, {'record_delimiter': '|'},
    {'file_header_info': 'USE'}, {'file_header_info': 'IGNORE'},
])
@pytest.mark.parametrize('stream_type', [io.BytesIO, Unseekable])
def test_scan_ranges_partition_the_records(options, stream_type):
    rng = random.Random(3)
    for _ in range(150):
        data, _ = valid_random_csv(rng, options)
        whole = rows(data, **options)[1]
        for _ in range(3):
            cuts = split_points(rng, len(data), rng.randrange(1, 6))
            assert ranges_rows(data, cuts, stream_type, **options) == whole, (
                data, cuts)


def test_scan_range_record_belongs_to_its_first_byte():
    data = b'aa,1\nbb,2\ncc,3\n'
    assert rows(data, ScanRange(0, 0))[1] == [['aa', '1']]
    assert rows(data, ScanRange(1, 5))[1] == [['bb', '2']]
    assert rows(data, ScanRange(6, 7))[1] == []
    assert rows(data, ScanRange(start=5))[1] == [['bb', '2'], ['cc', '3']]
    assert rows(data, ScanRange(end=5), size=len(data))[1] == [['cc', '3']]
    assert rows(data, ScanRange(start=100))[1] == []


def test_scan_range_with_header_reads_header_from_file_start():
    data = b'x,y\n1,2\n3,4\n'
    assert rows(data, ScanRange(start=6), file_header_info='USE') == (
        ['x', 'y'], [['3', '4']])


def test_scan_range_refused_for_quoted_record_delimiters():
    assert error_code(rows, b'1\n', ScanRange(0, 1),
                      allow_quoted_record_delimiter=True) == (
        'UnsupportedScanRangeInput')
    assert error_code(rows, b'1\n', ScanRange(0, 1),
                      record_delimiter='||') == 'UnsupportedScanRangeInput'


def test_scan_range_start_after_end():
    assert error_code(rows, b'1\n', ScanRange(5, 1)) == 'InvalidScanRange'


# ---------------------------------------------------------------------- JSON

def lines(data, scan_range=None, stream_type=io.BytesIO):
    return list(json_records(stream_type(data), JSONInput('LINES'),
                             scan_range, len(data)))


def document(data):
    return list(json_records(io.BytesIO(data), JSONInput('DOCUMENT')))


def test_json_lines():
    assert lines(b'{"a":1}\n\n  \n[1.5,"\xc3\xa9"]\r\nnull') == [
        {'a': 1}, [1.5, 'é'], None]


def test_json_document_values_over_lines_and_chunks(small_chunks):
    data = b'{"a":\n [1, 2]}\n12345 {"b": "x y"}[true] 7'
    assert document(data) == [{'a': [1, 2]}, 12345, {'b': 'x y'}, [True], 7]


@pytest.mark.parametrize('call,data', [
    (lines, b'{"a":1}\n{"a":\n'), (lines, b'NaN\n'), (document, b'{"a":1} }'),
    (document, b'[1, 2'), (document, b'{"a": x}' + b' 1' * 100000),
])
def test_json_malformed(call, data):
    assert error_code(call, data) == 'JSONParsingError'


def test_json_bad_utf8():
    assert error_code(document, b'"\xff"') == 'InvalidTextEncoding'
    assert error_code(lines, b'"\xff"\n') == 'InvalidTextEncoding'


def test_json_over_limit():
    big = b'"' + b'x' * formats.MAX_RECORD_SIZE + b'"'
    assert error_code(document, b'[' + big + b']') == 'OverMaxRecordSize'
    assert error_code(lines, big + b'\n') == 'OverMaxRecordSize'


def test_json_document_refuses_scan_range():
    with pytest.raises(SelectError) as caught:
        json_records(io.BytesIO(b'1'), JSONInput('DOCUMENT'), ScanRange(0, 1))
    assert caught.value.code == 'UnsupportedScanRangeInput'


@pytest.mark.parametrize('stream_type', [io.BytesIO, Unseekable])
def test_json_lines_ranges_partition_the_records(stream_type):
    rng = random.Random(5)
    for _ in range(200):
        values = [rng.choice([1, 'a\nb', {'k': [1, 2]}, None, 'é'])
                  for _ in range(rng.randrange(8))]
        data = ''.join(json.dumps(v) + rng.choice(['\n', '\n\n', '\r\n'])
                       for v in values).encode()
        cuts = split_points(rng, len(data), rng.randrange(1, 5))
        bounds = [0] + cuts + [len(data)]
        found = []
        for first, after in zip(bounds, bounds[1:]):
            if after > first:
                found.extend(lines(data, ScanRange(first, after - 1),
                                   stream_type))
        assert found == values, (data, cuts)


# ------------------------------------------------------------------- writers

def test_csv_writer_as_needed():
    writer = CSVWriter(CSVOutput())
    assert writer.row(['a', 'b,c', 'say "hi"', None, 'x\ny', ' s ']) == (
        b'a,"b,c","say ""hi""",,"x\ny", s \n')


def test_csv_writer_always_and_custom_characters():
    writer = CSVWriter(CSVOutput(quote_fields='ALWAYS', field_delimiter='|',
                                 record_delimiter='\r\n',
                                 quote_character="'",
                                 quote_escape_character='\\'))
    assert writer.row(["it's", 'é']) == "'it\\'s'|'é'\r\n".encode()


def test_csv_writer_quotes_custom_record_delimiter():
    writer = CSVWriter(CSVOutput(record_delimiter=';'))
    assert writer.row(['a;b']) == b'"a;b";'


def test_json_writer():
    writer = JSONWriter(JSONOutput(record_delimiter=','))
    out = writer.row([('a', 1), ('gone', MISSING), ('d', Decimal('1.50')),
                      ('f', 0.5), ('s', 'é"'), ('n', None), ('t', True),
                      ('l', [Decimal('2E+3'), {'x': MISSING, 'y': False}])])
    assert out == ('{"a":1,"d":1.50,"f":0.5,"s":"é\\"","n":null,"t":true,'
                   '"l":[2E+3,{"y":false}]},').encode()
    assert json.loads(out[:-1]) == {
        'a': 1, 'd': 1.5, 'f': 0.5, 's': 'é"', 'n': None, 't': True,
        'l': [2000, {'y': False}]}
