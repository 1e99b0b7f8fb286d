"""A storage server for the proxy's node client to talk to in unit tests.

A real listening socket (eventlet, in the test's own process) that speaks
just enough HTTP: the request line and headers, ``100 Continue``, a tar body
of members (:mod:`zerocloud.protocol`), an answer with ``X-Nexe-*`` headers
and a tar of the node's ``stdout``.  What it does with each request, faults
included, is the test's ``behave(exchange)``.
"""

import http.client
import json
from typing import Callable, Dict, List, Optional

import eventlet
from eventlet.event import Event

from zerocloud import protocol
from zerocloud.proxy.nodeclient import Timeouts

#: The node client's timeouts against these servers: short, to keep the
#: tests quick; the servers that do answer do so at once.
TIMEOUTS = Timeouts(connect=0.2, node=0.2, answer=0.4)


class Exchange:
    """One request, as the server sees it."""

    def __init__(self, server: 'StorageServer', sock):
        self.server = server
        self.sock = sock
        self.rfile = sock.makefile('rb')
        self.request_line = self.rfile.readline().decode('latin-1').strip()
        self.headers: Dict[str, str] = {}
        while True:
            line = self.rfile.readline().decode('latin-1')
            if line in ('\r\n', '\n', ''):
                break
            name, value = line.split(':', 1)
            self.headers[name.strip().title()] = value.strip()
        self._left = int(self.headers.get('Content-Length', 0))
        self._chunked = self.headers.get('Transfer-Encoding') == 'chunked'
        self._pending = b''

    def refuse(self, status: int, headers: Optional[Dict[str, str]] = None,
               text: bytes = b'') -> None:
        """A final answer instead of ``100 Continue``."""
        self.answer(status, headers, text)

    def continue_(self) -> None:
        self.sock.sendall(b'HTTP/1.1 100 Continue\r\n\r\n')

    def _read(self, size: int) -> bytes:
        if self._chunked:
            return self._read_chunked(size)
        data = self.rfile.read(min(size, self._left))
        self._left -= len(data)
        return data

    def _read_chunked(self, size: int) -> bytes:
        """Up to ``size`` bytes of a chunked body (``b''`` at its end)."""
        if not self._pending:
            length = int(self.rfile.readline().split(b';')[0], 16)
            if length == 0:
                self.rfile.readline()   # the empty trailer
                self._chunked = False   # the end: nothing more to read
                return b''
            self._pending = self.rfile.read(length)
            self.rfile.readline()
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def read_body(self) -> Dict[str, bytes]:
        """Every member of the body, by name."""
        reader = protocol.MemberReader(self._read)
        members = {}
        while True:
            member = reader.next_member()
            if member is None:
                return members
            members[member.name] = b''.join(iter(reader.read, b''))

    def read_node(self) -> dict:
        """``100 Continue``, the body; the node's description."""
        self.continue_()
        return json.loads(self.read_body()[protocol.SYSMAP_MEMBER])

    def answer(self, status: int, headers: Optional[Dict[str, str]] = None,
               body: bytes = b'', send: Optional[int] = None) -> None:
        """Answer ``body`` (its first ``send`` bytes only, if given, under
        the full ``Content-Length``)."""
        head = ['HTTP/1.1 %d %s' % (status, http.client.responses[status])]
        headers = dict(headers or {}, **{'Content-Length': str(len(body)),
                                         'Connection': 'close'})
        head += ['%s: %s' % item for item in headers.items()]
        self.sock.sendall(('\r\n'.join(head) + '\r\n\r\n').encode('latin-1') +
                          body[:send])

    def answer_node(self, node: dict, output: Optional[bytes] = None,
                    etag: str = 'd41d8cd98f00b204e9800998ecf8427e',
                    send: Optional[int] = None) -> None:
        """A node that ran well and wrote ``output`` (by default which
        server ran it) to its ``stdout``."""
        if output is None:
            output = b'%s ran on %d' % (node['name'].encode(),
                                        self.server.port)
        body = b''.join(protocol.iter_member('stdout', len(output),
                                             [output]))
        self.server.ran.append(node['name'])
        self.answer(200, {'X-Nexe-System': node['name'],
                          'X-Nexe-Status': 'ok', 'X-Nexe-Retcode': '0',
                          'X-Nexe-Etag': etag,
                          'Content-Type': protocol.TAR_CONTENT_TYPE},
                    body, send)

    def hang(self) -> None:
        """Say nothing more until the server stops (a frozen server)."""
        self.server.stopped.wait()


def runs(exchange: Exchange) -> None:
    """A healthy server."""
    exchange.answer_node(exchange.read_node())


def busy(exchange: Exchange, retry_after: str = '0.01') -> None:
    """A server whose sandbox pool and queue are full."""
    exchange.refuse(503, {protocol.RETRY_AFTER_HEADER: retry_after},
                    b'Slot not available')


class StorageServer:
    """Serves each connection with ``behave`` until stopped."""

    def __init__(self, behave: Callable[[Exchange], None],
                 device: str = 'sdb1'):
        self.behave = behave
        self.device = device
        self.sock = eventlet.listen(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        #: Headers of every request received.
        self.requests: List[Dict[str, str]] = []
        #: Names of the nodes it answered as run.
        self.ran: List[str] = []
        #: Requests in progress now, and the most ever at once.
        self.open = 0
        self.most_open = 0
        self.stopped = Event()
        self._threads = [eventlet.spawn(self._accept)]

    def ring_device(self, dev_id: int) -> dict:
        return {'id': dev_id, 'region': 1, 'zone': dev_id, 'weight': 1,
                'ip': '127.0.0.1', 'port': self.port, 'device': self.device}

    def _accept(self) -> None:
        while True:
            sock, _ = self.sock.accept()
            self._threads.append(eventlet.spawn(self._serve, sock))

    def _serve(self, sock) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            exchange = Exchange(self, sock)
            self.requests.append(exchange.headers)
            self.behave(exchange)
        except OSError:
            pass   # the client went away: what it does is the test's
        finally:
            self.open -= 1
            sock.close()

    def stop(self) -> None:
        self.stopped.send()
        for thread in self._threads:
            thread.kill()
        self.sock.close()
