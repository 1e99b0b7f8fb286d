"""HTTP/1.1 trailers: how a streamed answer's final status reaches a client
that asked for it.

A one-node job's answer may stream while its node runs (``X-Nexe-Status:
streaming``), so the node's final status cannot be a header.  A client that
sends ``TE: trailers`` gets it after the body, as trailer fields of the
chunked answer (RFC 9112, section 7.1.2), whether the node succeeded or
failed: ``X-Zerocloud-Status`` (the status code the answer would have had,
``200`` or the failure's ``4xx``/``5xx``) and the job's final ``X-Nexe-*``
headers (``X-Nexe-Error`` when it failed).  The answer announces them in its
``Trailer`` header.  Other clients keep the plain rule: the body ends
cleanly only if the node succeeded.

eventlet's WSGI server, which Swift's servers run, ends a chunked body with
an empty last chunk of its own and offers no way to add fields to it.  So
the last chunk and its trailer fields are written here, on the client's
connection (the socket eventlet hands the request body in
``environ['eventlet.input']``), and eventlet is told that the response is
handled (``eventlet.wsgi.WSGI_LOCAL.already_handled``): it then writes
nothing more and closes the connection after this answer.  Both are
eventlet's internals, pinned by ``constraints.txt`` and exercised by the
functional tests; without them an answer simply has no trailers.
"""

from typing import Dict, Iterable, Optional

from eventlet import wsgi as eventlet_wsgi

from zerocloud.headers import guard_headers

#: Trailer field with the status code a headers-first answer would have.
STATUS_TRAILER = 'X-Zerocloud-Status'


def requested(environ: dict) -> bool:
    """Whether the client accepts trailer fields (``trailers`` among the
    codings of its ``TE`` header)."""
    codings = environ.get('HTTP_TE', '').split(',')
    return any(coding.split(';', 1)[0].strip().lower() == 'trailers'
               for coding in codings)


class Trailers:
    """Writes one answer's last chunk with its trailer fields."""

    def __init__(self, sock, names: Iterable[str]):
        self.sock = sock
        #: Announced in the answer's ``Trailer`` header; only these are sent.
        self.names = [STATUS_TRAILER] + [n for n in names
                                         if n != STATUS_TRAILER]

    @classmethod
    def for_request(cls, environ: dict, names: Iterable[str]
                    ) -> Optional['Trailers']:
        """Trailers for the client's own connection, if it asked for them
        and this request came from it (a sub-request has no socket)."""
        sock = getattr(environ.get('eventlet.input'), '_sock', None)
        if sock is None or not requested(environ):
            return None
        return cls(sock, names)

    @property
    def announcement(self) -> str:
        """The ``Trailer`` header's value."""
        return ', '.join(self.names)

    def encode(self, status: int, fields: Dict[str, str]) -> bytes:
        """The last chunk, the announced fields present in ``fields`` and
        the empty line ending the answer."""
        present = [(STATUS_TRAILER, str(status))] + [
            (name, fields[name]) for name in self.names[1:]
            if name in fields]
        lines = ['0'] + ['%s: %s' % field for field in guard_headers(present)]
        return ('\r\n'.join(lines) + '\r\n\r\n').encode('ascii')

    def send(self, status: int, fields: Dict[str, str]) -> None:
        """End the answer with these trailer fields.  Call it once the
        server has written the body's every byte: eventlet writes each
        piece it is given before asking for the next."""
        eventlet_wsgi.WSGI_LOCAL.already_handled = True
        self.sock.sendall(self.encode(status, fields))
