"""A client's request body over eventlet's own ``Input`` (the object Swift's
server hands the pipeline), its faults as the client's 4xx."""

import io
import socket

import eventlet
import pytest
from eventlet.wsgi import Input
from swift.common.swob import Request
from swift.common.utils import InputProxy

from zerocloud.job.model import JobError
from zerocloud.proxy.body import (
    DISCONNECTED, NOT_CHUNKED, UNFRAMED, ClientBody)

TIMEOUT = 30.0


def chunked(data: bytes, size: int = 4) -> bytes:
    framed = b''.join(b'%x\r\n%s\r\n' % (len(data[i:i + size]),
                                         data[i:i + size])
                      for i in range(0, len(data), size))
    return framed + b'0\r\n\r\n'


def request(wire: bytes, *, chunked_input: bool = True,
            content_length=None, wfile=None, **headers: str) -> Request:
    """A request whose body eventlet reads from ``wire``, as in Swift."""
    rfile = io.BufferedReader(io.BytesIO(wire))
    # eventlet reads an unframed request as an empty body.
    length = None if chunked_input else content_length or 0
    env = Request.blank('/v1/a', method='POST').environ
    env['wsgi.input'] = Input(
        rfile, length, None, wfile=wfile,
        wfile_line=b'HTTP/1.1 100 Continue\r\n' if wfile else None,
        chunked_input=chunked_input)
    if chunked_input:
        headers.setdefault('Transfer-Encoding', 'chunked')
    if content_length is not None:
        env['CONTENT_LENGTH'] = str(content_length)
    else:
        env.pop('CONTENT_LENGTH', None)
    req = Request(env)
    req.headers.update(headers)
    return req


def read_all(body: ClientBody, size: int = 5) -> bytes:
    parts = []
    while True:
        chunk = body.read(size)
        if not chunk:
            return b''.join(parts)
        parts.append(chunk)


def failure(body: ClientBody) -> JobError:
    with pytest.raises(JobError) as err:
        read_all(body)
    return err.value


def test_chunked_body_is_read_to_its_end():
    body = ClientBody.of_request(request(chunked(b'hello world')), TIMEOUT)
    assert (body.length, body.framed) == (None, True)
    assert read_all(body) == b'hello world'


def test_transfer_encoding_wins_over_content_length():
    req = request(chunked(b'hello world'), content_length=5)
    body = ClientBody.of_request(req, TIMEOUT)
    assert body.length is None
    assert read_all(body) == b'hello world'


def test_content_length_body():
    req = request(b'abcdefgh', chunked_input=False, content_length=8)
    body = ClientBody.of_request(req, TIMEOUT)
    assert body.length == 8
    assert read_all(body, 3) == b'abcdefgh'


def test_a_request_without_a_body_is_unframed_and_empty():
    req = request(b'', chunked_input=False)
    body = ClientBody.of_request(req, TIMEOUT)
    assert (body.framed, body.length) == (False, 0)
    assert read_all(body) == b''
    assert UNFRAMED == \
        'Must specify Content-Length or Transfer-Encoding: chunked'


@pytest.mark.parametrize('raw', [
    b'[{"name": "x"}]',                     # JSON: no newline to wait for
    b'#!file://python:python\nprint(1)\n',  # a script
    b'boot/system.map\0\0\0',               # a tar: hex letters, then not
    b'./main.py\0\0'])
def test_raw_bytes_labelled_chunked_are_refused_unread(raw):
    """What python-swiftclient 2.3.1 sends under today's requests."""
    req = request(raw, content_length=len(raw))
    rfile = req.environ['wsgi.input'].rfile
    err = failure(ClientBody.of_request(req, TIMEOUT))
    assert (err.status, err.message) == (400, NOT_CHUNKED)
    assert rfile.tell() == 0


def test_bad_chunk_size_line_later_in_the_body_is_400():
    wire = chunked(b'hello')[:-len(b'0\r\n\r\n')] + b'zz\r\nmore\r\n'
    err = failure(ClientBody.of_request(request(wire), TIMEOUT))
    assert (err.status, err.message) == (400, NOT_CHUNKED)


@pytest.mark.parametrize('wire', [
    b'',                                # nothing at all
    b'5\r\nhel',                        # ends inside a chunk
    b'5\r\nhello\r\n'])                 # ends where a size line belongs
def test_chunked_body_that_ends_early_is_499(wire):
    err = failure(ClientBody.of_request(request(wire), TIMEOUT))
    assert (err.status, err.message) == (499, DISCONNECTED)


def test_content_length_body_that_ends_early_is_499():
    req = request(b'abc', chunked_input=False, content_length=10)
    err = failure(ClientBody.of_request(req, TIMEOUT))
    assert (err.status, err.message) == (499, DISCONNECTED)


def test_expect_100_continue_is_answered_before_the_body_is_judged():
    sent = io.BytesIO()
    req = request(b'[1]', wfile=sent, Expect='100-continue')
    err = failure(ClientBody.of_request(req, TIMEOUT))
    assert err.status == 400
    assert sent.getvalue() == b'HTTP/1.1 100 Continue\r\n\r\n'


def test_framing_is_judged_under_swifts_input_proxy():
    req = request(b'{"raw": 1}')
    req.environ['wsgi.input'] = InputProxy(req.environ['wsgi.input'])
    err = failure(ClientBody.of_request(req, TIMEOUT))
    assert (err.status, err.message) == (400, NOT_CHUNKED)


@pytest.mark.parametrize('te, status', [('gzip', 400),
                                        ('gzip, chunked', 501)])
def test_transfer_encodings_swift_refuses(te, status):
    req = request(b'', chunked_input=False, **{'Transfer-Encoding': te})
    with pytest.raises(JobError) as err:
        ClientBody.of_request(req, TIMEOUT)
    assert err.value.status == status


def test_body_that_stops_arriving_is_408():
    def never(size: int) -> bytes:
        eventlet.sleep(3600)
        return b''
    body = ClientBody(never, 10, timeout=0.01)
    err = failure(body)
    assert err.status == 408
    assert err.message == \
        'Request body stopped arriving: nothing for 0.01 seconds'


def test_the_servers_socket_timeout_is_408_too():
    def timed_out(size: int) -> bytes:
        raise socket.timeout('timed out')
    assert failure(ClientBody(timed_out, 10, TIMEOUT)).status == 408


def test_a_connection_reset_is_499():
    def reset(size: int) -> bytes:
        raise ConnectionResetError(104, 'Connection reset by peer')
    err = failure(ClientBody(reset, None, TIMEOUT))
    assert (err.status, err.message) == (499, DISCONNECTED)
