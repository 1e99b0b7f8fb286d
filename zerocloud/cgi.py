"""CGI for sandboxed programs: the environment they get, the output they give.

Every instance receives CGI/1.1 variables describing the client request
(``REQUEST_METHOD``, ``PATH_INFO`` without the ``/v1`` prefix,
``QUERY_STRING``, ``REQUEST_URI``, ``SCRIPT_NAME`` = ``exec.name`` or the
instance name, ``SCRIPT_FILENAME`` = the executable URL, ``SERVER_*``) and an
``HTTP_<NAME>`` variable for each request header, except credentials and
internal headers: ``X-Auth-*``, ``X-Storage-Token``, ``X-Service-Token``,
``Authorization``, ``Cookie``, ``X-Backend-*``, ``*-Sysmeta-*`` and the body
headers ``Content-Type``/``Content-Length`` never reach a program.

An instance running next to its object also gets ``LOCAL_*`` variables about
that object (size, type, metadata, ``LOCAL_DOCUMENT_ROOT=/dev/<device>``).

A writable device whose ``content_type`` is ``message/http`` (a full HTTP
response, "NPH") or ``message/cgi`` (CGI headers, optional ``Status:``) is
parsed by :func:`parse_cgi_output`: its ``Content-Type`` and
``X-Object-Meta-*`` headers apply to the stored object or the response.
Output that does not parse is kept verbatim with its ``message/*`` type.

A program sets only the headers that describe its own answer
(:data:`PROGRAM_HEADERS`, ``X-Object-Meta-*``, and ``X-Zerovm-Execute``,
which makes the answer the next job of a chain); every other header it
prints is dropped (:func:`program_may_set`).  Who may read an answer across
origins (``Access-Control-*``), cookies, auth and Swift's own headers are
the deployment's and the container owner's decision, never the program's.

The header block is the program's text inside our HTTP framing, so it is
held to rules that keep every response well framed (no response splitting
or smuggling on a keep-alive connection):

- Framing and hop-by-hop headers are ours: ``Transfer-Encoding``,
  ``Content-Length``, ``Connection``, ``Keep-Alive``, ``Upgrade``,
  ``Trailer``, ``TE``, ``Proxy-Connection`` and any header a ``Connection``
  value names are dropped (:data:`HOP_BY_HOP_HEADERS`).
- Output that is a header block but breaks a rule raises
  :class:`InvalidCgiOutput` (the node fails with ``422``): a 1xx status; a
  control character (anything below ``0x20`` but TAB, or ``0x7f``; e.g. a
  bare CR or a NUL) in a header name, value or the status line; more than
  :data:`MAX_HEADER_COUNT` headers; a block not ended within
  :data:`MAX_HEADER_BYTES`.
- Bytes >= ``0x80`` in a value are percent-encoded (``%XX``, upper-case
  hex), so headers are always ASCII; printable ASCII (``,`` and ``%``
  included) is kept as it is.
- A status that forbids a body (:data:`BODILESS_STATUSES`) is answered
  without one (the proxy drops it).
"""

import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Dict, List, Mapping, Optional, Tuple

SERVER_SOFTWARE = 'zerocloud'
GATEWAY_INTERFACE = 'CGI/1.1'
#: Lower-case header-name prefixes never exposed as ``HTTP_*`` variables.
EXCLUDED_HEADER_PREFIXES = (
    'x-account-sysmeta-', 'x-container-sysmeta-', 'x-object-sysmeta-',
    'x-backend', 'x-auth', 'x-storage-token', 'x-service-token',
    'authorization', 'proxy-authorization', 'cookie',
    'content-type', 'content-length')
#: How much of an output :func:`parse_cgi_output` looks at for headers.
MAX_HEADER_BYTES = 65536
#: Most headers a program may print: with our own dozen ``X-Nexe-*`` and
#: framing headers a response stays under the 100 that common clients
#: (Python's ``http.client``, for one) accept.
MAX_HEADER_COUNT = 64
#: Lower-case names of the headers that frame a message or describe one
#: connection: only the server that speaks HTTP to the client sets them.
HOP_BY_HOP_HEADERS = frozenset((
    'transfer-encoding', 'content-length', 'connection', 'keep-alive',
    'upgrade', 'trailer', 'te', 'proxy-connection'))
#: Statuses whose response never has a body (RFC 9110 6.4.1); 1xx are
#: refused altogether.
BODILESS_STATUSES = frozenset((204, 304))
#: Lower-case names of the headers a program's answer may carry (besides
#: ``X-Object-Meta-*``; ``Status`` is the status itself).
PROGRAM_HEADERS = frozenset((
    'content-type', 'location', 'cache-control', 'content-disposition',
    'last-modified', 'etag', 'x-zerovm-execute'))
KIND_HTTP = 'message/http'
KIND_CGI = 'message/cgi'
META_PREFIX = 'x-object-meta-'


def _env_name(header: str) -> str:
    return header.upper().replace('-', '_')


def _split_host(host: str) -> Tuple[str, str]:
    """``name[:port]`` (IPv6 in brackets) → (name, port), port default 80."""
    if host.startswith('['):
        name, _, rest = host[1:].partition(']')
        port = rest[1:] if rest.startswith(':') else ''
    else:
        name, _, port = host.partition(':')
    return name, port if port.isdigit() else '80'


def cgi_environ(*, headers: Mapping[str, str], method: str, path_info: str,
                query_string: str, request_uri: str,
                remote_user: Optional[str], host: Optional[str],
                script_name: str, script_filename: str,
                server_protocol: str = 'HTTP/1.0') -> Dict[str, str]:
    """CGI variables for one instance (spec 8.1).

    ``host`` defaults to the request's ``Host`` header; user ``exec.env``
    values are merged by the caller *under* these (CGI values win).
    """
    environ: Dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(EXCLUDED_HEADER_PREFIXES) or '\0' in value:
            continue
        environ['HTTP_' + _env_name(name)] = value
        if host is None and lower == 'host':
            host = value
    environ.update({
        'REQUEST_METHOD': method,
        'PATH_INFO': path_info,
        'REQUEST_URI': request_uri,
        'SCRIPT_NAME': script_name,
        'SCRIPT_FILENAME': script_filename,
        'SERVER_PROTOCOL': server_protocol,
        'SERVER_SOFTWARE': SERVER_SOFTWARE,
        'GATEWAY_INTERFACE': GATEWAY_INTERFACE,
    })
    if remote_user:
        environ['REMOTE_USER'] = remote_user
    if query_string:
        environ['QUERY_STRING'] = query_string
    if host:
        environ['SERVER_NAME'], environ['SERVER_PORT'] = _split_host(host)
    return environ


def local_object_environ(device: str, path_info: str,
                         metadata: Mapping[str, str], size: Optional[int],
                         content_type: Optional[str],
                         writable: bool) -> Dict[str, str]:
    """``LOCAL_*`` variables for the object an instance runs next to (8.3).

    ``metadata`` uses Swift header names (``X-Object-Meta-*``,
    ``X-Timestamp``, ``ETag``, ``Content-Encoding``; any case).  For an
    output, pass the channel's ``meta`` as ``X-Object-Meta-<key>`` items and
    its content type; only those are exposed, as the object does not exist
    yet.
    """
    environ = {
        'LOCAL_DOCUMENT_ROOT': '/dev/' + device,
        'LOCAL_OBJECT': 'on',
        'LOCAL_PATH_INFO': path_info,
        'LOCAL_CONTENT_TYPE': content_type or 'application/octet-stream',
    }
    for name, value in metadata.items():
        lower = name.lower()
        if lower.startswith(META_PREFIX) or not writable and lower in (
                'x-timestamp', 'etag', 'content-encoding'):
            environ['LOCAL_HTTP_' + _env_name(name)] = str(value)
    if not writable and size is not None:
        environ['LOCAL_CONTENT_LENGTH'] = str(size)
    return environ


class InvalidCgiOutput(ValueError):
    """A header block that breaks a rule of the module docstring."""

    def __init__(self, problem: str):
        super().__init__('invalid CGI output: ' + problem)


@dataclass
class CgiResponse:
    """The header block of a ``message/http`` or ``message/cgi`` output.

    ``headers`` keeps the printed headers a program may set (original case
    and order; :func:`program_may_set`), never the CGI ``Status`` field or
    the hop-by-hop ones; ``meta`` maps the part
    after ``X-Object-Meta-`` to its value; the body starts at
    ``body_offset``.  Values are ASCII (see :func:`percent_encode_8bit`).
    """
    status: int
    reason: str
    headers: List[Tuple[str, str]] = field(default_factory=list)
    content_type: Optional[str] = None
    meta: Dict[str, str] = field(default_factory=dict)
    body_offset: int = 0


_STATUS_LINE = re.compile(r'HTTP/\d\.\d[ \t]+(\d{3})(?:[ \t]+(.*))?')
_CGI_STATUS = re.compile(r'(\d{3})(?:[ \t]+(.*))?')
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Bytes (as latin-1 characters) that end or corrupt a header line.
_CONTROL = re.compile(r'[\x00-\x08\x0a-\x1f\x7f]')
_EIGHT_BIT = re.compile(r'[\x80-\xff]')
_PRINTABLE_ASCII = re.compile(r'[\t\x20-\x7e]*')


def percent_encode_8bit(value: str) -> str:
    """``value`` (bytes decoded as latin-1) with each byte >= 0x80 as
    ``%XX``: header values stay ASCII whatever encoding a program used."""
    return _EIGHT_BIT.sub(lambda found: '%%%02X' % ord(found.group()), value)


def forwardable_header(name: str, value: str) -> bool:
    """Whether ``name: value`` may be sent to a client as it is.

    The proxy's last check on headers an object server passes on from a
    program: a valid name that does not frame the message, a value of
    printable ASCII (and TAB) only.
    """
    return bool(_TOKEN.fullmatch(name)) and \
        name.lower() not in HOP_BY_HOP_HEADERS and \
        bool(_PRINTABLE_ASCII.fullmatch(value))


def program_may_set(name: str) -> bool:
    """Whether a program's answer may carry header ``name`` (see the module
    docstring): an allow-list, so what is not named never passes."""
    lower = name.lower()
    return lower in PROGRAM_HEADERS or (
        lower.startswith(META_PREFIX) and len(lower) > len(META_PREFIX))


def _status(code: str, reason: Optional[str]) -> Optional[Tuple[int, str]]:
    status = int(code)
    if not 100 <= status <= 599:
        return None
    if status < 200:
        raise InvalidCgiOutput('status %d is informational (1xx), not a '
                               'final response' % status)
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ''
    return status, percent_encode_8bit(reason.strip(' \t'))


def _strip_cr(line: str) -> str:
    """A line without its CRLF's CR (any other CR is part of the line)."""
    return line[:-1] if line.endswith('\r') else line


def parse_cgi_output(head: bytes, kind: str, *, at_eof: bool = False
                     ) -> Optional[CgiResponse]:
    """Parse the header block at the start of a program's output.

    ``head`` is the first bytes of the output (only ``MAX_HEADER_BYTES`` are
    examined).  The block ends at an empty line; with ``at_eof`` true (the
    head is the whole output) a block of headers with no body also counts.
    None means "not this format": the caller keeps the bytes as they are.
    A header block that breaks a rule (module docstring) raises
    :class:`InvalidCgiOutput`.
    """
    if kind not in (KIND_HTTP, KIND_CGI):
        return None
    at_eof = at_eof and len(head) <= MAX_HEADER_BYTES
    head = head[:MAX_HEADER_BYTES]
    lines: List[str] = []
    offset = 0
    too_large = False
    while True:
        end = head.find(b'\n', offset)
        if end < 0:
            if not at_eof:
                if len(head) < MAX_HEADER_BYTES:
                    return None
                too_large = True
            if offset < len(head):
                lines.append(_strip_cr(head[offset:].decode('latin-1')))
            offset = len(head)
            break
        line = _strip_cr(head[offset:end].decode('latin-1'))
        offset = end + 1
        if not line:
            break
        lines.append(line)
    response = _interpret(lines, kind, offset)
    if response is not None and too_large:
        raise InvalidCgiOutput('the header block does not end within %d '
                               'bytes' % MAX_HEADER_BYTES)
    return response


def _interpret(lines: List[str], kind: str, offset: int
               ) -> Optional[CgiResponse]:
    status: Optional[Tuple[int, str]] = (200, 'OK')
    first_line = 1
    if kind == KIND_HTTP:
        if not lines:
            return None
        status_line = lines.pop(0)
        if _CONTROL.search(status_line):
            raise InvalidCgiOutput('the status line contains a control '
                                   'character')
        found = _STATUS_LINE.fullmatch(status_line)
        status = found and _status(found.group(1), found.group(2))
        if not status:
            return None
        first_line = 2
    fields: List[Tuple[str, str]] = []
    for number, line in enumerate(lines, first_line):
        name, sep, value = line.partition(':')
        if not sep:
            return None
        if _CONTROL.search(name):
            raise InvalidCgiOutput('the header name on line %d contains a '
                                   'control character' % number)
        if not _TOKEN.fullmatch(name):
            return None
        if _CONTROL.search(value):
            raise InvalidCgiOutput('header %s contains a control character'
                                   % name)
        value = percent_encode_8bit(value.strip(' \t'))
        if kind == KIND_CGI and name.lower() == 'status':
            found = _CGI_STATUS.fullmatch(value)
            status = found and _status(found.group(1), found.group(2))
            if not status:
                return None
            continue
        fields.append((name, value))
        if len(fields) > MAX_HEADER_COUNT:
            raise InvalidCgiOutput('more than %d headers' % MAX_HEADER_COUNT)
    response = CgiResponse(*status, body_offset=offset)
    dropped = set(HOP_BY_HOP_HEADERS)
    for name, value in fields:
        if name.lower() == 'connection':
            dropped.update(option.strip().lower()
                           for option in value.split(','))
    for name, value in fields:
        lower = name.lower()
        if lower in dropped or not program_may_set(name):
            continue
        response.headers.append((name, value))
        if lower == 'content-type' and response.content_type is None:
            response.content_type = value
        elif lower.startswith(META_PREFIX) and len(name) > len(META_PREFIX):
            response.meta[name[len(META_PREFIX):]] = value
    return response
