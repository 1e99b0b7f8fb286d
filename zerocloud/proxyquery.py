"""
proxy_query: execute jobs posted to a Swift account
===================================================

``proxy_query`` turns a ``POST`` carrying ``X-Zerovm-Execute`` into a ZeroCloud
job and runs each of its nodes on an object server next to the node's input.
Requests without that header pass through untouched.

The body is a script with a shebang, a zapp tar (``boot/system.map`` inside)
or a JSON job description (:mod:`zerocloud.jobsource`).  The job is parsed and
validated (:mod:`zerocloud.job`), every object it touches is authorized with
the deployment's own ``swift.authorize`` (executing needs the right to
``POST`` to the request path, reading needs the container's read ACL, writing
its write ACL), each node is placed (:mod:`zerocloud.placement`) and streamed
to its object server (:mod:`zerocloud.dispatch`).  Outputs with a
``swift://`` path are stored through the normal object path, as the user,
only after every node succeeded; the path-less output of each node forms the
response body.  Per-node results come back in ``X-Nexe-*`` headers, one
comma-separated entry per node.

Pipeline (after the auth middleware, just before the proxy app)::

    [pipeline:main]
    pipeline = catch_errors gatekeeper healthcheck proxy-logging cache
               tempauth proxy_query proxy-logging proxy-server

    [filter:proxy_query]
    use = egg:zerocloud#proxy_query

Options (``[filter:proxy_query]``), with defaults:

``zerovm_sysimage_devices`` (empty)
    ``name path [name path ...]``; the names are the system images jobs may
    use (must match the object servers' setting).
``zerovm_timeout = 10``
    seconds a node may run; sent to the object servers.
``zerovm_maxconfig = 65536``
    largest job description accepted, in bytes.
``zerovm_maxinput = 1073741824``
    largest zapp or script body accepted, in bytes.
``zerovm_default_content_type = application/octet-stream``
    content type of stored outputs that do not name one.
``conn_timeout = 0.5``
    seconds to connect to an object server.
``zerovm_spool_dir`` (system temp dir)
    where uploaded images and outputs are spooled.
"""

import json
import os
import tempfile
import time
import uuid
from hashlib import md5
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

from eventlet import GreenPile
from swift.common.http import is_success
from swift.common.registry import register_swift_info
from swift.common.swob import HTTPException, Request, Response
from swift.common.utils import get_logger, quote
from swift.common.wsgi import make_subrequest
from swift.common.swob import str_to_wsgi
from swift.proxy.controllers.base import get_container_info, get_info
from swift.common.storage_policy import POLICIES

from zerocloud import cgi, framing, jobsource, placement
from zerocloud.dispatch import Answer, Upload, dispatch
from zerocloud.job import (
    JobError, Node, SwiftPath, parse_job, job_from_script)
from zerocloud.objectquery import parse_sysimage_devices

EXECUTE_HEADER = 'X-Zerovm-Execute'
NEXE_DEFAULTS = (
    ('X-Nexe-System', None),
    ('X-Nexe-Status', 'ZeroVM did not run'),
    ('X-Nexe-Retcode', '0'),
    ('X-Nexe-Etag', ''),
    ('X-Nexe-Validation', '0'),
    ('X-Nexe-Cdr-Line', '0.0 0.0 0 0 0 0 0 0 0 0'),
    ('X-Nexe-Policy', ''),
)
NODE_FAILED = 422


class NodeError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class PendingPut:
    path: SwiftPath
    spool: str
    size: int
    content_type: str
    meta: Dict[str, str]


@dataclass
class Body:
    size: int
    content_type: str
    chunks: Iterator[bytes]
    headers: Dict[str, str] = field(default_factory=dict)


@dataclass
class NodeResult:
    node: Node
    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    error: str = ''
    body: Optional[Body] = None
    puts: List[PendingPut] = field(default_factory=list)
    release: Optional[callable] = None


def _spool_member(reader: framing.MemberReader, spool_dir: Optional[str]
                  ) -> str:
    fd, path = tempfile.mkstemp(prefix='zerocloud-out-', dir=spool_dir)
    with os.fdopen(fd, 'wb') as fp:
        reader.copy_to(fp)
    return path


def _member_body(reader: framing.MemberReader, size: int) -> Iterator[bytes]:
    while True:
        chunk = reader.read()
        if not chunk:
            return
        yield chunk


def _file_chunks(path: str) -> Iterator[bytes]:
    try:
        yield from framing.iter_file(path)
    finally:
        os.unlink(path)


class ProxyQueryMiddleware:
    def __init__(self, app, conf: Dict[str, str], logger=None):
        self.app = app
        self.logger = logger or get_logger(conf, log_route='proxy_query')
        self.sysimages = set(parse_sysimage_devices(
            conf.get('zerovm_sysimage_devices', '')))
        self.timeout = int(float(conf.get('zerovm_timeout', 10)))
        self.max_config = int(conf.get('zerovm_maxconfig', 65536))
        self.max_input = int(conf.get('zerovm_maxinput', 1 << 30))
        self.default_content_type = conf.get(
            'zerovm_default_content_type', 'application/octet-stream')
        self.conn_timeout = float(conf.get('conn_timeout', 0.5))
        self.spool_dir = conf.get('zerovm_spool_dir') or None

    def __call__(self, env, start_response):
        req = Request(env)
        if EXECUTE_HEADER not in req.headers:
            return self.app(env, start_response)
        try:
            version, account, container, obj = req.split_path(1, 4, True)
        except ValueError:
            return self.app(env, start_response)
        if not account:
            return Response(status=412, body='Bad URL')(env, start_response)
        if req.method != 'POST':
            return Response(status=501, body='Jobs are run with POST')(
                env, start_response)
        try:
            resp = JobRun(self, req, account, container, obj).respond()
        except HTTPException as err:
            resp = err
        except JobError as err:
            resp = Response(status=err.status, body=err.message,
                            content_type='text/plain')
        return resp(env, start_response)

    # -- Swift helpers used by a job run ----------------------------------

    @property
    def proxy_app(self):
        return getattr(self.app, '_pipeline_final_app', self.app)

    def authorize(self, req: Request, method: str, path: SwiftPath,
                  acl_key: Optional[str]) -> None:
        """Ask the deployment's auth whether the user may do ``method``."""
        authorize = req.environ.get('swift.authorize')
        if authorize is None:
            return
        sub = make_subrequest(req.environ, method, quote(
            '/v1' + path.path_info), swift_source='ZC')
        if acl_key and path.container:
            info = get_container_info(sub.environ, self.app,
                                      swift_source='ZC')
            sub.acl = info.get(acl_key)
        denial = authorize(sub)
        if denial is not None:
            raise denial

    def list_names(self, req: Request, account: str,
                   container: Optional[str]) -> List[str]:
        """Listing on the user's behalf (so their rights apply), paginated."""
        base = '/v1/%s' % account + ('/%s' % container if container else '')
        names: List[str] = []
        marker = ''
        while True:
            sub = make_subrequest(
                req.environ, 'GET',
                quote(base) + '?format=json&marker=' + quote(marker),
                swift_source='ZC')
            resp = sub.get_response(self.app)
            if not is_success(resp.status_int):
                raise JobError('Error querying object server for %s: %s' % (
                    'container' if container else 'account',
                    container or account))
            page = [item['name'] for item in json.loads(resp.body or b'[]')]
            if not page:
                return names
            names.extend(page)
            marker = page[-1]

    def fetch(self, req: Request, path: SwiftPath, member: str) -> Upload:
        sub = make_subrequest(req.environ, 'GET', quote('/v1' + path.path_info),
                              swift_source='ZC')
        resp = sub.get_response(self.app)
        if not is_success(resp.status_int):
            raise NodeError(resp.status_int, 'Error %s while fetching %s'
                            % (resp.status, path.path_info))
        return Upload(member, resp.content_length, resp.app_iter)

    def store(self, req: Request, put: PendingPut) -> Optional[str]:
        headers = {'Content-Type': put.content_type,
                   'Content-Length': str(put.size)}
        for key, value in put.meta.items():
            headers['X-Object-Meta-' + key] = value
        sub = make_subrequest(req.environ, 'PUT', quote('/v1' +
                                                        put.path.path_info),
                              headers=headers, swift_source='ZC')
        with open(put.spool, 'rb') as fp:
            sub.environ['wsgi.input'] = fp
            resp = sub.get_response(self.app)
        if is_success(resp.status_int):
            return None
        return 'Status %s when putting %s' % (resp.status, put.path.path_info)

    def target(self, req: Request, node: Node, account: str
               ) -> placement.Target:
        """Where ``node`` runs: next to its input object, else anywhere."""
        channel = node.placement_channel()
        proxy = self.proxy_app
        is_limited = getattr(proxy, 'error_limited', lambda n: False)
        path = channel.path if channel is not None else None
        if isinstance(path, SwiftPath) and path.container:
            info = get_info(self.app, req.environ, str_to_wsgi(path.account),
                            str_to_wsgi(path.container), swift_source='ZC')
            if not is_success(info.get('status') or 0):
                raise NodeError(404, 'Error while fetching %s'
                                % path.path_info)
            if path.obj is None:
                return placement.container_target(proxy.container_ring, path,
                                                  is_limited)
            index = int(info.get('storage_policy') or 0)
            policy = POLICIES.get_by_index(index)
            return placement.object_target(proxy.get_object_ring(index), path,
                                           index, policy.name, is_limited)
        policy = POLICIES.default
        return placement.free_target(proxy.get_object_ring(policy.idx),
                                     account, policy.idx, policy.name,
                                     is_limited=is_limited)

    def on_node_error(self, node: dict, message: str) -> None:
        error_occurred = getattr(self.proxy_app, 'error_occurred', None)
        if error_occurred:
            error_occurred(node, message)
        else:
            self.logger.warning(message)


class JobRun:
    """One execution request: body → job → nodes on object servers → response."""

    def __init__(self, mw: ProxyQueryMiddleware, req: Request, account: str,
                 container: Optional[str], obj: Optional[str]):
        self.mw = mw
        self.req = req
        self.account = account
        self.container = container
        self.obj = obj
        self.image: Optional[jobsource.Image] = None
        self.started = time.time()
        self.job_id = '%010x%s' % (int(self.started * 1000),
                                   uuid.uuid4().hex[:6])

    def respond(self) -> Response:
        try:
            return self._respond()
        except BaseException:
            self._remove_image()
            raise

    def _remove_image(self) -> None:
        if self.image is not None:
            self.image.remove()
            self.image = None

    def _respond(self) -> Response:
        req = self.req
        ctype = req.headers.get('Content-Type')
        if not ctype:
            raise JobError('Must specify Content-Type')
        try:
            length = req.content_length
        except ValueError:
            raise JobError('Invalid Content-Length')
        self.mw.authorize(req, 'POST', SwiftPath(
            self.account, self.container, self.obj), None)
        doc = self._read_body(ctype, length)
        job = parse_job(doc, account=self.account,
                        sysimages=self.mw.sysimages,
                        lister=lambda a, c: self.mw.list_names(req, a, c),
                        default_content_type=self.mw.default_content_type)
        if any(node.connect or node.bind for node in job.nodes):
            raise JobError('Jobs with connected nodes (connect, zvm://) are '
                           'not supported yet', 501)
        self._authorize_objects(job.nodes)
        for node in job.nodes:
            node.env.update(self._cgi_environ(node))
        results = self._run_nodes(job.nodes)
        return self._response(results)

    def _read_body(self, ctype: str, length: Optional[int]):
        read = self.req.environ['wsgi.input'].read
        kind = jobsource.body_kind(ctype)
        if kind == 'json':
            raw = jobsource.read_limited(read, length, self.mw.max_config)
            etag = self.req.headers.get('Etag')
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
            self.mw.authorize(self.req, method, path, acl)

    def _cgi_environ(self, node: Node) -> Dict[str, str]:
        req = self.req
        exe = node.exe.url if hasattr(node.exe, 'url') else str(node.exe)
        return cgi.cgi_environ(
            headers=dict(req.headers), method=req.method,
            path_info='/' + self.account, query_string=req.query_string or '',
            request_uri=req.environ.get('RAW_PATH_INFO') or req.path_qs,
            remote_user=req.remote_user, host=req.host,
            script_name=node.exe_name or node.name, script_filename=exe)

    # -- running nodes ----------------------------------------------------

    def _run_nodes(self, nodes: List[Node]) -> List[NodeResult]:
        stream = len(nodes) == 1
        pile = GreenPile(len(nodes))
        for node in nodes:
            pile.spawn(self._run_node, node, stream)
        return list(pile)

    def _uploads(self, node: Node, target: placement.Target) -> List[Upload]:
        sysmap = json.dumps(node.to_dict()).encode('utf-8')
        uploads = [Upload('sysmap', len(sysmap), [sysmap])]
        placed = node.placement_channel() if target.access else None
        try:
            has_image_path = any(
                ch.device == 'image' and isinstance(ch.path, SwiftPath)
                for ch in node.channels)
            if self.image is not None and not has_image_path:
                uploads.append(Upload('image', self.image.size,
                                      framing.iter_file(self.image.path)))
            if isinstance(node.exe, SwiftPath):
                uploads.append(self.mw.fetch(self.req, node.exe, 'boot'))
            for ch in node.channels:
                if not isinstance(ch.path, SwiftPath) or ch.writable or \
                        ch is placed:
                    continue
                if ch.path.obj is None:
                    raise NodeError(400, 'Cannot use container %s as a remote'
                                    ' object reference' % ch.path.url)
                uploads.append(self.mw.fetch(self.req, ch.path, ch.device))
        except BaseException:
            for upload in uploads:
                upload.close()
            raise
        return uploads

    def _run_node(self, node: Node, stream: bool) -> NodeResult:
        result = NodeResult(node)
        try:
            target = self.mw.target(self.req, node, self.account)
            uploads = self._uploads(node, target)
        except NodeError as err:
            result.status, result.error = err.status, err.message
            return result
        headers = {
            EXECUTE_HEADER: self.req.headers[EXECUTE_HEADER],
            'X-Zerocloud-Id': self.job_id,
            'X-Zerovm-Timeout': str(self.mw.timeout),
            'X-Zerovm-Access': target.access,
            'X-Backend-Storage-Policy-Index': str(target.policy_index),
            'Content-Type': 'application/x-tar',
            'X-Trans-Id': self.req.environ.get('swift.trans_id', ''),
            'User-Agent': 'zerocloud-proxy',
        }
        answer = dispatch(target.nodes, target.partition, target.path_info,
                          headers, uploads, self.mw.conn_timeout,
                          expect_timeout=self.mw.timeout + 10,
                          final_timeout=self.mw.timeout + 60,
                          logger=self.mw.logger,
                          on_error=self.mw.on_node_error)
        if not isinstance(answer, Answer):
            refusal = answer.final(target.path_info)
            result.status, result.error = refusal.status, refusal.message
        elif not is_success(answer.status):
            result.status = answer.status
            result.error = answer.body_error or 'Error %d while running %s' \
                % (answer.status, node.name)
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
        reader = framing.MemberReader(answer.read)
        try:
            while True:
                member = reader.next_member()
                if member is None:
                    break
                channel = channels.get(member.name)
                if channel is None:
                    raise framing.FramingError(
                        'Channel name %s not found' % member.name)
                ctype = member.pax.get('content_type', channel.content_type)
                meta = {k[5:]: v for k, v in member.pax.items()
                        if k.startswith('meta.')}
                if isinstance(channel.path, SwiftPath):
                    result.puts.append(PendingPut(
                        channel.path, _spool_member(reader, self.mw.spool_dir),
                        member.size, ctype, meta))
                    continue
                body_headers = {'X-Object-Meta-' + k: v
                                for k, v in meta.items()}
                for key, value in member.pax.items():
                    name = key[7:]
                    if key.startswith('header.') and not name.lower(
                    ).startswith(('x-nexe-', 'content-', 'x-object-meta-')):
                        body_headers[name] = value
                if 'status' in member.pax:
                    result.status = max(result.status,
                                        int(member.pax['status'].split()[0]))
                if stream:
                    result.body = Body(member.size, ctype,
                                       _member_body(reader, member.size),
                                       body_headers)
                    result.release = answer.release
                    return
                spooled = _spool_member(reader, self.mw.spool_dir)
                result.body = Body(member.size, ctype, _file_chunks(spooled),
                                   body_headers)
        except (framing.FramingError, ValueError, OSError) as err:
            result.status = 503
            result.error = 'Bad answer from storage server: %s' % err
        answer.release()

    # -- the client's response ----------------------------------------------

    def _store_outputs(self, results: List[NodeResult]) -> None:
        ok = all(not r.error and r.status < 300 for r in results)
        for result in results:
            for put in result.puts:
                if ok:
                    error = self.mw.store(self.req, put)
                    if error:
                        result.error = error
                        result.status = max(result.status, 500 if error
                                            .startswith('Status 5') else 400)
                os.unlink(put.spool)

    def _response(self, results: List[NodeResult]) -> Response:
        self._store_outputs(results)
        self._remove_image()
        headers: Dict[str, str] = {}
        for key, default in NEXE_DEFAULTS:
            headers[key] = ','.join(
                r.headers.get(key, r.node.name if default is None else default)
                for r in results)
        fuel = [r.headers.get('X-Nexe-Fuel') for r in results]
        if any(fuel):
            headers['X-Nexe-Fuel'] = ','.join(f or '0' for f in fuel)
        errors = [r.error for r in results if r.error]
        nexe_errors = [r.headers['X-Nexe-Error'] for r in results
                       if 'X-Nexe-Error' in r.headers]
        if errors or nexe_errors:
            headers['X-Nexe-Error'] = ' '.join(
                ' '.join(e.split()) for e in errors or nexe_errors)
        headers['X-Nexe-Cdr-Line'] = '%.3f, %s' % (
            time.time() - self.started, headers['X-Nexe-Cdr-Line'])
        status = max(r.status for r in results)
        bodies = [r.body for r in results if r.body is not None]
        if errors:
            self._release(results)
            text = ''.join(e if e.endswith('\n') else e + '\n'
                           for e in errors)
            return Response(status=status, body=text, headers=headers,
                            content_type='text/plain')
        for body in bodies:
            headers.update(body.headers)
        resp = Response(status=status, headers=headers,
                        app_iter=self._body_iter(results, bodies))
        resp.content_type = bodies[0].content_type if bodies else 'text/plain'
        resp.content_length = sum(b.size for b in bodies)
        return resp

    @staticmethod
    def _release(results: List[NodeResult]) -> None:
        for result in results:
            if result.body is not None:
                close = getattr(result.body.chunks, 'close', None)
                if close:
                    close()
            if result.release:
                result.release()

    def _body_iter(self, results: List[NodeResult], bodies: List[Body]
                   ) -> Iterator[bytes]:
        try:
            for body in bodies:
                yield from body.chunks
        finally:
            self._release(results)


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)
    register_swift_info('proxy_query', zerovm_timeout=int(float(
        conf.get('zerovm_timeout', 10))))

    def factory(app):
        return ProxyQueryMiddleware(app, conf)
    return factory
