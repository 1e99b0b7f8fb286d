"""Job request bodies on the wire, sent with raw sockets.

Swift's eventlet server frames a body before ``proxy_query`` sees it:
``Transfer-Encoding: chunked`` wins over ``Content-Length``, as in Swift's
own ``message_length()``.  These tests send each kind of job body (zapp tar,
script, JSON) in each framing, and the client faults, and check that every
fault is the client's 4xx, never a 5xx:

- every body in every valid framing (``Content-Length``; chunked; chunked
  with a ``Content-Length`` too) runs the job;
- the raw body with both headers, which python-swiftclient 2.3.1 sends
  under today's ``requests`` for the original ``zpm execute app.zapp``
  (it was a 500 "Internal error running the job", and a JSON body hung
  until the client timeout): ``400`` at once, for raw sockets and for
  ``requests`` driven as swiftclient drove it;
- a bad chunk-size line later in the body: ``400``;
- a client that goes away before the end of its body: ``499``;
- a body that stops arriving: ``408`` after the proxy's ``client_timeout``
  (a private cluster with a short one);
- a body without any framing: ``411``.

Each answer must come within ``ANSWER_TIMEOUT``, far below the proxy's
default ``client_timeout`` (60 s): a proxy still waiting for a body that
never comes fails the test instead of passing late.
"""

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Dict, Iterator, Tuple

import pytest
import requests

from zerocloud.proxy.body import DISCONNECTED, NOT_CHUNKED, STALLED, UNFRAMED

from .helpers import PYTHON_EXEC, configure, started_cluster, zapp

#: Seconds any answer may take: far below the default client_timeout.
ANSWER_TIMEOUT = 30
#: The private cluster's client_timeout, for the stalled bodies.
SHORT_CLIENT_TIMEOUT = 2
#: Ends a chunked body.
LAST_CHUNK = b'0\r\n\r\n'

ZAPP_JOB = [{'name': 'hello', 'exec': dict(PYTHON_EXEC, args='main.py'),
             'devices': [{'name': 'python'}, {'name': 'stdout'}]}]
BODIES = {
    'zapp': ('application/x-tar', zapp({
        'boot/system.map': json.dumps(ZAPP_JOB),
        'main.py': 'print("hello from a zapp")\n'}), b'hello from a zapp\n'),
    'script': ('application/x-python',
               b'#!file://python:python\nprint("hello from a script")\n',
               b'hello from a script\n'),
    'json': ('application/json', json.dumps([{
        'name': 'hello', 'exec': dict(PYTHON_EXEC,
                                      args='-c print("hello_from_json")'),
        'devices': [{'name': 'python'}, {'name': 'stdout'}]}]).encode(),
        b'hello_from_json\n'),
}


@dataclass
class Answer:
    status: int
    text: str


def chunked(data: bytes, size: int = 1000) -> bytes:
    """``data`` in valid chunked framing, ``size`` bytes a chunk."""
    return b''.join(b'%x\r\n%s\r\n' % (len(data[i:i + size]),
                                       data[i:i + size])
                    for i in range(0, len(data), size)) + LAST_CHUNK


def unfinished(body: bytes, framing: str) -> Tuple[Dict[str, str], bytes]:
    """(framing headers, wire bytes) of ``body`` sent in part: half of it
    under its full ``Content-Length``, or all of it chunked without the
    last chunk (the body never ends)."""
    if framing == 'chunked':
        return ({'Transfer-Encoding': 'chunked'},
                chunked(body, len(body) // 2)[:-len(LAST_CHUNK)])
    return {'Content-Length': str(len(body))}, body[:len(body) // 2]


def send(cluster, headers: Dict[str, str], wire: bytes,
         half_close: bool = False) -> Answer:
    """POST a job to the tester's account, ``wire`` as the body bytes.

    ``half_close``: shut our sending side after the body (a client that
    went away, still able to read the answer).
    """
    host, port = cluster.proxy_url.split('//')[1].split(':')
    path = '/v1/' + cluster.storage_url().rsplit('/', 1)[1]
    head = ['POST %s HTTP/1.1' % path, 'Host: %s' % host,
            'X-Auth-Token: %s' % cluster.token(), 'X-Zerovm-Execute: 1.0',
            'Connection: close']
    head += ['%s: %s' % item for item in headers.items()]
    with socket.create_connection((host, int(port)),
                                  timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall('\r\n'.join(head).encode() + b'\r\n\r\n' + wire)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return Answer(resp.status, resp.read().decode('utf-8', 'replace'))


@pytest.mark.parametrize('kind', sorted(BODIES))
@pytest.mark.parametrize('framing', ['content-length', 'chunked',
                                     'chunked+content-length'])
def test_every_body_in_every_framing_runs(cluster, kind, framing):
    ctype, body, output = BODIES[kind]
    headers = {'Content-Type': ctype}
    if framing == 'content-length':
        wire = body
    else:
        wire = chunked(body)
        headers['Transfer-Encoding'] = 'chunked'
    if framing.endswith('content-length'):
        headers['Content-Length'] = str(len(body))
    answer = send(cluster, headers, wire)
    assert (answer.status, answer.text) == (200, output.decode())


@pytest.mark.parametrize('kind', sorted(BODIES))
def test_raw_body_with_both_headers_is_400_at_once(cluster, kind):
    ctype, body, _output = BODIES[kind]
    answer = send(cluster, {'Content-Type': ctype,
                            'Content-Length': str(len(body)),
                            'Transfer-Encoding': 'chunked'}, body)
    assert (answer.status, answer.text) == (400, NOT_CHUNKED)


@pytest.mark.parametrize('kind', sorted(BODIES))
def test_swiftclient_2_3_1_under_todays_requests_is_400(cluster, kind):
    """swiftclient 2.3.1 handed ``requests`` a body it could only iterate,
    with its own Content-Length: ``requests`` then adds
    ``Transfer-Encoding: chunked`` and sends the raw bytes."""
    ctype, body, _output = BODIES[kind]

    def iterated() -> Iterator[bytes]:
        yield body
    prepared = requests.Request('POST', cluster.storage_url(), data=iterated(),
                                headers={'X-Auth-Token': cluster.token(),
                                         'X-Zerovm-Execute': '1.0',
                                         'Content-Type': ctype,
                                         'Content-Length': str(len(body))}
                                ).prepare()
    assert prepared.headers['Transfer-Encoding'] == 'chunked'
    with requests.Session() as session:
        resp = session.send(prepared, timeout=ANSWER_TIMEOUT)
    assert (resp.status_code, resp.text) == (400, NOT_CHUNKED)


def test_bad_chunk_size_line_later_in_the_body_is_400(cluster):
    ctype, body, _output = BODIES['json']
    wire = chunked(body[:20]).replace(LAST_CHUNK, b'') + b'zz\r\n' + \
        body[20:]
    answer = send(cluster, {'Content-Type': ctype,
                            'Transfer-Encoding': 'chunked'}, wire)
    assert (answer.status, answer.text) == (400, NOT_CHUNKED)


@pytest.mark.parametrize('kind', sorted(BODIES))
@pytest.mark.parametrize('framing', ['content-length', 'chunked'])
def test_client_that_goes_away_mid_body_is_499(cluster, kind, framing):
    ctype, body, _output = BODIES[kind]
    headers, wire = unfinished(body, framing)
    answer = send(cluster, dict(headers, **{'Content-Type': ctype}), wire,
                  half_close=True)
    assert (answer.status, answer.text) == (499, DISCONNECTED)


@pytest.mark.parametrize('ctype', ['application/x-tar',
                                   'application/x-python'])
def test_body_without_framing_is_411(cluster, ctype):
    answer = send(cluster, {'Content-Type': ctype}, b'')
    assert (answer.status, answer.text) == (411, UNFRAMED)


# -- stalled bodies: a cluster with a short client_timeout --------------------

@pytest.fixture(scope='module')
def impatient_cluster():
    """A private cluster whose proxy waits SHORT_CLIENT_TIMEOUT seconds for
    body bytes (set in [DEFAULT]: the server's socket and proxy_query)."""
    def shorten(cluster):
        configure(cluster, 'proxy-server', 'DEFAULT',
                  client_timeout=str(SHORT_CLIENT_TIMEOUT))
    with started_cluster('zerocloud-bodies-', shorten) as cluster:
        yield cluster


@pytest.mark.parametrize('kind', sorted(BODIES))
@pytest.mark.parametrize('framing', ['content-length', 'chunked'])
def test_body_that_stops_arriving_is_408(impatient_cluster, kind, framing):
    ctype, body, _output = BODIES[kind]
    headers, wire = unfinished(body, framing)
    answer = send(impatient_cluster, dict(headers, **{'Content-Type': ctype}),
                  wire)
    assert answer.status == 408
    assert answer.text == STALLED % SHORT_CLIENT_TIMEOUT
