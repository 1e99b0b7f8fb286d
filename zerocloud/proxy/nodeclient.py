"""Sending one node to a storage server and reading its answer.

The request is a ``POST`` straight to the object (or container) server with
``Expect: 100-continue``: the server checks the node (local object present,
device mounted, a sandbox slot free) before the body is sent, so the proxy
can move to the next replica without having consumed any input.  Once
``100 Continue`` arrives the members are streamed with an exact
``Content-Length`` (chunked instead when in-edges' data follows, or when a
member is still being fetched: :class:`FetchingUpload`, whose GET goes on
while the server is reached) and the final answer is read as a member stream
(:mod:`zerocloud.protocol`) into a :class:`NodeResult`: outputs to store,
edges for downstream nodes, and the node's part of the response.

Every wait on a server is bounded, as in Swift's own proxy
(:class:`Timeouts`): connecting (``conn_timeout``), ``100 Continue`` and
each chunk sent (``node_timeout``), the answer's headers (the node's timeout
plus :data:`~zerocloud.protocol.ANSWER_SLACK`) and each chunk of the answer
(``node_timeout``).  A frozen server costs that much, then the next replica.

Blame: a server that cannot be reached, stalls past one of those bounds,
breaks the connection or refuses with a 5xx before the body is reported to
Swift's error limiter (``error_occurred``), so that plain requests avoid it
too.  Nothing else is: a busy sandbox pool (``503`` with ``Retry-After``)
means a full cluster, not a broken server (:attr:`Attempts.busy_for`; the
scheduler waits and sends again); an input that breaks while it is streamed
from elsewhere is that input's failure (:class:`InputFailed`); and what the
node's run answered is the job's business.
"""

import json
import socket
from dataclasses import dataclass, field
from typing import (
    Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union)

import eventlet
from eventlet import Timeout
from eventlet.event import Event
from swift.common.bufferedhttp import http_connect
from swift.common.exceptions import (
    ChunkReadTimeout, ChunkWriteTimeout, ConnectionTimeout, ResponseTimeout)
from swift.common.http import is_success
from swift.common.request_helpers import get_ip_port
from swift.common.utils import close_if_possible

from zerocloud import cgi, protocol
from zerocloud.fairshare import AccountShare, half
from zerocloud.job.model import JobError, Node, SwiftPath
from zerocloud.job.source import Spooled, spool_file
from zerocloud.spill import GrowingSpill, SpillFull
from zerocloud.stages import StageClock, Stages, parse_stages

#: A node the sandbox stopped (time, memory, output limits, a trap).
NODE_FAILED = 422
#: Bytes of a refusal's text kept for the client.
REFUSAL_TEXT_LIMIT = 4096


class NodeError(JobError):
    """One node cannot run; the job goes on to report it for that node."""


class InputFailed(NodeError):
    """An input broke while it was being sent to the server: the input's
    failure, never the server's."""

    def __init__(self, source: str, cause: BaseException):
        super().__init__('reading %s failed while it was being sent to the '
                         'storage server' % source, 503)
        self.source = source
        self.cause = cause


class ServerLost(Exception):
    """The server stalled or broke off while answering (already blamed)."""


class NodeStopped(Exception):
    """The job stopped the node while its server answered (another node
    failed): nobody's fault."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds each wait on a storage server may take."""
    #: Establishing the connection (``conn_timeout``).
    connect: float
    #: ``100 Continue`` or a refusal, and each chunk sent or read
    #: (``node_timeout``).
    node: float
    #: The answer's headers once the body is sent.
    answer: float


@dataclass
class Upload:
    """One member of the request stream."""
    name: str
    size: int
    chunks: Iterable[bytes]
    #: What the data is, for errors: a ``swift://`` URL, "the request
    #: body"...; the member's name when empty.
    source: str = ''
    #: An input the program may read as it arrives (a remote input, the
    #: request body, an upstream node's data), not the map or a program.
    streamable: bool = False

    @property
    def length(self) -> int:
        return protocol.member_length(self.name, self.size)

    def close(self) -> None:
        close_if_possible(self.chunks)


class FetchingUpload:
    """A member still being fetched from Swift (a stored program or
    image, never a streamed input): its GET goes on in a green thread
    while the node's server is reached, and the member is sent once it
    answered.  Its size is known only then, so a body holding one is
    chunked."""

    def __init__(self, source: str, fetch: Callable[[], Upload]):
        self.source = source
        self._fetch = eventlet.spawn(_outcome, fetch)

    def upload(self) -> Upload:
        """The member, once fetched; raises what the fetch raised."""
        upload, failure = self._fetch.wait()
        if failure is not None:
            raise failure
        return upload

    def refused(self, wait: bool) -> Optional[NodeError]:
        """The fetch's refusal (the object is missing, or the user may not
        read it), if it ended so; with ``wait``, once it ended."""
        if not (wait or self._fetch.dead):
            return None
        failure = self._fetch.wait()[1]
        return failure if isinstance(failure, NodeError) else None

    def close(self) -> None:
        upload = self._fetch.wait()[0]
        if upload is not None:
            upload.close()


def _outcome(fetch: Callable[[], Upload]
             ) -> Tuple[Optional[Upload], Optional[BaseException]]:
    """``fetch()``'s upload or failure, returned: a green thread that
    raised would have its traceback printed (into the proxy's log)."""
    try:
        return fetch(), None
    except (Exception, Timeout) as err:
        return None, err


#: One member of a node's request stream, fetched or being fetched.
Member = Union[Upload, FetchingUpload]


@dataclass
class Answer:
    """The storage server's final answer for one node."""
    status: int
    headers: Dict[str, str]
    read: Callable[[int], bytes]
    release: Callable[[], None]
    body_error: str = ''
    #: The server that answered (ring node dict).
    server: Optional[dict] = None
    #: Stop the node while its answer is read: close the connection,
    #: blaming nobody (:class:`NodeStopped`).
    stop: Optional[Callable[[], None]] = None


@dataclass
class Refusal:
    status: int
    message: str
    #: Why the server would not read its local object (``X-Zerocloud-
    #: Stream-Input``): the node must get it otherwise.
    stream_input: str = ''
    #: The server that refused (ring node dict).
    server: Optional[dict] = None


def decisive(status: int) -> bool:
    """A refusal every server would repeat (a 4xx other than 404)."""
    return 400 <= status < 500 and status != 404


def busy_seconds(status: int, retry_after: Optional[str]
                 ) -> Optional[float]:
    """Seconds a busy server asks to be left alone; None unless the answer
    is a busy sandbox pool's (``503`` with ``Retry-After``)."""
    if status != 503 or retry_after is None:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        return 1.0   # an HTTP date: not what object servers send
    return seconds if seconds >= 0 else 1.0


@dataclass
class Attempts:
    """What each tried server said, for the error the client gets.

    ``lost`` is the server that accepted the node and then failed while
    running it: the caller may retry on the servers after it.
    ``busy_for`` is set when a server's sandbox pool was full: the longest
    ``Retry-After`` any of them asked for.
    """
    refusals: List[Refusal] = field(default_factory=list)
    lost: Optional[dict] = None
    busy_for: Optional[float] = None

    def note_busy(self, seconds: float) -> None:
        self.busy_for = max(self.busy_for or 0.0, seconds)

    @property
    def decided(self) -> bool:
        """A server refused as every server would: no point in others."""
        return any(decisive(r.status) for r in self.refusals)

    @property
    def stream_refusal(self) -> Optional[Refusal]:
        """The refusal of a server that will not read its local object
        raw, if one said so."""
        return next((r for r in self.refusals if r.stream_input), None)

    def final(self, path_info: str) -> Refusal:
        for refusal in self.refusals:
            if decisive(refusal.status):
                return refusal
        if self.lost is not None:
            return self.refusals[-1]
        if any(r.status == 404 for r in self.refusals):
            return Refusal(404, 'Error 404 Not Found while fetching %s'
                           % path_info)
        return Refusal(503, 'Cannot find suitable node to execute code on')


@dataclass
class PendingPut:
    """An output to store once every node succeeded."""
    path: SwiftPath
    data: Spooled
    content_type: str
    meta: Dict[str, str]


@dataclass
class StreamingPut:
    """A node's one output that comes while its node runs: PUT as it comes
    (:class:`StreamFailed` ends ``chunks`` when the node failed, or when
    the output came again whole: ``replaced``, and its whole copy is then
    in the node's ``puts``)."""
    path: SwiftPath
    content_type: str
    meta: Dict[str, str]
    chunks: Iterator[bytes]
    replaced: bool = False


@dataclass
class Body:
    """A node's part of the client's response (its size unknown when the
    node still runs: a streamed answer)."""
    size: Optional[int]
    content_type: str
    chunks: Iterator[bytes]
    headers: Dict[str, str] = field(default_factory=dict)
    spooled: Optional[Spooled] = None


@dataclass
class NodeResult:
    """What one node (or one copy of it) gave back."""
    node: Node
    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    error: str = ''
    body: Optional[Body] = None
    puts: List[PendingPut] = field(default_factory=list)
    edges: Dict[str, Spooled] = field(default_factory=dict)
    release: Optional[Callable[[], None]] = None
    #: The server failed while answering: the node may run elsewhere.
    server_failed: bool = False
    #: The body streams while the node runs: its final headers come at
    #: the end of the body (:data:`zerocloud.protocol.STREAMED_ANSWER_HEADER`).
    streamed: bool = False
    #: Or the node's one output to store does, followed by those headers.
    streaming_put: Optional[StreamingPut] = None
    #: Where the node's time went, here and (``server.*``) on its server.
    stages: Stages = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.error) or self.status >= 300

    def fail(self, err: JobError) -> 'NodeResult':
        self.status, self.error = err.status, err.message
        return self

    def end_stream(self) -> None:
        """Done with an output stored as it came: drop the rest of its
        answer, and the connection."""
        if self.streaming_put is not None:
            close_if_possible(self.streaming_put.chunks)
            self.streaming_put = None
        if self.release:
            self.release()
            self.release = None

    def discard(self) -> None:
        """Drop everything this node's answer left behind."""
        if self.body is not None:
            close_if_possible(self.body.chunks)
        self.end_stream()
        if self.body is not None and self.body.spooled:
            self.body.spooled.remove()
        for put in self.puts:
            put.data.remove()
        for data in self.edges.values():
            data.remove()


def _describe(err: BaseException) -> str:
    return '%s: %s' % (type(err).__name__, err) if str(err) \
        else type(err).__name__


def _read_text(resp, timeout: float) -> str:
    """The start of a refusal's text; '' when the server will not send it
    (the refusal itself is what matters)."""
    try:
        with ChunkReadTimeout(timeout):
            data = resp.read(REFUSAL_TEXT_LIMIT)
    except (Exception, ChunkReadTimeout):
        return ''
    return data.decode('utf-8', 'replace')


class AnswerBody:
    """A server's answer body, each read bounded by the node timeout.

    A read that stalls or fails, or an answer cut short, is the server's
    failure: it is blamed, and :class:`ServerLost` raised.
    """

    def __init__(self, server: dict, resp, timeout: float,
                 on_error: Callable[[dict, str], None]):
        self.server = server
        self.resp = resp
        self.timeout = timeout
        self.on_error = on_error
        #: The job stopped the node: what breaks now is no server's fault.
        self.stopped = False
        length = resp.getheader('Content-Length')
        self.remaining: Optional[int] = int(length) \
            if length and length.isdigit() else None

    def read(self, size: int) -> bytes:
        try:
            with ChunkReadTimeout(self.timeout):
                chunk = self.resp.read(size)
        except (Exception, ChunkReadTimeout) as err:
            if self.stopped:
                raise NodeStopped()
            raise self._lost(_describe(err))
        if self.remaining is not None:
            if not chunk and size and self.remaining:
                raise self._lost('the answer ended %d bytes short'
                                 % self.remaining)
            self.remaining -= len(chunk)
        return chunk

    def _lost(self, why: str) -> ServerLost:
        self.on_error(self.server, 'zerocloud: answer from %s:%s broke off: '
                      '%s' % (self.server['ip'], self.server['port'], why))
        return ServerLost(why)


def _expect(server: dict, partition: int, path_info: str,
            headers: Dict[str, str], timeouts: Timeouts,
            on_error: Callable[[dict, str], None], attempts: Attempts):
    """The connection once ``server`` said ``100 Continue``; None when it
    did not (what it said is added to ``attempts``)."""
    ip, port = get_ip_port(server, headers)
    conn = None
    try:
        with ConnectionTimeout(timeouts.connect):
            conn = http_connect(ip, port, server['device'], partition,
                                'POST', path_info, headers)
        with ResponseTimeout(timeouts.node):
            resp = conn.getexpect()
    except (Exception, Timeout) as err:
        if conn is not None:
            conn.close()
        on_error(server, 'zerocloud: no answer from %s:%s: %s'
                 % (ip, port, _describe(err)))
        attempts.refusals.append(Refusal(503, 'Storage server did not '
                                         'answer'))
        return None
    if resp.status == 100:
        return conn
    text = _read_text(resp, timeouts.node)
    conn.close()
    busy = busy_seconds(resp.status,
                        resp.getheader(protocol.RETRY_AFTER_HEADER))
    if busy is not None:
        attempts.note_busy(busy)
    elif resp.status == 507 or resp.status >= 500:
        on_error(server, 'zerocloud: %d %s' % (resp.status, text))
    attempts.refusals.append(Refusal(
        resp.status, text,
        resp.getheader(protocol.STREAM_INPUT_HEADER) or '', server))
    return None


def streaming_order(uploads: List[Upload]) -> Optional[Upload]:
    """Move the largest streamable input to the end of ``uploads`` and
    return it (``None``: nothing to stream).  Its server may feed it to
    the program as it arrives (:data:`zerocloud.protocol.
    STREAMED_LENGTH_HEADER`)."""
    inputs = [upload for upload in uploads if upload.streamable]
    if not inputs:
        return None
    largest = max(inputs, key=lambda upload: upload.size)
    uploads.remove(largest)
    uploads.append(largest)
    return largest


#: Where a node's in-edges' data comes from, for errors.
EDGES_SOURCE = 'the data of its upstream nodes'


def _chunked(send: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """``send`` framing each piece as an HTTP/1.1 chunk."""
    def send_chunk(data: bytes) -> None:
        if data:
            send(b'%x\r\n' % len(data) + data + b'\r\n')
    return send_chunk


def is_chunked(uploads: List[Member], edges: bool) -> bool:
    """Is a body of ``uploads`` (and in-edges' data) sent chunked?"""
    return edges or any(isinstance(u, FetchingUpload) for u in uploads)


def _fetched(member: Member) -> Upload:
    """``member`` once its fetch answered: a refusal naming the object
    (NodeError) as it is, any other failure the input's."""
    if isinstance(member, Upload):
        return member
    try:
        return member.upload()
    except NodeError:
        raise
    except (Exception, Timeout) as err:
        raise InputFailed(member.source, err)


def _raise_refused_fetch(uploads: List[Member], wait: bool) -> None:
    """Raise a member's fetch refusal, if one ended so (with ``wait``:
    once every fetch ended): the node cannot run, whatever a server
    says."""
    for member in uploads:
        if isinstance(member, FetchingUpload):
            refusal = member.refused(wait)
            if refusal is not None:
                raise refusal


def _send_part(send: Callable[[bytes], None], source: str,
               frames: Iterator[bytes], timeout: float) -> None:
    while True:
        try:
            chunk = next(frames, None)
        except (Exception, Timeout) as err:
            raise InputFailed(source, err)
        if chunk is None:
            return
        with ChunkWriteTimeout(timeout):
            send(chunk)


def _send_body(send: Callable[[bytes], None], uploads: List[Member],
               timeouts: Timeouts, streamed: Optional[Upload],
               edges: Optional[Iterator[bytes]] = None) -> None:
    """Stream the members through ``send``, then ``edges`` (the in-edges'
    data: :func:`zerocloud.proxy.edges.edge_body`), chunked when
    :func:`is_chunked`; :class:`InputFailed` when an input breaks (a
    fetch refused: its NodeError), anything else is the connection's.
    The ``streamed`` member and ``edges`` go at the program's pace: each
    of their chunks may wait as long as the answer does."""
    chunked = is_chunked(uploads, edges is not None)
    raw_send = send
    if chunked:
        send = _chunked(send)
    for member in uploads:
        upload = _fetched(member)
        _send_part(send, upload.source or 'member %s' % upload.name,
                   protocol.iter_member(upload.name, upload.size,
                                        upload.chunks),
                   timeouts.answer if upload is streamed else timeouts.node)
    if edges is not None:
        _send_part(send, EDGES_SOURCE, edges, timeouts.answer)
    if chunked:
        with ChunkWriteTimeout(timeouts.node):
            raw_send(b'0\r\n\r\n')


def _send_and_answer(conn, uploads: List[Member], timeouts: Timeouts,
                     streamed: Optional[Upload], duplex: bool,
                     clock: StageClock,
                     edges: Optional[Iterator[bytes]] = None):
    """Send the body and wait for the answer's headers; the answer and
    the green thread still sending the body, if any.

    With ``duplex`` and a member fed live, the answer is read while that
    member is sent: its server may answer (stream the node's output)
    before the body has ended.  The body then goes straight to the
    socket (the connection object gives its socket up to the answer).
    So is it with ``edges`` (the in-edges' data, sent while the node runs).
    A body that broke before the answer came raises
    :class:`InputFailed`; one that breaks later ends the node's input
    short, which its server reports in the node's final status.
    """
    if not (duplex and streamed is not None) and edges is None:
        _send_body(conn.send, uploads, timeouts, streamed)
        clock.mark('send')
        with ResponseTimeout(timeouts.answer):
            final = conn.getresponse()
        clock.mark('wait')
        return final, None
    sender = eventlet.spawn(_send_in_background, conn.sock, uploads,
                            timeouts, streamed, edges)
    try:
        with ResponseTimeout(timeouts.answer):
            final = conn.getresponse()
    except BaseException:
        _raise_failure(sender)
        sender.kill()
        raise
    clock.mark('send+wait')
    if sender.dead:
        _raise_failure(sender)
        return final, None
    return final, sender


def _raise_failure(sender) -> None:
    """Raise what ended a sender that is done early: a broken input
    (:class:`InputFailed`) or the connection's error."""
    if sender.dead:
        failure = sender.wait()
        if failure is not None:
            raise failure


def _send_in_background(sock, uploads: List[Member], timeouts: Timeouts,
                        streamed: Optional[Upload],
                        edges: Optional[Iterator[bytes]] = None
                        ) -> Optional[BaseException]:
    """:func:`_send_body` on ``sock`` in its own green thread.  What ended
    it early is returned, not raised, and the body is ended there (the
    server sees the input cut short at once, and its node fails).  Once
    the answer came, the node's final status tells of it."""
    try:
        _send_body(sock.sendall, uploads, timeouts, streamed, edges)
    except (Exception, Timeout) as err:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # the connection is gone already
        return err
    return None


def _close_all(uploads: List[Member]) -> None:
    for upload in uploads:
        upload.close()


def dispatch(servers: List[dict], partition: int, path_info: str,
             headers: Dict[str, str], uploads: List[Member],
             timeouts: Timeouts, on_error: Callable[[dict, str], None],
             clock: Optional[StageClock] = None,
             edges: Optional[Callable[[], Iterator[bytes]]] = None
             ) -> 'Answer | Attempts':
    """Try ``servers`` in order; stream ``uploads`` to the first that
    accepts, then, if given, what ``edges()`` makes (the node's in-edges'
    data, in a chunked body, while the answer is read).  Raises
    :class:`InputFailed` when an upload breaks, and a member's fetch's own
    NodeError when it was refused.  The stages go to
    ``clock``: ``connect`` (up to ``100 Continue``), ``send`` and
    ``wait`` (for the answer's headers), or ``send+wait`` when the answer
    may come while the body is sent."""
    clock = clock or StageClock()
    headers = dict(headers)
    headers['Expect'] = '100-continue'
    streamed = None
    if is_chunked(uploads, edges is not None):
        headers['Transfer-Encoding'] = 'chunked'
    else:
        headers['Content-Length'] = str(sum(u.length for u in uploads))
        streamed = streaming_order(uploads)
    if streamed is not None:
        headers[protocol.STREAMED_LENGTH_HEADER] = str(streamed.length)
    duplex = headers.get(protocol.ANSWER_STREAM_HEADER) == \
        protocol.ANSWER_STREAM_DUPLEX
    attempts = Attempts()
    #: Still sending the body when the answer came (see _send_and_answer).
    sender = None
    try:
        for server in servers:
            _raise_refused_fetch(uploads, wait=False)
            conn = _expect(server, partition, path_info, headers, timeouts,
                           on_error, attempts)
            if conn is None:
                if attempts.decided:
                    break
                continue
            clock.mark('connect')
            sock = conn.sock
            try:
                final, sender = _send_and_answer(
                    conn, uploads, timeouts, streamed, duplex, clock,
                    edges() if edges is not None else None)
            except NodeError:
                # An input broke, or a member's fetch was refused: theirs.
                conn.close()
                raise
            except (Exception, Timeout) as err:
                conn.close()
                on_error(server, 'zerocloud: node failed on %s:%s: %s'
                         % (server['ip'], server['port'], _describe(err)))
                attempts.refusals.append(Refusal(
                    503, 'Storage server failed while running the node'))
                attempts.lost = server
                return attempts
            busy = busy_seconds(final.status,
                                final.getheader(protocol.RETRY_AFTER_HEADER))
            if busy is not None:
                # Queued, and no sandbox freed up in time: busy as well,
                # but the body is spent; the caller sends it again.
                attempts.note_busy(busy)
                attempts.refusals.append(Refusal(
                    final.status, _read_text(final, timeouts.node)))
                _stop(sender, conn)
                return attempts
            answer_headers = {k.title(): v for k, v in final.getheaders()}
            if not is_success(final.status):
                text = _read_text(final, timeouts.node)
                _stop(sender, conn)
                return Answer(final.status, answer_headers, lambda n: b'',
                              conn.close, text, server)
            # A streamed answer's pieces come as the program writes them.
            streaming = final.getheader(protocol.STREAMED_ANSWER_HEADER)
            body = AnswerBody(server, final, timeouts.answer if streaming
                              else timeouts.node, on_error)

            def stop() -> None:
                # The answer's reader, in its own green thread, sees the
                # connection end, then closes it (closing it here would
                # pull its buffer from under it).
                body.stopped = True
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass   # gone already
            return Answer(final.status, answer_headers, body.read,
                          lambda: _stop(sender, conn), server=server,
                          stop=stop)
        # Every server refused before the body: a refused fetch says more.
        _raise_refused_fetch(uploads, wait=True)
        return attempts
    finally:
        if sender is None or sender.dead:
            _close_all(uploads)
        else:
            sender.link(lambda _thread: _close_all(uploads))


def _stop(sender, conn) -> None:
    """Stop sending the body, if that still goes on, and close."""
    if sender is not None:
        sender.kill()
    conn.close()


class NodeClient:
    """Sends nodes to storage servers; long-lived, one per filter (so one
    per proxy worker process).

    A server that fails is reported to the proxy's error limiter
    (``error_occurred``), so later requests avoid it.  It also counts the
    nodes of this process that wait for busy servers, at most
    ``max_waiting`` at once and half as many (rounded up) of one account.
    """

    def __init__(self, timeouts: Timeouts, max_waiting: int,
                 error_occurred: Callable[[dict, str], None]):
        self.timeouts = timeouts
        self.max_waiting = max_waiting
        self.waiting = 0
        #: One account's nodes hold at most half of the places.
        self.waiting_share = AccountShare(half(max_waiting))
        self.error_occurred = error_occurred

    def send(self, candidates: List[dict], partition: int, path_info: str,
             headers: Dict[str, str], uploads: List[Member],
             clock: StageClock,
             edges: Optional[Callable[[], Iterator[bytes]]] = None
             ) -> 'Answer | Attempts':
        return dispatch(candidates, partition, path_info, headers, uploads,
                        self.timeouts, self.error_occurred, clock, edges)

    def wait_for_busy(self, seconds: float, until: Event,
                      account: str) -> bool:
        """Wait ``seconds`` (less if ``until`` is sent) as one of the nodes
        waiting for busy servers; False at once when ``max_waiting`` nodes,
        or half as many of ``account``'s, wait already."""
        if self.waiting >= self.max_waiting or \
                not self.waiting_share.take(account):
            return False
        self.waiting += 1
        try:
            until.wait(seconds)
        finally:
            self.waiting -= 1
            self.waiting_share.give_back(account)
        return True


def nexe_reported(headers: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith('X-Nexe-')}


def server_stages(headers: Dict[str, str]) -> Stages:
    """The stages a node's server reported, named ``server.<stage>``."""
    return [('server.' + name, seconds) for name, seconds in
            parse_stages(str(headers.get(protocol.STAGES_HEADER, '')))]


def program_status(pax: Dict[str, str]) -> int:
    """The status a CGI program chose; ValueError unless final (2xx-5xx),
    as the object server refuses the others."""
    status = int(pax[protocol.PAX_STATUS].split()[0])
    if not 200 <= status <= 599:
        raise ValueError('status %d' % status)
    return status


def body_headers(pax: Dict[str, str], meta: Dict[str, str]
                 ) -> Dict[str, str]:
    """Headers a CGI program printed for its immediate output.

    Only those a program may set (:func:`zerocloud.cgi.program_may_set`;
    ``Content-Type`` and ``X-Object-Meta-*`` come as the member's type and
    ``meta``).  The object server already dropped the others and refused
    control characters; checked again here, the last gate before the
    client, so that an answer altered on its way cannot set them either.
    """
    headers = {'X-Object-Meta-' + k: v for k, v in meta.items()}
    prefix = protocol.PAX_HEADER_PREFIX
    given_apart = ('content-type', cgi.META_PREFIX)
    for key, value in pax.items():
        name = key[len(prefix):]
        if key.startswith(prefix) and cgi.program_may_set(name) and \
                not name.lower().startswith(given_apart):
            headers[name] = value
    return {name: value for name, value in headers.items()
            if cgi.forwardable_header(name, value)}


def member_meta(pax: Dict[str, str]) -> Dict[str, str]:
    """An output's metadata from its member headers."""
    prefix = protocol.PAX_META_PREFIX
    return {key[len(prefix):]: value for key, value in pax.items()
            if key.startswith(prefix)}


def _member_chunks(reader: protocol.MemberReader) -> Iterator[bytes]:
    while True:
        chunk = reader.read()
        if not chunk:
            return
        yield chunk


def _spool(reader: protocol.MemberReader, spool_dir: Optional[str]
           ) -> Spooled:
    """The rest of the current member in a sealed spool file: what a node
    wrote, maybe from an encrypted object, is ciphertext on this disk."""
    with spool_file(spool_dir, 'zerocloud-out-', sealed=True) as (fp,
                                                                  spooled):
        reader.copy_to(fp)
    return spooled


def _take_output(result: NodeResult, reader: protocol.MemberReader,
                 member: protocol.Member, spool_dir: Optional[str],
                 release: Optional[Callable[[], None]] = None) -> bool:
    """A whole output member into ``result``: an object to store
    (spooled), or the node's part of the client's answer, spooled or,
    given ``release`` (its connection's), left on the connection for the
    response to stream (``True``: read nothing more of the answer)."""
    channel = {ch.device: ch for ch in result.node.channels}.get(member.name)
    if channel is None:
        raise protocol.FramingError('Channel name %s not found'
                                    % member.name)
    ctype = member.pax.get(protocol.PAX_CONTENT_TYPE, channel.content_type)
    meta = member_meta(member.pax)
    if isinstance(channel.path, SwiftPath):
        result.puts.append(PendingPut(
            channel.path, _spool(reader, spool_dir), ctype, meta))
        return False
    headers = body_headers(member.pax, meta)
    if protocol.PAX_STATUS in member.pax:
        result.status = max(result.status, program_status(member.pax))
    if release is not None:
        result.body = Body(member.size, ctype, _member_chunks(reader),
                           headers)
        result.release = release
        return True
    spooled = _spool(reader, spool_dir)
    result.body = Body(spooled.size, ctype, spooled.chunks(), headers,
                       spooled)
    return False


def _take_streamed(result: NodeResult, answer: Answer,
                   spool_dir: Optional[str]) -> None:
    """Leave a streamed answer on its connection, for the response to
    stream or to store (an output sent again whole is spooled to
    ``spool_dir``)."""
    reader = protocol.MemberReader(answer.read)
    try:
        first = reader.next_member()
        if first is None:
            raise protocol.FramingError('the answer is empty')
    except (ServerLost, protocol.FramingError) as err:
        answer.release()
        result.status = 503
        result.error = 'Bad answer from storage server: %s' % err
        return
    channel = {ch.device: ch for ch in result.node.channels}.get(first.name)
    content_type = first.pax.get(
        protocol.PAX_CONTENT_TYPE, channel.content_type if channel else
        'application/octet-stream')
    chunks = _streamed_chunks(reader, result, first, spool_dir)
    if channel is not None and isinstance(channel.path, SwiftPath):
        result.streaming_put = StreamingPut(
            channel.path, content_type, member_meta(first.pax), chunks)
    else:
        result.streamed = True
        result.body = Body(None, content_type, chunks)
    result.release = answer.release


class StreamFailed(Exception):
    """A streamed answer's node failed (or its server broke off) after
    the body had started: the client's answer must not end cleanly."""


def _streamed_chunks(reader: protocol.MemberReader, result: NodeResult,
                     first: protocol.Member, spool_dir: Optional[str]
                     ) -> Iterator[bytes]:
    """The pieces of a streamed answer (:data:`zerocloud.protocol.
    STREAMED_ANSWER_HEADER`), starting with member ``first``; at its end
    ``result`` gets the node's other outputs, whole (spooled to
    ``spool_dir``), and its final headers.  Raises :class:`StreamFailed`
    when the node failed, so that the client sees a body cut short, never
    a clean end, and when an output to store came again whole
    (``PAX_REPLACES``): its ``PUT`` is abandoned and the whole copy stored
    as any output."""
    member: Optional[protocol.Member] = first
    replaced = False
    try:
        while member is not None and protocol.PAX_END not in member.pax:
            again = member.name == first.name
            if again and protocol.PAX_REPLACES not in member.pax:
                yield from _member_chunks(reader)
            elif result.streaming_put is None or (again and replaced):
                # Only an output to store streams beside others, and it
                # comes again whole at most once.
                raise protocol.FramingError('unexpected whole output %s'
                                            % member.name)
            else:
                if again:
                    result.streaming_put.replaced = replaced = True
                _take_output(result, reader, member, spool_dir)
            member = reader.next_member()
        _take_final(result, reader, member)
    except (ServerLost, protocol.FramingError, ValueError) as err:
        result.status = 503
        result.error = 'Storage server failed while streaming the answer ' \
            'of node %s: %s' % (result.node.name, err)
        raise StreamFailed(result.error)
    except OSError as err:   # the whole copy's spool
        result.status = 503
        result.error = 'Cannot keep the output of node %s: %s' % (
            result.node.name, err.strerror)
        raise StreamFailed(result.error)
    if result.failed:
        raise StreamFailed(result.error)
    if replaced:
        raise StreamFailed('node %s rewrote its output: stored whole'
                           % result.node.name)


def _take_final(result: NodeResult, reader: protocol.MemberReader,
                member: Optional[protocol.Member],
                retcode_fails: bool = True) -> None:
    """The final headers of a streamed answer (the data of ``member``,
    marked ``PAX_END``) into ``result``; FramingError or ValueError when
    they are missing or malformed.  A node that failed fails here, and,
    with ``retcode_fails``, one whose program did not return 0 (what it
    sent to the client as it ran is no result)."""
    if member is None:
        raise protocol.FramingError('the answer ended without its final '
                                    'headers')
    if member.size > protocol.MAX_SYSMAP:
        raise protocol.FramingError('final headers too large')
    final = json.loads(b''.join(_member_chunks(reader)))
    if not isinstance(final, dict):
        raise ValueError('final headers are not an object')
    result.headers.update(nexe_reported(
        {str(name): str(value) for name, value in final.items()}))
    result.stages += server_stages(final)
    if result.headers.get('X-Nexe-Status') != 'ok' or (
            retcode_fails and result.headers.get('X-Nexe-Retcode') != '0'):
        result.status = NODE_FAILED
        result.error = 'Node %s failed: %s' % (
            result.node.name, result.headers.get('X-Nexe-Error', ''))


def read_answer(result: NodeResult, answer: Answer, stream: bool,
                spool_dir: Optional[str], logger,
                outgoing: Optional[Dict[str, GrowingSpill]] = None,
                on_flow: Optional[Callable[[], None]] = None) -> None:
    """Fill ``result`` from a node's successful answer.

    Outputs with a ``swift://`` path and edges to downstream nodes are
    spooled; the immediate output (always the last member) is spooled too,
    or, with ``stream``, left on the connection for the response to stream.
    A node whose downstream nodes run with it (``outgoing``: their
    connections, by device) is answered as it writes to them
    (:data:`zerocloud.protocol.EDGE_STREAM_HEADER`): its pieces go there
    as they come (``on_flow()`` is called before the first), and its final
    headers come last.
    """
    node = result.node
    got = answer.headers
    by_edges = got.get(protocol.STREAMED_ANSWER_HEADER) == \
        protocol.STREAMED_EDGES
    streamed = stream and not by_edges and \
        bool(got.get(protocol.STREAMED_ANSWER_HEADER))
    if 'X-Nexe-Status' not in got and not streamed and not by_edges:
        answer.release()
        result.status = 503
        result.error = ('objectquery middleware is not installed or not '
                        'functioning')
        return
    result.headers = nexe_reported(got)
    result.stages += server_stages(got)
    if streamed:
        _take_streamed(result, answer, spool_dir)
        return
    if not by_edges and got['X-Nexe-Status'] != 'ok':
        result.status = NODE_FAILED
        result.error = 'Node %s failed: %s' % (node.name,
                                               got['X-Nexe-Status'])
    edges = {e.device for e in node.edges if e.direction == 'out'}
    reader = protocol.MemberReader(answer.read)
    try:
        while True:
            member = reader.next_member()
            if by_edges and (member is None or
                             protocol.PAX_END in member.pax):
                _take_final(result, reader, member, retcode_fails=False)
                break
            if member is None:
                break
            if member.name in edges and outgoing is not None and \
                    protocol.PAX_EDGE in member.pax:
                if on_flow is not None:
                    on_flow()
                    on_flow = None
                for chunk in _member_chunks(reader):
                    outgoing[member.name].append(chunk)
                continue
            if member.name in edges:
                result.edges[member.name] = _spool(reader, spool_dir)
                continue
            if _take_output(result, reader, member, spool_dir,
                            answer.release if stream else None):
                return
    except ServerLost:
        result.status = 503
        result.error = 'Storage server failed while answering for node %s' \
            % node.name
        result.server_failed = True
    except NodeStopped:
        result.status = NODE_FAILED   # the scheduler says who stopped it
    except SpillFull as err:
        result.status = NODE_FAILED
        result.error = 'Node %s failed: %s' % (node.name, err)
    except (protocol.FramingError, ValueError) as err:
        result.status = 503
        result.error = 'Bad answer from storage server: %s' % err
    except OSError:
        # The connection or our spool: the detail (errno, spool path) is
        # for the log, not for the client.
        logger.exception('zerocloud: reading the answer for node %s failed',
                         node.name)
        result.status = 503
        result.error = 'Bad answer from storage server for node %s' \
            % node.name
    answer.release()
