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
"""

import re
import unicodedata
from typing import Iterable, List, Optional, Tuple

#: Characters of one header item (e.g. one node's ``X-Nexe-Error``) after
#: encoding; bounds what a program's stderr or a user's names can add to a
#: response.
MAX_ITEM_LENGTH = 512
TRUNCATED = '...'
ITEM_SEPARATOR = ','
_SPACE_CONTROLS = '\t\r\n'
_SPACES = re.compile('[ %s]+' % _SPACE_CONTROLS)
#: Lone surrogates ``surrogateescape`` decoding makes of bytes 0x80-0xff.
_ESCAPED_BYTES = range(0xdc80, 0xdd00)


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
