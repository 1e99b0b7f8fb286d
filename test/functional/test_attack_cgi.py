"""Issue #8 item 5: response splitting through a program's CGI output.

A node's path-less ``message/cgi`` output becomes the client's response, so
its header block is attacker-controlled text inside our HTTP framing.  Each
test reproduces one attack from the outside:

- ``test_printed_transfer_encoding_cannot_smuggle_a_response``: the program
  prints ``Transfer-Encoding: chunked`` (as ``message/cgi`` and as
  ``message/http``) and a body that ends one chunked
  message and starts a fake ``HTTP/1.1 200 OK``; on a keep-alive connection
  with a second pipelined request, the bytes read back must be exactly two
  well-framed responses, the second the real answer to the second request.
- ``test_body_of_a_bodiless_status_cannot_smuggle_a_response``: same with
  ``Status: 304`` (and ``204``) plus a body, which a client never reads as
  a body.
- ``test_printed_connection_headers_are_dropped``: ``Connection``,
  ``Keep-Alive``, ``Upgrade``, ``TE``, ``Trailer``, ``Proxy-Connection`` and
  a header named in ``Connection`` never reach the client, and a printed
  ``Connection: close`` does not end the client's connection.
- ``test_invalid_cgi_output_fails_the_node``: a bare CR or a NUL inside a
  value, ``Status: 101``, too many headers -> ``422`` naming the problem in
  ``X-Nexe-Error``, while ``X-Nexe-Status`` still says the sandbox ran.
- ``test_non_ascii_header_bytes_arrive_percent_encoded``: bytes >= 0x80
  in a value reach the client as ``%XX``.
"""

import json
import re
import socket
from typing import Dict, List, Tuple
from urllib.parse import urlsplit

import pytest
import requests

from zerocloud.cgi import MAX_HEADER_COUNT

from .helpers import REQUEST_TIMEOUT, Account, python_node, unique, zapp

#: A program that writes exactly the bytes given (``%r`` of a bytes value).
WRITE_BYTES = 'import sys\nsys.stdout.buffer.write(%r)\n'
#: What the smuggled response would say, if it ever reached a client.
SMUGGLED = b'smuggled!'
FAKE_RESPONSE = (b'0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
                 b'Content-Length: %d\r\n\r\n%s' % (len(SMUGGLED), SMUGGLED))
#: The object the second pipelined request reads: the real answer.
REAL_ANSWER = b'the real answer\n'
#: Each case's output: the program prints these bytes as its stdout.
OUTPUTS = {
    'chunked': b'Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n'
               b'\r\n5\r\nhello\r\n' + FAKE_RESPONSE,
    'nph-chunked': b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
                   b'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n' +
                   FAKE_RESPONSE,
    'not-modified': b'Status: 304 Not Modified\r\nContent-Type: text/plain'
                    b'\r\n\r\n' + FAKE_RESPONSE,
    'no-content': b'Status: 204\r\n\r\n' + FAKE_RESPONSE,
    'hop-by-hop': b'Content-Type: text/plain\r\nConnection: close, Location'
                  b'\r\nLocation: /secret\r\nKeep-Alive: timeout=1\r\n'
                  b'Upgrade: h2c\r\nTE: trailers\r\nTrailer: X-Sum\r\n'
                  b'Proxy-Connection: close\r\nCache-Control: kept\r\n'
                  b'\r\nbody',
    'bare-cr': b'X-Foo: a\rb\r\n\r\nbody',
    'nul': b'X-Foo: a\x00b\r\n\r\nbody',
    'switching': b'Status: 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n',
    'many-headers': b''.join(b'X-H%d: v\r\n' % i
                             for i in range(MAX_HEADER_COUNT + 1)) +
                    b'\r\nbody',
    'non-ascii': b'Content-Type: text/plain\r\n'
                 b'X-Object-Meta-Name: caf\xc3\xa9 \xff, 100%\r\n\r\nbody',
}


@pytest.fixture(scope='module')
def account(cluster) -> Account:
    return Account(cluster)


@pytest.fixture(scope='module')
def image(account: Account) -> str:
    """``swift://`` URL of a zapp with one ``<case>.py`` per output."""
    container = unique('cgi-attack')
    account.put_container(container)
    account.put_object(container, 'answer.txt', REAL_ANSWER, 'text/plain')
    account.put_object(container, 'image.tar', zapp({
        case + '.py': WRITE_BYTES % output
        for case, output in OUTPUTS.items()}))
    return 'swift://~/%s/image.tar' % container


def job_for(image: str, case: str, kind: str = 'message/cgi') -> bytes:
    stdout = {'name': 'stdout', 'content_type': kind}
    return json.dumps([python_node('cgi', image, script=case + '.py',
                                   devices=[stdout])]).encode()


# ------------------------------------------------- raw HTTP on one socket


class Wire:
    """One keep-alive connection to the proxy, spoken to byte by byte."""

    def __init__(self, cluster, account: Account):
        url = urlsplit(account.url)
        self.host = url.netloc
        self.account_path = url.path
        self.token = account.token
        self.sock = socket.create_connection(
            (cluster.proxy_host, cluster.proxy_port), timeout=REQUEST_TIMEOUT)

    def job_request(self, body: bytes) -> bytes:
        return (b'POST %s HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\n'
                b'X-Zerovm-Execute: 1.0\r\nContent-Type: application/json\r\n'
                b'Content-Length: %d\r\n\r\n%s' % (
                    self.account_path.encode(), self.host.encode(),
                    self.token.encode(), len(body), body))

    def get_request(self, path: str) -> bytes:
        """A GET that asks the proxy to close the connection after it."""
        return (b'GET %s/%s HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\n'
                b'Connection: close\r\n\r\n' % (
                    self.account_path.encode(), path.encode(),
                    self.host.encode(), self.token.encode()))

    def exchange(self, *requests_bytes: bytes) -> bytes:
        """Send the requests pipelined; everything read until the proxy
        closes the connection."""
        with self.sock:
            self.sock.sendall(b''.join(requests_bytes))
            received = []
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return b''.join(received)
                received.append(chunk)


Parsed = Tuple[int, Dict[str, str], bytes]


def parse_responses(data: bytes) -> List[Parsed]:
    """Split a byte stream into responses as a strict HTTP/1.1 client would.

    A response must say its length with ``Content-Length`` alone (a
    ``Transfer-Encoding`` beside it is a framing conflict); 1xx, 204 and
    304 responses have no body whatever their headers say.
    """
    responses = []
    while data:
        head, sep, data = data.partition(b'\r\n\r\n')
        assert sep, 'unterminated header block: %r' % head
        status_line, *lines = head.decode('latin-1').split('\r\n')
        found = re.fullmatch(r'HTTP/1\.[01] (\d{3}) .*', status_line)
        assert found, 'not a response: %r' % head
        headers = {}
        for line in lines:
            name, _, value = line.partition(':')
            assert name.lower() not in headers, 'repeated %s' % name
            headers[name.lower()] = value.strip()
        assert 'transfer-encoding' not in headers, headers
        code = int(found.group(1))
        length = 0 if code < 200 or code in (204, 304) else \
            int(headers['content-length'])
        responses.append((code, headers, data[:length]))
        data = data[length:]
    return responses


def pipelined(cluster, account: Account, image: str, case: str,
              kind: str = 'message/cgi') -> List[Parsed]:
    """The responses to a job running ``case`` and, pipelined after it on
    the same connection, a GET of ``answer.txt``."""
    wire = Wire(cluster, account)
    answer = image[len('swift://~/'):].rsplit('/', 1)[0] + '/answer.txt'
    return parse_responses(wire.exchange(
        wire.job_request(job_for(image, case, kind)),
        wire.get_request(answer)))


def assert_real_answer(response: Parsed) -> None:
    status, headers, body = response
    assert status == 200, response
    assert body == REAL_ANSWER
    assert headers['content-type'].startswith('text/plain')


@pytest.mark.parametrize('case, kind', [('chunked', 'message/cgi'),
                                        ('nph-chunked', 'message/http')])
def test_printed_transfer_encoding_cannot_smuggle_a_response(
        cluster, account, image, case, kind):
    responses = pipelined(cluster, account, image, case, kind)
    assert len(responses) == 2, responses
    status, headers, body = responses[0]
    assert status == 200, responses[0]
    # The program's bytes are our body, framed by our Content-Length.
    assert body == b'5\r\nhello\r\n' + FAKE_RESPONSE
    assert headers['x-nexe-status'] == 'ok'
    assert_real_answer(responses[1])


@pytest.mark.parametrize('case, status', [('not-modified', 304),
                                          ('no-content', 204)])
def test_body_of_a_bodiless_status_cannot_smuggle_a_response(
        cluster, account, image, case, status):
    responses = pipelined(cluster, account, image, case)
    assert len(responses) == 2, responses
    assert responses[0][0] == status
    assert responses[0][1]['content-length'] == '0', responses[0]
    assert_real_answer(responses[1])


def test_printed_connection_headers_are_dropped(cluster, account, image):
    responses = pipelined(cluster, account, image, 'hop-by-hop')
    # "Connection: close" from the program did not end our connection.
    assert len(responses) == 2, responses
    status, headers, body = responses[0]
    assert (status, body, headers['cache-control']) == (200, b'body', 'kept')
    # Location, named in Connection, is dropped with it.
    for name in ('location', 'keep-alive', 'upgrade', 'te', 'trailer',
                 'proxy-connection'):
        assert name not in headers, headers
    assert headers.get('connection', 'keep-alive') == 'keep-alive', headers
    assert_real_answer(responses[1])


# ------------------------------------------------------ rejected outputs


def run(account: Account, image: str, case: str) -> requests.Response:
    return account.execute(job_for(image, case),
                           headers={'Content-Type': 'application/json'})


@pytest.mark.parametrize('case, problem', [
    ('bare-cr', 'header X-Foo contains a control character'),
    ('nul', 'header X-Foo contains a control character'),
    ('switching', 'status 101 is informational'),
    ('many-headers', 'more than %d headers' % MAX_HEADER_COUNT),
])
def test_invalid_cgi_output_fails_the_node(account, image, case, problem):
    resp = run(account, image, case)
    assert resp.status_code == 422, (resp.status_code, resp.text)
    error = resp.headers['X-Nexe-Error']
    assert error.startswith('Node cgi failed: invalid CGI output: '), error
    assert problem in error
    assert problem in resp.text
    assert resp.headers['X-Nexe-Status'] == 'ok'
    assert resp.headers['X-Nexe-Retcode'] == '0'
    assert 'X-Foo' not in resp.headers
    assert 'body' not in resp.text


def test_non_ascii_header_bytes_arrive_percent_encoded(account, image):
    resp = run(account, image, 'non-ascii')
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Object-Meta-Name'] == 'caf%C3%A9 %FF, 100%'
    assert resp.content == b'body'
