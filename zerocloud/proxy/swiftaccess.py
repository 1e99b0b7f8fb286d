"""Swift as the user of one request sees it.

:class:`SwiftAccess` is made per execution request.  Every read, write,
listing and authorization a job needs goes through it, as sub-requests
through the rest of the proxy pipeline, carrying the user's identity and
auth hooks, so every middleware right of ``proxy_query`` (quotas, SLO, DLO,
symlinks, versioning, encryption) treats them as the user's own requests.
"""

import io
import json
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Tuple

from swift.common.exceptions import ChunkReadError
from swift.common.http import is_success
from swift.common.middleware.crypto.crypto_utils import CRYPTO_KEY_CALLBACK
from swift.common.swob import HTTPException, Request, Response, str_to_wsgi
from swift.common.utils import FileLikeIter, close_if_possible, quote
from swift.common.wsgi import make_subrequest
from swift.proxy.controllers.base import get_container_info, get_info

from zerocloud import protocol
from zerocloud.job.model import JobError, SwiftPath
from zerocloud.proxy.access import Grants
from zerocloud.proxy.nodeclient import (
    NodeError, PendingPut, StreamFailed, StreamingPut, Upload)

#: ``swift.source`` of our sub-requests in Swift's logs.
SWIFT_SOURCE = 'ZC'
#: Container of the templates that ``/open/`` uses, per content type.
OPEN_REGISTRY = '.zvm'


def listing_error(status: str, path: SwiftPath) -> JobError:
    """A listing Swift refused: the caller's fault (``4xx``: no right to
    list, no such container) keeps its status; a server's fault is ``503``.
    """
    code = int(status.split()[0])
    return JobError('Error %s listing %s' % (status, path.url),
                    code if 400 <= code < 500 else 503)


def _abandoned_on_failure(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks``, ending as a client that went away before the last chunk
    (Swift's proxy then stores nothing) when their node failed."""
    try:
        yield from chunks
    except StreamFailed as err:
        raise ChunkReadError(str(err))


class _CountedApp:
    """The rest of the pipeline, counting the sub-requests that reach it
    (lookups answered by memcache do not)."""

    def __init__(self, app):
        self.app = app
        self.calls = 0

    def __call__(self, env, start_response):
        self.calls += 1
        return self.app(env, start_response)

    def __getattr__(self, name: str):
        return getattr(self.app, name)


class _CountedCache:
    """The request's memcache client, counting the lookups of this job's
    sub-requests (container and account info, ACLs) and their hits."""

    def __init__(self, cache):
        self.cache = cache
        self.gets = 0
        self.hits = 0

    def get(self, key, *args, **kwargs):
        value = self.cache.get(key, *args, **kwargs)
        self.gets += 1
        self.hits += value is not None
        return value

    def __getattr__(self, name: str):
        return getattr(self.cache, name)


class SwiftAccess:
    """Sub-requests on behalf of one request's user."""

    def __init__(self, app, req: Request, logger):
        self.app = _CountedApp(app)
        self.req = req
        self.logger = logger
        self.cache: Optional[_CountedCache] = None
        if req.environ.get('swift.cache') is not None:
            # Sub-requests take the client's request's cache along.
            self.cache = req.environ['swift.cache'] = _CountedCache(
                req.environ['swift.cache'])

    @property
    def subrequests(self) -> int:
        """Sub-requests made so far that reached the pipeline below."""
        return self.app.calls

    @property
    def cache_lookups(self) -> str:
        """``<hits>/<lookups>`` of memcache so far (``-``: no cache)."""
        if self.cache is None:
            return '-'
        return '%d/%d' % (self.cache.hits, self.cache.gets)

    def _subrequest(self, method: str, path: SwiftPath,
                    headers: Optional[Dict[str, str]] = None,
                    grants: Optional[Grants] = None,
                    query: str = '') -> Request:
        """A request through the rest of the pipeline, as the same user.

        Only ``query`` is its query string: the client's own parameters
        (``multipart-manifest=get``, ``symlink=get`` …) must not change
        what a job reads.  With ``grants`` (the job's setuid grants),
        Swift's checks of this request and of every sub-request it causes
        get them as a second chance
        (:meth:`zerocloud.proxy.access.Grants.wrap`).
        """
        sub = make_subrequest(self.req.environ, method,
                              quote('/v1' + path.path_info) + '?' + query,
                              headers=headers, swift_source=SWIFT_SOURCE)
        authorize = sub.environ.get('swift.authorize')
        if grants and authorize is not None:
            sub.environ['swift.authorize'] = grants.wrap(authorize)
        return sub

    def _checked(self, sub: Request, path: SwiftPath) -> Response:
        """``sub``'s answer; a failure raises the node error naming
        ``path``."""
        resp = sub.get_response(self.app)
        if not is_success(resp.status_int):
            raise NodeError('Error %s while fetching %s'
                            % (resp.status, path.path_info), resp.status_int)
        return resp

    def authorize(self, method: str, path: SwiftPath,
                  acl_key: Optional[str], acl: Optional[str] = None) -> bool:
        """Ask the deployment's auth whether the user may do ``method``.

        The ACL checked is the container's ``acl_key`` (``read_acl``,
        ``write_acl``), or ``acl`` itself when given.  Raises the denial;
        returns whether the auth system deems the user an owner of ``path``
        (``swift_owner``), who may see what Swift hides from others.
        """
        authorize = self.req.environ.get('swift.authorize')
        if authorize is None:
            return True
        sub = self._subrequest(method, path)
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

    def is_owner(self, account: str) -> bool:
        """Does the user own ``account`` (may act on the account itself)?"""
        try:
            return self.authorize('HEAD', SwiftPath(account, None, None),
                                  None)
        except HTTPException:
            return False

    def list_names(self, account: str, container: Optional[str]
                   ) -> List[str]:
        """A listing as the user (so their rights apply), all pages."""
        path = SwiftPath(account, container, None)
        names: List[str] = []
        marker = ''
        while True:
            resp = self._subrequest(
                'GET', path, query='format=json&marker=' + quote(marker)
            ).get_response(self.app)
            if not is_success(resp.status_int):
                raise listing_error(resp.status, path)
            page = [item['name'] for item in json.loads(resp.body or b'[]')]
            if not page:
                return names
            names.extend(page)
            marker = page[-1]

    def container_info(self, account: str, container: str) -> dict:
        """Swift's cached container info, read as the system."""
        return get_info(self.app, self.req.environ, str_to_wsgi(account),
                        str_to_wsgi(container), swift_source=SWIFT_SOURCE)

    def container_meta(self, account: str, container: str
                       ) -> Dict[str, str]:
        """A container's user metadata (lower-case keys)."""
        return self.container_info(account, container).get('meta') or {}

    def content_type_of(self, path: SwiftPath) -> str:
        """HEAD an object as the user; its content type."""
        resp = self._checked(self._subrequest('HEAD', path), path)
        return (resp.headers.get('Content-Type') or '').split(';')[0].strip()

    def open_template(self, account: str, content_type: str,
                      max_size: int) -> Optional[str]:
        """The job template registered for opening ``content_type``."""
        if not content_type:
            return None
        path = SwiftPath(account, OPEN_REGISTRY, content_type + '/config')
        try:
            resp = self._checked(self._subrequest('GET', path), path)
        except NodeError as err:
            if err.status == 404:
                return None
            raise
        if (resp.content_length or 0) > max_size:
            raise JobError('Config file at %s is too large' % path.path_info,
                           413)
        return resp.body.decode('utf-8', 'replace')

    def fetch_response(self, path: SwiftPath,
                       grants: Optional[Grants] = None) -> Response:
        return self._checked(self._subrequest('GET', path, grants=grants),
                             path)

    def fetch_input(self, path: SwiftPath, member: str,
                    grants: Optional[Grants] = None
                    ) -> Tuple[Upload, Dict[str, str]]:
        """An object as a member of a node's request stream, as a client's
        GET returns it (decrypted, decoded, manifests and symlinks resolved
        with the caller's rights), and that GET's headers."""
        resp = self.fetch_response(path, grants)
        if resp.content_length is None:
            close_if_possible(resp.app_iter)
            raise NodeError('Cannot stream %s to a node: its size is not '
                            'known before reading it (a dynamic large object '
                            'of very many segments?)' % path.path_info, 409)
        return (Upload(member, resp.content_length, resp.app_iter, path.url),
                dict(resp.headers))

    def fetch(self, path: SwiftPath, member: str,
              grants: Optional[Grants] = None) -> Upload:
        """An object as a member of a node's request stream."""
        return self.fetch_input(path, member, grants)[0]

    def resolve_link(self, path: SwiftPath, grants: Optional[Grants] = None
                     ) -> Optional[str]:
        """HEAD a symlink as the user: the ``Content-Location`` of what it
        resolves to (``None`` when it resolves to nothing more).  Raises
        the refusal naming ``path`` (a target the user may not read: 403).
        """
        resp = self._checked(self._subrequest('HEAD', path, grants=grants),
                             path)
        return resp.headers.get('Content-Location')

    def head_with_keys(self, path: SwiftPath,
                       grants: Optional[Grants] = None
                       ) -> Tuple[Dict[str, str], Optional[Callable]]:
        """HEAD ``path`` as the user: its headers, and the keymaster's key
        callback for it (``None`` without a keymaster in the pipeline).

        The keymaster leaves its callback (``fetch_crypto_keys(key_id=…)``)
        in the environment of the requests it passes, bound to their path.
        """
        sub = self._subrequest('HEAD', path, grants=grants)
        resp = self._checked(sub, path)
        return dict(resp.headers), sub.environ.get(CRYPTO_KEY_CALLBACK)

    def listing_keys(self, path: SwiftPath,
                     grants: Optional[Grants] = None) -> Optional[str]:
        """The keys that decrypt container ``path``'s listing etags, as
        ``protocol.LISTING_KEYS_HEADER`` carries them (``None`` without a
        keymaster in the pipeline)."""
        _headers, fetch_keys = self.head_with_keys(path, grants)
        if fetch_keys is None:
            return None
        keys = {}
        for key_id in fetch_keys().get('all_ids') or []:
            key = fetch_keys(key_id=key_id).get('container')
            if key:
                keys[key_id.get('secret_id') or ''] = key
        return protocol.listing_keys_value(keys) if keys else None

    def put(self, path: SwiftPath, fp, size: Optional[int],
            headers: Dict[str, str], grants: Optional[Grants] = None
            ) -> Response:
        """PUT ``size`` bytes read from ``fp`` (``None``: chunked, to its
        end)."""
        headers = dict(headers, **({'Transfer-Encoding': 'chunked'}
                                   if size is None else
                                   {'Content-Length': str(size)}))
        sub = self._subrequest('PUT', path, headers, grants)
        sub.environ['wsgi.input'] = fp
        return sub.get_response(self.app)

    def store(self, put: PendingPut, grants: Optional[Grants] = None
              ) -> Optional[Tuple[int, str]]:
        """PUT one output as the user; (status, text) when Swift refused."""
        return self._store(put.path, put.data.chunks(), put.data.size,
                           put.content_type, put.meta, grants)

    def store_streaming(self, put: StreamingPut,
                        grants: Optional[Grants] = None
                        ) -> Optional[Tuple[int, str]]:
        """PUT an output as it comes (chunked), as the user; (status,
        text) when Swift refused or the PUT was abandoned: its node failed
        (the object is then not stored, as for any client that goes away
        before the last chunk)."""
        return self._store(put.path, _abandoned_on_failure(put.chunks), None,
                           put.content_type, put.meta, grants)

    def _store(self, path: SwiftPath, chunks: Iterator[bytes],
               size: Optional[int], content_type: str, meta: Dict[str, str],
               grants: Optional[Grants]) -> Optional[Tuple[int, str]]:
        headers = {'Content-Type': content_type}
        for key, value in meta.items():
            headers['X-Object-Meta-' + key] = value
        body = FileLikeIter(chunks)
        try:
            resp = self.put(path, body, size, headers, grants)
        finally:
            body.close()
        if is_success(resp.status_int):
            return None
        return resp.status_int, 'Status %s when putting %s' % (
            resp.status, path.path_info)

    def store_deferred(self, path: SwiftPath, body: BinaryIO, size: int,
                       content_type: str, headers_json: bytes) -> None:
        """Write a deferred job's response (``size`` bytes read from
        ``body`` as Swift takes them) and ``<object>.headers``."""
        self._subrequest('PUT', SwiftPath(path.account, path.container, None)
                         ).get_response(self.app)
        for target, data, length, ctype in (
                (path, body, size, content_type),
                (SwiftPath(path.account, path.container, path.obj +
                           '.headers'), io.BytesIO(headers_json),
                 len(headers_json), 'application/json')):
            resp = self.put(target, data, length, {'Content-Type': ctype})
            if not is_success(resp.status_int):
                self.logger.error('zerocloud: deferred result %s: %s',
                                  target.url, resp.status)
