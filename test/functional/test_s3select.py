"""S3 Select (``SelectObjectContent``) through boto3 and raw signed requests.

Every select runs as a ZeroCloud job next to the object; the test cluster
encrypts at rest, so every object here is decrypted as the sandbox reads
it.  What is checked, with botocore's own event-stream parser reading
every answer:

- CSV and JSON (LINES, DOCUMENT) input with their options, CSV and JSON
  output, projections, filters, aggregates, ``LIMIT``, positional and
  header columns, GZIP and BZIP2 input;
- ``ScanRange`` splits whose answers, joined, are the whole answer;
- an erasure-coded object, and an object three times the test cluster's
  8 MiB RAM limit;
- ``Stats`` (``BytesScanned`` the object's size for a full scan,
  ``BytesReturned`` the records' bytes) and ``Progress`` events;
- an error found mid-stream arrives as an ``error`` event after the
  records before it; bad SQL and bad XML are ``400`` with S3's codes; a
  user without read rights gets ``403 AccessDenied``, a missing key
  ``404 NoSuchKey``;
- each select is a job: its line reaches ``AUTH_stats``.
"""

import bz2
import csv
import gzip
import io
import json
import random
import time
from typing import Dict, List, Optional

import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EventStreamError

from .helpers import REQUEST_TIMEOUT, Account, unique
from .test_s3api import s3_client

PEOPLE = [('Name', 'Age', 'City', 'Joined'),
          ('Ann', '34', 'Oslo', '2019-03-01T10:00:00Z'),
          ('Bob', '27', 'Rome', '2021-07-15T08:30:00Z'),
          ('Cid', '45', 'Oslo', '2015-01-20T00:00:00Z'),
          ('Dee', '19', 'Lima', '2023-11-30T23:59:59Z'),
          ('Eve', '61', 'Rome', '2010-05-05T12:00:00Z')]
PEOPLE_CSV = ''.join(','.join(row) + '\n' for row in PEOPLE).encode()
CSV_USE = {'CSV': {'FileHeaderInfo': 'USE'}}
CSV_OUT = {'CSV': {}}
JSON_OUT = {'JSON': {}}


@pytest.fixture(scope='module')
def account(cluster):
    return Account(cluster)


@pytest.fixture(scope='module')
def s3(cluster):
    return s3_client(cluster)


@pytest.fixture(scope='module')
def bucket(s3):
    name = unique('select')
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key='people.csv', Body=PEOPLE_CSV)
    return name


class Answer:
    """The events of one select, as botocore parsed them."""

    def __init__(self, events: List[Dict], request_id: str = '',
                 engine: Optional[str] = None):
        self.events = events
        self.request_id = request_id
        #: Which engine answered (``X-Zerocloud-Select-Engine``).
        self.engine = engine
        self.records = b''.join(e['Records']['Payload'] for e in events
                                if 'Records' in e)
        self.stats = next((e['Stats']['Details'] for e in events
                           if 'Stats' in e), None)
        self.progress = [e['Progress']['Details'] for e in events
                         if 'Progress' in e]
        self.ended = any('End' in e for e in events)

    @property
    def text(self) -> str:
        return self.records.decode('utf-8')

    def json_rows(self) -> List[Dict]:
        return [json.loads(line) for line in self.text.splitlines()]


def select(s3, bucket: str, key: str, sql: str,
           inp: Optional[Dict] = None, out: Optional[Dict] = None,
           **extra) -> Answer:
    resp = s3.select_object_content(
        Bucket=bucket, Key=key, Expression=sql, ExpressionType='SQL',
        InputSerialization=inp if inp is not None else CSV_USE,
        OutputSerialization=out if out is not None else CSV_OUT, **extra)
    meta = resp['ResponseMetadata']
    assert meta['HTTPStatusCode'] == 200
    return Answer(list(resp['Payload']), meta['RequestId'],
                  meta['HTTPHeaders'].get('x-zerocloud-select-engine'))


def test_csv_projection_filter_and_limit(s3, bucket):
    answer = select(s3, bucket, 'people.csv',
                    "SELECT s.Name, s.City FROM S3Object s "
                    "WHERE CAST(s.Age AS INT) > 30")
    assert answer.text == 'Ann,Oslo\nCid,Oslo\nEve,Rome\n'
    assert answer.engine == 'native'
    assert answer.ended
    assert answer.stats == {'BytesScanned': len(PEOPLE_CSV),
                            'BytesProcessed': len(PEOPLE_CSV),
                            'BytesReturned': len(answer.records)}
    # LIKE, BETWEEN, IN and a field compared as a number: native too.
    matched = select(s3, bucket, 'people.csv',
                     "SELECT s.Name FROM S3Object s WHERE s.City LIKE 'O%' "
                     "AND s.Age BETWEEN 20 AND 50 OR s.Name IN ('Dee')",
                     out=JSON_OUT)
    assert matched.json_rows() == [{'Name': 'Ann'}, {'Name': 'Cid'},
                                   {'Name': 'Dee'}]
    assert matched.engine == 'native'
    limited = select(s3, bucket, 'people.csv',
                     'SELECT * FROM S3Object LIMIT 2')
    assert limited.text == 'Ann,34,Oslo,2019-03-01T10:00:00Z\n' \
        'Bob,27,Rome,2021-07-15T08:30:00Z\n'


def test_positional_columns_and_header_handling(s3, bucket):
    none = select(s3, bucket, 'people.csv', 'SELECT _1, s._3 FROM S3Object s',
                  inp={'CSV': {'FileHeaderInfo': 'NONE'}})
    assert none.text.splitlines() == ['%s,%s' % (r[0], r[2]) for r in PEOPLE]
    ignore = select(s3, bucket, 'people.csv', 'SELECT _1 FROM S3Object',
                    inp={'CSV': {'FileHeaderInfo': 'IGNORE'}})
    assert ignore.text.splitlines() == [r[0] for r in PEOPLE[1:]]
    quoted = select(s3, bucket, 'people.csv',
                    'SELECT s."Name" FROM S3Object s '
                    'WHERE s."City" = \'Rome\'')
    assert quoted.text == 'Bob\nEve\n'


def test_csv_options_in_and_out(s3, bucket):
    # ';' between fields, '|' between records, "'" quotes, '%' comments,
    # a quoted field holding both delimiters and an escaped quote.
    data = (b"%comment;skipped|id;note|1;'a;b|c'|2;'it\\'s'|"
            b"3;plain|")
    s3.put_object(Bucket=bucket, Key='options.csv', Body=data)
    inp = {'CSV': {'FileHeaderInfo': 'USE', 'Comments': '%',
                   'FieldDelimiter': ';', 'RecordDelimiter': '|',
                   'QuoteCharacter': "'", 'QuoteEscapeCharacter': '\\',
                   'AllowQuotedRecordDelimiter': True}}
    out = {'CSV': {'QuoteFields': 'ALWAYS', 'FieldDelimiter': '\t',
                   'RecordDelimiter': '\n', 'QuoteCharacter': '"',
                   'QuoteEscapeCharacter': '"'}}
    answer = select(s3, bucket, 'options.csv',
                    'SELECT id, note FROM S3Object', inp=inp, out=out)
    assert answer.text == ('"1"\t"a;b|c"\n"2"\t"it\'s"\n'
                           '"3"\t"plain"\n')
    lines = select(s3, bucket, 'options.csv',
                   "SELECT note FROM S3Object WHERE id = '1'", inp=inp,
                   out={'JSON': {'RecordDelimiter': ','}})
    assert lines.text == '{"note":"a;b|c"},'


def test_aggregates(s3, bucket):
    answer = select(s3, bucket, 'people.csv',
                    'SELECT COUNT(*), SUM(CAST(Age AS INT)), '
                    'MIN(CAST(Age AS INT)), MAX(CAST(Age AS INT)) '
                    'FROM S3Object')
    assert answer.text == '5,186,19,61\n'
    avg = select(s3, bucket, 'people.csv',
                 "SELECT AVG(CAST(Age AS FLOAT)) FROM S3Object s "
                 "WHERE s.City = 'Oslo'")
    assert float(avg.text) == pytest.approx(39.5)


def test_functions_and_json_output(s3, bucket):
    answer = select(
        s3, bucket, 'people.csv',
        "SELECT UPPER(Name) AS who, CHAR_LENGTH(City) AS n, "
        "EXTRACT(YEAR FROM TO_TIMESTAMP(Joined)) AS joined, "
        "CASE WHEN CAST(Age AS INT) >= 40 THEN 'senior' ELSE 'junior' END "
        "AS band FROM S3Object WHERE Name LIKE '_e%'", out=JSON_OUT)
    assert answer.json_rows() == [
        {'who': 'DEE', 'n': 4, 'joined': 2023, 'band': 'junior'}]
    assert answer.engine == 'python'   # what the native scanner leaves


def test_json_lines_and_document_input(s3, bucket):
    rows = [{'id': i, 'tags': ['a', 'b'][:i % 3], 'user': {'name': 'u%d' % i,
                                                           'score': i * 1.5}}
            for i in range(1, 8)]
    lines = ''.join(json.dumps(r) + '\n' for r in rows).encode()
    document = json.dumps({'items': rows}, indent=2).encode()
    s3.put_object(Bucket=bucket, Key='rows.jsonl', Body=lines)
    s3.put_object(Bucket=bucket, Key='doc.json', Body=document)
    answer = select(s3, bucket, 'rows.jsonl',
                    'SELECT s.id, s.user.name FROM S3Object s '
                    'WHERE s.user.score > 6', inp={'JSON': {'Type': 'LINES'}},
                    out=JSON_OUT)
    assert answer.json_rows() == [{'id': i, 'name': 'u%d' % i}
                                  for i in range(5, 8)]
    items = select(s3, bucket, 'doc.json',
                   'SELECT i.id FROM S3Object[*].items[*] i WHERE i.id < 3',
                   inp={'JSON': {'Type': 'DOCUMENT'}}, out=JSON_OUT)
    assert items.json_rows() == [{'id': 1}, {'id': 2}]


def test_parquet_input(s3, bucket):
    import pyarrow
    import pyarrow.parquet
    table = pyarrow.table({'name': ['ann', 'bob', None, 'dee'],
                           'score': [1.5, 7.25, 3.0, 9.5],
                           'n': pyarrow.array([1, 2, 3, None],
                                              pyarrow.int64())})
    packed = io.BytesIO()
    pyarrow.parquet.write_table(table, packed, compression='snappy')
    s3.put_object(Bucket=bucket, Key='scores.parquet', Body=packed.getvalue())
    answer = select(s3, bucket, 'scores.parquet',
                    'SELECT s.name, s.n FROM S3Object s WHERE s.score > 2',
                    inp={'Parquet': {}}, out=JSON_OUT)
    assert answer.json_rows() == [{'name': 'bob', 'n': 2},
                                  {'name': None, 'n': 3},
                                  {'name': 'dee', 'n': None}]
    # Only the columns the query names are read, and counted.
    metadata = pyarrow.parquet.ParquetFile(
        io.BytesIO(packed.getvalue())).metadata.row_group(0)
    assert answer.stats['BytesScanned'] == sum(
        metadata.column(column).total_compressed_size for column in range(3))
    one = select(s3, bucket, 'scores.parquet',
                 'SELECT SUM(s.score) FROM S3Object s', inp={'Parquet': {}})
    assert one.text == '21.25\n'
    assert one.stats['BytesScanned'] == \
        metadata.column(1).total_compressed_size


@pytest.mark.parametrize('compression', ['GZIP', 'BZIP2'])
def test_compressed_input(s3, bucket, compression):
    pack = gzip.compress if compression == 'GZIP' else bz2.compress
    key = 'people.csv.' + compression.lower()
    packed = pack(PEOPLE_CSV)
    s3.put_object(Bucket=bucket, Key=key, Body=packed)
    answer = select(s3, bucket, key, 'SELECT Name FROM S3Object',
                    inp=dict(CSV_USE, CompressionType=compression))
    assert answer.text == 'Ann\nBob\nCid\nDee\nEve\n'
    assert answer.stats['BytesScanned'] == len(packed)
    assert answer.stats['BytesProcessed'] == len(PEOPLE_CSV)
    # The native scanner inflates GZIP itself; BZIP2 is the Python
    # engine's.
    assert answer.engine == ('native' if compression == 'GZIP'
                             else 'python')


def _numbers_csv(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    for number in range(rows):
        writer.writerow([number, rng.randrange(1000),
                         'note "%d", with comma' % rng.randrange(100)])
    return out.getvalue().encode()


def test_scan_ranges_split_the_answer_exactly(s3, bucket):
    data = _numbers_csv(3000, seed=7)
    s3.put_object(Bucket=bucket, Key='numbers.csv', Body=data)
    inp = {'CSV': {'FileHeaderInfo': 'NONE'}}
    whole = select(s3, bucket, 'numbers.csv', 'SELECT * FROM S3Object',
                   inp=inp)
    assert whole.records == data
    cuts = sorted(random.Random(1).sample(range(1, len(data)), 4))
    bounds = list(zip([0] + cuts, [c - 1 for c in cuts] + [len(data) - 1]))
    parts = [select(s3, bucket, 'numbers.csv', 'SELECT * FROM S3Object',
                    inp=inp, ScanRange={'Start': start, 'End': end})
             for start, end in bounds]
    assert b''.join(p.records for p in parts) == data
    assert all(p.text for p in parts)


def test_erasure_coded_object(s3, account):
    container = unique('select-ec')
    account.put_container(container, **{'X-Storage-Policy': 'ec'})
    data = _numbers_csv(20000, seed=3)
    account.put_object(container, 'numbers.csv', data, 'text/csv')
    answer = select(s3, container, 'numbers.csv',
                    'SELECT SUM(CAST(_2 AS INT)), COUNT(*) FROM S3Object',
                    inp={'CSV': {}})
    expected = sum(int(line.split(b',')[1]) for line in data.splitlines())
    assert answer.text == '%d,20000\n' % expected
    assert answer.engine == 'native'   # streamed to it, decoded
    assert answer.stats['BytesScanned'] == len(data)


def test_an_object_larger_than_the_ram_limit(s3, bucket):
    # 24 MiB of CSV against the test cluster's 8 MiB zerovm_ram_limit.
    line = b'%08d,' + b'x' * 40 + b',%d\n'
    rows = (24 << 20) // (len(line) + 2)
    data = b''.join(line % (i, i % 7) for i in range(rows))
    s3.put_object(Bucket=bucket, Key='large.csv', Body=data)
    answer = select(s3, bucket, 'large.csv',
                    "SELECT COUNT(*), SUM(CAST(_3 AS INT)) FROM S3Object "
                    "WHERE _3 = '6'", inp={'CSV': {}},
                    RequestProgress={'Enabled': True})
    expected = sum(1 for i in range(rows) if i % 7 == 6)
    assert answer.text == '%d,%d\n' % (expected, expected * 6)
    assert answer.engine == 'native'
    assert answer.stats['BytesScanned'] == len(data)
    assert answer.progress and answer.progress[-1]['BytesScanned'] \
        == len(data)


def test_an_error_mid_stream_is_an_error_event(s3, bucket):
    rows = ['%d' % i for i in range(5000)] + ['not-a-number']
    s3.put_object(Bucket=bucket, Key='bad.csv',
                  Body=('\n'.join(rows) + '\n').encode())
    resp = s3.select_object_content(
        Bucket=bucket, Key='bad.csv', ExpressionType='SQL',
        Expression='SELECT CAST(_1 AS INT) FROM S3Object',
        InputSerialization={'CSV': {}}, OutputSerialization=CSV_OUT)
    received = []
    with pytest.raises(EventStreamError) as failed:
        for event in resp['Payload']:
            received.append(event)
    assert failed.value.response['Error']['Code'] == 'CastFailed'
    assert resp['ResponseMetadata']['HTTPHeaders'][
        'x-zerocloud-select-engine'] == 'native'
    records = b''.join(e['Records']['Payload'] for e in received
                       if 'Records' in e)
    assert records == ('\n'.join(rows[:5000]) + '\n').encode()
    assert not any('End' in e for e in received)


def test_an_error_before_the_first_event_is_a_400_with_s3s_code(s3, bucket):
    """A header name the CSV lacks is only found once the sandbox read the
    header: before any event, so the answer is S3's error, not a stream."""
    with pytest.raises(ClientError) as bad:
        select(s3, bucket, 'people.csv', 'SELECT s.Nom FROM S3Object s')
    assert bad.value.response['ResponseMetadata']['HTTPStatusCode'] == 400
    error = bad.value.response['Error']
    assert error['Code'] == 'EvaluatorBindingDoesNotExist'
    assert 'No column Nom in the header' in error['Message']


def test_bad_sql_is_a_400_with_s3s_code(s3, bucket):
    with pytest.raises(ClientError) as bad:
        s3.select_object_content(
            Bucket=bucket, Key='people.csv', ExpressionType='SQL',
            Expression='SELECT FROM S3Object WHERE',
            InputSerialization=CSV_USE, OutputSerialization=CSV_OUT)
    error = bad.value.response['Error']
    assert bad.value.response['ResponseMetadata']['HTTPStatusCode'] == 400
    assert error['Code'].startswith('Parse'), error


def test_rights_and_missing_keys(cluster, s3, bucket):
    with pytest.raises(ClientError) as denied:
        select(s3_client(cluster, 'test:tester3', 'testing3'), bucket,
               'people.csv', 'SELECT * FROM S3Object')
    assert denied.value.response['Error']['Code'] == 'AccessDenied'
    assert denied.value.response['ResponseMetadata']['HTTPStatusCode'] == 403
    with pytest.raises(ClientError) as missing:
        select(s3, bucket, 'no-such.csv', 'SELECT * FROM S3Object')
    assert missing.value.response['Error']['Code'] == 'NoSuchKey'


def _signed_post(cluster, path: str, body: bytes,
                 query: str = 'select&select-type=2') -> requests.Response:
    url = '%s%s?%s' % (cluster.proxy_url, path, query)
    request = AWSRequest(method='POST', url=url, data=body)
    S3SigV4Auth(Credentials('test:tester', 'testing'), 's3',
                'us-east-1').add_auth(request)
    prepared = request.prepare()
    return requests.post(prepared.url, data=body,
                         headers=dict(prepared.headers),
                         timeout=REQUEST_TIMEOUT)


def test_bad_xml_is_malformed_xml(cluster, bucket):
    resp = _signed_post(cluster, '/%s/people.csv' % bucket,
                        b'<SelectObjectContentRequest><Expression>')
    assert resp.status_code == 400, resp.text
    assert '<Code>MalformedXML</Code>' in resp.text
    unknown = _signed_post(
        cluster, '/%s/people.csv' % bucket,
        b'<SelectObjectContentRequest><Expression>SELECT * FROM S3Object'
        b'</Expression><ExpressionType>SQL</ExpressionType>'
        b'<InputSerialization><CSV/></InputSerialization>'
        b'<OutputSerialization><CSV/></OutputSerialization>'
        b'<Surprise/></SelectObjectContentRequest>')
    assert unknown.status_code == 400, unknown.text
    assert '<Code>MalformedXML</Code>' in unknown.text


def test_a_raw_signed_request_gets_the_event_stream(cluster, bucket):
    resp = _signed_post(
        cluster, '/%s/people.csv' % bucket,
        b'<SelectObjectContentRequest xmlns="http://s3.amazonaws.com/doc/'
        b'2006-03-01/"><Expression>SELECT Name FROM S3Object s WHERE '
        b's.City = \'Lima\'</Expression><ExpressionType>SQL</ExpressionType>'
        b'<InputSerialization><CSV><FileHeaderInfo>USE</FileHeaderInfo>'
        b'</CSV></InputSerialization><OutputSerialization><CSV/>'
        b'</OutputSerialization></SelectObjectContentRequest>')
    assert resp.status_code == 200, resp.text
    assert resp.headers.get('Transfer-Encoding') == 'chunked'
    from botocore.eventstream import EventStreamBuffer
    parsed = EventStreamBuffer()
    parsed.add_data(resp.content)
    kinds = [m.headers[':event-type'] for m in parsed]
    assert kinds[0] == 'Records' and kinds[-2:] == ['Stats', 'End']


def test_each_select_is_accounted(cluster, s3, bucket):
    stats = cluster.storage_url('stats') + '/AUTH_test'
    token = {'X-Auth-Token': cluster.token('stats')}

    def names() -> set:
        resp = requests.get(stats, headers=token, timeout=REQUEST_TIMEOUT)
        return set(resp.text.split()) if resp.status_code == 200 else set()
    before = names()
    answer = select(s3, bucket, 'people.csv', 'SELECT COUNT(*) FROM S3Object')
    found = []
    deadline = time.monotonic() + 15
    while not found and time.monotonic() < deadline:
        time.sleep(0.5)
        for name in names() - before:
            text = requests.get(stats + '/' + name, headers=token,
                                timeout=REQUEST_TIMEOUT).text
            found += [line for line in text.splitlines()
                      if ' %s select (' % answer.request_id in line]
    assert len(found) == 1, found
    assert found[0].endswith(' [ok]')


def test_signature_version_2(cluster, bucket):
    v2 = s3_client(cluster, signature_version='s3')
    answer = select(v2, bucket, 'people.csv', 'SELECT COUNT(*) FROM S3Object')
    assert answer.text == '5\n'
    with pytest.raises(ClientError) as wrong:
        select(s3_client(cluster, secret='wrong', signature_version='s3'),
               bucket, 'people.csv', 'SELECT COUNT(*) FROM S3Object')
    assert wrong.value.response['Error']['Code'] == 'SignatureDoesNotMatch'


def test_a_long_expression_runs_and_a_deep_one_is_refused(s3, bucket):
    # About 150 KB of SQL, as generated queries write it.
    names = ["'%s'" % row[0] for row in PEOPLE[1:3]] + \
        ["'nobody%d'" % i for i in range(9000)]
    long_sql = 'SELECT Name FROM S3Object WHERE ' + ' OR '.join(
        'Name = %s' % name for name in names)
    assert len(long_sql) > 140000
    assert select(s3, bucket, 'people.csv', long_sql).text == 'Ann\nBob\n'
    with pytest.raises(ClientError) as deep:
        select(s3, bucket, 'people.csv', 'SELECT * FROM S3Object WHERE ' +
               '(' * 20000 + 'Name = 1' + ')' * 20000)
    assert deep.value.response['Error']['Code'] == 'UnsupportedSqlStructure'
    assert deep.value.response['ResponseMetadata']['HTTPStatusCode'] == 400


def test_json_lines_scan_ranges_and_ranges_s3_cannot_split(s3, bucket):
    lines = b''.join(b'{"n": %d, "text": "%s"}\n' % (i, b'x' * (i % 17))
                     for i in range(2000))
    s3.put_object(Bucket=bucket, Key='split.jsonl', Body=lines)
    inp = {'JSON': {'Type': 'LINES'}}
    cuts = [0, 777, 20000, len(lines) - 5, len(lines)]
    parts = [select(s3, bucket, 'split.jsonl', 'SELECT s.n FROM S3Object s',
                    inp=inp, out=JSON_OUT,
                    ScanRange={'Start': start, 'End': stop - 1})
             for start, stop in zip(cuts, cuts[1:])]
    numbers = [row['n'] for part in parts for row in part.json_rows()]
    assert numbers == list(range(2000))
    s3.put_object(Bucket=bucket, Key='split.jsonl.gz', Body=gzip.compress(
        lines))
    with pytest.raises(ClientError) as refused:
        select(s3, bucket, 'split.jsonl.gz', 'SELECT * FROM S3Object',
               inp=dict(inp, CompressionType='GZIP'),
               ScanRange={'Start': 0, 'End': 100})
    assert refused.value.response['Error']['Code'] == \
        'UnsupportedScanRangeInput'


def test_parquet_in_the_ec_policy(s3, account):
    import pyarrow
    import pyarrow.parquet
    container = unique('select-ec-parquet')
    account.put_container(container, **{'X-Storage-Policy': 'ec'})

    def store(name: str, table) -> None:
        packed = io.BytesIO()
        pyarrow.parquet.write_table(table, packed, compression='none')
        account.put_object(container, name, packed.getvalue(),
                           'application/octet-stream')
    # Small: handed to the sandbox whole, read from its end as Parquet is.
    store('small.parquet', pyarrow.table({'n': [1, 2, 3]}))
    assert select(s3, container, 'small.parquet',
                  'SELECT SUM(n) FROM S3Object', inp={'Parquet': {}}
                  ).text == '6\n'
    # Past the test cluster's 8 MiB RAM limit it arrives as a stream, which
    # Parquet cannot be read from: a clear error, not a wrong answer.
    noise = random.Random(5)
    store('large.parquet', pyarrow.table({'blob': [
        noise.randbytes(1 << 20).hex() for _ in range(6)]}))
    with pytest.raises(ClientError) as failed:
        s3.select_object_content(
            Bucket=container, Key='large.parquet', ExpressionType='SQL',
            Expression='SELECT COUNT(*) FROM S3Object', InputSerialization={
                'Parquet': {}}, OutputSerialization=CSV_OUT)
    assert failed.value.response['ResponseMetadata']['HTTPStatusCode'] == 400
    error = failed.value.response['Error']
    assert error['Code'] == 'ParquetParsingError'
    assert 'as a stream' in error['Message']


def test_select_needs_select_type_2(cluster, bucket):
    body = (b'<SelectObjectContentRequest><Expression>SELECT * FROM S3Object'
            b'</Expression><ExpressionType>SQL</ExpressionType>'
            b'<InputSerialization><CSV/></InputSerialization>'
            b'<OutputSerialization><CSV/></OutputSerialization>'
            b'</SelectObjectContentRequest>')
    resp = _signed_post(cluster, '/%s/people.csv' % bucket, body,
                        query='select&select-type=1')
    assert resp.status_code == 400, resp.text
    assert '<Code>InvalidRequestParameter</Code>' in resp.text
