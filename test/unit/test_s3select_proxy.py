"""The proxy's part of S3 Select: the job it runs, and how it ends the
engine's event stream whatever happens to the node."""

import io
import json
import tarfile

import pytest

from zerocloud.proxy.s3select import (
    early_error, finished_events, select_job, split_messages)
from zerocloud.proxy import selectscan
from zerocloud.s3select import eventstream
from zerocloud.s3select.errors import SelectError
from zerocloud.s3select.model import SelectRequest
from zerocloud.s3select.sql import compile_query


def _events(stream) -> list:
    decoder = eventstream.MessageDecoder()
    messages = decoder.feed(b''.join(stream))
    assert decoder.buffered == 0
    return messages


def _kind(message) -> str:
    return message.headers.get(':event-type') or \
        message.headers[':message-type']


def _job(bucket: str, key: str, request: SelectRequest, size: int):
    return select_job(bucket, key, request,
                      compile_query(request.expression), size)


def test_the_job_reads_the_object_as_input_and_answers_on_stdout():
    request = SelectRequest('SELECT UPPER(_1) FROM S3Object')
    job, engine = _job('bucket', 'dir/ключ.csv', request, 1234)
    assert engine == 'python'
    zapp = tarfile.open(fileobj=io.BytesIO(job))
    assert zapp.getnames() == ['boot/system.map', 'select.json']
    [node] = json.loads(zapp.extractfile('boot/system.map').read())
    assert node['exec'] == {'path': 'file://python:python',
                            'args': '-m _zerocloud_select',
                            'env': {'S3SELECT_SIZE': '1234'}}
    assert node['devices'] == [
        {'name': 'input', 'path': 'swift://~/bucket/dir/ключ.csv'},
        {'name': 'stdout', 'content_type': 'application/octet-stream'}]
    assert SelectRequest.from_json(
        zapp.extractfile('select.json').read().decode()) == request


def test_the_native_scanner_answers_with_its_plan():
    request = SelectRequest('SELECT _2 FROM S3Object WHERE '
                            'CAST(_1 AS INT) < 10')
    job, engine = _job('bucket', 'table.csv', request, 1234)
    assert engine == 'native'
    zapp = tarfile.open(fileobj=io.BytesIO(job))
    assert zapp.getnames() == ['boot/system.map', 'plan', 'selectscan.wasm']
    [node] = json.loads(zapp.extractfile('boot/system.map').read())
    assert node['exec'] == {'path': 'file://selectscan.wasm'}
    assert node['devices'][0] == {'name': 'input',
                                  'path': 'swift://~/bucket/table.csv'}
    assert zapp.extractfile('selectscan.wasm').read() == selectscan.scanner()
    plan = zapp.extractfile('plan').read().decode()
    assert plan.startswith('zerocloud-select-scan 1\n')
    assert 'where int 0 lt 10\n' in plan


def test_a_key_with_a_wildcard_is_refused():
    with pytest.raises(SelectError) as refused:
        _job('b', 'a*b', SelectRequest('SELECT * FROM S3Object'), 1)
    assert refused.value.code == 'InvalidRequest'


def test_messages_are_split_whole():
    one = eventstream.records_event(b'abc')
    two = eventstream.end_event()
    buffer = bytearray(one + two[:5])
    assert split_messages(buffer) == [one]
    assert bytes(buffer) == two[:5]
    buffer += two[5:]
    assert split_messages(buffer) == [two]
    assert buffer == b''


def test_a_stream_that_ends_is_passed_through():
    stream = [eventstream.records_event(b'a\n'), eventstream.stats_event(
        2, 2, 2), eventstream.end_event()]
    joined = b''.join(stream)
    # Any chunking: pieces of one byte.
    out = list(finished_events([joined[i:i + 1] for i in range(len(joined))],
                               lambda err: 'unused'))
    assert b''.join(out) == joined


def test_a_stream_without_end_gets_an_error_event():
    records = eventstream.records_event(b'a\n')
    cut = eventstream.records_event(b'never finished')[:-3]
    out = list(finished_events([records + cut],
                               lambda err: 'node select failed: timeout'))
    messages = _events(out)
    assert [_kind(m) for m in messages] == ['Records', 'error']
    assert messages[1].headers[':error-code'] == 'InternalError'
    assert messages[1].headers[':error-message'] == \
        'node select failed: timeout'


def test_a_failing_node_gets_an_error_event_naming_it():
    def chunks():
        yield eventstream.records_event(b'a\n')
        raise RuntimeError('Node select failed: exit code 1')
    seen = []
    out = list(finished_events(chunks(), lambda err: seen.append(err) or
                               str(err)))
    messages = _events(out)
    assert [_kind(m) for m in messages] == ['Records', 'error']
    assert messages[1].headers[':error-message'] == \
        'Node select failed: exit code 1'
    assert isinstance(seen[0], RuntimeError)


def test_the_engines_own_error_event_ends_the_stream():
    error = eventstream.error_event('CastFailed', 'bad value')
    out = list(finished_events([error], lambda err: 'unused'))
    assert b''.join(out) == error


def test_the_answer_is_read_to_its_end_after_the_last_event():
    # The node's final status comes after the engine's last event: the
    # job needs it for its status and accounting.
    drained = []

    def chunks():
        yield eventstream.end_event()
        drained.append(True)
    out = list(finished_events(chunks(), lambda err: 'unused'))
    assert b''.join(out) == eventstream.end_event()
    assert drained == [True]


def test_an_error_before_any_event_is_an_error_answer():
    """The first message decides the answer's status: an error event is
    S3's XML error (400 with its code; 500 for InternalError), any other
    event starts the stream."""
    binding = early_error(eventstream.error_event(
        'EvaluatorBindingDoesNotExist', 'No column Nom in the header'))
    assert binding.status_int == 400
    assert b'<Code>EvaluatorBindingDoesNotExist</Code>' in binding.body
    assert b'No column Nom in the header' in binding.body
    failed = early_error(eventstream.error_event(
        'InternalError', 'The select stopped: session timeout'))
    assert failed.status_int == 500
    assert b'session timeout' in failed.body
    for event in (eventstream.cont_event(), eventstream.end_event(),
                  eventstream.records_event(b'a,b\n'),
                  eventstream.stats_event(1, 1, 1)):
        assert early_error(event) is None
