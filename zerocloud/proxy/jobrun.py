"""Running one job: nodes on object servers → stored outputs → response.

:class:`JobRun` is the proxy side of an execution request once
``proxy_query`` has recognised it and :class:`~zerocloud.proxy.request.JobRequest`
has turned it into an authorized job.  It talks to Swift only through the
small set of helpers the filter offers (``fetch``, ``store``, ``target``,
``dispatch_node`` …), so the orchestration reads on its own:

1. get the job from the request (body, stored source, ``/open/``, ``/api/``);
2. authorize every object the job touches, before anything runs;
3. run the job stage by stage (DESIGN.md §4): nodes of one stage run in
   parallel; a connection A → B is materialised: what A wrote to
   ``/dev/out/B`` is spooled here and handed to B as ``/dev/in/A`` once every
   node B reads from has finished;
4. store outputs with ``swift://`` paths, as the user, only if every node
   succeeded; otherwise nothing is stored;
5. answer with the path-less outputs concatenated in node order and one
   ``X-Nexe-*`` entry per node — or, for ``X-Zerovm-Deferred``, answer at once
   with the ``swift://`` URL where the response will be written.

A node whose object server fails while running it is retried once on the next
server of its candidate list.  A node with ``replicate: n`` runs as n copies
on different servers in deterministic mode; their output etags must agree,
else the node fails with ``replica outputs differ``.
"""

import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional

import eventlet
from eventlet import GreenPile
from swift.common.swob import Response

from zerocloud import cgi, protocol
from zerocloud.proxy.nodeclient import Answer, Attempts, Upload
from zerocloud.headers import header_value
from zerocloud.job.model import Job, Node, SwiftPath
from zerocloud.proxy.request import JobRequest, NodeError
from zerocloud.job.source import Spooled
from zerocloud.object.filter import OWNER_HEADER, OWNER_HEADER_VALUE

EXECUTE_HEADER = 'X-Zerovm-Execute'
DEFERRED_HEADER = 'X-Zerovm-Deferred'
#: Asks the object server for a deterministic run; the value pins the clock.
DETERMINISTIC_HEADER = 'X-Zerovm-Deterministic'
COLOCATED_HEADER = 'X-Nexe-Colocated'
NEXE_DEFAULTS = (
    ('X-Nexe-System', None),
    ('X-Nexe-Status', 'ZeroVM did not run'),
    ('X-Nexe-Retcode', '0'),
    ('X-Nexe-Etag', ''),
    ('X-Nexe-Validation', '0'),
    ('X-Nexe-Cdr-Line', '0.0 0.0 0 0 0 0 0 0 0 0'),
    ('X-Nexe-Policy', ''),
    ('X-Nexe-Colocated', '0'),
)
#: Headers whose items are text, not numbers or digests.
NEXE_TEXT_HEADERS = ('X-Nexe-System', 'X-Nexe-Status', 'X-Nexe-Policy')
#: A node the sandbox stopped (time, memory, output limits, a trap).
NODE_FAILED = 422
RETRIES = 1


@dataclass
class PendingPut:
    path: SwiftPath
    data: Spooled
    content_type: str
    meta: Dict[str, str]


@dataclass
class Body:
    size: int
    content_type: str
    chunks: Iterator[bytes]
    headers: Dict[str, str] = field(default_factory=dict)
    spooled: Optional[Spooled] = None


@dataclass
class NodeResult:
    node: Node
    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    error: str = ''
    body: Optional[Body] = None
    puts: List[PendingPut] = field(default_factory=list)
    edges: Dict[str, Spooled] = field(default_factory=dict)
    release: Optional[Callable[[], None]] = None

    @property
    def failed(self) -> bool:
        return bool(self.error) or self.status >= 300

    def discard(self) -> None:
        """Drop everything this node's answer left behind."""
        if self.body is not None:
            close = getattr(self.body.chunks, 'close', None)
            if close:
                close()
            if self.body.spooled:
                self.body.spooled.remove()
        if self.release:
            self.release()
            self.release = None
        for put in self.puts:
            put.data.remove()
        for data in self.edges.values():
            data.remove()


class JobRun:
    """One execution request (see the module docstring)."""

    def __init__(self, request: JobRequest):
        self.request = request
        self.mw = request.mw
        self.req = request.req
        self.account = request.account
        self.locations: Dict[str, tuple] = {}
        self.started = time.time()
        self.job_id = '%010x%s' % (int(self.started * 1000),
                                   uuid.uuid4().hex[:6])

    def respond(self) -> Response:
        try:
            job = self.request.prepare()
            mode = self.req.headers.get(DEFERRED_HEADER, '').lower()
            if mode in ('always', 'auto'):
                return self._deferred(job, mode)
            return self._response(self._run(job, stream=len(job.nodes) == 1))
        except BaseException:
            self.request.remove_inputs()
            raise

    # -- running the nodes --------------------------------------------------

    def _run(self, job: Job, stream: bool) -> List[NodeResult]:
        """Run every stage; a failed stage stops the job."""
        done: Dict[str, NodeResult] = {}
        try:
            for stage in job.stages():
                if any(r.failed for r in done.values()):
                    break
                pile = GreenPile(len(stage))
                for node in stage:
                    pile.spawn(self._run_replicated if node.replicate > 1
                               else self._run_node, node, stream, done)
                for result in pile:
                    done[result.node.name] = result
        finally:
            self.request.remove_inputs()
        return [done.get(node.name) or NodeResult(node) for node in job.nodes]

    def _uploads(self, node: Node, placed, done: Dict[str, NodeResult]
                 ) -> List[Upload]:
        sysmap = json.dumps(node.to_dict()).encode('utf-8')
        uploads = [Upload('sysmap', len(sysmap), [sysmap])]
        try:
            has_image_path = any(
                ch.device == 'image' and isinstance(ch.path, SwiftPath)
                for ch in node.channels)
            image = self.request.image
            if image is not None and not has_image_path:
                uploads.append(Upload('image', image.size,
                                      protocol.iter_file(image.path)))
            if isinstance(node.exe, SwiftPath):
                uploads.append(self.mw.fetch(self.req, node.exe, 'boot',
                                             self.request.grants))
            for ch in node.channels:
                if not isinstance(ch.path, SwiftPath) or ch.writable or \
                        ch is placed:
                    continue
                if ch.path.obj is None:
                    raise NodeError('Cannot use container %s as a remote '
                                    'object reference' % ch.path.url)
                uploads.append(self.mw.fetch(self.req, ch.path, ch.device,
                                             self.request.grants))
            stream = self.request.stream
            if node.wants_stream and stream is not None:
                uploads.append(Upload('stdin', stream.size,
                                      protocol.iter_file(stream.path)))
            for edge in node.edges:
                if edge.direction == 'in':
                    data = self._edge_data(done[edge.peer], node.name)
                    uploads.append(Upload(edge.device, data.size,
                                          data.chunks()))
        except BaseException:
            for upload in uploads:
                upload.close()
            raise
        return uploads

    @staticmethod
    def _edge_data(upstream: NodeResult, downstream: str) -> Spooled:
        for edge in upstream.node.edges:
            if edge.direction == 'out' and edge.peer == downstream:
                return upstream.edges[edge.device]
        raise NodeError('No data from %s for %s'
                        % (upstream.node.name, downstream), 500)

    def _colocate(self, location: str, copy: int, candidates: List[dict],
                  headers: Dict[str, str], free: bool) -> List[dict]:
        """Nodes sharing a ``location`` (copy by copy) share a server.

        The first node to claim a location keeps its own first choice; the
        others try that server first when they may run there (they run
        anywhere, or it holds their input).  ``X-Nexe-Colocated`` lets each
        server prove which location server it was.
        """
        key = '%s-%d' % (location, copy)
        if key not in self.locations:
            self.locations[key] = (candidates[0], uuid.uuid4().hex)
        server, salt = self.locations[key]
        same = [c for c in candidates if (c['ip'], c['port']) == (
            server['ip'], server['port'])]
        if same or free:
            first = same[0] if same else server
            candidates = [first] + [c for c in candidates if c is not first]
            headers[COLOCATED_HEADER] = '%s:%s:%s' % (
                salt, server['ip'], server['port'])
        return candidates

    def _headers(self, target) -> Dict[str, str]:
        return {
            EXECUTE_HEADER: self.req.headers.get(EXECUTE_HEADER, '1.0'),
            'X-Zerocloud-Id': self.job_id,
            'X-Zerovm-Timeout': str(self.mw.timeout),
            'X-Zerovm-Access': target.access,
            'X-Backend-Storage-Policy-Index': str(target.policy_index),
            'Content-Type': 'application/x-tar',
            'X-Trans-Id': self.req.environ.get('swift.trans_id', ''),
            'User-Agent': 'zerocloud-proxy',
        }

    def _run_replicated(self, node: Node, stream: bool,
                        done: Dict[str, NodeResult]) -> NodeResult:
        """``replicate: n``: n deterministic copies; their outputs agree."""
        pile = GreenPile(node.replicate)
        for copy in range(node.replicate):
            pile.spawn(self._run_node, node, False, done, copy)
        first, *others = list(pile)
        etags = {r.headers.get('X-Nexe-Etag') for r in [first] + others}
        failed = [r for r in [first] + others if r.failed]
        for other in others:
            other.discard()
        if failed:
            if failed[0] is not first:
                first.discard()
            return failed[0]
        if len(etags) > 1:
            first.discard()
            first.status = NODE_FAILED
            first.headers['X-Nexe-Status'] = 'replica outputs differ'
            first.error = 'Node %s failed: its %d copies wrote different ' \
                'outputs (%s)' % (node.name, node.replicate,
                                  ' | '.join(sorted(map(str, etags))))
        return first

    def _run_node(self, node: Node, stream: bool,
                  done: Dict[str, NodeResult], copy: int = 0) -> NodeResult:
        result = NodeResult(node)
        try:
            target = self.mw.target(self.req, node, self.account)
        except NodeError as err:
            result.status, result.error = err.status, err.message
            return result
        placed = node.placement_channel() if target.access else None
        # Copies of a replicated node start on different servers.
        shift = copy % max(1, len(target.nodes))
        candidates = target.nodes[shift:] + target.nodes[:shift]
        headers = self._headers(target)
        if placed is not None and isinstance(placed.path, SwiftPath) and \
                placed.path.is_container and self.request.owns(placed.path):
            # Only an owner's node gets the container database unscrubbed.
            headers[OWNER_HEADER] = OWNER_HEADER_VALUE
        if node.location:
            candidates = self._colocate(node.location, copy, candidates,
                                        headers, free=not target.access)
        if node.replicate > 1:
            headers[DETERMINISTIC_HEADER] = '%d' % self.started
        retries = RETRIES
        while True:
            try:
                uploads = self._uploads(node, placed, done)
            except NodeError as err:
                result.status, result.error = err.status, err.message
                return result
            answer = self.mw.dispatch_node(candidates, target, headers,
                                           uploads)
            if isinstance(answer, Attempts) and answer.lost is not None \
                    and retries > 0:
                retries -= 1
                self.mw.logger.warning(
                    'zerocloud: retrying node %s after %s:%s failed',
                    node.name, answer.lost['ip'], answer.lost['port'])
                candidates = candidates[candidates.index(answer.lost) + 1:]
                continue
            break
        if isinstance(answer, Attempts):
            refusal = answer.final(target.path_info)
            result.status, result.error = refusal.status, refusal.message
        elif answer.status >= 300:
            # A node that ran and then failed (invalid CGI output) still
            # reports how the sandbox ran.
            result.headers = self._nexe_reported(answer.headers)
            result.status = answer.status
            result.error = answer.body_error or \
                'Error %d while running %s' % (answer.status, node.name)
        else:
            self._collect(result, answer, stream)
        return result

    def _collect(self, result: NodeResult, answer: Answer,
                 stream: bool) -> None:
        node = result.node
        got = answer.headers
        if 'X-Nexe-Status' not in got:
            answer.release()
            result.status = 503
            result.error = ('objectquery middleware is not installed or not '
                            'functioning')
            return
        result.headers = self._nexe_reported(got)
        if got['X-Nexe-Status'] != 'ok':
            result.status = NODE_FAILED
            result.error = 'Node %s failed: %s' % (node.name,
                                                   got['X-Nexe-Status'])
        channels = {ch.device: ch for ch in node.channels}
        edges = {e.device for e in node.edges if e.direction == 'out'}
        reader = protocol.MemberReader(answer.read)
        try:
            while True:
                member = reader.next_member()
                if member is None:
                    break
                if member.name in edges:
                    result.edges[member.name] = self._spool(reader)
                    continue
                channel = channels.get(member.name)
                if channel is None:
                    raise protocol.FramingError(
                        'Channel name %s not found' % member.name)
                ctype = member.pax.get('content_type', channel.content_type)
                meta = {k[5:]: v for k, v in member.pax.items()
                        if k.startswith('meta.')}
                if isinstance(channel.path, SwiftPath):
                    result.puts.append(PendingPut(
                        channel.path, self._spool(reader), ctype, meta))
                    continue
                body_headers = self._body_headers(member.pax, meta)
                if 'status' in member.pax:
                    result.status = max(result.status,
                                        self._program_status(member.pax))
                if stream:
                    result.body = Body(member.size, ctype,
                                       self._member_chunks(reader),
                                       body_headers)
                    result.release = answer.release
                    return
                spooled = self._spool(reader)
                result.body = Body(spooled.size, ctype, spooled.chunks(),
                                   body_headers, spooled)
        except (protocol.FramingError, ValueError) as err:
            result.status = 503
            result.error = 'Bad answer from storage server: %s' % err
        except OSError:
            # The connection or our spool: the detail (errno, spool path)
            # is for the log, not for the client.
            self.mw.logger.exception('zerocloud: reading the answer for '
                                     'node %s failed', node.name)
            result.status = 503
            result.error = 'Bad answer from storage server for node %s' \
                % node.name
        answer.release()

    @staticmethod
    def _nexe_reported(headers: Dict[str, str]) -> Dict[str, str]:
        return {k: v for k, v in headers.items() if k.startswith('X-Nexe-')}

    @staticmethod
    def _program_status(pax: Dict[str, str]) -> int:
        """The status a CGI program chose; ValueError unless final (2xx-5xx),
        as the object server refuses the others."""
        status = int(pax['status'].split()[0])
        if not 200 <= status <= 599:
            raise ValueError('status %d' % status)
        return status

    @staticmethod
    def _body_headers(pax: Dict[str, str], meta: Dict[str, str]
                      ) -> Dict[str, str]:
        """Headers a CGI program printed for its immediate output.

        The object server already dropped framing and hop-by-hop headers
        and refused control characters; checked again here so that an
        answer altered on its way cannot set them either.
        """
        headers = {'X-Object-Meta-' + k: v for k, v in meta.items()}
        for key, value in pax.items():
            name = key[len('header.'):]
            if key.startswith('header.') and not name.lower().startswith(
                    ('x-nexe-', 'content-', 'x-object-meta-', 'status')) \
                    and cgi.forwardable_header(name, value):
                headers[name] = value
        return headers

    @staticmethod
    def _member_chunks(reader: protocol.MemberReader) -> Iterator[bytes]:
        while True:
            chunk = reader.read()
            if not chunk:
                return
            yield chunk

    def _spool(self, reader: protocol.MemberReader) -> Spooled:
        fd, path = tempfile.mkstemp(prefix='zerocloud-out-',
                                    dir=self.mw.spool_dir)
        with os.fdopen(fd, 'wb') as fp:
            size = reader.copy_to(fp)
        return Spooled(path, size)

    # -- the client's response ----------------------------------------------

    def _store_outputs(self, results: List[NodeResult]) -> None:
        ok = not any(r.failed for r in results)
        for result in results:
            for put in result.puts:
                refusal = ok and self.mw.store(
                    self.req, put, self.request.grants)
                if refusal:
                    status, result.error = refusal
                    result.status = max(result.status, status)
                    ok = False   # store nothing more once Swift refused
                put.data.remove()
            result.puts = []
            for data in result.edges.values():
                data.remove()
            result.edges = {}

    def _response(self, results: List[NodeResult]) -> Response:
        self._store_outputs(results)
        headers = self._nexe_headers(results)
        status = max(r.status for r in results)
        errors = [r.error for r in results if r.error]
        self._account_for(results, status, headers)
        if errors:
            for result in results:
                result.discard()
            if status == 503:
                headers['Retry-After'] = '1'

            text = ''.join(e if e.endswith('\n') else e + '\n'
                           for e in errors)
            return Response(status=status, body=text, headers=headers,
                            content_type='text/plain')
        bodies = [r.body for r in results if r.body is not None]
        for body in bodies:
            headers.update(body.headers)
        content_type = bodies[0].content_type if bodies else 'text/plain'
        if status in cgi.BODILESS_STATUSES:
            # A client reads no body after 204 or 304: bytes a program
            # printed there would be taken for the next response.
            for result in results:
                result.discard()
            bodies = []
        resp = Response(status=status, headers=headers,
                        app_iter=self._body_iter(results, bodies))
        resp.content_type = content_type
        resp.content_length = sum(b.size for b in bodies)
        return resp

    def _account_for(self, results: List[NodeResult], status: int,
                     headers: Dict[str, str]) -> None:
        """A log line per job and, when enabled, an accounting object."""
        self.mw.logger.info(
            'zerocloud job %s account %s status %d nodes %s node-status %s '
            'cdr %s', self.job_id, self.account, status,
            headers['X-Nexe-System'], headers['X-Nexe-Status'],
            headers['X-Nexe-Cdr-Line'])
        if not self.mw.accounting:
            return
        now = time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())
        txn = self.req.environ.get('swift.trans_id', '-')
        lines = ''.join(
            '%s %s %s (%s) [%s]\n' % (
                now, txn, r.node.name,
                r.headers.get('X-Nexe-Cdr-Line', '0.0 0.0 0 0 0 0 0 0 0 0'),
                r.headers.get('X-Nexe-Status', 'ZeroVM did not run'))
            for r in results).encode('utf-8')
        # Off the request's path: the client does not wait for it.
        eventlet.spawn_n(self.mw.record_accounting, self.req, self.account,
                         self.job_id, lines)

    def _nexe_headers(self, results: List[NodeResult]) -> Dict[str, str]:
        """One item per node in each ``X-Nexe-*`` header.

        Items of text (names, statuses, errors) are encoded
        (:mod:`zerocloud.headers`): errors quote users' paths and programs'
        stderr.  Items object servers sent are encoded already; encoding
        them again changes nothing.
        """
        headers: Dict[str, str] = {}
        for key, default in NEXE_DEFAULTS:
            items = [r.headers.get(key, r.node.name if default is None
                                   else default) for r in results]
            if key in NEXE_TEXT_HEADERS:
                items = [header_value(item) for item in items]
            headers[key] = ','.join(items)
        fuel = [r.headers.get('X-Nexe-Fuel') for r in results]
        if any(fuel):
            headers['X-Nexe-Fuel'] = ','.join(f or '0' for f in fuel)
        errors = [r.error for r in results if r.error] or [
            r.headers['X-Nexe-Error'] for r in results
            if 'X-Nexe-Error' in r.headers]
        if errors:
            headers['X-Nexe-Error'] = ' '.join(header_value(e)
                                               for e in errors)
        headers['X-Nexe-Cdr-Line'] = '%.3f, %s' % (
            time.time() - self.started, headers['X-Nexe-Cdr-Line'])
        return headers

    @staticmethod
    def _body_iter(results: List[NodeResult], bodies: List[Body]
                   ) -> Iterator[bytes]:
        try:
            for body in bodies:
                yield from body.chunks
        finally:
            for result in results:
                result.discard()

    # -- deferred jobs ------------------------------------------------------

    def _deferred(self, job: Job, mode: str) -> Response:
        """Answer with the result's URL if the job is not done in time."""
        result_path = self.request.deferred_result_path()
        runner = eventlet.spawn(self._run, job, False)
        wait = 0 if mode == 'always' else self.mw.timeout + 1.0
        try:
            with eventlet.Timeout(wait):
                results = runner.wait()
        except eventlet.Timeout:
            runner.link(self._store_deferred, result_path)
            return Response(status=200, body=result_path.url + '\n',
                            content_type='text/plain')
        return self._response(results)

    def _store_deferred(self, runner, result_path: SwiftPath) -> None:
        try:
            resp = self._response(runner.wait())
            body = b''.join(resp.app_iter)
            headers = {k: v for k, v in resp.headers.items()
                       if k.startswith('X-Nexe-')}
            headers['Status'] = resp.status
            self.mw.store_deferred(self.req, result_path, body,
                                   resp.content_type,
                                   json.dumps(headers).encode('utf-8'))
        except Exception:
            self.mw.logger.exception('zerocloud: deferred job %s failed',
                                     self.job_id)
