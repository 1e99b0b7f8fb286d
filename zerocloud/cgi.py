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


@dataclass
class CgiResponse:
    """The header block of a ``message/http`` or ``message/cgi`` output.

    ``headers`` keeps every printed header (original case and order) except
    the CGI ``Status`` field; ``meta`` maps the part after
    ``X-Object-Meta-`` to its value; the body starts at ``body_offset``.
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


def _status(code: str, reason: Optional[str]) -> Optional[Tuple[int, str]]:
    status = int(code)
    if not 100 <= status <= 599:
        return None
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ''
    return status, reason.strip()


def parse_cgi_output(head: bytes, kind: str, *, at_eof: bool = False
                     ) -> Optional[CgiResponse]:
    """Parse the header block at the start of a program's output.

    ``head`` is the first bytes of the output (only ``MAX_HEADER_BYTES`` are
    examined).  The block ends at an empty line; with ``at_eof`` true (the
    head is the whole output) a block of headers with no body also counts.
    None means "not this format": the caller keeps the bytes as they are.
    """
    if kind not in (KIND_HTTP, KIND_CGI):
        return None
    head = head[:MAX_HEADER_BYTES]
    lines: List[str] = []
    offset = 0
    while True:
        end = head.find(b'\n', offset)
        if end < 0:
            if not at_eof or len(head) >= MAX_HEADER_BYTES:
                return None
            if offset < len(head):
                lines.append(head[offset:].decode('latin-1').rstrip('\r'))
            offset = len(head)
            break
        line = head[offset:end].decode('latin-1').rstrip('\r')
        offset = end + 1
        if not line:
            break
        lines.append(line)
    return _interpret(lines, kind, offset)


def _interpret(lines: List[str], kind: str, offset: int
               ) -> Optional[CgiResponse]:
    status: Optional[Tuple[int, str]] = (200, 'OK')
    if kind == KIND_HTTP:
        if not lines:
            return None
        found = _STATUS_LINE.fullmatch(lines.pop(0))
        status = found and _status(found.group(1), found.group(2))
    response = CgiResponse(0, '', body_offset=offset)
    for line in lines:
        name, sep, value = line.partition(':')
        if not sep or not _TOKEN.fullmatch(name):
            return None
        value = value.strip()
        if kind == KIND_CGI and name.lower() == 'status':
            found = _CGI_STATUS.fullmatch(value)
            status = found and _status(found.group(1), found.group(2))
            continue
        response.headers.append((name, value))
        if name.lower() == 'content-type' and response.content_type is None:
            response.content_type = value
        elif name.lower().startswith(META_PREFIX) \
                and len(name) > len(META_PREFIX):
            response.meta[name[len(META_PREFIX):]] = value
    if not status:
        return None
    response.status, response.reason = status
    return response
