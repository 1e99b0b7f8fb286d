"""The client's answer to a job: stored outputs, ``X-Nexe-*``, the body.

Outputs with ``swift://`` paths are stored as the user only if every node
succeeded, and no more once Swift refused one; then the path-less outputs
form the body, concatenated in node order, with one ``X-Nexe-*`` item per
node.  A job asked to be deferred (``X-Zerovm-Deferred``) that is not done in
time answers at once with the ``swift://`` URL where its response will be
written.
"""

import json
import time
from typing import Callable, Dict, Iterator, List, Optional

import eventlet
from swift.common.swob import Response
from swift.common.utils import FileLikeIter, close_if_possible

from zerocloud import cgi, protocol
from zerocloud.headers import (
    STREAMING_STATUS, fit_item_lists, fit_text, header_value, value_room)
from zerocloud.job.model import SwiftPath
from zerocloud.proxy.access import Grants
from zerocloud.proxy.accounting import (
    UNRUN_CDR, UNRUN_STATUS, AccountingSpool, accounting_lines)
from zerocloud.proxy.nodeclient import Body, NodeResult, StreamFailed
from zerocloud.proxy.swiftaccess import SwiftAccess
from zerocloud.proxy.trailers import Trailers
from zerocloud.stages import StageClock, format_stages

DEFERRED_HEADER = 'X-Zerovm-Deferred'
#: Each ``X-Nexe-*`` header and a node's item when it has none.
NEXE_DEFAULTS = (
    ('X-Nexe-System', None),   # the node's name
    ('X-Nexe-Status', UNRUN_STATUS),
    ('X-Nexe-Retcode', '0'),
    ('X-Nexe-Etag', ''),
    ('X-Nexe-Validation', '0'),
    ('X-Nexe-Cdr-Line', UNRUN_CDR),
    ('X-Nexe-Policy', ''),
    ('X-Nexe-Colocated', '0'),
    (protocol.SNAPSHOT_HEADER, 'none'),
)
#: The final headers a streamed answer's trailers may hold.
NEXE_TRAILERS = [name for name, _default in NEXE_DEFAULTS] + [
    'X-Nexe-Fuel', 'X-Nexe-Error']
#: Headers whose items are text, not numbers or digests.
NEXE_TEXT_HEADERS = ('X-Nexe-System', 'X-Nexe-Status', 'X-Nexe-Policy')


def nexe_headers(results: List[NodeResult], elapsed: float
                 ) -> Dict[str, str]:
    """One item per node in each ``X-Nexe-*`` header.

    Items of text (names, statuses, errors) are encoded
    (:mod:`zerocloud.headers`): errors quote users' paths and programs'
    stderr.  Items object servers sent are encoded already; encoding them
    again changes nothing.  A wide job's lists keep their first items and
    a ``...(<n> more)`` item, so that every header line stays under 8 KiB
    (:func:`~zerocloud.headers.fit_item_lists`); ``X-Nexe-Error`` is cut
    (its errors are all in the body).
    """
    lists: Dict[str, List[str]] = {}
    for key, default in NEXE_DEFAULTS:
        items = [r.headers.get(key, r.node.name if default is None
                               else default) for r in results]
        if key in NEXE_TEXT_HEADERS or key == 'X-Nexe-Etag':
            # An etag item lists every output channel of its node.
            items = [header_value(item) for item in items]
        lists[key] = items
    fuel = [r.headers.get('X-Nexe-Fuel') for r in results]
    if any(fuel):
        lists['X-Nexe-Fuel'] = [f or '0' for f in fuel]
    headers = fit_item_lists(lists, {'X-Nexe-Cdr-Line': '%.3f, ' % elapsed})
    errors = [r.error for r in results if r.error] or [
        r.headers['X-Nexe-Error'] for r in results
        if 'X-Nexe-Error' in r.headers]
    if errors:
        headers['X-Nexe-Error'] = fit_text('X-Nexe-Error', ' '.join(
            header_value(e) for e in errors))
    return headers


class _ResultBody:
    """The bodies of a job's answer, in node order; every result's files
    are removed at the end, also when the client leaves before the first
    byte (the server then only closes this)."""

    def __init__(self, results: List[NodeResult], bodies: List[Body]):
        self.results = results
        self.bodies = bodies

    def __iter__(self) -> Iterator[bytes]:
        try:
            for body in self.bodies:
                yield from body.chunks
        finally:
            self.close()

    def close(self) -> None:
        results, self.results = self.results, []
        for result in results:
            result.discard()


def discard_all(results: List[NodeResult]) -> None:
    """Remove every file the results hold (each may already be gone)."""
    for result in results:
        result.discard()


class JobResponse:
    """Turns one job's node results into the client's response."""

    def __init__(self, swift: SwiftAccess, grants: Grants,
                 accounting: Optional[AccountingSpool], logger,
                 job_id: str, account: str, started: float,
                 clock: StageClock):
        self.swift = swift
        self.grants = grants
        self.accounting = accounting
        self.logger = logger
        self.job_id = job_id
        self.account = account
        self.started = started
        self.clock = clock

    def store_streaming(self, results: List[NodeResult]) -> None:
        """PUT the outputs that come while their node runs (a one-node
        job's only output, see :mod:`zerocloud.object.outstream`); the
        node's final headers come at their end.  One that came again whole
        is stored by :meth:`store_outputs`, its ``PUT`` here abandoned."""
        for result in results:
            put = result.streaming_put
            if put is None:
                continue
            refusal = self.swift.store_streaming(put, self.grants)
            result.end_stream()
            if refusal and not put.replaced and not result.failed:
                result.status, result.error = refusal

    def store_outputs(self, results: List[NodeResult]) -> None:
        ok = not any(r.failed for r in results)
        for result in results:
            for put in result.puts:
                refusal = ok and self.swift.store(put, self.grants)
                if refusal:
                    status, result.error = refusal
                    result.status = max(result.status, status)
                    ok = False   # store nothing more once Swift refused
                put.data.remove()
            result.puts = []
            for data in result.edges.values():
                data.remove()
            result.edges = {}

    def respond(self, results: List[NodeResult]) -> Response:
        try:
            return self._respond(results)
        except BaseException:
            discard_all(results)
            raise

    def _respond(self, results: List[NodeResult]) -> Response:
        if any(r.streamed for r in results):
            return self._streamed(results)
        self.store_streaming(results)
        self.store_outputs(results)
        headers = nexe_headers(results, time.time() - self.started)
        status = max(r.status for r in results)
        errors = [r.error for r in results if r.error]
        self._account_for(results, status, headers)
        if errors:
            discard_all(results)
            if status == 503:
                headers['Retry-After'] = '1'
            text = ''.join(e if e.endswith('\n') else e + '\n'
                           for e in errors)
            return Response(status=status, body=text, headers=headers,
                            content_type='text/plain')
        bodies = [r.body for r in results if r.body is not None]
        for body in bodies:
            # A printed header too long for one line is left out, not cut.
            headers.update((name, value) for name, value in
                           body.headers.items()
                           if len(value) <= value_room(name))
        content_type = bodies[0].content_type if bodies else 'text/plain'
        if status in cgi.BODILESS_STATUSES:
            # A client reads no body after 204 or 304: bytes a program
            # printed there would be taken for the next response.
            discard_all(results)
            bodies = []
        resp = Response(status=status, headers=headers,
                        app_iter=_ResultBody(results, bodies))
        resp.content_type = content_type
        resp.content_length = sum(b.size for b in bodies)
        return resp

    def _streamed(self, results: List[NodeResult]) -> Response:
        """The answer of a one-node job whose body streams while the node
        runs: ``200`` at once, ``X-Nexe-Status: streaming``; the body ends
        cleanly only if the node succeeds, else it is cut short (see
        :data:`STREAMING_STATUS`), unless the client asked for trailers:
        then it ends with the final status in them, either way (see
        :mod:`zerocloud.proxy.trailers`).  The job's log line and
        accounting come at its end, with the node's final headers."""
        [result] = results
        body = result.body
        headers = {'X-Nexe-System': header_value(result.headers.get(
                       'X-Nexe-System', result.node.name)),
                   'X-Nexe-Policy': result.headers.get('X-Nexe-Policy', ''),
                   'X-Nexe-Status': STREAMING_STATUS}
        trailers = Trailers.for_request(self.swift.req.environ,
                                        NEXE_TRAILERS)
        if trailers is not None:
            headers['Trailer'] = trailers.announcement
        resp = Response(status=200, headers=headers, app_iter=_ResultBody(
            results, [Body(None, body.content_type, self._accounted(
                results, body.chunks, trailers))]))
        resp.content_type = body.content_type
        return resp

    def _accounted(self, results: List[NodeResult], chunks: Iterator[bytes],
                   trailers: Optional[Trailers]) -> Iterator[bytes]:
        """``chunks``, then the job's accounting; then, if the client
        asked for them, the trailers, also after a failure (which otherwise
        goes on as :class:`StreamFailed`, cutting the body short).  They
        follow a body eventlet has begun to write, never an empty one."""
        started = False
        try:
            for chunk in chunks:
                started = started or bool(chunk)
                yield chunk
        except StreamFailed:
            if trailers is None or not started:
                raise
        finally:
            status = max(r.status for r in results)
            final = nexe_headers(results, time.time() - self.started)
            self._account_for(results, status, final)
        if trailers is not None and started:
            trailers.send(status, final)

    def _account_for(self, results: List[NodeResult], status: int,
                     headers: Dict[str, str]) -> None:
        """Log lines per job (its result, where its time went) and, when
        enabled, its accounting lines."""
        self.clock.mark('run+respond')
        txn = self.swift.req.environ.get('swift.trans_id', '-')
        self.logger.info(
            'zerocloud job %s account %s status %d nodes %s node-status %s '
            'cdr %s', self.job_id, self.account, status,
            headers['X-Nexe-System'], headers['X-Nexe-Status'],
            headers['X-Nexe-Cdr-Line'])
        self.logger.info(
            'zerocloud job %s txn %s stages %s subrequests=%d memcache=%s '
            '%s', self.job_id, txn, format_stages(self.clock.stages).replace(
                ',', ' '), self.swift.subrequests, self.swift.cache_lookups,
            ' '.join('%s:%s' % (r.node.name, format_stages(r.stages))
                     for r in results))
        if self.accounting is None:
            return
        lines = accounting_lines(
            results, time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime()), txn)
        try:
            self.accounting.record(self.account, lines)
        except OSError:
            # Its answer is made: the job is not failed for its record.
            self.logger.exception('zerocloud: accounting of job %s',
                                  self.job_id)

    def deferred(self, run: Callable[[], List[NodeResult]],
                 result_path: SwiftPath, wait: float) -> Response:
        """Answer with the result's URL if ``run`` is not done in ``wait``
        seconds; its response is then written there."""
        runner = eventlet.spawn(run)
        try:
            with eventlet.Timeout(wait):
                results = runner.wait()
        except eventlet.Timeout:
            runner.link(self._store_deferred, result_path)
            return Response(status=200, body=result_path.url + '\n',
                            content_type='text/plain')
        return self.respond(results)

    def _store_deferred(self, runner, result_path: SwiftPath) -> None:
        """Write the response where the client was told: its body streamed
        from the nodes' spooled outputs, never held whole in memory."""
        try:
            resp = self.respond(runner.wait())
            try:
                headers = {k: v for k, v in resp.headers.items()
                           if k.startswith('X-Nexe-')}
                headers['Status'] = resp.status
                self.swift.store_deferred(
                    result_path, FileLikeIter(resp.app_iter),
                    resp.content_length, resp.content_type,
                    json.dumps(headers).encode('utf-8'))
            finally:
                close_if_possible(resp.app_iter)
        except Exception:
            self.logger.exception('zerocloud: deferred job %s failed',
                                  self.job_id)
