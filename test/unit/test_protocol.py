import io
import re
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


def pax_member(name: str, data: bytes, records: dict) -> bytes:
    """A member whose PAX header carries ``records`` as given."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.pax_headers = records
    return (info.tobuf(tarfile.PAX_FORMAT) + data +
            protocol.padding(len(data)))


@pytest.mark.parametrize('size', ['abc', '-5', '+3', ' 3', '3.0', '\u0663'])
def test_bad_pax_size_is_a_framing_error(size):
    wire = pax_member('sysmap', b'123', {'size': size})
    reader = protocol.MemberReader(io.BytesIO(wire).read)
    with pytest.raises(protocol.FramingError,
                       match='^%s$' % re.escape('bad PAX size %r' % size)):
        reader.next_member()


def test_pax_size_wins_over_the_header_size():
    wire = pax_member('sysmap', b'123', {'size': '3'})
    reader = protocol.MemberReader(io.BytesIO(wire).read)
    assert reader.next_member().size == 3


def test_pax_key_that_is_not_utf8_is_kept_not_a_crash():
    record = b' x\xff=1\n'
    record = b'%d%s' % (len(record) + 2, record)
    info = tarfile.TarInfo('././@PaxHeader')
    info.type = tarfile.XHDTYPE
    info.size = len(record)
    wire = (info.tobuf(tarfile.USTAR_FORMAT) + record +
            protocol.padding(len(record)) +
            protocol.member_header('sysmap', 0))
    member = protocol.MemberReader(io.BytesIO(wire).read).next_member()
    assert member.name == 'sysmap'
