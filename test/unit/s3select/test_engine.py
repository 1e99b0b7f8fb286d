"""The sandbox side of S3 Select, run on the host: request + object bytes
in, the whole event stream out."""

import bz2
import io
import json

from zerocloud.s3select import engine, eventstream
from zerocloud.s3select.model import (
    CSVInput, InputSerialization, JSONInput, OutputSerialization,
    SelectRequest)

DATA = b'name,n\nann,1\nbob,2\ncid,x\n'


def events(request: SelectRequest, data: bytes) -> list:
    out = io.BytesIO()
    engine.run(request, io.BytesIO(data), len(data), out)
    decoder = eventstream.MessageDecoder()
    messages = decoder.feed(out.getvalue())
    assert decoder.buffered == 0
    return messages


def kinds(messages) -> list:
    return [m.headers.get(':event-type') or m.headers[':message-type']
            for m in messages]


def records(messages) -> bytes:
    return b''.join(m.payload for m in messages
                    if m.headers.get(':event-type') == 'Records')


def csv_use(sql: str, **request) -> SelectRequest:
    return SelectRequest(sql, input=InputSerialization(
        csv=CSVInput(file_header_info='USE')), **request)


def test_records_then_stats_then_end():
    messages = events(csv_use("SELECT name FROM S3Object WHERE n = '2'"),
                      DATA)
    assert kinds(messages) == ['Records', 'Stats', 'End']
    assert records(messages) == b'bob\n'
    stats = messages[1].payload.decode()
    assert '<BytesScanned>%d</BytesScanned>' % len(DATA) in stats
    assert '<BytesReturned>4</BytesReturned>' in stats


def test_a_select_of_nothing_still_ends():
    messages = events(csv_use("SELECT name FROM S3Object WHERE n = '9'"),
                      DATA)
    assert kinds(messages) == ['Stats', 'End']


def test_an_error_while_scanning_follows_the_rows_before_it():
    messages = events(csv_use('SELECT CAST(n AS INT) FROM S3Object'), DATA)
    assert kinds(messages) == ['Records', 'error']
    assert records(messages) == b'1\n2\n'
    assert messages[-1].headers[':error-code'] == 'CastFailed'


def test_json_output_and_compressed_json_input():
    data = bz2.compress(b'{"a": {"b": 1}}\n{"a": {"b": 5}}\n')
    request = SelectRequest(
        'SELECT s.a.b AS v FROM S3Object s WHERE s.a.b > 2',
        input=InputSerialization(format='JSON', compression='BZIP2',
                                 json=JSONInput(type='LINES')),
        output=OutputSerialization(format='JSON'))
    messages = events(request, data)
    assert [json.loads(line) for line in records(messages).splitlines()] \
        == [{'v': 5}]
    stats = messages[-2].payload.decode()
    assert '<BytesScanned>%d</BytesScanned>' % len(data) in stats
    assert '<BytesProcessed>32</BytesProcessed>' in stats


def test_a_long_scan_sends_keep_alives_and_progress(monkeypatch):
    monkeypatch.setattr(engine, 'KEEP_ALIVE', 0.0)
    data = b''.join(b'%d\n' % i for i in range(100000))
    messages = events(SelectRequest(
        "SELECT _1 FROM S3Object WHERE _1 = 'none'",
        request_progress=True), data)
    found = kinds(messages)
    assert 'Cont' in found and 'Progress' in found
    assert found[-3:] == ['Progress', 'Stats', 'End']
    assert '<BytesScanned>%d</BytesScanned>' % len(data) in \
        messages[-3].payload.decode()


def test_records_are_cut_into_events_of_bounded_size(monkeypatch):
    monkeypatch.setattr(engine, 'RECORDS_EVENT_BYTES', 100)
    data = b''.join(b'%05d\n' % i for i in range(1000))
    messages = events(SelectRequest('SELECT * FROM S3Object'), data)
    sizes = [len(m.payload) for m in messages
             if m.headers.get(':event-type') == 'Records']
    assert len(sizes) > 10 and max(sizes) < 100 + 6
    assert records(messages) == data
