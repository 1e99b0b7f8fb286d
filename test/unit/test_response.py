"""The client's answer: X-Nexe-* items, stored outputs, bodies, CGI headers."""

import io
import json
import logging
import os
import socket

import pytest
from eventlet import wsgi as eventlet_wsgi
from swift.common.swob import Request

from zerocloud import protocol
from zerocloud.job.model import SwiftPath, parse_job
from zerocloud.job.source import Spooled
from zerocloud.proxy.access import Grants
from zerocloud.proxy.nodeclient import (
    Answer, Body, NodeResult, PendingPut, StreamFailed, read_answer)
from zerocloud.proxy.request import iter_reader
from zerocloud.proxy.response import JobResponse, nexe_headers
from zerocloud.stages import StageClock

from .test_trailers import ClientInput

LOGGER = logging.getLogger('test')


def test_iter_reader_rechunks_exactly():
    read = iter_reader([b'abc', b'', b'defgh', b'i'])
    assert read(2) == b'ab'
    assert read(5) == b'c'
    assert read(3) == b'def'
    assert read(100) == b'gh'
    assert read(100) == b'i'
    assert read(100) == b''
    assert read(1) == b''


def test_iter_reader_of_nothing():
    assert iter_reader([])(10) == b''


class StoringSwift:
    """What a response needs of Swift: storing outputs (or refusing to)."""

    def __init__(self, refuse=None):
        self.req = Request.blank('/v1/a')
        self.stored = []
        self.refuse = refuse
        self.subrequests = 0
        self.cache_lookups = '-'

    def store(self, put, grants=None):
        if self.refuse:
            return self.refuse
        self.stored.append((put.path.url, b''.join(put.data.chunks())))
        return None


def nodes(*names):
    doc = [{'name': n, 'exec': {'path': 'file://python:python'},
            'devices': [{'name': 'stdout'}]} for n in names]
    return parse_job(doc, account='a', sysimages={'python'}).nodes


def spooled(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return Spooled(str(path), len(data))


def respond(results, swift=None):
    return JobResponse(swift or StoringSwift(), Grants(), None, LOGGER,
                       'job', 'a', 0.0, StageClock()).respond(results)


def body(data, ctype):
    return Body(len(data), ctype, iter([data]))


def test_bodies_are_concatenated_in_node_order(tmp_path):
    first, second = nodes('first', 'second')
    results = [
        NodeResult(first, headers={'X-Nexe-Status': 'ok',
                                   'X-Nexe-System': 'first'},
                   body=body(b'one\n', 'text/csv')),
        NodeResult(second, headers={'X-Nexe-Status': 'ok',
                                    'X-Nexe-System': 'second'},
                   body=body(b'two\n', 'text/plain'))]
    resp = respond(results)
    assert resp.status_int == 200
    assert b''.join(resp.app_iter) == b'one\ntwo\n'
    assert resp.content_length == 8
    assert resp.content_type == 'text/csv'
    assert resp.headers['X-Nexe-System'] == 'first,second'
    assert resp.headers['X-Nexe-Status'] == 'ok,ok'
    assert resp.headers['X-Nexe-Colocated'] == '0,0'
    assert resp.headers['X-Nexe-Cdr-Line'].count(',') >= 2


def test_outputs_are_stored_only_when_every_node_succeeded(tmp_path):
    good, bad = nodes('good', 'bad')
    data = spooled(tmp_path, 'out', b'result')
    put = PendingPut(SwiftPath('a', 'c', 'o'), data, 'text/plain', {})
    results = [NodeResult(good, puts=[put]),
               NodeResult(bad, status=422, error='Node bad failed: trap',
                          headers={'X-Nexe-Status': 'guest trap: x'})]
    swift = StoringSwift()
    resp = respond(results, swift)
    assert resp.status_int == 422
    assert resp.body == b'Node bad failed: trap\n'
    assert resp.headers['X-Nexe-Status'] == 'ZeroVM did not run,guest trap: x'
    assert resp.headers['X-Nexe-Error'] == 'Node bad failed: trap'
    assert swift.stored == []
    assert not os.path.exists(data.path)


def test_store_refusal_becomes_the_status(tmp_path):
    [only] = nodes('only')
    puts = [PendingPut(SwiftPath('a', 'c', 'o'),
                       spooled(tmp_path, name, b'x'), 'text/plain', {})
            for name in ('p1', 'p2')]
    swift = StoringSwift(
        refuse=(403, 'Status 403 Forbidden when putting /a/c/o'))
    resp = respond([NodeResult(only, puts=puts)], swift)
    assert resp.status_int == 403
    assert resp.body == b'Status 403 Forbidden when putting /a/c/o\n'
    assert all(not os.path.exists(p.data.path) for p in puts)


def test_nexe_items_from_users_and_programs_are_encoded():
    first, second = nodes('first', 'second')
    results = [
        NodeResult(first, status=404,
                   error='Error 404 while fetching /a/c/\u2603,x'),
        NodeResult(second, headers={'X-Nexe-Status': 'ok',
                                    'X-Nexe-System': 'second',
                                    'X-Nexe-Policy': 'p\u2603',
                                    'X-Nexe-Cdr-Line': '0.100, 0.00 0.00 '
                                                       '0 0 0 0 0 0 0 0'})]
    headers = nexe_headers(results, 0.0)
    assert headers['X-Nexe-Error'] == \
        'Error 404 while fetching /a/c/%E2%98%83%2Cx'
    assert headers['X-Nexe-Policy'] == ',p%E2%98%83'
    assert headers['X-Nexe-System'] == 'first,second'
    # Each node's accounting item keeps its own ", ".
    assert headers['X-Nexe-Cdr-Line'].endswith(
        ', 0.0 0.0 0 0 0 0 0 0 0 0,0.100, 0.00 0.00 0 0 0 0 0 0 0 0')


@pytest.mark.parametrize('status', [204, 304])
def test_a_bodiless_status_drops_every_body(tmp_path, status):
    first, second = nodes('first', 'second')
    data = spooled(tmp_path, 'out', b'HTTP/1.1 200 OK\r\n\r\n')
    results = [
        NodeResult(first, status=status, body=Body(
            data.size, 'text/plain', data.chunks(), {'X-App': '1'}, data)),
        NodeResult(second, body=body(b'two\n', 'text/plain'))]
    resp = respond(results)
    assert resp.status_int == status
    assert resp.content_length == 0
    assert b''.join(resp.app_iter) == b''
    assert resp.headers['X-App'] == '1'
    assert not os.path.exists(data.path)


def answer_with(pax, data=b'body'):
    """An object server's answer: one ``stdout`` member with ``pax``."""
    wire = b''.join(protocol.iter_member('stdout', len(data), [data], pax))
    return Answer(200, {'X-Nexe-Status': 'ok'}, io.BytesIO(wire).read,
                  lambda: None)


def streamed_answer(pieces, final=None):
    """An answer streamed while its node runs: ``pieces`` of stdout, then
    the ``final`` headers (none: the answer breaks off before them)."""
    wire = b''.join(
        b''.join(protocol.iter_member(
            'stdout', len(piece), [piece],
            {protocol.PAX_CONTENT_TYPE: 'text/csv'} if index == 0 else {}))
        for index, piece in enumerate(pieces))
    if final is not None:
        end = json.dumps(final).encode()
        wire += b''.join(protocol.iter_member('stdout', len(end), [end],
                                              {protocol.PAX_END: '1'}))
    return Answer(200, {'X-Nexe-System': 'only',
                        protocol.STREAMED_ANSWER_HEADER: 'yes'},
                  io.BytesIO(wire).read, lambda: None)


@pytest.mark.parametrize('final, status', [
    ({'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '0',
      'X-Nexe-Etag': '/dev/stdout abc'}, 200),
    ({'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '1',
      'X-Nexe-Error': 'bad return code'}, 422),
    ({'X-Nexe-Status': 'session timeout', 'X-Nexe-Retcode': '0'}, 422),
    (None, 503)])
def test_a_streamed_answer_ends_cleanly_only_for_a_node_that_succeeded(
        final, status):
    [only] = nodes('only')
    result = NodeResult(only)
    read_answer(result, streamed_answer([b'a' * 70000, b'b' * 5], final),
                True, None, LOGGER)
    assert result.streamed and result.status == 200
    assert (result.body.size, result.body.content_type) == (None, 'text/csv')
    got = []
    if status == 200:
        got = list(result.body.chunks)
    else:
        with pytest.raises(StreamFailed):
            for chunk in result.body.chunks:
                got.append(chunk)
    # Every piece reaches the client; the end decides how it ends.
    assert b''.join(got) == b'a' * 70000 + b'b' * 5
    assert result.status == status
    if final:
        assert result.headers['X-Nexe-Status'] == final['X-Nexe-Status']


class StreamingSwift(StoringSwift):
    """Stores what streams too: a PUT ended by StreamFailed is abandoned
    (what Swift does with a client gone before its last chunk)."""

    def __init__(self):
        super().__init__()
        self.abandoned = []

    def store_streaming(self, put, grants=None):
        got = b''
        try:
            for chunk in put.chunks:
                got += chunk
        except StreamFailed:
            self.abandoned.append((put.path.url, got))
            return 499, 'abandoned'
        self.stored.append((put.path.url, got))
        return None


def stored_node(doc_path='swift://a/c/o'):
    [node] = parse_job([{'name': 'saver',
                         'exec': {'path': 'file://python:python'},
                         'devices': [{'name': 'output', 'path': doc_path}]}],
                       account='a', sysimages={'python'}).nodes
    return node


@pytest.mark.parametrize('whole', [None, b'HEAD rewritten'])
def test_a_streamed_output_to_store_is_put_or_replaced_whole(tmp_path,
                                                             whole):
    """An output stored while its node runs: PUT as it streams, or, when
    its server sends it again whole (the program wrote out of order),
    that PUT is abandoned and the whole copy stored instead."""
    final = json.dumps({'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '0'}
                       ).encode()
    members = [(b'first', {protocol.PAX_CONTENT_TYPE: 'text/plain'}),
               (b'later', {})]
    if whole is not None:
        members.append((whole, {protocol.PAX_REPLACES: '1',
                                protocol.PAX_CONTENT_TYPE: 'text/plain'}))
    members.append((final, {protocol.PAX_END: '1'}))
    wire = b''.join(b''.join(protocol.iter_member('output', len(data),
                                                  [data], pax))
                    for data, pax in members)
    result = NodeResult(stored_node())
    read_answer(result, Answer(200, {protocol.STREAMED_ANSWER_HEADER: 'yes'},
                               io.BytesIO(wire).read, lambda: None),
                True, str(tmp_path), LOGGER)
    assert result.streaming_put is not None and not result.streamed
    swift = StreamingSwift()
    resp = respond([result], swift)
    assert resp.status_int == 200, resp.body
    if whole is None:
        assert swift.stored == [('swift://a/c/o', b'firstlater')]
        assert swift.abandoned == []
    else:
        assert swift.abandoned == [('swift://a/c/o', b'firstlater')]
        assert swift.stored == [('swift://a/c/o', whole)]
    assert os.listdir(tmp_path) == []


def test_a_whole_output_inside_a_streamed_answer_is_a_bad_answer():
    """Only an output to store streams beside others: an answer streamed
    to the client that goes on with a whole member fails (cut short)."""
    answer = streamed_answer([b'piece'])
    wire = answer.read(1 << 20) + b''.join(protocol.iter_member(
        'stdout', 5, [b'again'], {protocol.PAX_REPLACES: '1'}))
    [only] = nodes('only')
    result = NodeResult(only)
    read_answer(result, Answer(200, answer.headers, io.BytesIO(wire).read,
                               lambda: None), True, None, LOGGER)
    got = []
    with pytest.raises(StreamFailed):
        for chunk in result.body.chunks:
            got.append(chunk)
    assert got == [b'piece']
    assert result.status == 503
    assert 'unexpected whole output stdout' in result.error


def test_printed_headers_never_frame_the_response():
    [only] = nodes('only')
    result = NodeResult(only)
    read_answer(result, answer_with({
        'status': '200 OK', 'content_type': 'text/plain',
        'header.Transfer-Encoding': 'chunked', 'header.Content-Length': '1',
        'header.Connection': 'close', 'header.Keep-Alive': 'timeout=1',
        'header.Location': 'a\r\nSet-Cookie: x', 'header.ETag': '"e"',
        'meta.Color': 'red', 'meta.Split': 'a\r\nSet-Cookie: x'}), True,
        None, LOGGER)
    assert result.status == 200
    assert result.body.headers == {'ETag': '"e"',
                                   'X-Object-Meta-Color': 'red'}
    assert b''.join(result.body.chunks) == b'body'


def test_only_headers_a_program_may_set_reach_the_client():
    """Issue 15 item 8: even when an object server passes them on."""
    [only] = nodes('only')
    result = NodeResult(only)
    read_answer(result, answer_with({
        'status': '200 OK', 'content_type': 'text/plain',
        'header.Access-Control-Allow-Origin': 'https://evil.example',
        'header.Access-Control-Allow-Credentials': 'true',
        'header.Set-Cookie': 's=1', 'header.X-Nexe-Status': 'forged',
        'header.Content-Disposition': 'attachment',
        'header.X-Zerovm-Execute': '1.0'}), True, None, LOGGER)
    assert result.body.headers == {'Content-Disposition': 'attachment',
                                   'X-Zerovm-Execute': '1.0'}


def test_an_informational_status_is_a_bad_answer():
    [only] = nodes('only')
    result = NodeResult(only)
    read_answer(result, answer_with({'status': '101 Up'}), True, None,
                LOGGER)
    assert result.status == 503
    assert result.error == 'Bad answer from storage server: status 101'
    assert result.body is None


# -- deferred results (issue 15 item 17) -------------------------------------

CHUNK = 65536
CHUNKS = 64


class DeferredSwift(StoringSwift):
    """Records how far the nodes' output had been produced while Swift
    read each chunk of the deferred result."""

    def __init__(self, produced):
        super().__init__()
        self.produced = produced
        self.ahead = []
        self.result = None

    def store_deferred(self, path, body, size, content_type, headers_json):
        assert not isinstance(body, (bytes, bytearray))
        read = 0
        while True:
            chunk = body.read(CHUNK)
            if not chunk:
                break
            read += len(chunk)
            self.ahead.append(self.produced[0] * CHUNK - read)
        self.result = (path.url, size, read, content_type,
                       json.loads(headers_json))


class Finished:
    """An eventlet greenthread that is done."""

    def __init__(self, results):
        self.results = results

    def wait(self):
        return self.results


def test_a_deferred_result_is_streamed_to_swift_not_joined():
    """Its body goes to Swift as the nodes' spooled outputs are read:
    never more than one chunk ahead of what Swift took."""
    produced = [0]
    discarded = []

    def output():
        try:
            for _ in range(CHUNKS):
                produced[0] += 1
                yield b'x' * CHUNK
        finally:
            discarded.append(True)

    [only] = nodes('only')
    result = NodeResult(only, headers={'X-Nexe-Status': 'ok'},
                        body=Body(CHUNK * CHUNKS, 'text/plain', output()))
    swift = DeferredSwift(produced)
    JobResponse(swift, Grants(), None, LOGGER, 'job', 'a', 0.0,
                StageClock())\
        ._store_deferred(Finished([result]), SwiftPath('a', '.zvm', 'job-1'))
    size = CHUNK * CHUNKS
    url, declared, read, ctype, headers = swift.result
    assert (url, declared, read, ctype) == (
        'swift://a/.zvm/job-1', size, size, 'text/plain')
    assert headers['Status'] == '200 OK'
    assert len(swift.ahead) == CHUNKS
    assert max(swift.ahead) == 0
    assert discarded == [True]


def test_every_header_line_of_a_wide_failing_job_fits(tmp_path):
    names = ['n%03d-%s' % (n, 'x' * 56) for n in range(300)]
    doc = [{'name': name, 'exec': {'path': 'file://python:python'},
            'devices': [{'name': 'stdout'}]} for name in names]
    results = [
        NodeResult(node, status=422,
                   error='Node %s failed: bad return code: %s'
                   % (node.name, 'E' * 250),
                   headers={'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '1',
                            'X-Nexe-Etag': ' '.join(['stdout ' + 'f' * 32]
                                                    * 40),
                            'X-Nexe-Cdr-Line': '0.100, 0.00 0.01 1 2 3 4 '
                                               '5 6 7 8'})
        for node in parse_job(doc, account='a',
                              sysimages={'python'}).nodes]
    resp = respond(results)
    assert resp.status_int == 422
    for name, value in resp.headers.items():
        assert len('%s: %s\r\n' % (name, value)) < 8192, name
    systems = resp.headers['X-Nexe-System'].split(',')
    assert systems[-1] == resp.headers['X-Nexe-Status'].split(',')[-1]
    assert systems[-1].startswith('...(') and systems[0] == names[0]
    assert resp.headers['X-Nexe-Error'].endswith('...')
    # The body has every error.
    assert resp.body.decode().count('bad return code') == 300


def test_a_program_header_too_long_for_a_line_is_left_out():
    [only] = nodes('only')
    answer = body(b'hi', 'text/plain')
    answer.headers = {'X-Short': 'kept', 'X-Huge': 'h' * 9000}
    resp = respond([NodeResult(only, headers={'X-Nexe-Status': 'ok'},
                               body=answer)])
    assert resp.headers['X-Short'] == 'kept'
    assert 'X-Huge' not in resp.headers


def test_spooled_bodies_are_removed_when_the_client_leaves_unread(tmp_path):
    first, second = nodes('first', 'second')
    files = [spooled(tmp_path, name, b'data') for name in ('b1', 'b2')]
    results = [NodeResult(node, headers={'X-Nexe-Status': 'ok'},
                          body=Body(4, 'text/plain', data.chunks(), {}, data))
               for node, data in zip((first, second), files)]
    resp = respond(results)
    resp.app_iter.close()   # what the server does when the client is gone
    assert not any(os.path.exists(data.path) for data in files)


def test_results_are_removed_when_answering_fails(tmp_path):
    [only] = nodes('only')
    data = spooled(tmp_path, 'out', b'result')
    put = PendingPut(SwiftPath('a', 'c', 'o'), data, 'text/plain', {})
    edge = spooled(tmp_path, 'edge', b'to a peer')

    class BrokenSwift(StoringSwift):
        def store(self, put, grants=None):
            raise OSError('the disk went away')
    with pytest.raises(OSError):
        respond([NodeResult(only, puts=[put], edges={'out/x': edge})],
                BrokenSwift())
    assert not os.path.exists(data.path) and not os.path.exists(edge.path)


@pytest.mark.parametrize('final, status', [
    ({'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '0'}, 200),
    ({'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '5',
      'X-Nexe-Error': 'bad return code'}, 422),
    (None, 503)])
def test_a_streamed_answer_asked_for_trailers_ends_with_its_status(
        final, status):
    """The client sent ``TE: trailers``: the body ends with the final
    status either way, never cut short."""
    ours, theirs = socket.socketpair()
    swift = StoringSwift()
    swift.req.environ.update({'HTTP_TE': 'trailers',
                              'eventlet.input': ClientInput(ours)})
    [only] = nodes('only')
    result = NodeResult(only)
    read_answer(result, streamed_answer([b'a' * 70000, b'b' * 5], final),
                True, None, LOGGER)
    resp = respond([result], swift)
    assert resp.headers['Trailer'].startswith(
        'X-Zerocloud-Status, X-Nexe-System, X-Nexe-Status, ')
    assert b''.join(resp.app_iter) == b'a' * 70000 + b'b' * 5
    trailer = theirs.recv(10000).decode()
    assert trailer.startswith('0\r\nX-Zerocloud-Status: %d\r\n' % status)
    assert trailer.endswith('\r\n\r\n')
    fields = dict(line.split(': ', 1)
                  for line in trailer.split('\r\n')[1:-2])
    assert fields['X-Nexe-System'] == 'only'
    if final:
        assert fields['X-Nexe-Retcode'] == final['X-Nexe-Retcode']
    assert ('X-Nexe-Error' in fields) is (status != 200)
    eventlet_wsgi.WSGI_LOCAL.already_handled = False


def test_a_streamed_answer_not_asked_for_trailers_has_none():
    [only] = nodes('only')
    result = NodeResult(only)
    read_answer(result, streamed_answer([b'piece'], {
        'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '0'}), True, None, LOGGER)
    resp = respond([result])
    assert 'Trailer' not in resp.headers
    assert b''.join(resp.app_iter) == b'piece'
