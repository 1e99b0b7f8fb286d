"""Sending one node to a storage server and reading its answer.

The request is a ``POST`` straight to the object (or container) server with
``Expect: 100-continue``: the server checks the node (local object present,
device mounted, a sandbox slot free) before the body is sent, so the proxy
can move to the next replica without having consumed any input.  Once
``100 Continue`` arrives the members are streamed with an exact
``Content-Length`` and the final answer is read as a member stream
(:mod:`zerocloud.protocol`) into a :class:`NodeResult`: outputs to store,
edges for downstream nodes, and the node's part of the response.
"""

import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional

from eventlet import Timeout
from swift.common.bufferedhttp import http_connect
from swift.common.exceptions import ConnectionTimeout
from swift.common.http import is_success
from swift.common.request_helpers import get_ip_port

from zerocloud import cgi, protocol
from zerocloud.job.model import JobError, Node, SwiftPath
from zerocloud.job.source import Spooled

#: A node the sandbox stopped (time, memory, output limits, a trap).
NODE_FAILED = 422


class NodeError(JobError):
    """One node cannot run; the job goes on to report it for that node."""


class InputError(NodeError):
    """An input streamed to a node broke off (a large object's segment is
    missing, …): the fault of the input, not of the storage server."""


@dataclass
class Upload:
    """One member of the request stream."""
    name: str
    size: int
    chunks: Iterable[bytes]

    @property
    def length(self) -> int:
        return protocol.member_length(self.name, self.size)

    def close(self) -> None:
        close = getattr(self.chunks, 'close', None)
        if close:
            close()


@dataclass
class Answer:
    """The storage server's final answer for one node."""
    status: int
    headers: Dict[str, str]
    read: Callable[[int], bytes]
    release: Callable[[], None]
    body_error: str = ''


@dataclass
class Refusal:
    status: int
    message: str
    #: Why the server would not read its local object (``X-Zerocloud-
    #: Stream-Input``): the node must get it streamed instead.
    stream_input: str = ''


@dataclass
class Attempts:
    """What each tried server said, for the error the client gets.

    ``lost`` is the server that accepted the node and then failed while
    running it: the caller may retry on the servers after it.
    """
    refusals: List[Refusal] = field(default_factory=list)
    lost: Optional[dict] = None

    @property
    def stream_input(self) -> str:
        """Why the local object cannot be read raw, if a server said so."""
        return next((r.stream_input for r in self.refusals
                     if r.stream_input), '')

    def final(self, path_info: str) -> Refusal:
        for refusal in self.refusals:
            if 400 <= refusal.status < 500 and refusal.status != 404:
                return refusal
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
class Body:
    """A node's part of the client's response."""
    size: int
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

    @property
    def failed(self) -> bool:
        return bool(self.error) or self.status >= 300

    def fail(self, err: JobError) -> 'NodeResult':
        self.status, self.error = err.status, err.message
        return self

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


def dispatch(nodes: List[dict], partition: int, path_info: str,
             headers: Dict[str, str], uploads: List[Upload],
             conn_timeout: float, expect_timeout: float,
             final_timeout: float,
             on_error: Callable[[dict, str], None]) -> 'Answer | Attempts':
    """Try ``nodes`` in order; stream ``uploads`` to the first that accepts."""
    headers = dict(headers)
    headers['Content-Length'] = str(sum(u.length for u in uploads))
    headers['Expect'] = '100-continue'
    attempts = Attempts()
    for node in nodes:
        ip, port = get_ip_port(node, headers)
        try:
            with ConnectionTimeout(conn_timeout):
                conn = http_connect(ip, port, node['device'], partition,
                                    'POST', path_info, headers)
            with Timeout(expect_timeout):
                resp = conn.getexpect()
        except (Exception, Timeout) as err:
            on_error(node, 'zerocloud connect: %s' % err)
            continue
        if resp.status != 100:
            body = resp.read().decode('utf-8', 'replace')
            conn.close()
            if resp.status == 507 or resp.status >= 500:
                on_error(node, 'zerocloud: %d %s' % (resp.status, body))
            attempts.refusals.append(Refusal(
                resp.status, body,
                resp.getheader(protocol.STREAM_INPUT_HEADER) or ''))
            if 400 <= resp.status < 500 and resp.status != 404:
                break
            continue
        try:
            with Timeout(final_timeout):
                for upload in uploads:
                    for chunk in protocol.iter_member(upload.name,
                                                      upload.size,
                                                      upload.chunks):
                        conn.send(chunk)
                final = conn.getresponse()
        except InputError:
            conn.close()
            for upload in uploads:
                upload.close()
            raise
        except (Exception, Timeout) as err:
            conn.close()
            on_error(node, 'zerocloud: node failed on %s:%s: %s'
                     % (ip, port, err))
            for upload in uploads:
                upload.close()
            attempts.refusals.append(Refusal(
                503, 'Storage server failed while running the node'))
            attempts.lost = node
            return attempts
        answer_headers = {k.title(): v for k, v in final.getheaders()}
        if not is_success(final.status):
            text = final.read().decode('utf-8', 'replace')
            conn.close()
            return Answer(final.status, answer_headers, lambda n: b'',
                          conn.close, text)
        return Answer(final.status, answer_headers, final.read, conn.close)
    for upload in uploads:
        upload.close()
    return attempts


class NodeClient:
    """Sends nodes to storage servers; long-lived, one per filter.

    A server that fails is reported to the proxy's error limiter
    (``error_occurred``), so later requests avoid it.
    """

    def __init__(self, conn_timeout: float, expect_timeout: float,
                 final_timeout: float,
                 error_occurred: Callable[[dict, str], None]):
        self.conn_timeout = conn_timeout
        self.expect_timeout = expect_timeout
        self.final_timeout = final_timeout
        self.error_occurred = error_occurred

    def send(self, candidates: List[dict], partition: int, path_info: str,
             headers: Dict[str, str], uploads: List[Upload]
             ) -> 'Answer | Attempts':
        return dispatch(candidates, partition, path_info, headers, uploads,
                        self.conn_timeout, self.expect_timeout,
                        self.final_timeout, self.error_occurred)


def nexe_reported(headers: Dict[str, str]) -> Dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith('X-Nexe-')}


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

    The object server already dropped framing and hop-by-hop headers and
    refused control characters; checked again here so that an answer
    altered on its way cannot set them either.
    """
    headers = {'X-Object-Meta-' + k: v for k, v in meta.items()}
    prefix = protocol.PAX_HEADER_PREFIX
    for key, value in pax.items():
        name = key[len(prefix):]
        if key.startswith(prefix) and not name.lower().startswith(
                ('x-nexe-', 'content-', 'x-object-meta-', 'status')) \
                and cgi.forwardable_header(name, value):
            headers[name] = value
    return headers


def _member_chunks(reader: protocol.MemberReader) -> Iterator[bytes]:
    while True:
        chunk = reader.read()
        if not chunk:
            return
        yield chunk


def _spool(reader: protocol.MemberReader, spool_dir: Optional[str]
           ) -> Spooled:
    fd, path = tempfile.mkstemp(prefix='zerocloud-out-', dir=spool_dir)
    spooled = Spooled(path, 0)
    try:
        with os.fdopen(fd, 'wb') as fp:
            spooled.size = reader.copy_to(fp)
    except BaseException:
        spooled.remove()
        raise
    return spooled


def read_answer(result: NodeResult, answer: Answer, stream: bool,
                spool_dir: Optional[str], logger) -> None:
    """Fill ``result`` from a node's successful answer.

    Outputs with a ``swift://`` path and edges to downstream nodes are
    spooled; the immediate output (always the last member) is spooled too,
    or, with ``stream``, left on the connection for the response to stream.
    """
    node = result.node
    got = answer.headers
    if 'X-Nexe-Status' not in got:
        answer.release()
        result.status = 503
        result.error = ('objectquery middleware is not installed or not '
                        'functioning')
        return
    result.headers = nexe_reported(got)
    if got['X-Nexe-Status'] != 'ok':
        result.status = NODE_FAILED
        result.error = 'Node %s failed: %s' % (node.name,
                                               got['X-Nexe-Status'])
    channels = {ch.device: ch for ch in node.channels}
    edges = {e.device for e in node.edges if e.direction == 'out'}
    reader = protocol.MemberReader(answer.read)
    try:
        while True:
            member = reader.next_member()
            if member is None:
                break
            if member.name in edges:
                result.edges[member.name] = _spool(reader, spool_dir)
                continue
            channel = channels.get(member.name)
            if channel is None:
                raise protocol.FramingError(
                    'Channel name %s not found' % member.name)
            ctype = member.pax.get(protocol.PAX_CONTENT_TYPE,
                                   channel.content_type)
            meta_prefix = protocol.PAX_META_PREFIX
            meta = {k[len(meta_prefix):]: v for k, v in member.pax.items()
                    if k.startswith(meta_prefix)}
            if isinstance(channel.path, SwiftPath):
                result.puts.append(PendingPut(
                    channel.path, _spool(reader, spool_dir), ctype, meta))
                continue
            headers = body_headers(member.pax, meta)
            if protocol.PAX_STATUS in member.pax:
                result.status = max(result.status,
                                    program_status(member.pax))
            if stream:
                result.body = Body(member.size, ctype,
                                   _member_chunks(reader), headers)
                result.release = answer.release
                return
            spooled = _spool(reader, spool_dir)
            result.body = Body(spooled.size, ctype, spooled.chunks(),
                               headers, spooled)
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
