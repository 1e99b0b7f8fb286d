"""The client's request body, read by Swift's rules; its faults are 4xx.

Swift's eventlet server frames a request body before any middleware sees
it: with ``Transfer-Encoding: chunked`` it de-chunks (and ignores any
``Content-Length``, as Swift's own ``Request.message_length()`` says),
otherwise it stops at ``Content-Length``.  A middleware cannot change the
framing, only judge what arrives.  :class:`ClientBody` reads it for
``proxy_query`` and turns every client fault into the answer Swift's own
proxy gives for it, never a 5xx:

* a ``Transfer-Encoding`` other than ``chunked`` → ``501``, an unusable
  ``Content-Length`` → ``400`` (``message_length()``);
* a body that is not valid chunked framing → ``400``.  That is what
  python-swiftclient 2.3.1 sends under today's ``requests`` (both headers
  and the raw bytes): the server would wait for the end of a chunk-size
  line that never comes, so the first bytes are checked before the first
  read, and a body that does not start as a chunk-size line is refused at
  once;
* a body that stops arriving: ``408`` once no byte came for
  ``client_timeout`` seconds (Swift's own option and default, per read);
* a client that goes away before the end of the body → ``499``.
"""

import re
from typing import Callable, Optional

from swift.common.exceptions import ChunkReadTimeout
from swift.common.swob import Request

from zerocloud.job.model import JobError
from zerocloud.job.source import DISCONNECTED

#: What a chunked body starts with: hex digits, then the end of the size,
#: an extension (``;``) or the end of what has arrived so far.
CHUNK_SIZE_START = re.compile(rb'[0-9a-fA-F]+(?:[ \t;\r\n]|$)')
#: Bytes looked at before the first read of a chunked body.
FRAMING_PEEK = 64

NOT_CHUNKED = ('Request body is not valid chunked framing '
               '(Transfer-Encoding: chunked)')
STALLED = 'Request body stopped arriving: nothing for %g seconds'
UNFRAMED = 'Must specify Content-Length or Transfer-Encoding: chunked'


def server_input(wsgi_input):
    """eventlet's own input object under Swift's ``InputProxy`` wrappers
    (``job_chain`` counts the bytes its jobs read with one)."""
    while hasattr(wsgi_input, 'wsgi_input'):
        wsgi_input = wsgi_input.wsgi_input
    return wsgi_input


def unread_chunked_input(wsgi_input):
    """eventlet's input of a chunked body nothing was read from, else None.

    Relies on eventlet's ``Input`` (``rfile``, ``chunked_input``,
    ``position``, ``chunk_length``); under another server the check is
    skipped and bad framing shows at the server's first chunk-size line.
    """
    raw = server_input(wsgi_input)
    if not getattr(raw, 'chunked_input', False) or \
            not hasattr(getattr(raw, 'rfile', None), 'peek'):
        return None
    if getattr(raw, 'position', None) != 0 or \
            getattr(raw, 'chunk_length', None) != -1:
        return None
    return raw


class ClientBody:
    """``read(n)`` over a client's body, its faults raised as
    :class:`~zerocloud.job.model.JobError` with the client's 4xx.

    ``length`` is the body's length, or None for a chunked body (read to
    its end); ``framed`` says whether the request declared a body at all.
    """

    def __init__(self, read: Callable[[int], bytes], length: Optional[int],
                 timeout: float, framed: bool = True, unchecked=None):
        self._read = read
        self.length = length
        self.timeout = timeout
        self.framed = framed
        self.received = 0
        #: eventlet's input whose framing is checked before the first read.
        self._unchecked = unchecked

    @classmethod
    def of_request(cls, req: Request, timeout: float) -> 'ClientBody':
        """The body of ``req`` as Swift's proxy frames it."""
        try:
            length = req.message_length()
        except ValueError as err:
            raise JobError(str(err), 400)
        except AttributeError as err:
            raise JobError(str(err), 501)
        wsgi_input = req.environ['wsgi.input']
        chunked = 'transfer-encoding' in req.headers
        framed = chunked or length is not None
        return cls(wsgi_input.read, length if framed else 0, timeout, framed,
                   unread_chunked_input(wsgi_input) if chunked else None)

    def read(self, size: int) -> bytes:
        try:
            with ChunkReadTimeout(self.timeout):
                if self._unchecked is not None:
                    self._check_framing()
                chunk = self._read(size)
        except (ChunkReadTimeout, TimeoutError):
            # Ours, or the server's own socket timeout (its client_timeout).
            raise JobError(STALLED % self.timeout, 408)
        except ValueError as err:
            # eventlet's ChunkReadError: a chunk-size line that is not one,
            # or none at all because the connection ended.
            if str(err).endswith("b''"):
                raise JobError(DISCONNECTED, 499)
            raise JobError(NOT_CHUNKED, 400)
        except OSError:
            raise JobError(DISCONNECTED, 499)
        self.received += len(chunk)
        if not chunk and size and self.length is not None and \
                self.received < self.length:
            raise JobError(DISCONNECTED, 499)
        return chunk

    def _check_framing(self) -> None:
        """Refuse a chunked body that does not start as one, unread."""
        raw, self._unchecked = self._unchecked, None
        raw.read(0)   # sends the 100 Continue the client may wait for
        head = raw.rfile.peek(FRAMING_PEEK)[:FRAMING_PEEK]
        if head and not CHUNK_SIZE_START.match(head):
            raise JobError(NOT_CHUNKED, 400)
