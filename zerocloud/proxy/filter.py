"""
proxy_query: execute jobs posted to a Swift account
===================================================

``proxy_query`` turns a ``POST`` carrying ``X-Zerovm-Execute`` into a ZeroCloud
job and runs each of its nodes on an object server next to the node's input.
Requests without that header pass through untouched.

The body is a script with a shebang, a zapp tar (``boot/system.map`` inside)
or a JSON job description (:mod:`zerocloud.job.source`), framed by
``Content-Length`` or ``Transfer-Encoding: chunked`` (which wins when both
are given, as in Swift); bad framing, a stalled body and a client that goes
away are the client's ``400``, ``408`` and ``499``
(:mod:`zerocloud.proxy.body`).  The job is parsed
and validated (:mod:`zerocloud.job.model`), every object it touches is
authorized with the deployment's own ``swift.authorize`` (executing needs the
right to ``POST`` to the request path, reading needs the container's read
ACL, writing its write ACL; :mod:`zerocloud.proxy.request`,
:mod:`zerocloud.proxy.access`; a request a temp URL authorized is refused
with ``403``: tempurl makes ``swift.authorize`` allow everything), each node
is placed
(:mod:`zerocloud.proxy.placement`) and streamed to its object server
(:mod:`zerocloud.proxy.scheduler`, :mod:`zerocloud.proxy.nodeclient`).
Outputs with a ``swift://`` path are stored through the normal object path,
as the user, only after every node succeeded; the path-less output of each
node forms the response body (:mod:`zerocloud.proxy.response`).  Per-node
results come back in ``X-Nexe-*`` headers, one comma-separated entry per
node.

This module is the WSGI glue: the options are read and checked when the
filter is built (:mod:`zerocloud.proxy.config`; a bad value stops the
server with a message naming it), and each request gets its own objects.

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
``node_timeout = 10``
    seconds to wait for an object server's ``100 Continue`` (it checks the
    node before reading its body, so this is short, as for Swift's own
    requests), and for each chunk of the body or of the answer to move.
    The answer's headers, which come after the run, may take
    ``zerovm_timeout`` + 60 seconds (``zerocloud.protocol.ANSWER_SLACK``).
    A server that misses one of these is counted by Swift's error limiter
    and the node goes to the next replica; a busy one (``503`` with
    ``Retry-After``) is never counted.
``client_timeout = 60``
    seconds to wait for each read of a client's request body; a body that
    stops arriving answers ``408`` (Swift's own option and default: set it
    in ``[DEFAULT]`` so the proxy server's socket timeout agrees).
``zerovm_job_concurrency = 16``
    nodes of one job in progress at once (connecting, running or waiting
    for a busy server); the others of a wide stage wait their turn.
``zerovm_job_deadline = 60``
    seconds from a job's start within which its nodes may wait for busy
    object servers (all sandboxes and the servers' queues full); they are
    sent again after a jittered backoff that starts at the servers'
    ``Retry-After``.  Past it, the job answers ``503`` with ``Retry-After``
    (0: at once).
``zerovm_max_waiting_nodes = 64``
    nodes of this proxy worker process that may wait for busy servers at
    once, and half as many (rounded up) of one account; a node beyond that
    fails at once, so a saturated cluster answers ``503`` with
    ``Retry-After`` quickly instead of piling up waiters (0: no node
    waits).
``zerovm_account_deferred = 4``
    deferred jobs (``X-Zerovm-Deferred``) of one account that run at once in
    this proxy worker process; the next one is answered ``503`` with
    ``Retry-After`` before anything runs, so one tenant's backlog never
    delays the others' jobs.  The object servers keep each account to its
    share of their sandboxes as well (``zerovm_account_maxpool``).
``zerovm_max_connections = 4096``
    connections (``connect`` and ``zvm://`` edges) one job may declare; a
    job with more is refused with ``400`` naming this option before
    anything runs (each connection is a spooled stream here).
``zerovm_job_spool_limit = 17179869184``
    bytes of data between one job's connected nodes kept here (each
    connection whole, sealed, in ``zerovm_spool_dir`` until the job ends):
    the node whose data goes past it fails (``422`` naming this option),
    which stops the job.
``zerovm_spool_dir`` (system temp dir)
    where uploaded images and what nodes answered are spooled; it must
    exist.  What nodes answered (outputs, data between nodes, answers) is
    spooled sealed: encrypted under a key made for that one file and held
    in memory only (:mod:`zerocloud.cipher`).
``zerovm_accounting_enabled = false``
    record every job's accounting lines
    ``<UTC time> <transaction> <node> (<cdr line>) [<status>]`` in a local
    spool file, stored by each proxy worker process every interval as one
    object per account in
    ``/v1/<user_stats_account>/<account>/<YYYY>/<MM>/<DD>/<spool>.log``
    (:mod:`zerocloud.proxy.accounting`: none lost on a crash or a restart).
``zerovm_accounting_interval = 10``
    seconds between two stores of a worker's spool.
``zerovm_accounting_spool_dir = /var/cache/swift/zerocloud-accounting``
    where the spool files are; made at start if missing (only with
    accounting enabled).  Keep it on a disk that survives a reboot.
``user_stats_account = userstats``
    the account that receives them (the proxy must be allowed to create it,
    e.g. ``account_autocreate = true``).
"""

from typing import Dict, Optional, Tuple

from swift.common.registry import register_swift_info
from swift.common.swob import HTTPException, Request, Response
from swift.common.utils import get_logger

from zerocloud.fairshare import AccountShare
from zerocloud.headers import STREAMING_STATUS, header_value
from zerocloud.job.model import JobError
from zerocloud.protocol import ANSWER_SLACK, EXECUTE_HEADER
from zerocloud.proxy import cors
from zerocloud.proxy.accounting import AccountingSpool, SwiftStore
from zerocloud.proxy.config import ProxyConfig
from zerocloud.proxy.jobrun import JobRun
from zerocloud.proxy.nodeclient import NodeClient, Timeouts
from zerocloud.proxy.placement import Placer
from zerocloud.proxy.request import API, JOB, OPEN, JobRequest
from zerocloud.proxy.swiftaccess import SwiftAccess


def request_problem(kind: str, method: str, account: Optional[str],
                    container: Optional[str], obj: Optional[str]
                    ) -> Optional[Response]:
    """Why an execution request cannot be served: the refusal, or None.

    A job sent with another method than ``POST`` is the client's mistake:
    ``405`` naming the method, with ``Allow: POST`` (ZeroCloud's original
    answered ``501``, which says the server is lacking).
    """
    if not account or (kind == OPEN and not obj) or (
            kind == API and not container):
        return _refusal(412, 'Bad URL')
    if kind not in (JOB, OPEN, API):
        return _refusal(412, 'Unknown X-Zerovm-Execute version %s' % kind)
    if kind == JOB and method != 'POST':
        return _refusal(405, 'Jobs are run with POST, not %s'
                        % header_value(method), Allow='POST')
    return None


def _refusal(status: int, text: str, **headers: str) -> Response:
    return Response(status=status, body=text, content_type='text/plain',
                    headers=headers)


class ProxyQueryMiddleware:
    def __init__(self, app, conf: Dict[str, str], logger=None):
        self.app = app
        self.logger = logger or get_logger(conf, log_route='proxy_query')
        self.config = ProxyConfig.from_conf(conf)
        self.accounting: Optional[AccountingSpool] = None
        self._accounting_store: Optional[SwiftStore] = None
        if self.config.accounting:
            self._accounting_store = SwiftStore(
                app, self.config.stats_account, self.logger)
            self.accounting = AccountingSpool(
                self.config.accounting_spool_dir,
                self.config.accounting_interval, self._accounting_store,
                self.logger)
        self.deferred_jobs = AccountShare(self.config.account_deferred)
        self._placer: Optional[Placer] = None
        self._client: Optional[NodeClient] = None

    def _servers(self) -> Tuple[Placer, NodeClient]:
        """Placement and the node client, made on first use: they need the
        proxy app (rings, error limiting), which Swift names only once the
        whole pipeline is built."""
        if self._placer is None or self._client is None:
            proxy = getattr(self, '_pipeline_final_app', self.app)
            self._placer = Placer(proxy)
            config = self.config
            self._client = NodeClient(
                Timeouts(connect=config.conn_timeout,
                         node=config.node_timeout,
                         answer=config.timeout + ANSWER_SLACK),
                config.max_waiting_nodes,
                getattr(proxy, 'error_occurred', self._log_node_error))
        return self._placer, self._client

    def _log_node_error(self, node: dict, message: str) -> None:
        self.logger.warning(message)

    def _start_accounting(self, env) -> None:
        """Store the spool from this worker process, with its cache."""
        if self.accounting is not None:
            self._accounting_store.cache = env.get('swift.cache')
            self.accounting.start()

    def __call__(self, env, start_response):
        self._start_accounting(env)
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
        if cors.is_preflight(req):
            return cors.preflight(req, self.app, start_response)
        start_response = cors.cors_start_response(req, self.app,
                                                  start_response)
        kind = execute.split('/', 1)[0] if '/' in execute else JOB
        refusal = request_problem(kind, req.method, account, container,
                                  obj)
        if refusal is None and env.get('swift.authorize_override'):
            # A temp URL (or container sync) grants one request on one
            # object by replacing swift.authorize with "allow everything":
            # a job run on it could read every object of the account.
            refusal = _refusal(403, 'A temp URL does not grant running code')
        if refusal:
            return refusal(env, start_response)
        swift = SwiftAccess(self.app, req, self.logger)
        request = JobRequest(swift, self.config, req, account, container,
                             obj, kind)
        placer, client = self._servers()
        try:
            resp = JobRun(request, swift, placer, client, self.accounting,
                          self.logger, self.deferred_jobs).respond()
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
        if resp.headers.get('X-Nexe-Status') == STREAMING_STATUS:
            # The answer's pieces go out as the node writes them: eventlet
            # would hold back writes smaller than 4 KiB until more come.
            env['eventlet.minimum_write_chunk_size'] = 0
        return resp(env, start_response)


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)
    config = ProxyConfig.from_conf(conf)
    register_swift_info('proxy_query', zerovm_timeout=config.timeout)

    def factory(app):
        return ProxyQueryMiddleware(app, conf)
    return factory
