"""Running one job: request body → job → nodes on object servers → response.

:class:`JobRun` is the proxy side of an execution request once
``proxy_query`` has recognised it.  It talks to Swift only through the small
set of helpers the filter offers (``authorize``, ``list_names``, ``fetch``,
``store``, ``target``, ``dispatch_node``), so the orchestration reads on its
own:

1. read the body (or the ``X-Zerovm-Source`` object) into a job and an image;
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
from hashlib import md5
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Set

import eventlet
from eventlet import GreenPile
from swift.common.swob import HTTPException, Request, Response
from swift.common.utils import unquote

from zerocloud import cgi, framing, jobsource
from zerocloud.dispatch import Answer, Attempts, Upload
from zerocloud.job import (
    Job, JobError, Node, SwiftPath, job_from_script, parse_job,
    parse_location, substitute)

EXECUTE_HEADER = 'X-Zerovm-Execute'
SOURCE_HEADER = 'X-Zerovm-Source'
DEFERRED_HEADER = 'X-Zerovm-Deferred'
DEFERRED_CONTAINER = '.zvm'
#: Asks the object server for a deterministic run; the value pins the clock.
DETERMINISTIC_HEADER = 'X-Zerovm-Deterministic'
COLOCATED_HEADER = 'X-Nexe-Colocated'
#: environ key of a chained request: (read, length) of the chain's input.
CHAIN_INPUT = 'zerocloud.chain_input'
#: environ key: the ``swift://`` URL of the stored job that started a chain.
CHAIN_SOURCE = 'zerocloud.source'
#: Kinds of execution request: a job POST, an ``/open/`` or ``/api/`` call.
JOB, OPEN, API = 'job', 'open', 'api'
RUNNABLE_TYPES = ('application/wasm', 'application/x-nexe')
#: How ``/open/`` runs a WebAssembly object that has no registered app.
RUN_OBJECT_TEMPLATE = json.dumps([{
    'name': 'executable',
    'exec': {'path': '{.object_path}', 'args': '{.args}'},
    'devices': [{'name': 'stdout',
                 'content_type': '{.content_type=text/plain}'}]}])
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
#: A node the sandbox stopped (time, memory, output limits, a trap).
NODE_FAILED = 422
RETRIES = 1


class NodeError(JobError):
    """One node cannot run; the job goes on to report it for that node."""


@dataclass
class Spooled:
    """Bytes a node returned, kept in a local temp file."""
    path: str
    size: int

    def chunks(self) -> Iterator[bytes]:
        return framing.iter_file(self.path)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


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


def iter_reader(chunks: Iterable[bytes]) -> Callable[[int], bytes]:
    """A ``read(n)`` over an iterable of byte chunks (e.g. an app_iter)."""
    source = iter(chunks)
    pending = [b'']

    def read(size: int) -> bytes:
        while not pending[0]:
            try:
                pending[0] = next(source)
            except StopIteration:
                return b''
        chunk, pending[0] = pending[0][:size], pending[0][size:]
        return chunk
    return read


class JobRun:
    """One execution request (see the module docstring)."""

    def __init__(self, mw, req: Request, account: str,
                 container: Optional[str], obj: Optional[str],
                 kind: str = JOB):
        self.mw = mw
        self.req = req
        self.account = account
        self.container = container
        self.obj = obj
        self.kind = kind
        #: ``swift://`` URL of the stored job or zapp being run, if any (a
        #: chained job inherits the one that started its chain).
        self.source_url: Optional[str] = req.environ.get(CHAIN_SOURCE)
        #: Paths the user may use only through the setuid fallback.
        self.elevated: Set[str] = set()
        self.image: Optional[jobsource.Image] = None
        self.stream: Optional[jobsource.Image] = None
        self.locations: Dict[str, tuple] = {}
        self.started = time.time()
        self.job_id = '%010x%s' % (int(self.started * 1000),
                                   uuid.uuid4().hex[:6])

    # -- the request --------------------------------------------------------

    def respond(self) -> Response:
        try:
            job = self._prepare()
            mode = self.req.headers.get(DEFERRED_HEADER, '').lower()
            if mode in ('always', 'auto'):
                return self._deferred(job, mode)
            return self._response(self._run(job, stream=len(job.nodes) == 1))
        except BaseException:
            self._remove_inputs()
            raise

    def _prepare(self) -> Job:
        req = self.req
        if self.kind == OPEN:
            doc = self._open()
        elif self.kind == API:
            doc = self._api()
        else:
            source = req.headers.get(SOURCE_HEADER)
            if source:
                doc = self._read_source(self._source_path(source))
            else:
                self._authorize('POST', self._request_path(), None)
                ctype = req.headers.get('Content-Type')
                if not ctype:
                    raise JobError('Must specify Content-Type')
                doc = self._read_body(ctype, self._content_length(),
                                      req.environ['wsgi.input'].read)
        job = parse_job(doc, account=self.account,
                        sysimages=self.mw.sysimages,
                        lister=lambda a, c: self.mw.list_names(req, a, c),
                        default_content_type=self.mw.default_content_type)
        self._authorize_objects(job.nodes)
        if any(node.wants_stream for node in job.nodes):
            self.stream = self._data_stream(self.source_url is not None)
        for node in job.nodes:
            node.env.update(self._cgi_environ(node))
        if self.source_url:
            req.environ.setdefault(CHAIN_SOURCE, self.source_url)
        return job

    def _request_path(self) -> SwiftPath:
        return SwiftPath(self.account, self.container, self.obj)

    def _authorize(self, method: str, path: SwiftPath,
                   acl_key: Optional[str]) -> None:
        """The deployment's auth, with ZeroCloud's "setuid" fallback.

        A container whose ``X-Container-Meta-Rest-Endpoint`` names the stored
        job being run and which sets ``X-Container-Meta-Zerovm-Suid`` lends
        that ACL to the job's users: a denied check is tried again with it.
        An account path (a chained job's ``POST /v1/<account>``) is judged
        by the container of that stored job.
        """
        try:
            self.mw.authorize(self.req, method, path, acl_key)
        except HTTPException:
            if self.source_url is None:
                raise
            holder = path if path.container else parse_location(
                self.source_url)
            meta = self.mw.container_meta(self.req, holder.account,
                                          holder.container)
            suid = meta.get('zerovm-suid')
            endpoint = unquote(meta.get('rest-endpoint') or '')
            if not suid or endpoint != self.source_url:
                raise
            self.mw.authorize(self.req, method, path, None, acl=suid)
            self.elevated.add(path.path_info)

    def _elevated(self, path: SwiftPath) -> bool:
        """Did ``path`` pass only thanks to setuid (Swift must not re-check)?
        """
        return path.path_info in self.elevated

    def _open(self):
        """``/open/a/c/o``: run a zapp object, or open an object with an app.

        A zapp answers any method, its request body becoming the ``stdin``
        of nodes whose ``stdin`` has no path.  Any other object can be
        opened with ``GET``: by the template registered for its content type
        at ``/<account>/.zvm/<type>/<subtype>/config``, or, for a WebAssembly
        program, by running it.
        """
        path = self._request_path()
        ctype = self.mw.content_type_of(self.req, path)
        if jobsource.body_kind(ctype) == 'tar':
            try:
                return self._read_source(path)
            except JobError as err:
                if err.message != jobsource.NO_SYSTEM_MAP:
                    raise
                self._remove_inputs()
                self.source_url = None
        if self.req.method != 'GET':
            raise JobError('%s is not a zapp; only GET can open it'
                           % path.url, 501)
        self._authorize('POST', path, None)
        template = self.mw.open_template(self.req, self.account, ctype)
        if template is None:
            if ctype not in RUNNABLE_TYPES:
                raise JobError('No application registered for %s' % ctype,
                               404)
            template = RUN_OBJECT_TEMPLATE
        return substitute(template, dict(self.req.params), path.url)

    def _api(self):
        """``/api/a/c/...``: the container's REST endpoint runs the request."""
        meta = self.mw.container_meta(self.req, self.account, self.container)
        endpoint = meta.get('rest-endpoint')
        if not endpoint:
            raise JobError('No API endpoint configured for container %s'
                           % self.container, 404)
        return self._read_source(self._source_path(
            endpoint, 'X-Container-Meta-Rest-Endpoint'),
            SwiftPath(self.account, self.container, None))

    def _data_stream(self, source: bool) -> Optional[jobsource.Image]:
        """The bytes path-less ``stdin`` devices read, spooled once.

        A job from ``X-Zerovm-Source`` reads the request body; a chained job
        (:mod:`zerocloud.jobchain`) reads what its chain left of the first
        request's body.
        """
        chain_input = self.req.environ.get(CHAIN_INPUT)
        if chain_input is not None:
            read, length = chain_input
        elif source:
            read = self.req.environ['wsgi.input'].read
            length = self._content_length() or 0
        else:
            return None
        return jobsource.spool(read, length, self.mw.max_input,
                               self.mw.spool_dir)

    def _content_length(self) -> Optional[int]:
        try:
            length = self.req.content_length
        except ValueError:
            raise JobError('Invalid Content-Length')
        return length

    def _read_body(self, ctype: str, length: Optional[int],
                   read: Callable[[int], bytes], etag: Optional[str] = None):
        kind = jobsource.body_kind(ctype)
        if kind == 'json':
            raw = jobsource.read_limited(read, length, self.mw.max_config)
            if etag and etag.strip('"').lower() != md5(
                    raw, usedforsecurity=False).hexdigest():
                raise JobError('Etag does not match the job description',
                               422)
            return raw
        if length is None:
            raise JobError('Must specify Content-Length')
        if kind == 'tar':
            self.image = jobsource.spool(read, length, self.mw.max_input,
                                         self.mw.spool_dir)
            return jobsource.find_system_map(self.image, ctype)
        head = jobsource.read_script_head(read)
        doc = job_from_script(head, account=self.account,
                              container=self.container, obj=self.obj)
        self.image = jobsource.script_image(head, read, length,
                                            self.mw.max_input,
                                            self.mw.spool_dir)
        return doc

    def _source_path(self, url: str, what: str = SOURCE_HEADER
                     ) -> SwiftPath:
        path = parse_location(unquote(url), self.account)
        if not isinstance(path, SwiftPath) or not path.obj:
            raise JobError('%s format is swift://account/container/object'
                           % what, 412)
        return path

    def _read_source(self, path: SwiftPath,
                     target: Optional[SwiftPath] = None):
        """Read a stored job, zapp or script; ``target`` is what it runs as.

        The user must be allowed to read it and to execute on ``target``
        (default: the request path), with the setuid fallback.
        """
        self.source_url = path.url
        self._authorize('GET', path, 'read_acl')
        self._authorize('POST', target or self._request_path(), None)
        resp = self.mw.fetch_response(self.req, path, self._elevated(path))
        try:
            return self._read_body(
                resp.headers.get('Content-Type', ''), resp.content_length,
                iter_reader(resp.app_iter), resp.headers.get('Etag'))
        finally:
            close = getattr(resp.app_iter, 'close', None)
            if close:
                close()

    def _authorize_objects(self, nodes: List[Node]) -> None:
        """Every object a job reads or writes, before anything runs."""
        checks = set()
        for node in nodes:
            if isinstance(node.exe, SwiftPath):
                checks.add(('GET', node.exe, 'read_acl'))
            for ch in node.channels:
                if isinstance(ch.path, SwiftPath):
                    if ch.writable:
                        checks.add(('PUT', ch.path, 'write_acl'))
                    else:
                        checks.add(('GET', ch.path, 'read_acl'))
        for method, path, acl in sorted(checks, key=lambda c: (
                c[0], c[1].path_info)):
            self._authorize(method, path, acl)

    def _cgi_environ(self, node: Node) -> Dict[str, str]:
        req = self.req
        # Programs see the path without its version: /a for a job POST,
        # /a/c/o for /open/a/c/o, /a/c/rest for /api/a/c/rest.
        path_info = '/' + self.account if self.kind == JOB else \
            '/' + req.path_info.lstrip('/').split('/', 1)[1]
        return cgi.cgi_environ(
            headers=dict(req.headers), method=req.method,
            path_info=path_info, query_string=req.query_string or '',
            request_uri=req.path_qs, remote_user=req.remote_user,
            host=req.host, script_name=node.exe_name or node.name,
            script_filename=node.exe.url)

    def _remove_inputs(self) -> None:
        for spooled in (self.image, self.stream):
            if spooled is not None:
                spooled.remove()
        self.image = self.stream = None

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
            self._remove_inputs()
        return [done.get(node.name) or NodeResult(node) for node in job.nodes]

    def _uploads(self, node: Node, placed, done: Dict[str, NodeResult]
                 ) -> List[Upload]:
        sysmap = json.dumps(node.to_dict()).encode('utf-8')
        uploads = [Upload('sysmap', len(sysmap), [sysmap])]
        try:
            has_image_path = any(
                ch.device == 'image' and isinstance(ch.path, SwiftPath)
                for ch in node.channels)
            if self.image is not None and not has_image_path:
                uploads.append(Upload('image', self.image.size,
                                      framing.iter_file(self.image.path)))
            if isinstance(node.exe, SwiftPath):
                uploads.append(self.mw.fetch(self.req, node.exe, 'boot',
                                             self._elevated(node.exe)))
            for ch in node.channels:
                if not isinstance(ch.path, SwiftPath) or ch.writable or \
                        ch is placed:
                    continue
                if ch.path.obj is None:
                    raise NodeError('Cannot use container %s as a remote '
                                    'object reference' % ch.path.url)
                uploads.append(self.mw.fetch(self.req, ch.path, ch.device,
                                             self._elevated(ch.path)))
            if node.wants_stream and self.stream is not None:
                uploads.append(Upload('stdin', self.stream.size,
                                      framing.iter_file(self.stream.path)))
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
        """``replicate: n``: n deterministic copies whose outputs must agree."""
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
        result.headers = {k: v for k, v in got.items()
                          if k.startswith('X-Nexe-')}
        if got['X-Nexe-Status'] != 'ok':
            result.status = NODE_FAILED
            result.error = 'Node %s failed: %s' % (node.name,
                                                   got['X-Nexe-Status'])
        channels = {ch.device: ch for ch in node.channels}
        edges = {e.device for e in node.edges if e.direction == 'out'}
        reader = framing.MemberReader(answer.read)
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
                    raise framing.FramingError(
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
                                        int(member.pax['status'].split()[0]))
                if stream:
                    result.body = Body(member.size, ctype,
                                       self._member_chunks(reader),
                                       body_headers)
                    result.release = answer.release
                    return
                spooled = self._spool(reader)
                result.body = Body(spooled.size, ctype, spooled.chunks(),
                                   body_headers, spooled)
        except (framing.FramingError, ValueError, OSError) as err:
            result.status = 503
            result.error = 'Bad answer from storage server: %s' % err
        answer.release()

    @staticmethod
    def _body_headers(pax: Dict[str, str], meta: Dict[str, str]
                      ) -> Dict[str, str]:
        """Headers a CGI program printed for its immediate output."""
        headers = {'X-Object-Meta-' + k: v for k, v in meta.items()}
        for key, value in pax.items():
            name = key[len('header.'):]
            if key.startswith('header.') and not name.lower().startswith(
                    ('x-nexe-', 'content-', 'x-object-meta-', 'status')):
                headers[name] = value
        return headers

    @staticmethod
    def _member_chunks(reader: framing.MemberReader) -> Iterator[bytes]:
        while True:
            chunk = reader.read()
            if not chunk:
                return
            yield chunk

    def _spool(self, reader: framing.MemberReader) -> Spooled:
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
                refusal = ok and self.mw.store(self.req, put,
                                               self._elevated(put.path))
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
        resp = Response(status=status, headers=headers,
                        app_iter=self._body_iter(results, bodies))
        resp.content_type = bodies[0].content_type if bodies else 'text/plain'
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
        headers: Dict[str, str] = {}
        for key, default in NEXE_DEFAULTS:
            headers[key] = ','.join(
                r.headers.get(key, r.node.name if default is None else default)
                for r in results)
        fuel = [r.headers.get('X-Nexe-Fuel') for r in results]
        if any(fuel):
            headers['X-Nexe-Fuel'] = ','.join(f or '0' for f in fuel)
        errors = [r.error for r in results if r.error] or [
            r.headers['X-Nexe-Error'] for r in results
            if 'X-Nexe-Error' in r.headers]
        if errors:
            headers['X-Nexe-Error'] = ' '.join(' '.join(e.split())
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
        result_path = SwiftPath(self.account,
                                self.container or DEFERRED_CONTAINER,
                                self.obj or 'job-%s' % uuid.uuid4().hex)
        self._authorize('PUT', result_path, 'write_acl')
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
