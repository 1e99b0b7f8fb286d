"""proxy_query in a pipeline of our own: FakeAuth, proxy_query, FakeSwift.

What it recognises as an execution request, that everything else reaches
Swift untouched, and how failures become answers — all before a node runs
(running nodes needs rings and object servers: the functional tests).
"""

import io
import json

import eventlet
import pytest
from eventlet.wsgi import Input
from swift.common.swob import Request

from test.unit.fakeswift import FakeAuth, FakeSwift, RecordingLogger
from zerocloud.proxy import request as jobrequest
from zerocloud.proxy.body import NOT_CHUNKED
from zerocloud.proxy.filter import ProxyQueryMiddleware, filter_factory

ACCOUNT = 'AUTH_a'
JSON = {'Content-Type': 'application/json'}
EXECUTE = {'X-Zerovm-Execute': '1.0'}
NOT_A_LIST = 'Job description must be a JSON array of node objects'


class Pipeline:
    """FakeAuth → proxy_query → FakeSwift, with the filter's log."""

    def __init__(self, user: str = ACCOUNT + ':alice', **conf: str):
        self.swift = FakeSwift()
        self.swift.register('GET', '/v1/' + ACCOUNT, 204)
        self.logger = RecordingLogger()
        self.filter = ProxyQueryMiddleware(self.swift, conf, self.logger)
        self.app = FakeAuth(self.filter, user)

    def send(self, path: str, method: str = 'POST', body: bytes = b'',
             **headers: str):
        req = Request.blank(path, method=method, headers=headers)
        if body or method in ('POST', 'PUT'):
            req.body = body
        return req.get_response(self.app)


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline()


# -- everything else passes through untouched ---------------------------------

@pytest.mark.parametrize('method, path', [
    ('GET', '/v1/AUTH_a/c/o'), ('PUT', '/v1/AUTH_a/c/o'),
    ('POST', '/v1/AUTH_a/c/o'), ('HEAD', '/v1/AUTH_a'),
    ('GET', '/info'), ('GET', '/')])
def test_requests_without_execute_header_reach_swift_untouched(
        pipeline, method, path):
    pipeline.swift.register(method, path, 202, {'X-Marker': 'swift'},
                            b'from swift')
    req = Request.blank(path, method=method, body=b'payload',
                        headers={'X-Object-Meta-Color': 'red'})
    original_input = req.environ['wsgi.input']
    resp = req.get_response(pipeline.app)
    assert resp.status_int == 202
    assert resp.headers['X-Marker'] == 'swift'
    if method != 'HEAD':
        assert resp.body == b'from swift'
    [call] = pipeline.swift.calls
    assert (call.method, call.path) == (method, path)
    assert call.environ['wsgi.input'] is original_input
    assert call.headers['X-Object-Meta-Color'] == 'red'
    if method in ('PUT', 'POST'):
        assert call.body == b'payload'


# -- what is an execution request ---------------------------------------------

def test_job_post_to_the_account_is_parsed_as_a_job(pipeline):
    resp = pipeline.send('/v1/AUTH_a', body=b'{"not": "a list"}',
                         **EXECUTE, **JSON)
    assert (resp.status_int, resp.body.decode()) == (400, NOT_A_LIST)
    # Nothing of the request itself went on to Swift.
    assert pipeline.swift.paths() == []


@pytest.mark.parametrize('path, method, headers, status, text', [
    ('/v1/AUTH_a', 'GET', EXECUTE, 405, 'Jobs are run with POST, not GET'),
    ('/v1/AUTH_a/c', 'PUT', EXECUTE, 405, 'Jobs are run with POST, not PUT'),
    ('/v1/AUTH_a', 'POST', {'X-Zerovm-Execute': 'queue/1.0'}, 412,
     'Unknown X-Zerovm-Execute version queue'),
    ('/open/AUTH_a/c', 'GET', {}, 412, 'Bad URL'),
    ('/api/AUTH_a', 'GET', {}, 412, 'Bad URL'),
])
def test_requests_refused_from_their_url_and_header(
        pipeline, path, method, headers, status, text):
    resp = pipeline.send(path, method, **headers)
    assert (resp.status_int, resp.body.decode()) == (status, text)
    assert pipeline.swift.calls == []
    if status == 405:
        assert resp.headers['Allow'] == 'POST'


def test_open_path_is_recognised_without_header_and_reads_as_user(pipeline):
    pipeline.swift.register('GET', '/v1/AUTH_a/c/notes.txt', 200,
                            {'Content-Type': 'text/plain'}, b'hello')
    resp = pipeline.send('/open/AUTH_a/c/notes.txt', 'GET')
    assert resp.status_int == 404
    assert resp.body.decode() == 'No application registered for text/plain'
    heads = [c for c in pipeline.swift.calls if c.method == 'HEAD']
    assert [c.path for c in heads] == ['/v1/AUTH_a/c/notes.txt']
    # A sub-request as the same user, tagged as ZeroCloud's own.
    assert heads[0].environ['swift.authorize'] == \
        pipeline.app.authorize
    assert heads[0].environ['swift.source'] == 'ZC'
    assert '/v1/AUTH_a/.zvm/text/plain/config' in pipeline.swift.paths('GET')


def test_open_with_another_method_than_get_is_405(pipeline):
    pipeline.swift.register('GET', '/v1/AUTH_a/c/notes.txt', 200,
                            {'Content-Type': 'text/plain'}, b'hello')
    resp = pipeline.send('/open/AUTH_a/c/notes.txt', 'PUT', b'x')
    assert (resp.status_int, resp.body.decode()) == (
        405, 'swift://AUTH_a/c/notes.txt is not a zapp; only GET can open it')
    assert resp.headers['Allow'] == 'GET'


def test_api_path_needs_the_containers_rest_endpoint(pipeline):
    pipeline.swift.register('GET', '/v1/AUTH_a/c', 204,
                            {'X-Container-Meta-Color': 'red'})
    resp = pipeline.send('/api/AUTH_a/c/anything', 'GET')
    assert resp.status_int == 404
    assert resp.body.decode() == 'No API endpoint configured for container c'


# -- errors become answers ----------------------------------------------------

def test_job_error_is_its_own_status_and_message(pipeline):
    resp = pipeline.send('/v1/AUTH_a', body=b'[]', **EXECUTE)
    assert (resp.status_int, resp.body.decode()) == (
        400, 'Must specify Content-Type')


def test_swifts_denial_is_passed_on(pipeline):
    resp = pipeline.send('/v1/AUTH_b', body=b'[]', **EXECUTE, **JSON)
    assert resp.status_int == 403
    assert pipeline.logger.lines('error') == []


def test_anonymous_caller_gets_tempauths_401():
    resp = Pipeline(user=None).send('/v1/AUTH_a', body=b'[]', **EXECUTE,
                                    **JSON)
    assert resp.status_int == 401


@pytest.mark.parametrize('listing, status', [(503, 503), (500, 503),
                                             (403, 403), (404, 404)])
def test_a_failed_listing_is_the_fault_of_whoever_failed(
        pipeline, listing, status):
    """Issue 15 item 18: a listing the servers could not give is a ``5xx``,
    one the caller may not have stays the caller's ``4xx``."""
    pipeline.swift.register('GET', '/v1/AUTH_a/c', listing)
    job = [{'name': 'n', 'exec': {'path': 'swift://AUTH_a/c/prog'},
            'devices': [{'name': 'stdin', 'path': 'swift://AUTH_a/c/in*'}]}]
    resp = pipeline.send('/v1/AUTH_a', body=json.dumps(job).encode(),
                         **EXECUTE, **JSON)
    assert resp.status_int == status
    assert resp.body.decode().startswith('Error %d ' % listing)
    assert resp.body.decode().endswith(' listing swift://AUTH_a/c')


def test_a_bug_is_a_logged_500_without_its_traceback(pipeline, monkeypatch):
    def broken(self):
        raise ZeroDivisionError('internal detail /srv/node/sdb1')
    monkeypatch.setattr(jobrequest.JobRequest, 'prepare', broken)
    resp = pipeline.send('/v1/AUTH_a', body=b'[]', **EXECUTE, **JSON)
    assert resp.status_int == 500
    assert resp.body.decode() == 'Internal error running the job'
    [record] = [r for r in pipeline.logger.records if r.level == 'error']
    assert record.message == 'zerocloud: job failed on /v1/AUTH_a'
    assert 'ZeroDivisionError: internal detail' in record.traceback


# -- the client's body --------------------------------------------------------

def eventlet_request(wire: bytes, **headers: str) -> Request:
    """A job POST whose chunked body eventlet de-chunks from ``wire``."""
    req = Request.blank('/v1/AUTH_a', method='POST', headers=dict(
        EXECUTE, **JSON, **{'Transfer-Encoding': 'chunked'}, **headers))
    req.environ['wsgi.input'] = Input(io.BufferedReader(io.BytesIO(wire)),
                                      None, None, chunked_input=True)
    return req


def test_raw_body_labelled_chunked_is_400_not_500(pipeline):
    body = json.dumps([{'name': 'x'}]).encode()
    req = eventlet_request(body, **{'Content-Length': str(len(body))})
    resp = req.get_response(pipeline.app)
    assert (resp.status_int, resp.body.decode()) == (400, NOT_CHUNKED)
    assert pipeline.logger.lines('error') == []


def test_chunked_job_description_is_read_whole(pipeline):
    doc = b'{"not": "a list"}'
    framed = b'%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n' % (
        5, doc[:5], len(doc) - 5, doc[5:])
    resp = eventlet_request(framed).get_response(pipeline.app)
    # The whole description reached the parser (a part would not parse).
    assert (resp.status_int, resp.body.decode()) == (400, NOT_A_LIST)


def test_body_that_stops_is_408():
    pipeline = Pipeline(client_timeout='0.01')

    class Stalled(io.RawIOBase):
        def readinto(self, buffer) -> int:
            eventlet.sleep(3600)
            return 0

    req = Request.blank('/v1/AUTH_a', method='POST', headers=dict(
        EXECUTE, **JSON, **{'Content-Length': '100'}))
    req.environ['wsgi.input'] = Stalled()
    resp = req.get_response(pipeline.app)
    assert resp.status_int == 408
    assert resp.body.decode() == \
        'Request body stopped arriving: nothing for 0.01 seconds'


def test_unframed_zapp_post_is_411(pipeline):
    req = Request.blank('/v1/AUTH_a', method='POST', headers=dict(
        EXECUTE, **{'Content-Type': 'application/x-tar'}))
    req.environ.pop('CONTENT_LENGTH', None)
    resp = req.get_response(pipeline.app)
    assert resp.status_int == 411


# -- options ------------------------------------------------------------------

def test_filter_factory_refuses_a_bad_option_by_name():
    with pytest.raises(ValueError, match='^client_timeout must be'):
        filter_factory({}, client_timeout='soon')
