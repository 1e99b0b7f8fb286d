"""An immediate output read from its FIFO as the program writes it."""

import hashlib
import io
import subprocess
import threading

import pytest

from zerocloud import protocol
from zerocloud.object.outstream import OutputStream, StreamedAnswer

SIZE = 300000


def written(tmp_path, size: int, limit: int):
    """An OutputStream fed ``size`` bytes by another process, whose "run"
    ends when that process does (told from a thread, as the server's
    run ends apart from its reads); its pieces and the stream."""
    path = str(tmp_path / 'out.stdout')
    stream = OutputStream(path, limit)
    writer = subprocess.Popen(['sh', '-c', 'sleep 0.2; head -c %d /dev/zero'
                               ' > %s' % (size, path)])
    ender = threading.Thread(target=lambda: (writer.wait(),
                                             stream.run_ended()))
    ender.start()
    pieces = []
    while True:
        piece = stream.read()
        if not piece:
            break
        pieces.append(piece)
    ender.join()
    return pieces, stream


def test_a_stream_ends_only_with_its_run(tmp_path):
    """No writer yet is not the end: the program may not have started."""
    path = str(tmp_path / 'out.stdout')
    stream = OutputStream(path, 100)
    ended = []
    timer = threading.Timer(0.3, lambda: (ended.append(True),
                                          stream.run_ended()))
    timer.start()
    assert stream.read() == b''
    assert ended == [True]   # the read waited for the run's end
    timer.join()
    stream.close()


def test_the_output_is_read_whole_with_its_md5(tmp_path):
    pieces, stream = written(tmp_path, SIZE, SIZE)
    assert b''.join(pieces) == bytes(SIZE)
    assert (stream.size, stream.over_limit) == (SIZE, False)
    assert stream.digest.hexdigest() == hashlib.md5(bytes(SIZE)).hexdigest()


def test_an_output_past_its_limit_is_cut_and_said_so(tmp_path):
    pieces, stream = written(tmp_path, SIZE, 1000)
    assert stream.over_limit
    assert len(b''.join(pieces)) <= 1000
    assert stream.fd == -1


@pytest.mark.parametrize('whole', [b'', b'sent again whole'])
def test_a_streamed_answer_is_pieces_then_the_final_headers(tmp_path,
                                                            whole):
    """The pieces, then the members ``finish()`` gives (an output sent
    again whole), then the final headers."""
    pieces, stream = written(tmp_path, SIZE, SIZE)
    released = []
    frames = [(0, protocol.iter_member('stdout', len(whole), [whole], {
        protocol.PAX_REPLACES: '1'}))] if whole else []
    body = StreamedAnswer(
        'stdout', {protocol.PAX_CONTENT_TYPE: 'text/plain',
                   protocol.PAX_META_PREFIX + 'color': 'red'},
        pieces, stream, lambda: (frames, {'X-Nexe-Status': 'ok'}),
        lambda: released.append(True))
    wire = b''.join(body)
    body.close()
    assert released == [True]
    reader = protocol.MemberReader(io.BytesIO(wire).read)
    data, members = b'', []
    while True:
        member = reader.next_member()
        if member is None:
            break
        members.append(member)
        chunk = b''.join(iter(reader.read, b''))
        if protocol.PAX_END in member.pax:
            assert chunk == b'{"X-Nexe-Status": "ok"}'
        elif protocol.PAX_REPLACES in member.pax:
            assert chunk == whole
        else:
            data += chunk
    assert data == bytes(SIZE)
    assert members[0].pax == {protocol.PAX_CONTENT_TYPE: 'text/plain',
                              protocol.PAX_META_PREFIX + 'color': 'red'}
    middle = members[1:-2] if whole else members[1:-1]
    assert all(m.pax == {} for m in middle)
    assert (protocol.PAX_REPLACES in members[-2].pax) == bool(whole)
    assert protocol.PAX_END in members[-1].pax
    assert all(m.name == 'stdout' for m in members)
