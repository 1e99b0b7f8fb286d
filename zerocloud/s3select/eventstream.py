"""The AWS event stream framing of a ``SelectObjectContent`` answer.

A message is a prelude (total length, headers length, both u32 big
endian, then the CRC32 of those 8 bytes), the headers, the payload and
the CRC32 of everything before it.  A header is its name's length (u8),
the name, a value type (u8) and the value.

The builders make exactly the messages S3 documents for Select, headers
in its order, all of value type 7 (string).  ``MessageDecoder`` reads
any message of the format, every header value type included, so the
proxy can pass the sandbox's stream on message by message and tell a
stream cut mid-message from one that ends cleanly.

Limits (those of the AWS SDKs' decoders): headers at most 128 KiB,
payload at most 16 MiB; a string header value at most 65535 bytes.
"""

import datetime
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

#: Prelude: total length, headers length, prelude CRC.
PRELUDE_LENGTH = 12
#: Prelude plus the message CRC.
MESSAGE_OVERHEAD = PRELUDE_LENGTH + 4
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 16 * 1024 * 1024

_LENGTHS = struct.Struct('>II')
_U32 = struct.Struct('>I')
_U16 = struct.Struct('>H')
_MAX_STRING_BYTES = 0xFFFF
_MAX_NAME_BYTES = 0xFF

_TYPE_TRUE = 0
_TYPE_FALSE = 1
_TYPE_BYTES = 6
_TYPE_STRING = 7
_TYPE_TIMESTAMP = 8
_TYPE_UUID = 9
#: Fixed-width integer value types and their formats.
_INTEGER_TYPES = {
    2: struct.Struct('>b'), 3: struct.Struct('>h'),
    4: struct.Struct('>i'), 5: struct.Struct('>q')}
_TIMESTAMP = struct.Struct('>q')
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

#: A decoded header value: bool, int, bytes, str, a UTC datetime
#: (timestamp, millisecond precision) or a UUID.
HeaderValue = Union[bool, int, bytes, str, datetime.datetime, uuid.UUID]


@dataclass(frozen=True)
class Message:
    headers: Dict[str, HeaderValue]
    payload: bytes


def encode_message(headers: Sequence[Tuple[str, str]],
                   payload: bytes) -> bytes:
    """One framed message with string headers, in the order given."""
    encoded_headers = b''.join(_encode_string_header(name, value)
                               for name, value in headers)
    if len(encoded_headers) > MAX_HEADERS_LENGTH:
        raise ValueError('headers of %d bytes exceed %d'
                         % (len(encoded_headers), MAX_HEADERS_LENGTH))
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise ValueError('payload of %d bytes exceeds %d'
                         % (len(payload), MAX_PAYLOAD_LENGTH))
    lengths = _LENGTHS.pack(
        MESSAGE_OVERHEAD + len(encoded_headers) + len(payload),
        len(encoded_headers))
    head = lengths + _U32.pack(zlib.crc32(lengths)) + encoded_headers
    message_crc = zlib.crc32(payload, zlib.crc32(head))
    return b''.join((head, payload, _U32.pack(message_crc)))


def _encode_string_header(name: str, value: str) -> bytes:
    name_bytes = name.encode('utf-8')
    value_bytes = value.encode('utf-8')
    if not 1 <= len(name_bytes) <= _MAX_NAME_BYTES:
        raise ValueError('header name %r must be 1 to %d bytes'
                         % (name, _MAX_NAME_BYTES))
    if len(value_bytes) > _MAX_STRING_BYTES:
        raise ValueError('value of header %r exceeds %d bytes'
                         % (name, _MAX_STRING_BYTES))
    return b''.join((bytes((len(name_bytes),)), name_bytes,
                     bytes((_TYPE_STRING,)), _U16.pack(len(value_bytes)),
                     value_bytes))


def records_event(payload: bytes) -> bytes:
    """A ``Records`` event carrying output records (any number, or part)."""
    return encode_message(
        ((':event-type', 'Records'),
         (':content-type', 'application/octet-stream'),
         (':message-type', 'event')), payload)


def cont_event() -> bytes:
    """A ``Cont`` event: keeps the connection alive while nothing matches."""
    return encode_message(
        ((':event-type', 'Cont'), (':message-type', 'event')), b'')


def progress_event(scanned: int, processed: int, returned: int) -> bytes:
    """A ``Progress`` event, sent only when ``RequestProgress`` is enabled."""
    return _counts_event('Progress', scanned, processed, returned)


def stats_event(scanned: int, processed: int, returned: int) -> bytes:
    """The ``Stats`` event S3 sends once, just before ``End``."""
    return _counts_event('Stats', scanned, processed, returned)


def _counts_event(event_type: str, scanned: int, processed: int,
                  returned: int) -> bytes:
    payload = (
        '<?xml version="1.0" encoding="UTF-8"?><%s>'
        '<BytesScanned>%d</BytesScanned>'
        '<BytesProcessed>%d</BytesProcessed>'
        '<BytesReturned>%d</BytesReturned></%s>'
        % (event_type, scanned, processed, returned, event_type))
    return encode_message(
        ((':event-type', event_type), (':content-type', 'text/xml'),
         (':message-type', 'event')), payload.encode('ascii'))


def end_event() -> bytes:
    """The ``End`` event: without it a client knows the answer is cut."""
    return encode_message(
        ((':event-type', 'End'), (':message-type', 'event')), b'')


def error_event(code: str, message: str) -> bytes:
    """An error once the stream has started; ends the answer.

    A message too long for a string header is cut (at a character) so
    that the error still reaches the client.
    """
    return encode_message(
        ((':error-code', code),
         (':error-message', _truncate_utf8(message, _MAX_STRING_BYTES)),
         (':message-type', 'error')), b'')


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode('utf-8')
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode('utf-8', 'ignore')


class MessageDecoder:
    """Splits a byte stream fed in arbitrary pieces into ``Message``\\ s.

    ``feed`` raises ``ValueError`` on a bad CRC, length or header; the
    stream cannot be resumed after that.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held of a message not complete yet (0 between messages)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> List[Message]:
        """The messages ``data`` completes, in order."""
        self._buffer += data
        messages = []
        offset = 0
        while True:
            length = self._complete_length(offset)
            if length is None:
                break
            messages.append(_decode_message(
                bytes(self._buffer[offset:offset + length])))
            offset += length
        del self._buffer[:offset]
        return messages

    def _complete_length(self, offset: int) -> Optional[int]:
        """The length of the message at ``offset`` if all of it is here."""
        available = len(self._buffer) - offset
        if available < PRELUDE_LENGTH:
            return None
        total_length, _ = _check_prelude(
            bytes(self._buffer[offset:offset + PRELUDE_LENGTH]))
        return total_length if available >= total_length else None


def _check_prelude(prelude: bytes) -> Tuple[int, int]:
    """Total and headers length, once the prelude's CRC proves them."""
    (expected_crc,) = _U32.unpack_from(prelude, 8)
    if zlib.crc32(prelude[:8]) != expected_crc:
        raise ValueError('prelude CRC mismatch')
    total_length, headers_length = _LENGTHS.unpack_from(prelude)
    if headers_length > MAX_HEADERS_LENGTH:
        raise ValueError('headers length %d exceeds %d'
                         % (headers_length, MAX_HEADERS_LENGTH))
    payload_length = total_length - headers_length - MESSAGE_OVERHEAD
    if payload_length < 0:
        raise ValueError('total length %d too small for headers length %d'
                         % (total_length, headers_length))
    if payload_length > MAX_PAYLOAD_LENGTH:
        raise ValueError('payload length %d exceeds %d'
                         % (payload_length, MAX_PAYLOAD_LENGTH))
    return total_length, headers_length


def _decode_message(data: bytes) -> Message:
    _, headers_length = _check_prelude(data[:PRELUDE_LENGTH])
    (expected_crc,) = _U32.unpack_from(data, len(data) - 4)
    if zlib.crc32(data[:-4]) != expected_crc:
        raise ValueError('message CRC mismatch')
    headers_end = PRELUDE_LENGTH + headers_length
    return Message(headers=_decode_headers(data[PRELUDE_LENGTH:headers_end]),
                   payload=data[headers_end:-4])


def _decode_headers(data: bytes) -> Dict[str, HeaderValue]:
    headers: Dict[str, HeaderValue] = {}
    position = 0
    while position < len(data):
        name_length = data[position]
        name_bytes = _take(data, position + 1, name_length)
        position += 1 + name_length
        value_type = _take(data, position, 1)[0]
        value, position = _decode_value(data, position + 1, value_type)
        name = _decode_utf8(name_bytes, 'header name')
        if name in headers:
            raise ValueError('header %r appears twice' % name)
        headers[name] = value
    return headers


def _decode_value(data: bytes, position: int,
                  value_type: int) -> Tuple[HeaderValue, int]:
    """A header value of ``value_type`` and the position after it."""
    if value_type == _TYPE_TRUE:
        return True, position
    if value_type == _TYPE_FALSE:
        return False, position
    if value_type in _INTEGER_TYPES:
        layout = _INTEGER_TYPES[value_type]
        raw = _take(data, position, layout.size)
        return layout.unpack(raw)[0], position + layout.size
    if value_type in (_TYPE_BYTES, _TYPE_STRING):
        (length,) = _U16.unpack(_take(data, position, _U16.size))
        raw = _take(data, position + _U16.size, length)
        end = position + _U16.size + length
        if value_type == _TYPE_BYTES:
            return raw, end
        return _decode_utf8(raw, 'string header value'), end
    if value_type == _TYPE_TIMESTAMP:
        (milliseconds,) = _TIMESTAMP.unpack(
            _take(data, position, _TIMESTAMP.size))
        return _timestamp(milliseconds), position + _TIMESTAMP.size
    if value_type == _TYPE_UUID:
        return uuid.UUID(bytes=_take(data, position, 16)), position + 16
    raise ValueError('unknown header value type %d' % value_type)


def _take(data: bytes, position: int, length: int) -> bytes:
    """Exactly ``length`` bytes, or ``ValueError`` if the headers end."""
    if position + length > len(data):
        raise ValueError('header runs past the end of the headers')
    return data[position:position + length]


def _decode_utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        raise ValueError('%s is not UTF-8' % what) from None


def _timestamp(milliseconds: int) -> datetime.datetime:
    try:
        return _EPOCH + datetime.timedelta(milliseconds=milliseconds)
    except OverflowError:
        raise ValueError('timestamp %d ms is out of range'
                         % milliseconds) from None
