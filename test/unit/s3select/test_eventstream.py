"""Tests of the event stream framing, checked against botocore's parser."""

import datetime
import struct
import uuid
import zlib
from typing import List

import pytest
from botocore.eventstream import EventStreamBuffer

from zerocloud.s3select import eventstream
from zerocloud.s3select.eventstream import (MAX_PAYLOAD_LENGTH,
                                            MessageDecoder, cont_event,
                                            encode_message, end_event,
                                            error_event, progress_event,
                                            records_event, stats_event)


def botocore_messages(data: bytes) -> list:
    stream = EventStreamBuffer()
    stream.add_data(data)
    return list(stream)


def decode_all(data: bytes) -> List[eventstream.Message]:
    decoder = MessageDecoder()
    messages = decoder.feed(data)
    assert decoder.buffered == 0
    return messages


def raw_message(headers: bytes, payload: bytes = b'') -> bytes:
    """A message framed by hand, so any header bytes can be sent."""
    lengths = struct.pack('>II', 16 + len(headers) + len(payload),
                          len(headers))
    head = lengths + struct.pack('>I', zlib.crc32(lengths)) + headers
    body = head + payload
    return body + struct.pack('>I', zlib.crc32(body))


def test_encode_message_layout():
    data = encode_message([('a', 'b')], b'xyz')
    total, headers_length, prelude_crc = struct.unpack('>III', data[:12])
    assert total == len(data) == 16 + 6 + 3
    assert headers_length == 6
    assert prelude_crc == zlib.crc32(data[:8])
    assert data[12:18] == b'\x01a\x07\x00\x01b'
    assert data[18:21] == b'xyz'
    assert struct.unpack('>I', data[-4:])[0] == zlib.crc32(data[:-4])


@pytest.mark.parametrize('event, headers, payload', [
    (records_event(b'1,2\n3,4\n'),
     [(':event-type', 'Records'),
      (':content-type', 'application/octet-stream'),
      (':message-type', 'event')], b'1,2\n3,4\n'),
    (cont_event(),
     [(':event-type', 'Cont'), (':message-type', 'event')], b''),
    (end_event(),
     [(':event-type', 'End'), (':message-type', 'event')], b''),
    (error_event('CastFailed', 'Attempt to convert from one data type to '
                 'another failed: cast from STRING to INT.'),
     [(':error-code', 'CastFailed'),
      (':error-message', 'Attempt to convert from one data type to '
       'another failed: cast from STRING to INT.'),
      (':message-type', 'error')], b''),
])
def test_builders_decode_with_botocore(event, headers, payload):
    (message,) = botocore_messages(event)
    assert list(message.headers.items()) == headers
    assert message.payload == payload
    ours = decode_all(event)
    assert list(ours[0].headers.items()) == headers
    assert ours[0].payload == payload


@pytest.mark.parametrize('builder, root', [
    (progress_event, 'Progress'), (stats_event, 'Stats')])
def test_counts_events(builder, root):
    (message,) = botocore_messages(builder(512, 1024, 37))
    assert list(message.headers.items()) == [
        (':event-type', root), (':content-type', 'text/xml'),
        (':message-type', 'event')]
    payload = message.payload.decode()
    assert payload.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert payload.endswith(
        '<%s><BytesScanned>512</BytesScanned>'
        '<BytesProcessed>1024</BytesProcessed>'
        '<BytesReturned>37</BytesReturned></%s>' % (root, root))


def test_select_stream_parses_with_botocore_event_stream():
    """The whole answer, as botocore's S3 client turns it into events."""
    from botocore.eventstream import EventStream
    from botocore.model import ServiceModel
    from botocore.parsers import EventStreamXMLParser
    from botocore.session import get_session

    model = ServiceModel(get_session().get_service_data('s3'), 's3')
    output = model.operation_model('SelectObjectContent').output_shape
    shape = output.members['Payload']
    data = b''.join((records_event(b'a,1\n'), cont_event(),
                     progress_event(1, 2, 3), records_event(b'b,2\n'),
                     stats_event(10, 20, 8), end_event()))

    class RawStream:
        def stream(self):
            yield data

    events = list(EventStream(RawStream(), shape, EventStreamXMLParser(),
                              'SelectObjectContent'))
    assert events == [
        {'Records': {'Payload': b'a,1\n'}},
        {'Cont': {}},
        {'Progress': {'Details': {'BytesScanned': 1, 'BytesProcessed': 2,
                                  'BytesReturned': 3}}},
        {'Records': {'Payload': b'b,2\n'}},
        {'Stats': {'Details': {'BytesScanned': 10, 'BytesProcessed': 20,
                               'BytesReturned': 8}}},
        {'End': {}},
    ]


def test_error_event_raises_in_botocore_event_stream():
    from botocore.eventstream import EventStream
    from botocore.exceptions import EventStreamError
    from botocore.model import ServiceModel
    from botocore.parsers import EventStreamXMLParser
    from botocore.session import get_session

    model = ServiceModel(get_session().get_service_data('s3'), 's3')
    shape = model.operation_model(
        'SelectObjectContent').output_shape.members['Payload']

    class RawStream:
        def stream(self):
            yield records_event(b'x\n') + error_event('CastFailed', 'bad')

    events = iter(EventStream(RawStream(), shape, EventStreamXMLParser(),
                              'SelectObjectContent'))
    assert next(events) == {'Records': {'Payload': b'x\n'}}
    with pytest.raises(EventStreamError) as caught:
        next(events)
    assert caught.value.response['Error'] == {'Code': 'CastFailed',
                                              'Message': 'bad'}


def test_error_message_too_long_is_cut_at_a_character():
    message = 'é' * 40000
    (decoded,) = botocore_messages(error_event('InternalError', message))
    text = decoded.headers[':error-message']
    assert len(text.encode('utf-8')) <= 0xFFFF
    assert message.startswith(text)
    assert len(text) == 0xFFFF // 2


def test_utf8_header_values_round_trip():
    data = encode_message([(':error-message', 'naïve ✓')], b'')
    (message,) = botocore_messages(data)
    assert message.headers[':error-message'] == 'naïve ✓'
    assert decode_all(data)[0].headers[':error-message'] == 'naïve ✓'


@pytest.mark.parametrize('headers, payload', [
    ([('', 'x')], b''),
    ([('n' * 256, 'x')], b''),
    ([('a', 'v' * 0x10000)], b''),
    ([('h%d' % i, 'v' * 60000) for i in range(3)], b''),
    ([], b'\0' * (MAX_PAYLOAD_LENGTH + 1)),
])
def test_encode_refuses_what_the_format_cannot_carry(headers, payload):
    with pytest.raises(ValueError):
        encode_message(headers, payload)


def test_encode_accepts_largest_payload():
    data = encode_message([], b'\0' * MAX_PAYLOAD_LENGTH)
    (message,) = decode_all(data)
    assert len(message.payload) == MAX_PAYLOAD_LENGTH


def test_decoder_splits_a_stream_fed_byte_by_byte():
    events = (records_event(b'r1'), progress_event(1, 1, 1),
              records_event(b'r2'), end_event())
    stream = b''.join(events)
    decoder = MessageDecoder()
    messages = []
    buffered = []
    for index in range(len(stream)):
        messages.extend(decoder.feed(stream[index:index + 1]))
        buffered.append(decoder.buffered)
    assert [m.headers.get(':event-type') for m in messages] == [
        'Records', 'Progress', 'Records', 'End']
    assert [m.payload for m in messages if
            m.headers[':event-type'] == 'Records'] == [b'r1', b'r2']
    assert decoder.buffered == 0
    # Each message is held until its last byte, never a byte longer.
    assert max(buffered) == max(len(event) for event in events) - 1
    assert buffered.count(0) == len(events)


def test_decoder_reports_an_incomplete_message():
    first, second = records_event(b'abc'), end_event()
    decoder = MessageDecoder()
    (message,) = decoder.feed(first + second[:5])
    assert message.payload == b'abc'
    assert decoder.buffered == 5
    assert decoder.feed(b'') == []
    assert decoder.buffered == 5
    (end,) = decoder.feed(second[5:])
    assert end.headers == {':event-type': 'End', ':message-type': 'event'}
    assert decoder.buffered == 0


def test_decoder_reads_every_header_value_type():
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000,
                             tzinfo=datetime.timezone.utc)
    millis = int((when - datetime.datetime(
        1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds() * 1000)
    ident = uuid.UUID('12345678-1234-5678-1234-567812345678')
    headers = b''.join((
        b'\x01t\x00', b'\x01f\x01',
        b'\x01b\x02\xff', b'\x01s\x03' + struct.pack('>h', -2),
        b'\x01i\x04' + struct.pack('>i', 70000),
        b'\x01l\x05' + struct.pack('>q', -2 ** 40),
        b'\x01y\x06\x00\x03\x00\x01\x02',
        b'\x01z\x07\x00\x02ok',
        b'\x01d\x08' + struct.pack('>q', millis),
        b'\x01u\x09' + ident.bytes))
    data = raw_message(headers, b'p')
    (message,) = decode_all(data)
    assert message.headers == {
        't': True, 'f': False, 'b': -1, 's': -2, 'i': 70000,
        'l': -2 ** 40, 'y': b'\x00\x01\x02', 'z': 'ok', 'd': when,
        'u': ident}
    assert message.payload == b'p'
    (theirs,) = botocore_messages(data)
    assert theirs.headers['i'] == 70000
    assert theirs.headers['d'] == millis


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1:]


@pytest.mark.parametrize('corrupt', [
    lambda m: flip(m, 2),            # total length
    lambda m: flip(m, 6),            # headers length
    lambda m: flip(m, 10),           # prelude CRC
    lambda m: flip(m, 20),           # a header byte
    lambda m: flip(m, len(m) - 6),   # a payload byte
    lambda m: flip(m, len(m) - 1),   # message CRC
], ids=['total', 'headers-length', 'prelude-crc', 'header', 'payload',
        'message-crc'])
def test_decoder_refuses_corruption(corrupt):
    message = records_event(b'payload')
    with pytest.raises(ValueError, match='CRC'):
        MessageDecoder().feed(corrupt(message) + end_event())


def test_corrupt_prelude_is_refused_before_the_rest_arrives():
    """A bad prelude must not make the decoder wait for a bogus length."""
    lengths = struct.pack('>II', 2 ** 31, 0)
    decoder = MessageDecoder()
    with pytest.raises(ValueError, match='prelude CRC'):
        decoder.feed(lengths + b'\0\0\0\0')


@pytest.mark.parametrize('total, headers_length, message', [
    (15, 0, 'too small'),
    (20, 8, 'too small'),
    (16 + 128 * 1024 + 1, 128 * 1024 + 1, 'headers length'),
    (16 + MAX_PAYLOAD_LENGTH + 1, 0, 'payload length'),
])
def test_decoder_refuses_impossible_lengths(total, headers_length, message):
    lengths = struct.pack('>II', total, headers_length)
    prelude = lengths + struct.pack('>I', zlib.crc32(lengths))
    with pytest.raises(ValueError, match=message):
        MessageDecoder().feed(prelude)


@pytest.mark.parametrize('headers, message', [
    (b'\x05ab', 'past the end'),
    (b'\x01a\x07\x00\x09ab', 'past the end'),
    (b'\x01a\x04\x00\x01', 'past the end'),
    (b'\x01a\x0a', 'unknown header value type 10'),
    (b'\x01a\x00\x01a\x01', 'twice'),
    (b'\x01\xff\x00', 'not UTF-8'),
    (b'\x01a\x07\x00\x01\xff', 'not UTF-8'),
    (b'\x01a\x08' + struct.pack('>q', 2 ** 62), 'out of range'),
])
def test_decoder_refuses_bad_headers(headers, message):
    with pytest.raises(ValueError, match=message):
        MessageDecoder().feed(raw_message(headers))
