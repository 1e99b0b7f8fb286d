"""The native scanner against the Python engine: the same select over the
same bytes must give the same event stream.

The scanner (``make native``) runs here under wasmtime with a WASI
directory holding its plan and ``dev/input``, as in the sandbox.
"""

import gzip
import io
import os
import random
import struct
import tempfile
import zlib
from typing import List, Optional, Tuple

import pytest
import wasmtime

from zerocloud.proxy import selectscan
from zerocloud.s3select import engine, eventstream
from zerocloud.s3select.model import (
    CSVInput, CSVOutput, InputSerialization, JSONInput, JSONOutput,
    OutputSerialization, ScanRange, SelectRequest)
from zerocloud.s3select.sql import compile_query


@pytest.fixture(scope='module')
def scanner():
    wasm = selectscan.scanner()
    assert wasm is not None, 'build it first: make native'
    wasm_engine = wasmtime.Engine()
    return wasm_engine, wasmtime.Module(wasm_engine, wasm)


def run_native(scanner, plan: str, data: bytes) -> bytes:
    wasm_engine, module = scanner
    with tempfile.TemporaryDirectory() as root:
        os.mkdir(os.path.join(root, 'dev'))
        with open(os.path.join(root, 'plan'), 'w') as f:
            f.write(plan)
        with open(os.path.join(root, 'dev', 'input'), 'wb') as f:
            f.write(data)
        out = os.path.join(root, 'out')
        config = wasmtime.WasiConfig()
        config.preopen_dir(root, '/')
        config.stdout_file = out
        config.stderr_file = os.path.join(root, 'err')
        store = wasmtime.Store(wasm_engine)
        store.set_wasi(config)
        linker = wasmtime.Linker(wasm_engine)
        linker.define_wasi()
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)['_start'](store)
        except wasmtime.ExitTrap as trap:
            with open(os.path.join(root, 'err')) as err:
                assert trap.code == 0, err.read()
        with open(out, 'rb') as f:
            return f.read()


def run_python(request: SelectRequest, data: bytes) -> bytes:
    out = io.BytesIO()
    engine.run(request, io.BytesIO(data), len(data), out)
    return out.getvalue()


def summary(stream: bytes, with_stats: bool) -> Tuple[bytes, List[str]]:
    """The records, and the other events (their kinds; an error's code,
    the counts of ``Stats`` when they are comparable)."""
    decoder = eventstream.MessageDecoder()
    messages = decoder.feed(stream)
    assert decoder.buffered == 0
    payload = b''
    others = []
    for message in messages:
        kind = message.headers.get(':event-type')
        if kind == 'Records':
            payload += message.payload
        elif kind == 'Cont':
            continue
        elif kind in ('Stats', 'Progress') and with_stats:
            others.append(message.payload.decode())
        elif kind is None:
            others.append('error ' + message.headers[':error-code'])
        else:
            others.append(kind)
    return payload, others


PARSE_ERRORS = {'error ' + code for code in (
    'CSVUnescapedQuote', 'CSVEscapingRecordDelimiter', 'CSVParsingError',
    'InvalidTextEncoding', 'OverMaxRecordSize')}


def same_answer(scanner, request: SelectRequest, data: bytes) -> bytes:
    """Both engines' answers, checked equal; the records."""
    plan = selectscan.plan(request, compile_query(request.expression),
                       len(data))
    assert plan is not None, request.expression
    exact = request.scan_range is None and 'LIMIT' not in \
        request.expression.upper()
    ours = summary(run_native(scanner, plan, data), exact)
    theirs = summary(run_python(request, data), exact)
    if ours[1] != theirs[1] or not theirs[1][-1:] or \
            theirs[1][-1] not in PARSE_ERRORS:
        assert ours == theirs, (request, data[:300])
    else:
        # The Python engine decodes and parses a block of records (up to
        # 64 KiB) before it gives any: the records of the block a parse
        # error is in are not sent.  The scanner sends them.
        assert ours[0].startswith(theirs[0]), (request, data[:300])
    return ours[0]


def csv_request(sql: str, header: str = 'NONE', scan_range=None,
                output: Optional[CSVOutput] = None,
                **csv_options) -> SelectRequest:
    return SelectRequest(
        sql, input=InputSerialization(csv=CSVInput(
            file_header_info=header, **csv_options)),
        output=OutputSerialization(csv=output or CSVOutput()),
        scan_range=scan_range)


DATA = (b'name,n,x\nann,1,0.5\nbob,2,1e3\n"c,id","-3",  7 \n'
        b'"d""q",4.9,nan\n\n#note,9\ne\xc3\xa9,12,-inf\nshort\n')


@pytest.mark.parametrize('sql', [
    'SELECT * FROM S3Object',
    'SELECT _2, _1 FROM S3Object s',
    'SELECT s._3 FROM S3Object s WHERE s._1 > \'b\'',
    "SELECT _1 FROM S3Object WHERE _1 = 'short' OR _1 <> 'ann'",
    'SELECT COUNT(*) FROM S3Object',
    'SELECT COUNT(_3), COUNT(*) FROM S3Object',
    'SELECT _1 FROM S3Object LIMIT 2',
    'SELECT * FROM S3Object LIMIT 0',
])
def test_no_header(scanner, sql):
    same_answer(scanner, csv_request(sql, comments='#'), DATA)


@pytest.mark.parametrize('sql', [
    'SELECT name FROM S3Object WHERE CAST(n AS INT) > 1',
    'SELECT s.name, s."x" FROM S3Object s WHERE CAST(s.n AS INT) <= -3',
    'SELECT SUM(CAST(n AS INT)), COUNT(*) FROM S3Object '
    'WHERE NOT CAST(n AS INT) = 2',
    'SELECT SUM(CAST(x AS FLOAT)) FROM S3Object WHERE name <> \'d"q\'',
    'SELECT SUM(CAST(x AS FLOAT)) FROM S3Object',
    'SELECT name FROM S3Object WHERE CAST(x AS FLOAT) >= 1 AND '
    'CAST(n AS INT) < 100',
    'SELECT SUM(CAST(n AS INT)) FROM S3Object WHERE name = \'nobody\'',
    'SELECT name FROM S3Object WHERE 2 < CAST(n AS INT)',
    'SELECT _9 FROM S3Object',
    'SELECT nope FROM S3Object',
    'SELECT name FROM S3Object WHERE CAST(nope AS INT) = 1',
])
def test_header(scanner, sql):
    same_answer(scanner, csv_request(sql, header='USE', comments='#'), DATA)


def test_header_names_that_match_twice_are_ambiguous(scanner):
    same_answer(scanner, csv_request('SELECT a FROM S3Object',
                                     header='USE'), b'A,a\n1,2\n')


@pytest.mark.parametrize('data', [
    b'1,2\n"a"b,3\n',            # CSVUnescapedQuote
    b'1,2\n"a\nb",3\n',          # CSVEscapingRecordDelimiter
    b'1,2\n3,"open',             # CSVParsingError
    b'1,2\n3,\xff\n',            # InvalidTextEncoding
    b'1,2\n3,\xe2\x82\n',        # a character cut short
    b'1,' + b'9' * (1 << 20) + b'\n',   # OverMaxRecordSize
    b'1,2\nx,3\n',               # CastFailed
    b'1,2\n9223372036854775807,1\n-9223372036854775808,1\n',
    b'1,2\n9223372036854775808,1\n',     # CastFailed: out of INT
    b'1.9,1\n-2.9e1,1\n 12 ,1\n\xc2\xa07\xe3\x80\x80,1\n+3,1\n',
    b'1e999999999,1\n',          # CastFailed, at once
    b'0.000e5,1\n.5,1\n5.,1\n',
    b'1,2\n3,4',                 # no final record delimiter
    b'',
])
def test_input_edges(scanner, data):
    same_answer(scanner, csv_request(
        'SELECT _2, CAST(_1 AS INT) FROM S3Object WHERE CAST(_1 AS INT) '
        '> -100'), data)


@pytest.mark.parametrize('op', ['=', '<>', '<', '<=', '>', '>='])
def test_fields_compared_with_integers_as_the_numbers_they_spell(scanner, op):
    data = '\n'.join([
        '7', '7.0', '7.5', '6.999', '-7', '-7.5', ' 7 ', '+7', '07', '7e0',
        '7.1e0', '1e400', '-1e400', '99999999999999999999', '-0.0', 'seven',
        '', '7x', '\u00a07', '0.5', '-0.5', '.5', '7.', '1e-400']).encode()
    for literal in (7, -7, 0, -1):
        same_answer(scanner, csv_request(
            'SELECT _1 FROM S3Object WHERE _1 %s %d' % (op, literal)), data)


@pytest.mark.parametrize('pattern', [
    "'a%'", "'%é'", "'_b_'", "'%'", "''", "'%a%a%a%b'", "'é%_'",
    "'a!%b' ESCAPE '!'", "'!_%' ESCAPE '!'", "'%!!' ESCAPE '!'"])
def test_like(scanner, pattern):
    data = 'a\nab\nabc\né\néé\naé\na%b\n_x\nb!\naaaaaaaaab\n'.encode()
    same_answer(scanner, csv_request(
        'SELECT _1 FROM S3Object WHERE _1 LIKE %s OR _2 LIKE %s'
        % (pattern, pattern)), data)


@pytest.mark.parametrize('items', [
    'MIN(CAST(_1 AS INT)), MAX(CAST(_1 AS INT))',
    'MIN(CAST(_2 AS FLOAT)), MAX(CAST(_2 AS FLOAT)), AVG(CAST(_2 AS FLOAT))',
    'MIN(_3), MAX(_3), MIN(_4), AVG(CAST(_4 AS FLOAT))',
])
@pytest.mark.parametrize('output', ['CSV', 'JSON'])
def test_min_max_and_avg(scanner, items, output):
    data = b'5,1.5,b\n-3,nan,\xc3\xa9\n7,-inf,a\n12,2.5,\n'
    same_answer(scanner, SelectRequest(
        'SELECT %s FROM S3Object' % items,
        output=OutputSerialization(format=output)), data)
    same_answer(scanner, SelectRequest(
        'SELECT %s FROM S3Object WHERE _1 = \'none\'' % items,
        output=OutputSerialization(format=output)), data)
    same_answer(scanner, SelectRequest(   # the least text first: empty
        'SELECT %s FROM S3Object' % items,
        output=OutputSerialization(format=output)), b'1,1,,\n' + data)


def test_integer_overflow_in_a_sum(scanner):
    same_answer(scanner, csv_request('SELECT SUM(CAST(_1 AS INT)) FROM '
                                     'S3Object'),
                b'9223372036854775807\n1\n')


@pytest.mark.parametrize('values', [
    ['0.1', '0.2'], ['1e16'], ['1.5e16', '1'], ['1e-5'], ['0.0001'],
    ['123456789.125'], ['-0.0'], ['1e308', '1e308'], ['nan'], ['-Infinity'],
    ['3', '4'], ['2.5e-300'], ['1e22'],
])
def test_float_sums_print_as_python_does(scanner, values):
    data = ''.join(v + '\n' for v in values).encode()
    same_answer(scanner, csv_request('SELECT SUM(CAST(_1 AS FLOAT)) FROM '
                                     'S3Object'), data)


@pytest.mark.parametrize('sql, header', [
    ('SELECT * FROM S3Object', 'USE'),
    ('SELECT * FROM S3Object', 'IGNORE'),
    ('SELECT name AS who, _3, CAST(n AS INT) AS n, CAST(x AS FLOAT) '
     'FROM S3Object WHERE CAST(n AS INT) < 3', 'USE'),
    ('SELECT s._1, s._9 FROM S3Object s', 'IGNORE'),
    ('SELECT COUNT(*), SUM(CAST(n AS INT)) AS total, '
     'SUM(CAST(x AS FLOAT)) FROM S3Object WHERE name = \'bob\'', 'USE'),
    ('SELECT SUM(CAST(_2 AS INT)) FROM S3Object WHERE _1 = \'nobody\'',
     'IGNORE'),
])
def test_json_output(scanner, sql, header):
    data = (b'name,n,x,"we\\ird ""key""\t"\nann,1,0.5\nbob,2,1e3,'
            b'"c\x01\xc3\xa9\\"\n\n"d""q",4,-inf,5,6\nshort\n')
    same_answer(scanner, SelectRequest(
        sql, input=InputSerialization(csv=CSVInput(file_header_info=header)),
        output=OutputSerialization(format='JSON', json=JSONOutput(
            record_delimiter='|'))), data)


def test_csv_output_quotes_missing_and_null_always(scanner):
    always = CSVOutput(quote_fields='ALWAYS')
    same_answer(scanner, csv_request('SELECT _1, _2 FROM S3Object',
                                     output=always), b'a,b\nc\n')
    same_answer(scanner, csv_request(
        "SELECT SUM(CAST(_1 AS INT)), COUNT(*) FROM S3Object WHERE _1 = 'x'",
        output=always), b'a,b\nc\n')


@pytest.mark.parametrize('output', [
    CSVOutput(quote_fields='ALWAYS'),
    CSVOutput(field_delimiter='\t', record_delimiter='\r\n'),
    CSVOutput(quote_character="'", quote_escape_character='\\'),
    CSVOutput(quote_character=''),
    CSVOutput(field_delimiter='é|', quote_fields='ASNEEDED'),
])
def test_output_options(scanner, output):
    same_answer(scanner, csv_request('SELECT * FROM S3Object',
                                     output=output),
                b'a,"b,c","d""e",f\'g,h\th,"i\rj"\n')


def test_input_options(scanner):
    same_answer(scanner, csv_request(
        'SELECT _2 FROM S3Object', field_delimiter=';', quote_character="'",
        quote_escape_character="'", comments=''),
        b"a;'b;''c'\n#x;y\n;\n")
    same_answer(scanner, csv_request(
        'SELECT _2 FROM S3Object', quote_character=''), b'a,"b,c"\n')


def _table(rng: random.Random, rows: int) -> bytes:
    words = ['ann', 'Bob', 'c"d', 'e,f', '', ' 7 ', '-2', '3.5', 'x y']
    lines = []
    for _ in range(rows):
        fields = []
        for _ in range(rng.randrange(1, 5)):
            word = rng.choice(words) if rng.random() < 0.4 else \
                str(rng.randrange(-50, 50))
            if '"' in word or ',' in word or rng.random() < 0.1:
                word = '"%s"' % word.replace('"', '""')
            fields.append(word)
        lines.append(','.join(fields))
        if rng.random() < 0.05:
            lines.append('')
    return ('\n'.join(lines) + '\n').encode()


def _condition(rng: random.Random, depth: int = 0) -> str:
    if depth < 2 and rng.random() < 0.4:
        joined = ' %s ' % rng.choice(['AND', 'OR'])
        return '(' + joined.join(
            _condition(rng, depth + 1) for _ in range(2)) + ')'
    if depth < 2 and rng.random() < 0.1:
        return 'NOT ' + _condition(rng, depth + 1)
    column = '_%d' % rng.randrange(1, 4)
    op = rng.choice(['=', '<>', '!=', '<', '<=', '>', '>='])
    if rng.random() < 0.3:
        return "%s %s '%s'" % (column, op, rng.choice(['ann', 'c', '']))
    return 'CAST(%s AS INT) %s %d' % (column, op, rng.randrange(-20, 20))


def test_random_selects_and_ranges(scanner):
    rng = random.Random(7)
    # Only integers in _1 and _2, so that CASTs of them do not fail at once.
    for round_ in range(40):
        data = _table(rng, rng.randrange(0, 60))
        lines = data.split(b'\n')
        data = b'\n'.join(
            b'%d,%d,%s' % (rng.randrange(-30, 30), rng.randrange(-9, 9), line)
            if line else b'' for line in lines)
        if rng.random() < 0.3:
            data = data.rstrip(b'\n')
        sql = 'SELECT %s FROM S3Object WHERE %s' % (
            rng.choice(['*', '_3, _1', 'COUNT(*)', 'SUM(CAST(_2 AS INT))']),
            _condition(rng))
        scan_range = None
        if round_ % 2:
            start = rng.randrange(0, len(data) + 2)
            scan_range = ScanRange(start, start + rng.randrange(0, 80))
        same_answer(scanner, csv_request(sql, scan_range=scan_range), data)


def test_ranges_split_a_table_into_its_records(scanner):
    data = _table(random.Random(3), 200)
    whole = same_answer(scanner, csv_request('SELECT * FROM S3Object'), data)
    for cut in (1, 7, 100):
        parts = b''.join(
            same_answer(scanner, csv_request(
                'SELECT * FROM S3Object',
                scan_range=ScanRange(start, min(start + cut, len(data)) - 1)),
                data)
            for start in range(0, len(data), cut))
        assert parts == whole


def test_deep_conditions_stay_with_the_python_engine(scanner):
    deep = ' AND '.join(["_1 <> 'x'"] * 40)
    same_answer(scanner, csv_request('SELECT _1 FROM S3Object WHERE ' + deep),
                b'a\nx\n')
    nested = "_1 <> 'x'"
    for _ in range(selectscan.MAX_DEPTH + 2):
        nested = "(%s AND _1 <> 'y')" % nested
    deeper = csv_request('SELECT _1 FROM S3Object WHERE ' + nested)
    assert selectscan.plan(deeper, compile_query(deeper.expression),
                           10) is None


@pytest.mark.parametrize('request_', [
    SelectRequest('SELECT * FROM S3Object', input=InputSerialization(
        format='JSON', json=JSONInput())),
    SelectRequest('SELECT * FROM S3Object', input=InputSerialization(
        compression='BZIP2')),
    csv_request('SELECT * FROM S3Object', record_delimiter='\r\n'),
    csv_request('SELECT * FROM S3Object', allow_quoted_record_delimiter=True),
    csv_request('SELECT * FROM S3Object', field_delimiter='||'),
    csv_request('SELECT * FROM S3Object', quote_escape_character='\\'),
    csv_request('SELECT UPPER(_1) FROM S3Object'),
    csv_request('SELECT _1 FROM S3Object WHERE _1 = 5.5'),
    csv_request('SELECT _1 FROM S3Object WHERE _1 = %d' % (2 ** 53 + 1)),
    csv_request('SELECT _1 FROM S3Object WHERE CAST(_1 AS FLOAT) < 0.5'),
    csv_request('SELECT _1 FROM S3Object WHERE UPPER(_1) LIKE \'a%\''),
    csv_request('SELECT _1 FROM S3Object WHERE _1 IN (1.5, 2)'),
    csv_request('SELECT AVG(CAST(_1 AS INT)) FROM S3Object'),
    csv_request('SELECT name FROM S3Object'),   # names need USE
    csv_request('SELECT s FROM S3Object s'),
    csv_request('SELECT _1 FROM S3Object WHERE CAST(_1 AS FLOAT) < %d'
                % (2 ** 53 + 1)),
])
def test_what_the_python_engine_keeps(request_):
    assert selectscan.plan(request_, compile_query(request_.expression),
                       100) is None


def test_numbers_cast_as_python_casts_them(scanner):
    """Random number texts: every CAST to FLOAT prints the same double
    (the scanner's fast path and strtod both round correctly), every CAST
    to INT the same integer."""
    rng = random.Random(5)
    texts = []
    for _ in range(3000):
        digits = ''.join(rng.choice('0123456789')
                         for _ in range(rng.randrange(1, 20)))
        point = rng.randrange(0, len(digits) + 1)
        text = digits[:point] + rng.choice(['.', '']) + digits[point:]
        if rng.random() < 0.3:
            text += 'e%d' % rng.randrange(-40, 40)
        texts.append(rng.choice(['', '-', '+']) + text)
    data = '\n'.join(texts).encode()
    floats = same_answer(scanner, csv_request(
        'SELECT CAST(_1 AS FLOAT) FROM S3Object'), data)
    assert len(floats.splitlines()) == len(texts)
    small = '\n'.join(t for t in texts if len(t) < 12 and 'e' not in t)
    same_answer(scanner, csv_request('SELECT CAST(_1 AS INT) FROM S3Object'),
                small.encode())


_VALUES = ['0', '7', '-12', ' 42 ', '+3', '9223372036854775807', '1.5',
           '-0.25', '2e3', '1e400', 'nan', '-inf', 'abc', 'é', '日本', '',
           'x"y', 'a,b', 'a;b', 'q\'r', 'tab\there', '#hash', 'Z']


def _random_table(rng: random.Random, delimiter: str, quote: str,
                  header: List[str]) -> bytes:
    lines = [delimiter.join(header)] if header else []
    for _ in range(rng.randrange(0, 40)):
        fields = []
        for _ in range(rng.randrange(1, 6)):
            value = rng.choice(_VALUES)
            if quote and (rng.random() < 0.15 or delimiter in value
                          or value.startswith(quote)):
                value = quote + value.replace(quote, quote * 2) + quote
            elif delimiter in value or (quote and quote in value):
                value = value.replace(delimiter, '').replace(quote or '-',
                                                             '')
            fields.append(value)
        lines.append(delimiter.join(fields))
        if rng.random() < 0.05:
            lines.append(rng.choice(['', '#comment ' + delimiter + 'x']))
    text = '\n'.join(lines) + rng.choice(['\n', ''])
    return text.encode('utf-8')


def _random_query(rng: random.Random, names: List[str]) -> str:
    def column() -> str:
        if names and rng.random() < 0.5:
            name = rng.choice(names)
            if not name.isidentifier() or rng.random() < 0.5:
                return 's."%s"' % name
            return 's.' + name
        return rng.choice(['_%d', 's._%d']) % rng.randrange(1, 6)

    def condition(depth: int) -> str:
        roll = rng.random()
        if depth < 2 and roll < 0.3:
            return '(%s %s %s)' % (condition(depth + 1),
                                   rng.choice(['AND', 'OR']),
                                   condition(depth + 1))
        if depth < 2 and roll < 0.4:
            return 'NOT ' + condition(depth + 1)
        op = rng.choice(['=', '<>', '!=', '<', '<=', '>', '>='])
        if roll < 0.5:
            return rng.choice([
                "%s %sLIKE '%s'" % (column(), rng.choice(['', 'NOT ']),
                                    rng.choice(['a%', '%b', '%', '_', 'é_',
                                                'a_c', '%a%b%', '%7%',
                                                '_%_', ''])),
                "%s LIKE '!%%%%' ESCAPE '!'" % column(),
                "%s LIKE 'x#_%%' ESCAPE '#'" % column(),
                "%s %sIN ('abc', '7', 'é', '')" % (
                    column(), rng.choice(['', 'NOT '])),
                '%s IN (7, -12, 3)' % column(),
                'CAST(%s AS INT) IN (7, 0)' % column(),
                '%s %sBETWEEN %d AND %d' % (
                    column(), rng.choice(['', 'NOT ']),
                    rng.randrange(-20, 5), rng.randrange(0, 50)),
                "%s BETWEEN 'a' AND 'z'" % column(),
                '%s IS %sNULL' % (column(), rng.choice(['', 'NOT '])),
                '%s IS %sMISSING' % (column(), rng.choice(['', 'NOT ']))])
        if roll < 0.7:
            return "%s %s '%s'" % (column(), op,
                                   rng.choice(['7', 'abc', 'é', '', 'Z']))
        if roll < 0.8:
            return '%s %s %d' % (column(), op, rng.randrange(-20, 50))
        return 'CAST(%s AS %s) %s %d' % (column(),
                                         rng.choice(['INT', 'FLOAT']), op,
                                         rng.randrange(-20, 50))
    kind = rng.random()
    if kind < 0.3:
        items = '*'
    elif kind < 0.7:
        items = ', '.join(
            rng.choice([column(), 'CAST(%s AS INT)' % column(),
                        'CAST(%s AS FLOAT) AS f' % column()])
            for _ in range(rng.randrange(1, 4)))
    else:
        items = ', '.join(rng.choice([
            'COUNT(*)', 'COUNT(%s)' % column(),
            'SUM(CAST(%s AS INT))' % column(),
            'SUM(CAST(%s AS FLOAT))' % column(),
            'AVG(CAST(%s AS FLOAT))' % column(),
            '%s(CAST(%s AS %s))' % (rng.choice(['MIN', 'MAX']), column(),
                                    rng.choice(['INT', 'FLOAT'])),
            '%s(%s)' % (rng.choice(['MIN', 'MAX']), column())])
            for _ in range(rng.randrange(1, 4)))
    sql = 'SELECT %s FROM S3Object s' % items
    if rng.random() < 0.8:
        sql += ' WHERE ' + condition(0)
    if rng.random() < 0.15:
        sql += ' LIMIT %d' % rng.randrange(0, 5)
    return sql


def test_random_everything(scanner):
    """Random tables, options and queries of the scanner's subset, errors
    included: both engines give the same answer."""
    rng = random.Random(int(os.environ.get('NATIVE_SEED', 2026)))
    for _ in range(int(os.environ.get('NATIVE_ROUNDS', 400))):
        delimiter = rng.choice([',', ';', '\t', '|'])
        quote = rng.choice(['"', "'", ''])
        header_info = rng.choice(['NONE', 'USE', 'IGNORE'])
        names = (rng.sample(['a', 'B', 'name', 'n', 'A', 'x y'],
                            rng.randrange(1, 5))
                 if header_info != 'NONE' else [])
        data = _random_table(rng, delimiter, quote, names)
        sql = _random_query(rng, names if header_info == 'USE' else [])
        output = (OutputSerialization(format='JSON') if rng.random() < 0.3
                  else OutputSerialization(csv=CSVOutput(
                      quote_fields=rng.choice(['ASNEEDED', 'ALWAYS']),
                      field_delimiter=rng.choice([',', ';']))))
        scan_range = None
        if rng.random() < 0.2 and data:
            start = rng.randrange(0, len(data))
            scan_range = ScanRange(start, start + rng.randrange(0, 60))
        compression = 'NONE'
        if scan_range is None and rng.random() < 0.2:
            compression = 'GZIP'
            data = _gzip_member(data, rng.choice([0, 1, 9]))
        request = SelectRequest(
            sql, input=InputSerialization(
                compression=compression, csv=CSVInput(
                    file_header_info=header_info, field_delimiter=delimiter,
                    quote_character=quote, quote_escape_character=quote,
                    comments=rng.choice(['#', '']))),
            output=output, scan_range=scan_range,
            request_progress=rng.random() < 0.2)
        same_answer(scanner, request, data)


def _gzip_member(data: bytes, level: int, **header) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode='wb', compresslevel=level,
                       **header) as packed:
        packed.write(data)
    return out.getvalue()


def _table_bytes(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return ''.join('%d,%s,%d\n' % (i, rng.choice(['ann', 'bob', 'é']),
                                   rng.randrange(100))
                   for i in range(rows)).encode()


@pytest.mark.parametrize('level', [0, 1, 6, 9])
def test_gzip_input_is_inflated_as_it_is_read(scanner, level):
    data = _table_bytes(20000, level)
    whole = same_answer(scanner, gzip_request(
        'SELECT _1, _2 FROM S3Object WHERE CAST(_3 AS INT) < 5'),
        _gzip_member(data, level))
    assert whole.count(b'\n') > 100


def gzip_request(sql: str) -> SelectRequest:
    return SelectRequest(sql, input=InputSerialization(compression='GZIP'))


def test_gzip_members_one_after_another_and_header_fields(scanner):
    parts = [_table_bytes(n, n) for n in (0, 1, 3000, 7)]
    packed = b''.join(_gzip_member(part, 6) for part in parts)
    named = _gzip_member(b'x,1,2\n', 6, filename='table.csv', mtime=7)
    answer = same_answer(scanner, gzip_request('SELECT * FROM S3Object'),
                         packed + named + zlib_fixed_member(b'y,3,4\n'))
    assert answer == b''.join(parts) + b'x,1,2\ny,3,4\n'


def zlib_fixed_member(data: bytes) -> bytes:
    """A member whose deflate data uses the fixed codes (a short input),
    with a header CRC (FHCRC) and an extra field (FEXTRA)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflater.compress(data) + deflater.flush()
    header = b'\x1f\x8b\x08\x06' + b'\0' * 6 + b'\x03\x00abc'
    header += struct.pack('<H', zlib.crc32(header) & 0xFFFF)
    return header + body + struct.pack('<II', zlib.crc32(data), len(data))


@pytest.mark.parametrize('damage', [
    lambda z: z[:-5],                    # TruncatedInput
    lambda z: z[:len(z) // 2],
    lambda z: z[:5],
    lambda z: z + b'\x00',               # another member, bad header
    lambda z: z + b'\x1f',               # another member, cut short
    lambda z: z[:-8] + b'\0\0\0\0' + z[-4:],   # CRC
    lambda z: z[:-4] + b'\1\0\0\0',            # length
    lambda z: b'plain,csv\n',
    lambda z: z[:3] + b'\xff' + z[4:],   # reserved flags
    lambda z: z[:20] + bytes(b ^ 0x5A for b in z[20:40]) + z[40:],
])
def test_bad_gzip_fails_as_the_python_engine_does(scanner, damage):
    data = _table_bytes(5000, 1)
    same_answer(scanner, gzip_request('SELECT COUNT(*) FROM S3Object'),
                damage(_gzip_member(data, 6)))


def test_gzip_counts_scanned_and_processed_bytes(scanner):
    data = _table_bytes(3000, 2)
    packed = _gzip_member(data, 6)
    plan = selectscan.plan(gzip_request('SELECT COUNT(*) FROM S3Object'),
                           compile_query('SELECT COUNT(*) FROM S3Object'),
                           len(packed))
    stats = [m for m in eventstream.MessageDecoder().feed(
        run_native(scanner, plan, packed))
        if m.headers.get(':event-type') == 'Stats'][0].payload.decode()
    assert '<BytesScanned>%d</BytesScanned>' % len(packed) in stats
    assert '<BytesProcessed>%d</BytesProcessed>' % len(data) in stats


def test_corrupt_gzip_fails_in_both_engines(scanner):
    """Random damage: where the Python engine's answer ends in an error,
    the scanner's does too, else both are the same.  (Which error comes
    first may differ: the engines inflate different amounts before they
    parse.)"""
    rng = random.Random(int(os.environ.get('NATIVE_SEED', 9)))
    packed = _gzip_member(_table_bytes(4000, 3), 6)
    request = gzip_request('SELECT _1 FROM S3Object WHERE _2 = \'bob\'')
    query = compile_query(request.expression)
    for _ in range(int(os.environ.get('NATIVE_ROUNDS', 60))):
        damaged = bytearray(packed)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        damaged = bytes(damaged)
        plan = selectscan.plan(request, query, len(damaged))
        ours = summary(run_native(scanner, plan, damaged), True)
        theirs = summary(run_python(request, damaged), True)
        if theirs[1][-1].startswith('error'):
            assert ours[1][-1].startswith('error'), (ours, theirs)
        else:
            assert ours == theirs


def test_a_scanner_older_than_its_source_is_not_used(tmp_path):
    wasm, source = tmp_path / 'scan.wasm', tmp_path / 'scan.c'
    assert selectscan.built_scanner(str(wasm)) is None
    wasm.write_bytes(b'\0asm')
    assert selectscan.built_scanner(str(wasm)) == b'\0asm'   # no source
    source.write_text('int main(void) { return 0; }')
    os.utime(wasm, (1000, 1000))
    os.utime(source, (2000, 2000))
    assert selectscan.built_scanner(str(wasm)) is None
    os.utime(wasm, (3000, 3000))
    assert selectscan.built_scanner(str(wasm)) == b'\0asm'


@pytest.mark.parametrize('data, code', [
    ('1,' + 'é' * 40 + '\n', 'CastFailed'),
    ('1,"a"é' + 'ü' * 30 + '\n', 'CSVUnescapedQuote'),
    ('1,' + 'ü' * 30 + '"' + 'é' * 30 + '\n', 'CastFailed'),
    ('1,2\n"' + 'é' * 30 + '\nx\n', 'CSVEscapingRecordDelimiter'),
])
def test_error_messages_quote_whole_characters(scanner, data, code):
    """A quoted field is cut at a character, never inside one: an event's
    headers are UTF-8 (the decoder would fail otherwise)."""
    request = csv_request('SELECT CAST(_2 AS INT) FROM S3Object')
    raw = data.encode('utf-8')
    plan = selectscan.plan(request, compile_query(request.expression),
                           len(raw))
    [error] = [m for m in eventstream.MessageDecoder().feed(
        run_native(scanner, plan, raw)) if m.headers.get(':error-code')]
    assert error.headers[':error-code'] == code
    assert isinstance(error.headers[':error-message'], str)
