"""The pure parts of the two filters (the rest: functional tests)."""

import hmac
import io
from contextlib import ExitStack
from dataclasses import replace
from hashlib import sha1

import pytest
from swift.common.swob import Request, Response

from zerocloud import protocol
from zerocloud.cgi import InvalidCgiOutput
from zerocloud.object.execution import Output
from zerocloud.cipher import CipherKey, KeyStream
from zerocloud.object.filter import ObjectQueryMiddleware
from zerocloud.object.node import (
    AnswerBody, colocation_proof, deterministic_clock, frame_output,
    last_error_line, nexe_headers, request_limits)
from zerocloud.proxy.filter import request_problem
from zerocloud.runtime.report import Report


def test_request_problem():
    def refusal(*args):
        resp = request_problem(*args)
        return resp and (resp.status_int, resp.body.decode())
    assert request_problem('job', 'POST', 'a', None, None) is None
    assert refusal('job', 'GET', 'a', None, None) == (
        405, 'Jobs are run with POST, not GET')
    assert request_problem('job', 'GET', 'a', None, None).headers[
        'Allow'] == 'POST'
    assert refusal('job', 'POST', None, None, None) == (412, 'Bad URL')
    assert refusal('open', 'GET', 'a', 'c', None) == (412, 'Bad URL')
    assert request_problem('open', 'DELETE', 'a', 'c', 'o') is None
    assert refusal('api', 'PUT', 'a', None, None) == (412, 'Bad URL')
    assert request_problem('api', 'PUT', 'a', 'c', None) is None
    assert refusal('queue', 'GET', 'a', 'c', None) == (
        412, 'Unknown X-Zerovm-Execute version queue')


def test_colocation_proof_is_hmac_of_address():
    expected = hmac.new(b'salt', b'127.0.0.1:6010', sha1).hexdigest()
    assert colocation_proof('salt:127.0.0.1:6010') == expected
    assert colocation_proof(None) is None
    assert colocation_proof('garbage') is None


def test_deterministic_clock():
    assert deterministic_clock('1700000000') == 1700000000
    for value in (None, '', 'soon', '-1', '1.5', '\u00b2'):
        assert deterministic_clock(value) is None


@pytest.mark.parametrize('value, timeout', [
    (None, 10), ('3', 3), ('2.9', 2), ('30', 10), ('0', 1),
    ('soon', 10), ('nan', 10), ('inf', 10), ('1e999', 10)])
def test_timeout_header_may_only_shorten_a_run(value, timeout):
    mw = ObjectQueryMiddleware(None, {'zerovm_timeout': '10'})
    req = Request.blank('/sda1/0/a/c/o', headers={} if value is None else {
        protocol.TIMEOUT_HEADER: value})
    limits = request_limits(mw.limits, req)
    assert limits.timeout == timeout
    assert limits == replace(mw.limits, timeout=timeout)


def test_nexe_headers():
    report = Report(validation=0, retcode=3,
                    etags=[('/dev/stdout', 'ab' * 16)], status='ok')
    headers = nexe_headers('sort-1', report, 0.25, 'gold', None)
    assert headers['X-Nexe-System'] == 'sort-1'
    assert headers['X-Nexe-Retcode'] == '3'
    assert headers['X-Nexe-Etag'] == '/dev/stdout ' + 'ab' * 16
    assert headers['X-Nexe-Cdr-Line'].startswith('0.250, 0.00 0.00 0 0')
    assert headers['X-Nexe-Policy'] == 'gold'
    assert 'X-Nexe-Fuel' not in headers
    assert nexe_headers('n', report, 0, 'p', 77)['X-Nexe-Fuel'] == '77'


def test_nexe_headers_encode_text_from_users_and_programs():
    report = Report(status='image /dev/image: absolute member name /\u2603')
    headers = nexe_headers('a,b', report, 0, 'gold\r\nX: 1', None)
    assert headers['X-Nexe-Status'] == \
        'image /dev/image: absolute member name /%E2%98%83'
    assert headers['X-Nexe-System'] == 'a%2Cb'
    assert headers['X-Nexe-Policy'] == 'gold X: 1'


def test_last_error_line_keeps_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / 'stderr'
    text = b'first\nbad \xff\xfe \xe2\x98\x83\n'
    path.write_bytes(text)
    assert last_error_line(str(path), None) == 'bad \udcff\udcfe \u2603'
    # Sealed, as the sandbox writes it: the tail is decrypted where it is.
    key = CipherKey.fresh()
    path.write_bytes(KeyStream(key).apply(0, b'x' * 70000 + text))
    assert last_error_line(str(path), key) == 'bad \udcff\udcfe \u2603'


def test_object_query_never_hands_eventlet_a_non_latin1_header():
    mw = ObjectQueryMiddleware(None, {})
    mw.execute = lambda req: Response(headers={
        'X-Nexe-Error': '\u2603 bad', 'X-Nexe-Status': 'ok'})
    sent = []
    env = Request.blank('/sda1/0/a/c/o', method='POST', headers={
        'X-Zerovm-Execute': '1.0'}).environ
    mw(env, lambda status, headers, exc_info=None: sent.extend(headers))
    headers = dict(sent)
    assert headers['X-Nexe-Error'] == '%E2%98%83 bad'
    assert headers['X-Nexe-Status'] == 'ok'
    for name, value in sent:
        value.encode('latin-1')


def test_last_error_line(tmp_path):
    path = tmp_path / 'stderr'
    path.write_text('Traceback (most recent call last):\n  File "x"\n'
                    'ZeroDivisionError: division by zero\n\n')
    assert last_error_line(str(path), None) == \
        'ZeroDivisionError: division by zero'
    assert last_error_line(str(tmp_path / 'missing'), None) == ''


def read_frame(frame):
    length, chunks = frame
    wire = b''.join(chunks)
    assert len(wire) == length
    reader = protocol.MemberReader(io.BytesIO(wire).read)
    member = reader.next_member()
    return member, reader.read(1 << 20)


def test_cgi_output_is_split_into_headers_and_body(tmp_path):
    path = tmp_path / 'out'
    path.write_bytes(b'Status: 201 Created\r\nContent-Type: text/html\r\n'
                     b'X-Object-Meta-Color: red\r\nLocation: /x\r\n'
                     b'X-Custom: 1\r\n\r\n<p>hi')
    output = Output('stdout', str(path), 'message/cgi', {}, 0, None)
    member, body = read_frame(frame_output(output))
    assert body == b'<p>hi'
    assert member.pax['content_type'] == 'text/html'
    assert member.pax['status'] == '201 Created'
    assert member.pax['meta.Color'] == 'red'
    assert member.pax['header.Location'] == '/x'
    # Not a header a program may set (issue 15 item 8).
    assert 'header.X-Custom' not in member.pax


def test_cgi_output_never_carries_framing_headers(tmp_path):
    path = tmp_path / 'out'
    path.write_bytes(b'Transfer-Encoding: chunked\r\nLocation: \xe9\r\n\r\n0')
    output = Output('stdout', str(path), 'message/cgi', {}, 0, None)
    member, body = read_frame(frame_output(output))
    assert body == b'0'
    assert member.pax == {'content_type': 'message/cgi', 'status': '200 OK',
                          'header.Location': '%E9'}


def test_invalid_cgi_output_is_refused(tmp_path):
    path = tmp_path / 'out'
    path.write_bytes(b'X-Foo: a\rb\r\n\r\nbody')
    output = Output('stdout', str(path), 'message/cgi', {}, 0, None)
    with pytest.raises(InvalidCgiOutput, match='header X-Foo contains'):
        frame_output(output)


def test_plain_output_keeps_its_type_and_meta(tmp_path):
    path = tmp_path / 'out'
    path.write_bytes(b'data')
    output = Output('stdout', str(path), 'text/plain', {'k': 'v'}, 0, None)
    member, body = read_frame(frame_output(output))
    assert body == b'data'
    assert member.pax == {'content_type': 'text/plain', 'meta.k': 'v'}


def test_an_answer_dropped_unread_releases_what_its_request_held():
    """The WSGI server closes the body, also when the client went away
    before its first byte: the request's directories and held object go
    then, not at some garbage collection."""
    released = []
    stack = ExitStack()
    stack.callback(released.append, 'work dirs')
    body = AnswerBody([(3, iter([b'abc']))], stack)
    body.close()
    assert released == ['work dirs']


def test_an_answer_read_to_its_end_releases_on_close():
    released = []
    stack = ExitStack()
    stack.callback(released.append, 'work dirs')
    body = AnswerBody([(2, iter([b'ab'])), (1, iter([b'c']))], stack)
    assert b''.join(body) == b'abc'
    body.close()
    assert released == ['work dirs']
