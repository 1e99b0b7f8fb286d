"""CORS for job answers, as Swift gives it to its own answers.

``proxy_query`` answers execution requests itself, so Swift's controllers,
which add the CORS headers, never see them.  :func:`cors_start_response`
gives those answers Swift's behaviour (``cors_validation`` in
``swift.proxy.controllers.base``), decided by the container the request
path names:

* only a request with ``Origin`` and a container in its path gets CORS
  headers (account-level requests get none, as in Swift);
* the origin is allowed by the container's
  ``X-Container-Meta-Access-Control-Allow-Origin`` (space-separated, or
  ``*``) or the proxy's ``cors_allow_origin``; with ``strict_cors_mode``
  (Swift's default) a refused origin gets no CORS headers;
* ``Access-Control-Allow-Origin`` is ``*`` when the container allows ``*``,
  else the origin (with ``Vary: Origin``);
* ``Access-Control-Expose-Headers`` lists Swift's simple headers, the
  proxy's ``cors_expose_headers``, the container's
  ``X-Container-Meta-Access-Control-Expose-Headers``, the answer's
  ``X-Object-Meta-*``/``X-Container-Meta-*`` and, the job's own answer,
  its ``X-Nexe-*`` headers.

A program cannot print ``Access-Control-*`` headers (CGI output passes an
allow-list, :func:`zerocloud.cgi.program_may_set`), and any that reach this
point anyway are dropped from every job answer, account-level and chained
ones included: who may read an answer across origins is the container
owner's decision, not the program's.

Preflight ``OPTIONS`` requests carry no ``X-Zerovm-Execute`` and reach
Swift's own controllers for ``/v1/`` paths; :func:`preflight` answers them
for the ``/open/`` and ``/api/`` paths by asking Swift about the same
object under ``/v1/``.
"""

from typing import Callable, Dict, List, Optional, Tuple

from swift.common.swob import Request
from swift.proxy.controllers.base import get_container_info

#: Exposed on every CORS answer, as Swift does.
SWIFT_EXPOSED = ('cache-control', 'content-language', 'content-type',
                 'expires', 'last-modified', 'pragma', 'etag', 'x-timestamp',
                 'x-trans-id', 'x-openstack-request-id')
EXPOSED_PREFIXES = ('x-container-meta-', 'x-object-meta-', 'x-nexe-')
CORS_PREFIX = 'access-control-'
SWIFT_SOURCE = 'ZCORS'

Headers = List[Tuple[str, str]]


def _v1_path(req: Request, container_only: bool) -> Optional[str]:
    """``/v1/a/c`` (or ``/v1/a/c/o``) of the request's path, None without a
    container."""
    _, account, container, obj = req.split_path(1, 4, True)
    if not account or not container:
        return None
    parts = ['', 'v1', account, container]
    if obj and not container_only:
        parts.append(obj)
    return '/'.join(parts)


def origin_allowed(cors: Dict[str, str], origin: str,
                   proxy_origins: List[str]) -> bool:
    allowed = set((cors.get('allow_origin') or '').split()) | set(
        proxy_origins)
    return origin in allowed or '*' in allowed


def _without_cors(headers: Headers) -> Headers:
    return [(k, v) for k, v in headers
            if not k.lower().startswith(CORS_PREFIX)]


def cors_headers(answer: Headers, cors: Dict[str, str], origin: str,
                 proxy_expose: List[str]) -> Headers:
    """The answer's headers with the CORS headers Swift would add."""
    kept = _without_cors(answer)
    exposed = set(SWIFT_EXPOSED) | {h.lower() for h in proxy_expose}
    exposed |= {k.lower() for k, _ in kept
                if k.lower().startswith(EXPOSED_PREFIXES)}
    exposed |= {h.lower() for h in (cors.get('expose_headers') or '').split()}
    kept.append(('Access-Control-Expose-Headers',
                 ', '.join(sorted(exposed))))
    if (cors.get('allow_origin') or '').strip() == '*':
        kept.append(('Access-Control-Allow-Origin', '*'))
        return kept
    kept.append(('Access-Control-Allow-Origin', origin))
    vary = [v for k, v in kept if k.lower() == 'vary']
    kept = [(k, v) for k, v in kept if k.lower() != 'vary']
    kept.append(('Vary', ', '.join(vary + ['Origin'])))
    return kept


def cors_start_response(req: Request, app, start_response: Callable
                        ) -> Callable:
    """``start_response`` for a job answer, adding CORS as Swift would.

    ``app`` is the next WSGI app (its container info lookups go through
    the pipeline's caches).
    """
    origin = req.headers.get('Origin')
    path = origin and _v1_path(req, container_only=True)
    if not path:
        def without_cors(status: str, headers: Headers, exc_info=None):
            return start_response(status, _without_cors(headers), exc_info)
        return without_cors
    info = get_container_info(dict(req.environ, PATH_INFO=path), app,
                              swift_source=SWIFT_SOURCE)
    cors = info.get('cors') or {}
    proxy = getattr(app, '_pipeline_final_app', app)
    proxy_origins = getattr(proxy, 'cors_allow_origin', [])
    apply = origin_allowed(cors, origin, proxy_origins) or not getattr(
        proxy, 'strict_cors_mode', True)

    def with_cors(status: str, headers: Headers, exc_info=None):
        if apply:
            headers = cors_headers(headers, cors, origin,
                                   getattr(proxy, 'cors_expose_headers', []))
        else:
            headers = _without_cors(headers)
        return start_response(status, headers, exc_info)
    return with_cors


def is_preflight(req: Request) -> bool:
    return req.method == 'OPTIONS' and 'Origin' in req.headers and \
        'Access-Control-Request-Method' in req.headers


def preflight(req: Request, app, start_response: Callable):
    """Swift's preflight answer for the object (or container) that an
    ``/open/`` or ``/api/`` path names."""
    path = _v1_path(req, container_only=False)
    if not path:
        return app(req.environ, start_response)
    return app(dict(req.environ, PATH_INFO=path), start_response)
