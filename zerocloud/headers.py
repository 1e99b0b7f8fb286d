"""Text from programs and users made safe to send as an HTTP header value.

A node's last stderr line, a sandbox status naming a user's tar member, an
object path in an error: any of these may end up in an ``X-Nexe-*`` response
header.  eventlet writes header values as Latin-1 and, when it cannot, drops
the connection without an answer; the proxy then retries and Swift
error-limits the object server, so a few such jobs take storage servers out
of service for everyone.  Every header value built from such text goes
through :func:`header_value`:

* printable ASCII (space to ``~``) stays, except ``,``, which separates the
  per-node items of an ``X-Nexe-*`` header and becomes ``%2C``;
* any other character becomes the percent-encoded bytes of its UTF-8 form
  (``☃`` → ``%E2%98%83``); a lone surrogate left by ``surrogateescape``
  decoding becomes its original byte (``\\udcff`` → ``%FF``), any other
  lone surrogate U+FFFD;
* runs of spaces, tabs, CR and LF become one space (none at either end);
  other control characters are removed;
* the result is at most ``limit`` characters (:data:`MAX_ITEM_LENGTH` by
  default); a longer one is cut between characters and ends in ``...``.

``%`` itself is kept, so encoding twice changes nothing: a value may pass
through the object server and the proxy.  Clients decode with
``urllib.parse.unquote`` (``errors='surrogateescape'`` keeps bytes that were
not UTF-8).

Every header line we send (``Name: value``) stays under
:data:`MAX_HEADER_LINE` bytes, which common clients and proxies accept
(Python's ``http.client`` refuses lines over 64 KiB): per-node lists of a
wide job keep their first items and end in one marker item,
``...(<n> more)``, at the same place in every list
(:func:`fit_item_lists`); a long text ends in :data:`TRUNCATED`
(:func:`fit_text`).
"""

import re
import unicodedata
from typing import Dict, Iterable, List, Optional, Tuple

#: Characters of one header item (e.g. one node's ``X-Nexe-Error``) after
#: encoding; bounds what a program's stderr or a user's names can add to a
#: response.
MAX_ITEM_LENGTH = 512
#: Bytes of one response header line, CRLF included, that we stay under.
MAX_HEADER_LINE = 8192
TRUNCATED = '...'
ITEM_SEPARATOR = ','
_SPACE_CONTROLS = '\t\r\n'
_SPACES = re.compile('[ %s]+' % _SPACE_CONTROLS)
#: Lone surrogates ``surrogateescape`` decoding makes of bytes 0x80-0xff.
_ESCAPED_BYTES = range(0xdc80, 0xdd00)

#: ``X-Nexe-Status`` of an answer whose body streams while its (one) node
#: runs: the node's final status is known only at the end.  A body that
#: ends cleanly (the last, empty chunk of ``Transfer-Encoding: chunked``)
#: comes from a node that succeeded; when the node fails, the body is cut
#: short (the connection closes without that chunk), which HTTP/1.1
#: clients report as an error.  The final ``X-Nexe-*`` are in the proxy's
#: log line of the job and its accounting object, and in the answer's
#: trailer fields for a client that asked (:mod:`zerocloud.proxy.trailers`).
STREAMING_STATUS = 'streaming'


def _is_plain(char: str) -> bool:
    return ' ' <= char <= '~' and char != ITEM_SEPARATOR


def _encode(char: str) -> str:
    if _is_plain(char):
        return char
    code = ord(char)
    if code in _ESCAPED_BYTES:
        return '%%%02X' % (code - 0xdc00)
    if 0xd800 <= code <= 0xdfff:
        char = '\ufffd'
    return ''.join('%%%02X' % byte for byte in char.encode('utf-8'))


def header_value(text: str,
                 limit: Optional[int] = MAX_ITEM_LENGTH) -> str:
    """``text`` as a header value (see the module docstring).

    ``limit=None`` only for values whose length the server itself bounds
    (e.g. one etag per channel).
    """
    text = ''.join(char for char in text
                   if char in _SPACE_CONTROLS
                   or unicodedata.category(char) != 'Cc')
    pieces = [_encode(char) for char in _SPACES.sub(' ', text).strip(' ')]
    value = ''.join(pieces)
    if limit is None or len(value) <= limit:
        return value
    kept: List[str] = []
    size = len(TRUNCATED)
    for piece in pieces:
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return ''.join(kept) + TRUNCATED


def value_room(name: str) -> int:
    """Characters a value of header ``name`` may have: the line
    ``name: value`` and its CRLF stay under :data:`MAX_HEADER_LINE`."""
    return MAX_HEADER_LINE - 1 - len(name) - len(': \r\n')


def more_items(count: int) -> str:
    """The last item of a list that left ``count`` items out."""
    return '...(%d more)' % count


def fit_item_lists(lists: Dict[str, List[str]],
                   heads: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Header values of per-node item lists (each as long as the others),
    joined by commas after the fixed text ``heads[name]``, if any.

    When one would not fit its line, every list keeps only as many leading
    items as all of them can, and ends in :func:`more_items`: item *i* of
    one list still belongs to item *i* of the others.
    """
    heads = heads or {}
    total = max((len(items) for items in lists.values()), default=0)
    rooms = {name: value_room(name) - len(heads.get(name, ''))
             for name in lists}
    keep = total
    if any(len(ITEM_SEPARATOR.join(items)) > rooms[name]
           for name, items in lists.items()):
        marker = len(ITEM_SEPARATOR + more_items(total))
        keep = min(_leading_items(items, rooms[name] - marker)
                   for name, items in lists.items())
    values = {}
    for name, items in lists.items():
        kept = items[:keep] + ([more_items(total - keep)]
                               if keep < total else [])
        values[name] = heads.get(name, '') + ITEM_SEPARATOR.join(kept)
    return values


def _leading_items(items: List[str], room: int) -> int:
    """How many of the first ``items``, comma-joined, fit in ``room``."""
    size = -len(ITEM_SEPARATOR)
    for count, item in enumerate(items):
        size += len(ITEM_SEPARATOR) + len(item)
        if size > room:
            return count
    return len(items)


def fit_text(name: str, value: str) -> str:
    """``value`` cut to fit the line of header ``name``, ending in
    :data:`TRUNCATED` when cut."""
    room = value_room(name)
    if len(value) <= room:
        return value
    return value[:room - len(TRUNCATED)] + TRUNCATED


def _is_printable_ascii(value: str) -> bool:
    return all(' ' <= char <= '~' for char in value)


def guard_headers(headers: Iterable[Tuple[str, str]]
                  ) -> List[Tuple[str, str]]:
    """Response headers that can always be sent: a value that is not
    printable ASCII goes through :func:`header_value`.

    The last line of defence at a WSGI boundary, behind the encoding each
    ``X-Nexe-*`` value already gets where it is built.
    """
    return [(name, value if _is_printable_ascii(value)
             else header_value(value)) for name, value in headers]
