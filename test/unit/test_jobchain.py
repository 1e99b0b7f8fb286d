"""job_chain against a scripted downstream WSGI app (no Swift behind it)."""

import json
from typing import Callable, Dict, List, Optional
from unittest import mock

import pytest
from swift.common.swob import Request

from zerocloud.options import ConfigError
from zerocloud.proxy.chain import JobChainMiddleware, filter_factory
from zerocloud.proxy.config import (
    DEFAULT_CHAIN_TIMEOUT, DEFAULT_MAXCONFIG, ChainConfig)
from zerocloud.proxy.request import CHAIN_INPUT

NEXT_JOB = [{'name': 'second', 'exec': {'path': 'file://python:python'},
             'devices': [{'name': 'stdout'}]}]
JOB_HEADERS = [('Content-Type', 'application/json'),
               ('X-Zerovm-Execute', '1.0')]


class Step:
    """One scripted answer of the downstream app, and what it saw."""

    def __init__(self, status: str, headers: list, body: bytes,
                 reads: Optional[int] = None,
                 on_call: Optional[Callable[[dict], None]] = None):
        self.status = status
        self.headers = headers
        self.body = body
        self.reads = reads
        self.on_call = on_call
        self.closed = False


class ScriptedApp:
    """Answers with its steps in turn and records each request it got."""

    def __init__(self, *steps: Step):
        self.steps = list(steps)
        self.seen: List[Dict] = []

    def __call__(self, env, start_response):
        step = self.steps[len(self.seen)]
        req = Request(env)
        seen = {'env': env, 'method': req.method, 'path': env['PATH_INFO'],
                'query': env.get('QUERY_STRING', ''),
                'headers': dict(req.headers)}
        if step.reads is not None:
            seen['body'] = env['wsgi.input'].read(step.reads)
        self.seen.append(seen)
        if step.on_call:
            step.on_call(env)
        start_response(step.status, step.headers)
        return self._body(step)

    @staticmethod
    def _body(step: Step):
        try:
            yield step.body
        finally:
            step.closed = True


def request(path: str = '/v1/AUTH_a', body: bytes = b'',
            **headers: str) -> Request:
    headers.setdefault('X-Zerovm-Execute', '1.0')
    return Request.blank(path, method='POST', body=body, headers={
        k.replace('_', '-'): v for k, v in headers.items()})


def chain(app, **conf) -> JobChainMiddleware:
    return JobChainMiddleware(app, {k: str(v) for k, v in conf.items()})


def test_plain_swift_requests_pass_through_untouched():
    app = ScriptedApp(Step('200 OK', [('Content-Type', 'application/json'),
                                      ('X-Zerovm-Execute', '1.0')], b'[]'))
    req = Request.blank('/v1/AUTH_a/c/o', body=b'data')
    original_input = req.environ['wsgi.input']
    resp = req.get_response(chain(app))
    assert resp.status_int == 200
    assert resp.body == b'[]'
    assert 'X-Chain-Total-Time' not in resp.headers
    assert len(app.seen) == 1
    assert app.seen[0]['env']['wsgi.input'] is original_input


@pytest.mark.parametrize('path', ['/', '/info', '/v1', '//x'])
def test_execute_header_without_account_passes_through(path):
    app = ScriptedApp(Step('412 Precondition Failed', [], b'Bad URL'))
    resp = request(path).get_response(chain(app))
    assert resp.status_int == 412
    assert 'X-Chain-Total-Time' not in resp.headers


def test_open_and_api_paths_are_zerocloud_requests_without_header():
    for path in ('/open/AUTH_a/c/o', '/api/AUTH_a/c/o'):
        app = ScriptedApp(Step('200 OK', [('Content-Type', 'text/plain')],
                               b'out'))
        req = Request.blank(path)
        resp = req.get_response(chain(app))
        assert resp.body == b'out'
        assert 'X-Chain-Total-Time' in resp.headers, path


def test_answer_that_is_no_job_is_streamed_as_it_is():
    step = Step('201 Created', [('Content-Type', 'text/plain'),
                                ('X-Nexe-Status', 'ok')], b'hello')
    app = ScriptedApp(step)
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured['status'], captured['headers'] = status, dict(headers)

    body_iter = chain(app)(request().environ, start_response)
    # Handed on, not buffered: nothing was read from the app's body yet.
    assert not step.closed
    assert b''.join(body_iter) == b'hello'
    assert captured['status'] == '201 Created'
    assert captured['headers']['X-Nexe-Status'] == 'ok'
    assert float(captured['headers']['X-Chain-Total-Time']) >= 0


def test_json_without_execute_header_is_no_job():
    app = ScriptedApp(Step('200 OK', [('Content-Type', 'application/json')],
                           b'[]'))
    resp = request().get_response(chain(app))
    assert resp.body == b'[]'
    assert len(app.seen) == 1


def test_execute_header_with_other_type_is_no_job():
    app = ScriptedApp(Step('200 OK', [('Content-Type', 'text/plain'),
                                      ('X-Zerovm-Execute', '1.0')], b'[]'))
    resp = request().get_response(chain(app))
    assert resp.body == b'[]'
    assert len(app.seen) == 1


def test_two_step_chain_runs_the_printed_job():
    job = json.dumps(NEXT_JOB).encode()
    first = Step('200 OK', JOB_HEADERS, job)
    app = ScriptedApp(first, Step('200 OK', [('Content-Type', 'text/plain')],
                                  b'chained: hi\n', reads=100000))
    authorize = mock.Mock(return_value=None)
    req = request('/v1/AUTH_a/c/o?x=1', body=b'[]',
                  Content_Type='application/json')
    req.environ['swift.authorize'] = authorize
    req.environ['REMOTE_USER'] = 'test:tester'
    resp = req.get_response(chain(app))
    assert resp.status_int == 200
    assert resp.body == b'chained: hi\n'
    assert float(resp.headers['X-Chain-Total-Time']) >= 0
    assert first.closed
    second = app.seen[1]
    assert second['method'] == 'POST'
    assert second['path'] == '/v1/AUTH_a'
    assert second['query'] == 'x=1'
    assert second['body'] == job
    assert second['headers']['X-Zerovm-Execute'] == '1.0'
    assert second['headers']['Content-Type'] == 'application/json'
    assert second['env']['swift.authorize'] is authorize
    assert second['env']['REMOTE_USER'] == 'test:tester'


def test_chained_request_path_is_quoted_once():
    app = ScriptedApp(Step('200 OK', JOB_HEADERS, b'[]'),
                      Step('200 OK', [('Content-Type', 'text/plain')], b''))
    req = request('/v1/AUTH_%C3%A9%20x', body=b'[]')
    req.get_response(chain(app))
    assert app.seen[1]['path'] == app.seen[0]['path'] == \
        '/v1/AUTH_\xc3\xa9 x'


def test_chain_input_is_what_the_first_job_left_unread():
    body = b'JOB!remaining bytes'
    seen_input = {}

    def read_chain_input(env):
        read, length = env[CHAIN_INPUT]
        seen_input['length'] = length
        seen_input['data'] = read(length)

    app = ScriptedApp(
        Step('200 OK', JOB_HEADERS, b'[]', reads=4),
        Step('200 OK', [('Content-Type', 'text/plain')], b'done',
             on_call=read_chain_input))
    resp = request(body=body).get_response(chain(app))
    assert resp.body == b'done'
    assert app.seen[0]['body'] == b'JOB!'
    assert CHAIN_INPUT not in app.seen[0]['env']
    assert seen_input == {'length': 15, 'data': b'remaining bytes'}


def test_chain_input_is_empty_once_a_job_read_it():
    def read_all(env):
        read, length = env[CHAIN_INPUT]
        read(length)

    app = ScriptedApp(
        Step('200 OK', JOB_HEADERS, b'[]', reads=2),
        Step('200 OK', JOB_HEADERS, b'[]', on_call=read_all),
        Step('200 OK', [('Content-Type', 'text/plain')], b'end'))
    resp = request(body=b'..abc').get_response(chain(app))
    assert resp.body == b'end'
    assert app.seen[1]['env'][CHAIN_INPUT][1] == 3
    assert app.seen[2]['env'][CHAIN_INPUT][1] == 0


def test_oversize_chained_job_is_413():
    huge = Step('200 OK', JOB_HEADERS, b'[' + b' ' * 200 + b']')
    app = ScriptedApp(huge)
    resp = request().get_response(chain(app, zerovm_maxconfig=100))
    assert resp.status_int == 413
    assert resp.body == b'Chained job description is larger than 100 bytes\n'
    assert resp.content_type == 'text/plain'
    assert 'X-Chain-Total-Time' in resp.headers
    assert len(app.seen) == 1
    assert huge.closed


def test_invalid_chained_job_gets_the_downstream_4xx():
    app = ScriptedApp(
        Step('200 OK', JOB_HEADERS, b'not json'),
        Step('422 Unprocessable Entity', [('Content-Type', 'text/plain')],
             b'Could not parse system map'))
    resp = request().get_response(chain(app))
    assert resp.status_int == 422
    assert resp.body == b'Could not parse system map'
    assert 'X-Chain-Total-Time' in resp.headers


def test_spent_budget_returns_the_last_job_with_200():
    clock = [100.0]

    def tick(env):
        clock[0] += 15

    app = ScriptedApp(
        Step('200 OK', JOB_HEADERS, b'[1]', on_call=tick),
        Step('201 Created', JOB_HEADERS, b'[2]', on_call=tick),
        Step('200 OK', [('Content-Type', 'text/plain')], b'never'))
    with mock.patch('zerocloud.proxy.chain.time.monotonic',
                    side_effect=lambda: clock[0]):
        resp = request().get_response(chain(app, chain_timeout=20))
    assert len(app.seen) == 2
    assert resp.status_int == 200
    assert resp.body == b'[2]'
    assert resp.content_type == 'application/json'
    assert resp.headers['X-Chain-Total-Time'] == '30.000'


@pytest.mark.parametrize('option, value', [
    ('chain_timeout', 'soon'), ('chain_timeout', '0'),
    ('zerovm_maxconfig', '-1'), ('zerovm_maxconfig', '1.5')])
def test_bad_options_are_refused_by_name_when_the_filter_is_built(option,
                                                                   value):
    with pytest.raises(ConfigError, match='^%s must be' % option):
        filter_factory({}, **{option: value})


def test_filter_factory_reads_its_options():
    mw = filter_factory({}, chain_timeout='2.5',
                        zerovm_maxconfig='1024')(ScriptedApp())
    assert mw.config == ChainConfig(chain_timeout=2.5, max_config=1024)
    assert JobChainMiddleware(ScriptedApp(), {}).config == ChainConfig(
        DEFAULT_CHAIN_TIMEOUT, DEFAULT_MAXCONFIG)


def test_body_stream_is_counted_not_copied():
    app = ScriptedApp(Step('200 OK', [('Content-Type', 'text/plain')], b'',
                           reads=3))
    request(body=b'abcdef').get_response(chain(app))
    assert app.seen[0]['body'] == b'abc'
    assert app.seen[0]['env']['wsgi.input'].bytes_received == 3
