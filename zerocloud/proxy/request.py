"""What an execution request asks for: its job, image, input and rights.

:class:`JobRequest` turns one recognised request into a validated job,
ready to run (:mod:`zerocloud.proxy.jobrun`):

* a job ``POST`` reads its body (script, zapp tar or JSON,
  :mod:`zerocloud.job.source`), or the stored object named by
  ``X-Zerovm-Source`` (whose request body then feeds path-less ``stdin``);
* ``/open/a/c/o`` runs a zapp object, or opens any object with the app
  registered for its content type (or runs a WebAssembly object);
* ``/api/a/c/...`` runs the stored job named by the container's
  ``X-Container-Meta-Rest-Endpoint``;
* a chained job (:mod:`zerocloud.proxy.chain`) gets what its chain left of the
  first request's body, and the provenance of the chain's first job.

Every object the job touches is authorized with the deployment's own
``swift.authorize`` before anything runs, with ZeroCloud's "setuid"
fallback and the limits on jobs of foreign origin
(:mod:`zerocloud.proxy.access`).
"""

import json
import uuid
from dataclasses import dataclass
from hashlib import md5
from typing import Callable, Dict, Iterable, List, Optional, Set

from eventlet import tpool
from swift.common.swob import HTTPException, HTTPMethodNotAllowed, Request
from swift.common.utils import unquote

from zerocloud import cgi, protocol
from zerocloud.job import source as jobsource
from zerocloud.job.model import (
    Job, JobError, Node, SwiftPath, job_from_script, parse_job,
    parse_location, substitute)
from zerocloud.proxy import access
from zerocloud.proxy.body import UNFRAMED, ClientBody
from zerocloud.proxy.config import ProxyConfig
from zerocloud.proxy.swiftaccess import SwiftAccess

SOURCE_HEADER = 'X-Zerovm-Source'
#: environ key of a chained request: (read, length) of the chain's input,
#: length None when it is read to its end (a chunked request).
CHAIN_INPUT = 'zerocloud.chain_input'
#: environ key ``proxy_query`` sets: the :class:`Provenance` of the job it
#: ran, for :mod:`zerocloud.proxy.chain` to hand on.
JOB_PROVENANCE = 'zerocloud.job_provenance'
#: environ key only :mod:`zerocloud.proxy.chain` sets on a chained request: the
#: :class:`Provenance` its chain inherits.  Clients cannot set environ keys.
CHAIN_PROVENANCE = 'zerocloud.chain_provenance'
#: Where deferred results go when the request URL names no object.
DEFERRED_CONTAINER = '.zvm'
#: Kinds of execution request: a job POST, an ``/open/`` or ``/api/`` call.
JOB, OPEN, API = 'job', 'open', 'api'
RUNNABLE_TYPES = ('application/wasm', 'application/x-nexe')
#: How ``/open/`` runs a WebAssembly object that has no registered app.
RUN_OBJECT_TEMPLATE = json.dumps([{
    'name': 'executable',
    'exec': {'path': '{.object_path}', 'args': '{.args}'},
    'devices': [{'name': 'stdout',
                 'content_type': '{.content_type=text/plain}'}]}])


@dataclass(frozen=True)
class Provenance:
    """Where a job description came from, as a chain hands it on.

    ``source_url``: the stored job or zapp (its container's setuid may lend
    to the chain); ``origin``: the account the description or code it ran
    was stored in, when the caller does not own it (the job is foreign).
    """
    source_url: Optional[str]
    origin: Optional[str]


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


class JobRequest:
    """One execution request, up to a validated, authorized job."""

    def __init__(self, swift: SwiftAccess, config: ProxyConfig,
                 req: Request, account: str,
                 container: Optional[str], obj: Optional[str],
                 kind: str = JOB):
        self.swift = swift
        self.config = config
        self.req = req
        self.account = account
        self.container = container
        self.obj = obj
        self.kind = kind
        #: What a chain hands on; only job_chain sets it.
        self.inherited: Optional[Provenance] = req.environ.get(
            CHAIN_PROVENANCE)
        #: ``swift://`` URL of the stored job or zapp being run, if any (a
        #: chained job inherits the one that started its chain).
        self.source_url: Optional[str] = \
            self.inherited and self.inherited.source_url
        #: The account foreign code or a foreign job description came from
        #: (see :mod:`zerocloud.proxy.access`); None when the caller owns
        #: everything the job runs.
        self.origin: Optional[str] = self.inherited and self.inherited.origin
        #: Containers whose setuid lends to this job.
        self.grants = access.Grants()
        #: Container paths (``path_info``) the caller owns.
        self.owned: Set[str] = set()
        #: Prefixes a foreign job may write under (``X-Zerovm-Allow-Write``),
        #: read by :meth:`prepare`.
        self.allowed_writes: List[str] = []
        #: The user image (zapp or script) and the data for path-less stdin.
        self.image: Optional[jobsource.Spooled] = None
        self.stream: Optional[jobsource.Spooled] = None
        #: Bytes of a one-node job's answer held back before it streams
        #: (``X-Zerocloud-Stream-After``), read by :meth:`prepare`.
        self.stream_after = protocol.STREAM_AFTER

    def prepare(self) -> Job:
        """The job, validated and authorized; inputs spooled."""
        req = self.req
        try:
            self.stream_after = protocol.parse_stream_after(
                req.headers.get(protocol.STREAM_AFTER_HEADER))
        except ValueError as err:
            raise JobError(str(err))
        self.allowed_writes = access.parse_allowed_writes(
            req.headers.get(access.ALLOW_WRITE_HEADER), self.account)
        if self.kind == OPEN:
            doc = self._open()
        elif self.kind == API:
            doc = self._api()
        else:
            source = req.headers.get(SOURCE_HEADER)
            if source:
                doc = self._read_source(self._source_path(source))
            else:
                self.authorize('POST', self._request_path(), None)
                ctype = req.headers.get('Content-Type')
                if not ctype:
                    raise JobError('Must specify Content-Type')
                body = self._client_body()
                if not body.framed:
                    raise JobError(UNFRAMED, 411)
                doc = self._read_body(ctype, body.length, body.read)
        job = parse_job(doc, account=self.account,
                        sysimages=self.config.sysimages,
                        lister=self.swift.list_names,
                        default_content_type=self.config.default_content_type,
                        max_connections=self.config.max_connections)
        self._note_code_origins(job.nodes)
        self._authorize_objects(job.nodes)
        if any(node.wants_stream for node in job.nodes):
            self.stream = self._data_stream(self.source_url is not None)
        for node in job.nodes:
            node.env.update(self._cgi_environ(node))
        req.environ[JOB_PROVENANCE] = Provenance(self.source_url, self.origin)
        return job

    def _request_path(self) -> SwiftPath:
        return SwiftPath(self.account, self.container, self.obj)

    def authorize(self, method: str, path: SwiftPath,
                  acl_key: Optional[str]) -> None:
        """The deployment's auth, with ZeroCloud's "setuid" fallback.

        ``method`` is ``GET`` (read), ``PUT`` (write) or ``POST`` (execute on
        ``path``).  A denied check is tried again with the ACL a lending
        container grants for it (:mod:`zerocloud.proxy.access`).
        """
        try:
            owner = self.swift.authorize(method, path, acl_key)
        except HTTPException as denial:
            self._authorize_setuid(method, path, denial)
            return
        if owner and path.is_container:
            self.owned.add(path.path_info)

    def _authorize_setuid(self, method: str, path: SwiftPath,
                          denial: Exception) -> None:
        """Authorize ``path`` by setuid alone; raise ``denial`` if it can't.
        """
        grant = self._lending_grant(path)
        acl = grant and grant.acl(write=method == 'PUT')
        if not acl:
            raise denial
        self.swift.authorize(method, path, None, acl=acl)
        self.grants.add(grant)

    def _lending_grant(self, path: SwiftPath
                       ) -> Optional[access.SetuidGrant]:
        """The grant of the container that may lend to ``path``, if any.

        A container path lends its own objects.  An account path (a chained
        job's ``POST /v1/<account>``) is lent only by a chain's inherited
        source, within that source's own account: a client-supplied source
        never authorizes an account.
        """
        if self.source_url is None:
            return None
        if path.container:
            holder = path
        else:
            if self.inherited is None:
                return None
            holder = parse_location(self.inherited.source_url)
            if holder.account != path.account:
                return None
        meta = self.swift.container_meta(holder.account, holder.container)
        suid = meta.get('zerovm-suid')
        endpoint = unquote(meta.get('rest-endpoint') or '')
        if not suid or endpoint != self.source_url:
            return None
        return access.SetuidGrant.parse(holder.account, holder.container,
                                        suid)

    def owns(self, path: SwiftPath) -> bool:
        """May the caller see everything of container ``path`` (its owner)?
        """
        return path.path_info in self.owned

    def _open(self):
        """``/open/a/c/o``: run a zapp object, or open an object with an app.

        A zapp answers any method, its request body becoming the ``stdin``
        of nodes whose ``stdin`` has no path.  Any other object can be
        opened with ``GET``: by the template registered for its content type
        at ``/<account>/.zvm/<type>/<subtype>/config``, or, for a WebAssembly
        program, by running it.
        """
        path = self._request_path()
        ctype = self.swift.content_type_of(path)
        if jobsource.body_kind(ctype) == 'tar':
            try:
                return self._read_source(path)
            except jobsource.NoSystemMap:
                self.remove_inputs()
                self.source_url = None
        if self.req.method != 'GET':
            raise HTTPMethodNotAllowed(
                body='%s is not a zapp; only GET can open it' % path.url,
                content_type='text/plain', headers={'Allow': 'GET'})
        self.authorize('POST', path, None)
        self._note_origin(self.account)
        template = self.swift.open_template(self.account, ctype,
                                            self.config.max_config)
        if template is None:
            if ctype not in RUNNABLE_TYPES:
                raise JobError('No application registered for %s' % ctype,
                               404)
            template = RUN_OBJECT_TEMPLATE
        return substitute(template, dict(self.req.params), path.url)

    def _api(self):
        """``/api/a/c/...``: the container's REST endpoint runs the request."""
        meta = self.swift.container_meta(self.account, self.container)
        endpoint = meta.get('rest-endpoint')
        if not endpoint:
            raise JobError('No API endpoint configured for container %s'
                           % self.container, 404)
        return self._read_source(self._source_path(
            endpoint, 'X-Container-Meta-Rest-Endpoint'),
            SwiftPath(self.account, self.container, None))

    def _data_stream(self, source: bool) -> Optional[jobsource.Spooled]:
        """The bytes path-less ``stdin`` devices read, spooled once.

        A job from ``X-Zerovm-Source`` reads the request body; a chained job
        (:mod:`zerocloud.proxy.chain`) reads what its chain left of the first
        request's body.
        """
        chain_input = self.req.environ.get(CHAIN_INPUT)
        if chain_input is not None:
            body = ClientBody(*chain_input, self.config.client_timeout)
        elif source:
            body = self._client_body()
        else:
            return None
        return jobsource.spool(body.read, body.length, self.config.max_input,
                               self.config.spool_dir)

    def _client_body(self) -> ClientBody:
        return ClientBody.of_request(self.req, self.config.client_timeout)

    def _read_body(self, ctype: str, length: Optional[int],
                   read: Callable[[int], bytes], etag: Optional[str] = None):
        kind = jobsource.body_kind(ctype)
        if kind == 'json':
            raw = jobsource.read_limited(read, length, self.config.max_config)
            if etag and etag.strip('"').lower() != md5(
                    raw, usedforsecurity=False).hexdigest():
                raise JobError('Etag does not match the job description',
                               422)
            return raw
        if kind == 'tar':
            self.image = jobsource.spool(read, length, self.config.max_input,
                                         self.config.spool_dir)
            # Expanding a gzip zapp is CPU work: in a thread, off the hub.
            return tpool.execute(jobsource.find_system_map, self.image,
                                 ctype, self.config.image_scan,
                                 self.config.max_config)
        head = jobsource.read_script_head(read)
        doc = job_from_script(head, account=self.account,
                              container=self.container, obj=self.obj)
        self.image = jobsource.script_image(head, read, length,
                                            self.config.max_input,
                                            self.config.spool_dir)
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
        self.authorize('GET', path, 'read_acl')
        self.authorize('POST', target or self._request_path(), None)
        self._note_origin(path.account)
        resp = self.swift.fetch_response(path, self.grants)
        try:
            return self._read_body(
                resp.headers.get('Content-Type', ''), resp.content_length,
                iter_reader(resp.app_iter), resp.headers.get('Etag'))
        finally:
            close = getattr(resp.app_iter, 'close', None)
            if close:
                close()

    def _note_origin(self, account: str) -> None:
        """The job's description or code is stored in ``account``: is it
        foreign?"""
        if self.origin is None and not self.swift.is_owner(account):
            self.origin = account

    def _note_code_origins(self, nodes: List[Node]) -> None:
        """A job is foreign when any code it runs is: judged by what runs,
        not only by where its description was found."""
        for account in sorted({path.account for node in nodes
                               for path in access.code_paths(node)}):
            self._note_origin(account)

    def _authorize_foreign_write(self, path: SwiftPath) -> None:
        """A foreign job writes outside the caller's prefixes: setuid only.
        """
        grant = self._lending_grant(path)
        if grant is None or not grant.write_acl:
            raise access.foreign_write_refusal(path, self.origin)
        self.swift.authorize('PUT', path, None, acl=grant.write_acl)
        self.grants.add(grant)

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
            if method == 'PUT' and self.origin is not None and \
                    not access.is_allowed_write(path, self.allowed_writes):
                self._authorize_foreign_write(path)
            else:
                self.authorize(method, path, acl)

    def deferred_result_path(self) -> SwiftPath:
        """Where a deferred job's answer goes: a place the caller may write
        and read with their own rights (setuid lends nothing here).

        A job ``POST`` names it (``/v1/a/c/o``, else ``a/.zvm/job-<id>``);
        an ``/open/`` or ``/api/`` call writes ``.zvm/job-<id>`` of the
        request's account when the caller may, else of the caller's own
        account.  Anonymous callers cannot read anything back: refused.
        """
        if access.is_anonymous(self.req.environ):
            raise JobError('Deferred execution (X-Zerovm-Deferred) needs an '
                           'authenticated caller: its result is stored '
                           'where you can read it', 400)
        name = 'job-%s' % uuid.uuid4().hex
        if self.kind == JOB:
            candidates = [SwiftPath(self.account,
                                    self.container or DEFERRED_CONTAINER,
                                    self.obj or name)]
        else:
            accounts = [self.account] + [
                a for a in access.caller_account_candidates(
                    self.req.environ) if a != self.account]
            candidates = [SwiftPath(a, DEFERRED_CONTAINER, name)
                          for a in accounts]
        for path in candidates:
            try:
                self.swift.authorize('PUT', path, 'write_acl')
                self.swift.authorize('GET', path, 'read_acl')
            except HTTPException:
                continue
            return path
        raise JobError('Deferred execution: you may not write and read its '
                       'result at %s' % ' or '.join(
                           p.url for p in candidates), 403)

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

    def remove_inputs(self) -> None:
        for spooled in (self.image, self.stream):
            if spooled is not None:
                spooled.remove()
        self.image = self.stream = None
