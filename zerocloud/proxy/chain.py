"""
job_chain: a job's answer can be the next job
=============================================

``job_chain`` lets a job decide what runs next.  When the response to a
ZeroCloud request is itself a job description, the filter runs that job as
if the same user had ``POST``-ed it, and so on, until a response is not a job
(the client gets it) or the chain's time budget is spent.

A response is the next job of the chain when

* it has a non-empty ``X-Zerovm-Execute`` header,
* its media type is ``application/json`` (parameters such as ``charset`` are
  ignored), and
* the chain so far took less than ``chain_timeout`` seconds.

A program produces such a response through a path-less output whose
``content_type`` is ``message/cgi`` (or ``message/http``): it prints
``Content-Type: application/json`` and ``X-Zerovm-Execute: 1.0``, a blank
line, then the job description.  The next job is sent through the rest of the
pipeline as ``POST /v1/<account>`` with ``X-Zerovm-Execute: 1.0``, as the same
user (the auth middleware's decision hooks carry over), with the original
query string and transaction id.

Every response the client gets from a chain carries
``X-Chain-Total-Time: <seconds, %.3f>``.  A job description larger than
``zerovm_maxconfig`` ends the chain with ``413``.  When the budget is spent
while the response is still a job description, that description is returned
with status ``200``.  A chained job that is invalid gets ``proxy_query``'s own
``4xx`` answer, which ends the chain.

The chain's input is the original request body: whatever the first jobs left
unread of it (``Content-Length`` minus the bytes read so far, or the rest of
a chunked body) becomes the ``stdin`` of the nodes of a chained job whose
``stdin`` has no path (all such nodes get the same bytes).  A job
``POST``-ed as JSON, zapp or script reads its whole body, so nothing is
left; a job run by ``X-Zerovm-Source`` whose nodes do not read ``stdin``
leaves the body to the chain.

Only ZeroCloud requests are chained: an account in the path and an
``X-Zerovm-Execute`` header, or a path under ``/open/`` or ``/api/``.
Everything else passes through untouched.

Pipeline (right before ``proxy_query``)::

    [pipeline:main]
    pipeline = catch_errors gatekeeper healthcheck proxy-logging cache
               tempauth job_chain proxy_query proxy-server

    [filter:job_chain]
    use = egg:zerocloud#job_chain

Options (``[filter:job_chain]``), with defaults:

``chain_timeout = 20``
    seconds a chain may take; once spent, no further job is started.
``zerovm_maxconfig = 65536``
    largest chained job description accepted, in bytes (as
    ``proxy_query``'s option of the same name).
"""

import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from swift.common.registry import register_swift_info
from swift.common.swob import Request, Response, wsgi_quote
from swift.common.utils import InputProxy, close_if_possible
from swift.common.wsgi import WSGIContext, make_subrequest

from zerocloud.protocol import EXECUTE_HEADER
from zerocloud.proxy.config import ChainConfig
from zerocloud.proxy.request import CHAIN_INPUT, CHAIN_PROVENANCE, JOB_PROVENANCE

CHAIN_TIME_HEADER = 'X-Chain-Total-Time'
CHAIN_CONTENT_TYPE = 'application/json'
#: URL version segments that make a request a ZeroCloud one by themselves.
ZEROCLOUD_VERSIONS = ('open', 'api')
SWIFT_SOURCE = 'ZCH'

Headers = List[Tuple[str, str]]


def zerocloud_account(env: dict) -> Optional[str]:
    """The account of a ZeroCloud request (WSGI string), else None."""
    req = Request(env)
    try:
        version, account, _, _ = req.split_path(1, 4, True)
    except ValueError:
        return None
    if not account:
        return None
    if EXECUTE_HEADER in req.headers or version in ZEROCLOUD_VERSIONS:
        return account
    return None


def declared_length(env: dict) -> Optional[int]:
    """The request body's length: None for a chunked body (its end is its
    length; ``Transfer-Encoding`` wins over ``Content-Length``, as in
    Swift), 0 when absent or unusable (``proxy_query`` says why)."""
    if env.get('HTTP_TRANSFER_ENCODING'):
        return None
    try:
        return max(0, int(env.get('CONTENT_LENGTH') or 0))
    except ValueError:
        return 0


def header_value(headers: Headers, name: str) -> Optional[str]:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class ChainRun(WSGIContext):
    """One client request and the jobs chained to it."""

    def __init__(self, mw: 'JobChainMiddleware', env: dict, account: str):
        super().__init__(mw.app)
        self.mw = mw
        self.env = env
        self.account = account
        # Swift's InputProxy counts the bytes the jobs read from the body.
        self.input = InputProxy(env['wsgi.input'])
        env['wsgi.input'] = self.input
        self.length = declared_length(env)
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def respond(self, start_response: Callable) -> Iterable[bytes]:
        env = self.env
        while True:
            app_iter = self._app_call(env)
            headers = self._response_headers
            if not self._is_job(headers):
                return self._finish(start_response, self._response_status,
                                    headers, app_iter)
            if self.elapsed() >= self.mw.config.chain_timeout:
                return self._finish(start_response, '200 OK', headers,
                                    app_iter)
            job = self._read_job(app_iter)
            if job is None:
                resp = Response(
                    status=413, content_type='text/plain',
                    body='Chained job description is larger than %d bytes\n'
                    % self.mw.config.max_config)
                resp.headers[CHAIN_TIME_HEADER] = '%.3f' % self.elapsed()
                return resp(self.env, start_response)
            env = self._chained_env(job, env)

    @staticmethod
    def _is_job(headers: Headers) -> bool:
        ctype = header_value(headers, 'Content-Type') or ''
        return bool(header_value(headers, EXECUTE_HEADER)) and \
            ctype.split(';')[0].strip().lower() == CHAIN_CONTENT_TYPE

    def _finish(self, start_response: Callable, status: str,
                headers: Headers, app_iter: Iterable[bytes]
                ) -> Iterable[bytes]:
        """Hand the response on as it is, streamed, with the chain's time."""
        headers = [(k, v) for k, v in headers
                   if k.lower() != CHAIN_TIME_HEADER.lower()]
        headers.append((CHAIN_TIME_HEADER, '%.3f' % self.elapsed()))
        start_response(status, headers)
        return app_iter

    def _read_job(self, app_iter: Iterable[bytes]) -> Optional[bytes]:
        """The next job's description; None when it exceeds the limit."""
        parts = []
        size = 0
        try:
            for chunk in app_iter:
                size += len(chunk)
                if size > self.mw.config.max_config:
                    return None
                parts.append(chunk)
        finally:
            close_if_possible(app_iter)
        return b''.join(parts)

    def _chained_env(self, job: bytes, previous: dict) -> dict:
        """The next job as a POST by the same user, fed the chain's input.

        ``previous`` is the environment of the job that printed this one:
        its provenance (stored source for setuid, foreign origin) carries
        over, in a key only this filter sets.
        """
        path = '/v1/' + wsgi_quote(self.account)
        query = self.env.get('QUERY_STRING')
        if query:
            path += '?' + query
        sub = make_subrequest(self.env, 'POST', path, body=job, headers={
            EXECUTE_HEADER: '1.0', 'Content-Type': CHAIN_CONTENT_TYPE},
            swift_source=SWIFT_SOURCE)
        remaining = None if self.length is None else \
            max(0, self.length - self.input.bytes_received)
        sub.environ[CHAIN_INPUT] = (self.input.read, remaining)
        if JOB_PROVENANCE in previous:
            sub.environ[CHAIN_PROVENANCE] = previous[JOB_PROVENANCE]
        return sub.environ


class JobChainMiddleware:
    def __init__(self, app, conf: Dict[str, str]):
        self.app = app
        self.config = ChainConfig.from_conf(conf)

    def __call__(self, env, start_response):
        account = zerocloud_account(env)
        if account is None:
            return self.app(env, start_response)
        return ChainRun(self, env, account).respond(start_response)


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)
    # Checked here, when the pipeline is loaded: a bad value stops the
    # server at start, named.
    config = ChainConfig.from_conf(conf)
    register_swift_info('job_chain', chain_timeout=config.chain_timeout)

    def factory(app):
        return JobChainMiddleware(app, conf)
    return factory
