"""S3 Select: ``SelectObjectContent``, a ZeroCloud job next to the object.

``POST /<bucket>/<key>?select&select-type=2`` with a
``SelectObjectContentRequest`` body, signed as every S3 request
(``zerocloud.proxy.s3gate`` routes it here; Swift's own ``s3api`` answers
it ``501``).  What happens:

1. The body is read (at most ``request.MAX_REQUEST_BODY`` bytes, its
   ``x-amz-content-sha256``/``Content-MD5`` checked by ``s3api``) and
   parsed; its SQL is compiled once here, so that bad XML or bad SQL is a
   ``400`` with S3's error code before any sandbox starts.
2. A ``HEAD`` of the object as the caller (through ``s3api``, so the
   signature, the caller's rights and ``s3api``'s own error answers apply:
   ``NoSuchKey``, ``NoSuchBucket``, ``AccessDenied``) gives its size.
3. A one-node job, POSTed to the caller's account as the caller, as a
   zapp holding the request.  Its program is the native scanner
   (:mod:`zerocloud.proxy.selectscan`: the common CSV selects, a C program
   sent in the zapp with its plan) when it answers this select, else the
   system image's Python running ``-m _zerocloud_select`` (the package
   ``zerocloud.s3select``, pre-imported in the Python snapshot); the
   answer's ``X-Zerocloud-Select-Engine`` says which (``native`` or
   ``python``).  Either reads the object on ``/dev/input``.  Placement
   puts it on a server that holds the object; an encrypted object is
   decrypted as it is read, an erasure-coded or large object streamed to
   it.  It is a job like any other:
   ``zerovm_*`` limits, fair share, an ``AUTH_stats`` accounting line.  Its
   answer streams from the first byte (``X-Zerocloud-Stream-After: 0``).
4. The sandbox writes S3's event stream (``Records``, ``Cont``,
   ``Progress``, ``Stats``, ``End``); this module passes it to the client
   whole message by message and makes sure it ends: a node that fails or
   stops mid-way (a limit, a lost server) ends the answer with an
   ``error`` event (``InternalError``) naming the reason, never a stream cut
   inside a message.  The answer's status waits for the first event: an
   error before it (a header name the CSV lacks, a value that does not
   ``CAST`` in the first record, input that is not what the request says,
   a node that failed at once) is an S3 XML error answer instead, ``400``
   with the engine's code (``500 InternalError`` for a failed node).

Only the selected bytes cross the network from the object server.
"""

import io
import json
import tarfile
from typing import (Callable, Dict, Iterable, Iterator, List, Optional,
                    Tuple)

from swift.common.http import HTTP_OK
from swift.common.middleware.s3api.s3response import (
    AccessDenied, ErrorResponse, InternalError, NoSuchKey, S3Response,
    SlowDown)
from swift.common.swob import RESPONSE_REASONS, wsgi_to_str
from swift.common.utils import close_if_possible

from zerocloud import protocol
from zerocloud.proxy import selectscan
from zerocloud.s3select import eventstream
from zerocloud.s3select.errors import SelectError
from zerocloud.s3select.model import SelectRequest
from zerocloud.s3select.request import (
    MAX_REQUEST_BODY, check_select_query_params, parse_request)
from zerocloud.s3select.sql import Query, compile_query

#: The job's node and how it runs the engine.
NODE_NAME = 'select'
ENGINE_EXEC = 'file://python:python'
ENGINE_ARGS = '-m _zerocloud_select'
SYSTEM_MAP = 'boot/system.map'
#: Where the engine finds the request: ``/select.json`` in the sandbox.
REQUEST_MEMBER = 'select.json'
SIZE_ENV = 'S3SELECT_SIZE'
#: The native scanner's program and plan, members of the zapp.
SCANNER_MEMBER = 'selectscan.wasm'
PLAN_MEMBER = 'plan'
#: Which engine answered: ``native`` or ``python``.
ENGINE_HEADER = 'X-Zerocloud-Select-Engine'
#: Bytes of a job's error answer quoted in an S3 error.
ERROR_QUOTE = 300


def is_select(req) -> bool:
    """Is this s3api request a ``SelectObjectContent``?"""
    return req.method == 'POST' and 'select' in req.params and \
        bool(req.container_name and req.object_name)


class SelectErrorResponse(ErrorResponse):
    """A :class:`SelectError` as s3api's XML error answer."""

    def __init__(self, err: SelectError):
        self._code = err.code
        self._status = '%d %s' % (err.status,
                                  RESPONSE_REASONS[err.status][0])
        super().__init__(err.message)


def select_job(bucket: str, key: str, request: SelectRequest,
               query: Query, size: int) -> Tuple[bytes, str]:
    """The one-node job that answers ``request`` over the object, and the
    engine it runs: a zapp (tar) of its ``boot/system.map`` and what the
    engine reads from its image, the native scanner and its plan or the
    request for the Python engine (an expression of up to 256 KB does not
    fit a job description, ``zerovm_maxconfig``)."""
    if '*' in key:
        # A job path's '*' is a wildcard: it could match other objects.
        raise SelectError('InvalidRequest', 'S3 Select on ZeroCloud does '
                          'not support keys containing "*"')
    scanner = selectscan.scanner()
    plan = selectscan.plan(request, query, size) if scanner else None
    if plan is not None:
        engine = 'native'
        program = {'path': 'file://' + SCANNER_MEMBER}
        members = ((PLAN_MEMBER, plan.encode('utf-8')),
                   (SCANNER_MEMBER, scanner))
    else:
        engine = 'python'
        program = {'path': ENGINE_EXEC, 'args': ENGINE_ARGS,
                   'env': {SIZE_ENV: str(size)}}
        members = ((REQUEST_MEMBER, request.to_json().encode('utf-8')),)
    node = {'name': NODE_NAME, 'exec': program,
            'devices': [
                {'name': 'input', 'path': 'swift://~/%s/%s' % (bucket, key)},
                {'name': 'stdout',
                 'content_type': 'application/octet-stream'}]}
    members = ((SYSTEM_MAP, json.dumps([node]).encode('utf-8')),) + members
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode='w', format=tarfile.PAX_FORMAT) \
            as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return packed.getvalue(), engine


def split_messages(buffer: bytearray) -> List[bytes]:
    """Take the complete event-stream messages off the front of
    ``buffer``."""
    messages = []
    while len(buffer) >= eventstream.PRELUDE_LENGTH:
        length = int.from_bytes(buffer[:4], 'big')
        if length < eventstream.MESSAGE_OVERHEAD:
            raise ValueError('event message of %d bytes' % length)
        if len(buffer) < length:
            break
        messages.append(bytes(buffer[:length]))
        del buffer[:length]
    return messages


def finished_events(chunks: Iterable[bytes],
                    failure: Callable[[Optional[Exception]], str]
                    ) -> Iterator[bytes]:
    """The engine's event stream, whole messages only, always ended: by
    the engine's ``End`` or ``error`` event, else by an ``error`` event
    whose message is ``failure(exception or None)``.  After the engine's
    last event the node's answer is still read to its end, so that the
    job gets its final status and accounting."""
    buffer = bytearray()
    decoder = eventstream.MessageDecoder()
    ended = False
    problem: Optional[Exception] = None
    try:
        for chunk in chunks:
            if ended:
                continue   # nothing may follow the last event
            buffer += chunk
            for raw in split_messages(buffer):
                [message] = decoder.feed(raw)
                yield raw
                if message.headers.get(':event-type') == 'End' or \
                        message.headers.get(':message-type') == 'error':
                    ended = True
                    break
    except Exception as err:  # the node failed, or its stream is broken
        problem = err
    finally:
        close_if_possible(chunks)
    if not ended:
        yield eventstream.error_event('InternalError', failure(problem))


def early_error(raw: bytes) -> Optional[ErrorResponse]:
    """The error answer an ``error`` event stands for when it is the first
    message of the stream (``None`` for any other event)."""
    [message] = eventstream.MessageDecoder().feed(raw)
    if message.headers.get(':message-type') != 'error':
        return None
    code = str(message.headers.get(':error-code', 'InternalError'))
    text = str(message.headers.get(':error-message', ''))
    if code == 'InternalError':
        return InternalError(text)
    return SelectErrorResponse(SelectError(code, text))


def job_error(status: int, text: str) -> ErrorResponse:
    """s3api's error for a job that did not run (``status``)."""
    if status in (401, 403):
        return AccessDenied()
    if status == 404:
        return NoSuchKey(None)
    if status in (429, 498, 503):
        return SlowDown()
    message = 'The select could not run: %s' % text[:ERROR_QUOTE]
    if 400 <= status < 500:
        return SelectErrorResponse(SelectError('InvalidRequest', message))
    return InternalError(message)


class SelectObjectContent:
    """One ``SelectObjectContent`` request (see the module docstring)."""

    def __init__(self, app, req, logger):
        self.app = app
        self.req = req
        self.logger = logger

    def respond(self) -> S3Response:
        try:
            request = self._request()
            query = compile_query(request.expression)
            size = self._object_size()
            job, engine = select_job(
                wsgi_to_str(self.req.container_name),
                wsgi_to_str(self.req.object_name), request, query, size)
        except SelectError as err:
            raise SelectErrorResponse(err)
        return self._run(job, engine)

    def _request(self) -> SelectRequest:
        check_select_query_params(self.req.params)
        body = self.req.xml(MAX_REQUEST_BODY)
        if not body:
            raise SelectError('EmptyRequestBody', 'The request body is '
                              'empty: a SelectObjectContentRequest is '
                              'required')
        return parse_request(body)

    def _object_size(self) -> int:
        """The object's size, through s3api: its answers for a missing
        object or bucket, a bad signature or no read rights apply."""
        head = self.req.get_response(self.app, 'HEAD')
        return int(head.headers['Content-Length'])

    def _run(self, job: bytes, engine: str) -> S3Response:
        sub = self.req.to_swift_req('POST', None, None, body=job, headers={
            'X-Zerovm-Execute': '1.0',
            'Content-Type': 'application/x-tar',
            protocol.STREAM_AFTER_HEADER: '0'})
        for stale in ('HTTP_TRANSFER_ENCODING', 'HTTP_CONTENT_MD5',
                      'HTTP_EXPECT'):
            # They described the client's XML body, not the job's.
            sub.environ.pop(stale, None)
        resp = sub.get_response(self.app)
        if resp.status_int != HTTP_OK:
            text = _quoted(resp.app_iter or [])
            self.logger.warning('zerocloud: S3 Select on %s failed: %d %s',
                                self.req.path, resp.status_int, text[:200])
            raise job_error(resp.status_int, text)
        headers = resp.headers
        # Every event goes out as it comes (a keep-alive is 48 bytes):
        # eventlet would hold back writes smaller than 4 KiB.
        self.req.environ['eventlet.minimum_write_chunk_size'] = 0

        def failure(err: Optional[Exception]) -> str:
            reason = str(err) if err is not None else _node_failure(headers)
            reason = reason[:ERROR_QUOTE]
            self.logger.warning('zerocloud: S3 Select on %s ended early: %s',
                                self.req.path, reason)
            return 'The select stopped: %s' % reason

        events = finished_events(resp.app_iter, failure)
        first = next(events)   # there is always one, if only an error
        error = early_error(first)
        if error is not None:
            for _ in events:
                pass   # the job's end: its final status and accounting
            raise error
        answer = S3Response(status=200, app_iter=_resumed(first, events),
                            headers={'Content-Type':
                                     'application/octet-stream'})
        answer.headers[ENGINE_HEADER] = engine   # S3Response drops others
        return answer


def _resumed(first: bytes, events: Iterator[bytes]) -> Iterator[bytes]:
    """``first``, then the rest of ``events``; closed (the client went
    away), it closes them."""
    try:
        yield first
        yield from events
    finally:
        close_if_possible(events)


def _quoted(chunks: Iterable[bytes]) -> str:
    """The start of an error answer, as text: enough to quote."""
    held = b''
    try:
        for chunk in chunks:
            held += chunk
            if len(held) >= ERROR_QUOTE:
                break
    finally:
        close_if_possible(chunks)
    return held[:ERROR_QUOTE].decode('utf-8', 'replace')


def _node_failure(headers: Dict[str, str]) -> str:
    """Why a node whose answer came whole did not end its events."""
    status = headers.get('X-Nexe-Status', 'no status')
    error = headers.get('X-Nexe-Error')
    retcode = headers.get('X-Nexe-Retcode')
    parts = [status]
    if retcode and retcode != '0':
        parts.append('exit code %s' % retcode)
    if error:
        parts.append(error)
    return ', '.join(parts)
