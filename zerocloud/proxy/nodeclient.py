"""Sending one node to a storage server and reading its answer.

The request is a ``POST`` straight to the object (or container) server with
``Expect: 100-continue``: the server checks the node (local object present,
device mounted) before the body is sent, so the proxy can move to the next
replica without having consumed any input.  Once ``100 Continue`` arrives the
members are streamed with an exact ``Content-Length`` and the final answer is
read as a member stream (:mod:`zerocloud.protocol`).
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional

from eventlet import Timeout
from swift.common.bufferedhttp import http_connect
from swift.common.exceptions import ConnectionTimeout
from swift.common.http import is_success
from swift.common.request_helpers import get_ip_port

from zerocloud import protocol


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


@dataclass
class Attempts:
    """What each tried server said, for the error the client gets.

    ``lost`` is the server that accepted the node and then failed while
    running it: the caller may retry on the servers after it.
    """
    refusals: List[Refusal] = field(default_factory=list)
    lost: Optional[dict] = None

    def final(self, path_info: str) -> Refusal:
        for refusal in self.refusals:
            if 400 <= refusal.status < 500 and refusal.status != 404:
                return refusal
        if any(r.status == 404 for r in self.refusals):
            return Refusal(404, 'Error 404 Not Found while fetching %s'
                           % path_info)
        return Refusal(503, 'Cannot find suitable node to execute code on')


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
            attempts.refusals.append(Refusal(resp.status, body))
            if 400 <= resp.status < 500 and resp.status != 404:
                break
            continue
        try:
            with Timeout(final_timeout):
                for upload in uploads:
                    for chunk in protocol.iter_member(upload.name, upload.size,
                                                     upload.chunks):
                        conn.send(chunk)
                final = conn.getresponse()
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
