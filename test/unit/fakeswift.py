"""A small Swift of our own for the middlewares' unit tests.

Swift's ``FakeSwift`` lives in its test tree, which the wheel does not ship.
:class:`FakeSwift` is a WSGI app that records every request and answers
canned responses; :class:`FakeAuth` is a filter in front of a pipeline that
decides as tempauth does for one user (owner of their own account; elsewhere
only what a container's ACL grants); :class:`RecordingLogger` keeps what a
middleware logs.
"""

import sys
import traceback
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from swift.common.swob import (
    HTTPForbidden, HTTPUnauthorized, Request, Response)


@dataclass
class Call:
    """One request :class:`FakeSwift` answered."""
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    environ: dict


Canned = Tuple[int, Dict[str, str], bytes]


class FakeSwift:
    """Answers what was registered for (method, path), else ``404``.

    A ``HEAD`` without its own answer gets the ``GET`` one, bodiless.
    ``devices``: the devices root an object server would have (what
    ``object_query`` checks drives in).
    """

    def __init__(self, devices: Optional[str] = None):
        self.responses: Dict[Tuple[str, str], Canned] = {}
        self.calls: List[Call] = []
        self.root = devices

    def register(self, method: str, path: str, status: int,
                 headers: Optional[Dict[str, str]] = None,
                 body: bytes = b'') -> None:
        self.responses[(method, path)] = (status, dict(headers or {}), body)

    def __call__(self, env, start_response):
        req = Request(env)
        body = req.environ['wsgi.input'].read() \
            if req.method in ('PUT', 'POST') else b''
        self.calls.append(Call(req.method, req.path, dict(req.headers), body,
                               env))
        canned = self.responses.get((req.method, req.path))
        if canned is None and req.method == 'HEAD':
            canned = self.responses.get(('GET', req.path))
        status, headers, answer = canned or (404, {}, b'Not Found')
        resp = Response(status=status, headers=headers, body=answer,
                        request=req)
        if req.method == 'HEAD':
            resp.body = b''
            resp.content_length = len(answer)
        return resp(env, start_response)

    def paths(self, method: Optional[str] = None) -> List[str]:
        """Paths requested so far (with ``method`` only, if given)."""
        return [call.path for call in self.calls
                if method is None or call.method == method]


class FakeAuth:
    """tempauth's decisions for ``user`` (``account:name``; None: anonymous).

    The user owns their account (``swift_owner``); elsewhere a request is
    allowed when the ACL Swift put on it (``req.acl``) names the user,
    ``*``, or, for reads, ``.r:*``.  Denials are ``403``, or ``401`` for an
    anonymous user, as tempauth's.
    """

    def __init__(self, app, user: Optional[str] = 'AUTH_a:alice'):
        self.app = app
        self.user = user
        self.account = user.split(':', 1)[0] if user else None

    def __call__(self, env, start_response):
        env['swift.authorize'] = self.authorize
        if self.user:
            env['REMOTE_USER'] = self.user
        return self.app(env, start_response)

    def authorize(self, req: Request) -> Optional[Response]:
        _version, account, _container, _obj = req.split_path(1, 4, True)
        if self.account is not None and account == self.account:
            req.environ['swift_owner'] = True
            return None
        groups = [g.strip() for g in (getattr(req, 'acl', None) or ''
                                      ).split(',') if g.strip()]
        if self.user in groups or '*' in groups or (
                '.r:*' in groups and req.method in ('GET', 'HEAD')):
            return None
        if self.user is None:
            return HTTPUnauthorized(request=req)
        return HTTPForbidden(request=req)


@dataclass
class Record:
    level: str
    message: str
    traceback: Optional[str]


class RecordingLogger:
    """Keeps every line logged (and the traceback of ``exception``)."""

    def __init__(self):
        self.records: List[Record] = []

    def _log(self, level: str, message: str, *args,
             with_traceback: bool = False) -> None:
        text = message % args if args else message
        trace = ''.join(traceback.format_exception(*sys.exc_info())) \
            if with_traceback else None
        self.records.append(Record(level, text, trace))

    def exception(self, message: str, *args) -> None:
        self._log('error', message, *args, with_traceback=True)

    def error(self, message: str, *args) -> None:
        self._log('error', message, *args)

    def warning(self, message: str, *args) -> None:
        self._log('warning', message, *args)

    def info(self, message: str, *args) -> None:
        self._log('info', message, *args)

    def debug(self, message: str, *args) -> None:
        self._log('debug', message, *args)

    def lines(self, level: str) -> List[str]:
        return [r.message for r in self.records if r.level == level]


def app_factory(global_conf, **local_conf) -> FakeSwift:
    """``paste.app_factory`` of :class:`FakeSwift`, for pipelines loaded
    from a configuration file."""
    return FakeSwift()
