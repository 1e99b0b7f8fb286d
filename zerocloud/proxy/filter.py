"""
proxy_query: execute jobs posted to a Swift account
===================================================

``proxy_query`` turns a ``POST`` carrying ``X-Zerovm-Execute`` into a ZeroCloud
job and runs each of its nodes on an object server next to the node's input.
Requests without that header pass through untouched.

The body is a script with a shebang, a zapp tar (``boot/system.map`` inside)
or a JSON job description (:mod:`zerocloud.job.source`).  The job is parsed and
validated (:mod:`zerocloud.job.model`), every object it touches is authorized with
the deployment's own ``swift.authorize`` (executing needs the right to
``POST`` to the request path, reading needs the container's read ACL, writing
its write ACL), each node is placed (:mod:`zerocloud.proxy.placement`) and streamed
to its object server (:mod:`zerocloud.proxy.nodeclient`).  Outputs with a
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
``zerovm_image_scan_bytes = 67108864``, ``zerovm_image_scan_members = 10000``
    a zapp's ``boot/system.map`` (or ``boot/cluster.map``) must lie within
    its first so many bytes (uncompressed) and members; no more of a gzip
    zapp is expanded looking for it (:mod:`zerocloud.tarscan`).
``zerovm_default_content_type = application/octet-stream``
    content type of stored outputs that do not name one.
``conn_timeout = 0.5``
    seconds to connect to an object server.
``zerovm_spool_dir`` (system temp dir)
    where uploaded images and outputs are spooled.
``zerovm_accounting_enabled = false``
    store one accounting object per job: lines
    ``<UTC time> <transaction> <node> (<cdr line>) [<status>]`` in
    ``/v1/<user_stats_account>/<account>/<YYYY>/<MM>/<DD>/<job id>.log``.
``user_stats_account = userstats``
    the account that receives them (the proxy must be allowed to create it,
    e.g. ``account_autocreate = true``).
"""

import io
import json
import time
from typing import Dict, List, Optional, Set, Tuple

from swift.common.http import is_success
from swift.common.registry import register_swift_info
from swift.common.storage_policy import POLICIES
from swift.common.swob import HTTPException, Request, Response, str_to_wsgi
from swift.common.utils import config_true_value, get_logger, quote
from swift.common.wsgi import make_pre_authed_request, make_subrequest
from swift.proxy.controllers.base import get_container_info, get_info

from zerocloud.proxy import access
from zerocloud.proxy import placement
from zerocloud.proxy.nodeclient import Upload, dispatch
from zerocloud.job.model import JobError, Node, SwiftPath
from zerocloud.proxy.request import API, JOB, OPEN, JobRequest, NodeError
from zerocloud.proxy.jobrun import EXECUTE_HEADER, JobRun, PendingPut
from zerocloud.object.filter import parse_sysimage_devices
from zerocloud.tarscan import ScanBounds

SWIFT_SOURCE = 'ZC'
#: Container of the templates that ``/open/`` uses, per content type.
OPEN_REGISTRY = '.zvm'


def request_problem(kind: str, method: str, account: Optional[str],
                    container: Optional[str], obj: Optional[str]
                    ) -> Optional[Tuple[int, str]]:
    """Why an execution request cannot be served, as (status, text)."""
    if not account or (kind == OPEN and not obj) or (
            kind == API and not container):
        return 412, 'Bad URL'
    if kind not in (JOB, OPEN, API):
        return 412, 'Unknown X-Zerovm-Execute version %s' % kind
    if kind == JOB and method != 'POST':
        return 501, 'Jobs are run with POST'
    return None


class ProxyQueryMiddleware:
    def __init__(self, app, conf: Dict[str, str], logger=None):
        self.app = app
        self.logger = logger or get_logger(conf, log_route='proxy_query')
        self.sysimages = set(parse_sysimage_devices(
            conf.get('zerovm_sysimage_devices', '')))
        self.timeout = int(float(conf.get('zerovm_timeout', 10)))
        self.max_config = int(conf.get('zerovm_maxconfig', 65536))
        self.max_input = int(conf.get('zerovm_maxinput', 1 << 30))
        self.image_scan = ScanBounds.from_conf(conf)
        self.default_content_type = conf.get(
            'zerovm_default_content_type', 'application/octet-stream')
        self.conn_timeout = float(conf.get('conn_timeout', 0.5))
        self.spool_dir = conf.get('zerovm_spool_dir') or None
        self.accounting = config_true_value(
            conf.get('zerovm_accounting_enabled', 'false'))
        self.stats_account = conf.get('user_stats_account', 'userstats')
        self._stats_containers: Set[str] = set()
        self._free_turn = 0

    def __call__(self, env, start_response):
        req = Request(env)
        try:
            version, account, container, obj = req.split_path(1, 4, True)
        except ValueError:
            return self.app(env, start_response)
        execute = req.headers.get(EXECUTE_HEADER)
        if execute is None and version in (OPEN, API):
            execute = '%s/1.0' % version
        if execute is None:
            return self.app(env, start_response)
        kind = execute.split('/', 1)[0] if '/' in execute else JOB
        problem = request_problem(kind, req.method, account, container, obj)
        if problem:
            return Response(status=problem[0], body=problem[1],
                            content_type='text/plain')(env, start_response)
        try:
            resp = JobRun(JobRequest(self, req, account, container, obj,
                                     kind)).respond()
        except HTTPException as err:
            resp = err
        except JobError as err:
            resp = Response(status=err.status, body=err.message,
                            content_type='text/plain')
        except Exception:
            # A bug of ours: log it whole, tell the client only that it was
            # a server-side failure.
            self.logger.exception('zerocloud: job failed on %s', req.path)
            resp = Response(status=500, body='Internal error running the job',
                            content_type='text/plain')
        return resp(env, start_response)

    # -- Swift access on the user's behalf --------------------------------

    @property
    def proxy_app(self):
        return getattr(self.app, '_pipeline_final_app', self.app)

    def _subrequest(self, req: Request, method: str, path: str,
                    headers: Optional[Dict[str, str]] = None,
                    grants: Optional[access.Grants] = None) -> Request:
        """A request through the rest of the pipeline, as the same user.

        With ``grants`` (the job's setuid grants), Swift's checks of this
        request and of every sub-request it causes get them as a second
        chance (:meth:`zerocloud.proxy.access.Grants.wrap`).
        """
        sub = make_subrequest(req.environ, method, quote(path),
                              headers=headers, swift_source=SWIFT_SOURCE)
        authorize = sub.environ.get('swift.authorize')
        if grants and authorize is not None:
            sub.environ['swift.authorize'] = grants.wrap(authorize)
        return sub

    def authorize(self, req: Request, method: str, path: SwiftPath,
                  acl_key: Optional[str], acl: Optional[str] = None) -> bool:
        """Ask the deployment's auth whether the user may do ``method``.

        The ACL checked is the container's ``acl_key`` (``read_acl``,
        ``write_acl``), or ``acl`` itself when given.  Raises the denial;
        returns whether the auth system deems the user an owner of ``path``
        (``swift_owner``), who may see what Swift hides from others.
        """
        authorize = req.environ.get('swift.authorize')
        if authorize is None:
            return True
        sub = self._subrequest(req, method, '/v1' + path.path_info)
        if acl is not None:
            sub.acl = acl
        elif acl_key and path.container:
            info = get_container_info(sub.environ, self.app,
                                      swift_source=SWIFT_SOURCE)
            sub.acl = info.get(acl_key)
        denial = authorize(sub)
        if denial is not None:
            raise denial
        return bool(sub.environ.get('swift_owner'))

    def is_owner(self, req: Request, account: str) -> bool:
        """Does the user own ``account`` (may act on the account itself)?"""
        try:
            return self.authorize(req, 'HEAD', SwiftPath(account, None, None),
                                  None)
        except HTTPException:
            return False

    def list_names(self, req: Request, account: str,
                   container: Optional[str]) -> List[str]:
        """A listing as the user (so their rights apply), all pages."""
        base = '/v1/%s' % account + ('/%s' % container if container else '')
        names: List[str] = []
        marker = ''
        while True:
            sub = make_subrequest(
                req.environ, 'GET',
                quote(base) + '?format=json&marker=' + quote(marker),
                swift_source=SWIFT_SOURCE)
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

    def container_meta(self, req: Request, account: str, container: str
                       ) -> Dict[str, str]:
        """A container's user metadata (lower-case keys), read as the system.
        """
        info = get_info(self.app, req.environ, str_to_wsgi(account),
                        str_to_wsgi(container), swift_source=SWIFT_SOURCE)
        return info.get('meta') or {}

    def content_type_of(self, req: Request, path: SwiftPath) -> str:
        """HEAD an object as the user; its content type."""
        resp = self._subrequest(req, 'HEAD', '/v1' + path.path_info
                                ).get_response(self.app)
        if not is_success(resp.status_int):
            raise NodeError('Error %s while fetching %s'
                            % (resp.status, path.path_info), resp.status_int)
        return (resp.headers.get('Content-Type') or '').split(';')[0].strip()

    def open_template(self, req: Request, account: str, content_type: str
                      ) -> Optional[str]:
        """The job template registered for opening ``content_type``."""
        path = SwiftPath(account, OPEN_REGISTRY, content_type + '/config')
        resp = self._subrequest(req, 'GET', '/v1' + path.path_info
                                ).get_response(self.app)
        if resp.status_int == 404 or not content_type:
            return None
        if not is_success(resp.status_int):
            raise NodeError('Error %s while fetching %s'
                            % (resp.status, path.path_info), resp.status_int)
        if (resp.content_length or 0) > self.max_config:
            raise JobError('Config file at %s is too large' % path.path_info,
                           413)
        return resp.body.decode('utf-8', 'replace')

    def fetch_response(self, req: Request, path: SwiftPath,
                       grants: Optional[access.Grants] = None) -> Response:
        resp = self._subrequest(req, 'GET', '/v1' + path.path_info,
                                grants=grants).get_response(self.app)
        if not is_success(resp.status_int):
            raise NodeError('Error %s while fetching %s'
                            % (resp.status, path.path_info), resp.status_int)
        return resp

    def fetch(self, req: Request, path: SwiftPath, member: str,
              grants: Optional[access.Grants] = None) -> Upload:
        resp = self.fetch_response(req, path, grants)
        return Upload(member, resp.content_length, resp.app_iter)

    def _put(self, req: Request, path: SwiftPath, fp, size: int,
             headers: Dict[str, str],
             grants: Optional[access.Grants] = None) -> Response:
        headers = dict(headers, **{'Content-Length': str(size)})
        sub = self._subrequest(req, 'PUT', '/v1' + path.path_info, headers,
                               grants)
        sub.environ['wsgi.input'] = fp
        return sub.get_response(self.app)

    def store(self, req: Request, put: PendingPut,
              grants: Optional[access.Grants] = None
              ) -> Optional[Tuple[int, str]]:
        """PUT one output as the user; (status, text) when Swift refused."""
        headers = {'Content-Type': put.content_type}
        for key, value in put.meta.items():
            headers['X-Object-Meta-' + key] = value
        with open(put.data.path, 'rb') as fp:
            resp = self._put(req, put.path, fp, put.data.size, headers,
                             grants)
        if is_success(resp.status_int):
            return None
        return resp.status_int, 'Status %s when putting %s' % (
            resp.status, put.path.path_info)

    def store_deferred(self, req: Request, path: SwiftPath, body: bytes,
                       content_type: str, headers_json: bytes) -> None:
        """Write a deferred job's response and ``<object>.headers``."""
        container = SwiftPath(path.account, path.container, None)
        self._subrequest(req, 'PUT', '/v1' + container.path_info
                         ).get_response(self.app)
        for target, data, ctype in (
                (path, body, content_type),
                (SwiftPath(path.account, path.container, path.obj +
                           '.headers'), headers_json, 'application/json')):
            resp = self._put(req, target, io.BytesIO(data), len(data),
                             {'Content-Type': ctype})
            if not is_success(resp.status_int):
                self.logger.error('zerocloud: deferred result %s: %s',
                                  target.url, resp.status)

    def record_accounting(self, req: Request, account: str, job_id: str,
                          lines: bytes) -> None:
        """Store one job's accounting lines in the stats account.

        ``/v1/<user_stats_account>/<account>/<YYYY>/<MM>/<DD>/<job>.log``,
        written by the system (pre-authorised), never by the user.
        """
        container = '/v1/%s/%s' % (self.stats_account, account)
        if container not in self._stats_containers:
            make_pre_authed_request(req.environ, 'PUT', quote(container),
                                    swift_source=SWIFT_SOURCE
                                    ).get_response(self.app)
            self._stats_containers.add(container)
        path = '%s/%s%s.log' % (container, time.strftime(
            '%Y/%m/%d/', time.gmtime()), job_id)
        resp = make_pre_authed_request(
            req.environ, 'PUT', quote(path), body=lines,
            headers={'Content-Type': 'text/plain'},
            swift_source=SWIFT_SOURCE).get_response(self.app)
        if not is_success(resp.status_int):
            self._stats_containers.discard(container)
            self.logger.error('zerocloud: accounting %s: %s', path,
                              resp.status)

    # -- placement ----------------------------------------------------------

    def target(self, req: Request, node: Node, account: str
               ) -> placement.Target:
        """Where ``node`` runs: next to its input object, else anywhere."""
        channel = node.placement_channel()
        proxy = self.proxy_app
        is_limited = getattr(proxy, 'error_limited', lambda n: False)
        path = channel.path if channel is not None else None
        if isinstance(path, SwiftPath) and path.container:
            info = get_info(self.app, req.environ, str_to_wsgi(path.account),
                            str_to_wsgi(path.container),
                            swift_source=SWIFT_SOURCE)
            if not is_success(info.get('status') or 0):
                raise NodeError('Error while fetching %s' % path.path_info,
                                404)
            if path.obj is None:
                return placement.container_target(proxy.container_ring, path,
                                                  is_limited)
            index = int(info.get('storage_policy') or 0)
            policy = POLICIES.get_by_index(index)
            return placement.object_target(proxy.get_object_ring(index), path,
                                           index, policy.name, is_limited)
        policy = POLICIES.default
        # Consecutive free nodes start on consecutive servers: a stage's
        # nodes spread over the cluster instead of meeting by chance.
        self._free_turn += 1
        return placement.free_target(proxy.get_object_ring(policy.idx),
                                     account, policy.idx, policy.name,
                                     self._free_turn, is_limited)

    def dispatch_node(self, candidates: List[dict], target: placement.Target,
                      headers: Dict[str, str], uploads: List[Upload]):
        return dispatch(candidates, target.partition, target.path_info,
                        headers, uploads, self.conn_timeout,
                        expect_timeout=self.timeout + 10,
                        final_timeout=self.timeout + 60,
                        on_error=self.on_node_error)

    def on_node_error(self, node: dict, message: str) -> None:
        error_occurred = getattr(self.proxy_app, 'error_occurred', None)
        if error_occurred:
            error_occurred(node, message)
        else:
            self.logger.warning(message)


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)
    register_swift_info('proxy_query', zerovm_timeout=int(float(
        conf.get('zerovm_timeout', 10))))

    def factory(app):
        return ProxyQueryMiddleware(app, conf)
    return factory
