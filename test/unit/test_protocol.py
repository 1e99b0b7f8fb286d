import io
import tarfile

import pytest

from zerocloud import protocol


def stream(*members):
    out = b''
    for name, data, pax in members:
        out += b''.join(protocol.iter_member(name, len(data), [data], pax))
    return out


def test_round_trip_with_and_without_pax():
    wire = stream(('sysmap', b'{"a": 1}', None),
                  ('stdout', b'x' * 1000,
                   {'content_type': 'text/plain', 'meta.color': 'blue'}))
    reader = protocol.MemberReader(io.BytesIO(wire).read)
    first = reader.next_member()
    assert (first.name, first.size, first.pax) == ('sysmap', 8, {})
    assert reader.read() == b'{"a": 1}'
    second = reader.next_member()
    assert second.name == 'stdout'
    assert second.pax == {'content_type': 'text/plain', 'meta.color': 'blue'}
    assert reader.read(10000) == b'x' * 1000
    assert reader.next_member() is None


def test_member_length_is_exact():
    pax = {'content_type': 'text/plain', 'header.Status': '201 Created'}
    for size in (0, 1, 511, 512, 513):
        data = b'a' * size
        framed = b''.join(protocol.iter_member('out', size, [data], pax))
        assert protocol.member_length('out', size, pax) == len(framed)


def test_unread_member_is_skipped():
    wire = stream(('a', b'1' * 700, None), ('b', b'22', None))
    reader = protocol.MemberReader(io.BytesIO(wire).read)
    reader.next_member()
    assert reader.next_member().name == 'b'
    assert reader.read() == b'22'


def test_stream_is_readable_by_tarfile():
    wire = stream(('script', b'print(1)\n', {'content_type': 'x'}))
    with tarfile.open(fileobj=io.BytesIO(wire + b'\0' * 1024)) as tar:
        member = tar.getmember('script')
        assert tar.extractfile(member).read() == b'print(1)\n'


def test_short_stream_raises():
    wire = stream(('a', b'1' * 700, None))[:600]
    reader = protocol.MemberReader(io.BytesIO(wire).read)
    reader.next_member()
    with pytest.raises(protocol.FramingError):
        reader.skip()


def test_wrong_chunk_total_raises():
    with pytest.raises(protocol.FramingError):
        b''.join(protocol.iter_member('a', 5, [b'123']))
    with pytest.raises(protocol.FramingError):
        b''.join(protocol.iter_member('a', 2, [b'123']))


def test_non_regular_member_refused():
    info = tarfile.TarInfo('link')
    info.type = tarfile.SYMTYPE
    info.linkname = '/etc/passwd'
    reader = protocol.MemberReader(io.BytesIO(info.tobuf()).read)
    with pytest.raises(protocol.FramingError):
        reader.next_member()
