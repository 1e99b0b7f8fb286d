"""Read channels the host serves: files stored encrypted (Swift's
AES-256-CTR), decrypted as read, and FIFOs read in order."""

import hashlib
import os
import random
import select
import threading

import pytest
from swift.common.middleware.crypto.crypto_utils import Crypto

from test.unit.runtime.helpers import (
    output, read_channel, write_channel, write_manifest)
from zerocloud.cipher import CipherKey, KeyStream

KEY = bytes(range(32))


def encrypt(plain: bytes, iv: bytes) -> bytes:
    """What Swift's encrypter stores for ``plain``."""
    return Crypto().create_encryption_ctxt(KEY, iv).update(plain)


@pytest.mark.parametrize('iv', [bytes(16), b'\xff' * 15 + b'\xf0',
                                os.urandom(16)])
def test_key_stream_decrypts_any_range(iv):
    plain = random.Random(1).randbytes(70000)
    stored = encrypt(plain, iv)
    stream = KeyStream(CipherKey(KEY, iv))
    rng = random.Random(2)
    offset = 0
    for _ in range(200):
        if rng.random() < 0.5:   # a seek somewhere, else go on reading
            offset = rng.randrange(len(plain))
        size = rng.randrange(1, 5000)
        assert stream.apply(offset, stored[offset:offset + size]) == \
            plain[offset:offset + size], (offset, size)
        offset = min(offset + size, len(plain))


def test_cipher_key_travels_as_json_and_refuses_bad_values():
    key = CipherKey(KEY, b'i' * 16)
    assert CipherKey.from_json(key.to_json()) == key
    assert 'key' not in repr(key).replace('CipherKey', '')
    for bad in ({'iv': key.to_json()['iv']}, {'key': '***', 'iv': 'AA=='},
                dict(key.to_json(), iv='AAAA'), 'text', None):
        with pytest.raises(ValueError):
            CipherKey.from_json(bad)


READER = r'''
import hashlib, os, sys
print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())
with open("/dev/input", "rb") as f:
    print(hashlib.md5(f.read()).hexdigest())
    for offset, size in %r:
        f.seek(offset)
        print(hashlib.md5(f.read(size)).hexdigest())
    print(hashlib.md5(os.pread(f.fileno(), 5000, 12345)).hexdigest())
# The descriptor number is used again for a plain file: read as stored.
with open("/dev/plain", "rb") as g:
    print(hashlib.md5(g.read()).hexdigest())
'''


def test_a_program_reads_ciphered_channels_as_plaintext(
        runtime, python_image, tmp_path):
    plain = random.Random(3).randbytes(300000)
    iv = os.urandom(16)
    stored = tmp_path / 'object.data'
    stored.write_bytes(encrypt(plain, iv))
    other = tmp_path / 'plain'
    other.write_bytes(b'not encrypted')
    seeks = [(299990, 100), (17, 70000), (65535, 3), (0, 1)]
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python', stdin=str(stored),
        args=['python', '-c', READER % (seeks,)],
        channels=[read_channel(str(stored), '/dev/input'),
                  read_channel(str(other), '/dev/plain')])
    key = CipherKey(KEY, iv)
    result = runtime.run(manifest, ciphers={'/dev/stdin': key,
                                            '/dev/input': key})
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        output(tmp_path, 'stderr')
    md5 = (lambda data: hashlib.md5(data).hexdigest())
    assert output(tmp_path).decode().split() == [
        md5(plain), md5(plain)] + [
        md5(plain[offset:offset + size]) for offset, size in seeks] + [
        md5(plain[12345:17345]), md5(b'not encrypted')]
    # The stored file is untouched: still ciphertext.
    assert stored.read_bytes() == encrypt(plain, iv)


def test_only_read_or_write_channels_on_files_are_ciphered(
        runtime, python_image, tmp_path):
    (tmp_path / 'both').write_bytes(b'')
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python', args=['python'],
        channels=['%s, /dev/both, 3, 0, 9, 9, 9, 9' % (tmp_path / 'both')])
    result = runtime.run(manifest, ciphers={
        '/dev/both': CipherKey(KEY, bytes(16))})
    assert result.report.status == 'channel /dev/both: only a read or a ' \
        'write channel on a file can be ciphered'


def feed_fifo(path: str, data: bytes) -> None:
    """A FIFO at ``path`` that a thread fills with ``data``, then ends."""
    os.mkfifo(path)

    def feed():
        with open(path, 'wb') as fifo:
            try:
                fifo.write(data)
            except BrokenPipeError:
                pass   # the program stopped reading
    threading.Thread(target=feed, daemon=True).start()


STREAM_READER = r'''
import hashlib, os, sys
with open("/dev/input", "rb") as f:
    print(hashlib.md5(f.read(1000)).hexdigest())
    print(hashlib.md5(f.read()).hexdigest())
    try:
        f.seek(0)
    except OSError as err:   # io.UnsupportedOperation: Python asked
        print(err)
    try:
        os.pread(f.fileno(), 10, 0)
    except OSError as err:
        print(err.strerror)
print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())
'''


def test_a_program_reads_fifos_in_order(runtime, python_image, tmp_path):
    """A named device on a FIFO is read as it is fed; Python finds it is
    not seekable, and a positioned read of it is ``ESPIPE``.  stdin on a
    FIFO is read as well."""
    plain = random.Random(4).randbytes(300000)
    feed_fifo(str(tmp_path / 'input'), plain)
    feed_fifo(str(tmp_path / 'stdin'), plain[:5000])
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        stdin=str(tmp_path / 'stdin'),
        args=['python', '-c', STREAM_READER],
        channels=[read_channel(str(tmp_path / 'input'), '/dev/input')])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        output(tmp_path, 'stderr')
    md5 = (lambda data: hashlib.md5(data).hexdigest())
    assert output(tmp_path).decode().splitlines() == [
        md5(plain[:1000]), md5(plain[1000:]),
        'File or stream is not seekable.', 'Invalid seek', md5(plain[:5000])]


def filled_fifo(path: str, data: bytes) -> int:
    """A FIFO at ``path`` holding ``data`` whose writer is gone already;
    the descriptor that keeps its data alive (close it after the run)."""
    os.mkfifo(path)
    keeper = os.open(path, os.O_RDWR)
    os.write(keeper, data)
    writer = os.open(path, os.O_WRONLY)
    os.close(keeper)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.close(writer)
    return reader


def test_a_fifo_whose_writer_left_before_the_run_is_read_whole(
        runtime, python_image, tmp_path):
    """A connected node's input may be all sent and ended before its
    program opens it: neither stdin nor a named device then waits for
    another writer, and both read to the end."""
    plain = random.Random(6).randbytes(20000)
    keepers = [filled_fifo(str(tmp_path / 'input'), plain),
               filled_fifo(str(tmp_path / 'stdin'), plain[:5000])]
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        stdin=str(tmp_path / 'stdin'), timeout=20,
        args=['python', '-c', 'import hashlib, sys\n'
              'print(hashlib.md5(open("/dev/input", "rb").read())'
              '.hexdigest())\n'
              'print(hashlib.md5(sys.stdin.buffer.read()).hexdigest())\n'],
        channels=[read_channel(str(tmp_path / 'input'), '/dev/input')])
    try:
        result = runtime.run(manifest)
    finally:
        for fd in keepers:
            os.close(fd)
    assert (result.report.status, result.report.retcode) == ('ok', 0), \
        output(tmp_path, 'stderr')
    assert output(tmp_path).decode().splitlines() == [
        hashlib.md5(plain).hexdigest(),
        hashlib.md5(plain[:5000]).hexdigest()]


def test_a_program_writes_a_named_fifo_as_a_stream(
        runtime, python_image, tmp_path):
    """A named write device on a FIFO (a connection to another node) is
    written in order as its reader takes it; a seek on it is
    ``ESPIPE``."""
    got = drain_fifo(str(tmp_path / 'edge'))
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', 'import os\n'
              'with open("/dev/out/next", "wb") as f:\n'
              '    f.write(b"a" * 70000)\n'
              '    f.flush()\n'
              '    try:\n'
              '        f.seek(0)\n'
              '    except OSError as err:\n'
              '        print(err)\n'
              '    f.write(b"b" * (3 << 20))\n'],
        channels=[write_channel(str(tmp_path / 'edge'), '/dev/out/next')])
    result = runtime.run(manifest)
    got['thread'].join(30)
    assert (result.report.status, result.report.retcode) == ('ok', 0), \
        output(tmp_path, 'stderr')
    assert got['data'] == b'a' * 70000 + b'b' * (3 << 20)
    assert output(tmp_path).decode().splitlines() == [
        'File or stream is not seekable.']


def test_served_calls_check_guest_pointers_and_follow_descriptors(
        runtime, wat_programs, tmp_path):
    """``served_calls.wat``: bad pointers are ``EFAULT``, bad seeks
    ``EINVAL``; a ``pread`` leaves the position; a ciphered descriptor
    renumbered stays ciphered, and a number used again for a plain file
    reads it as stored."""
    plain = random.Random(5).randbytes(1000)
    iv = os.urandom(16)
    stored = tmp_path / 'object.data'
    stored.write_bytes(encrypt(plain, iv))
    (tmp_path / 'plain').write_bytes(b'not encrypted')
    manifest = write_manifest(
        tmp_path, wat_programs['served_calls'],
        channels=[read_channel(str(stored), '/dev/input'),
                  read_channel(str(tmp_path / 'plain'), '/dev/plain')])
    result = runtime.run(manifest, ciphers={'/dev/input': CipherKey(KEY,
                                                                     iv)})
    assert result.report.status == 'ok', result.report.status
    zeros = bytes(8)
    ok, fault, inval, badf = b'\x00', b'\x15', b'\x1c', b'\x08'
    assert output(tmp_path) == b''.join([
        ok,                          # open /dev/input
        ok, plain[0:8],              # read
        ok, ok, plain[100:108],      # seek to 100, read
        inval, inval,                # seek before 0, bad whence
        ok, bytes([108]),            # tell
        fault, zeros,                # an iovec past the end
        fault, plain[108:116],       # nread past the end: not counted
        fault, zeros,                # the iovec array past the end
        ok, plain[200:208],          # pread at 200
        ok, bytes([108]),            # ... left the position at 108
        ok, ok,                      # open /dev/plain, renumber onto it
        ok, plain[108:116],          # the input under its new number
        badf, zeros,                 # the old number is closed
        ok, ok, ok, b'not encr',     # close; the number again: plain
    ])


WRITER = r'''
import os, sys
out = sys.stdout.buffer
for size in (1, 70000, 3 << 20, 5):
    out.write(bytes([size % 251]) * size)
out.flush()
os.write(1, b"direct")
for call in (lambda: os.lseek(1, 0, 0), lambda: os.pwrite(1, b"x", 0)):
    try:
        call()
    except OSError as err:
        print(err.strerror, file=sys.stderr)
'''


def drain_fifo(path: str, until_bytes: int = -1) -> dict:
    """A FIFO at ``path`` (opened before the run, as the object server
    does) that a thread reads; the result's ``data`` once it ends.  With
    ``until_bytes`` >= 0 the reader goes away after that many bytes."""
    os.mkfifo(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    got = {'data': b''}

    def drain():
        writer_seen = False
        while until_bytes < 0 or len(got['data']) < until_bytes:
            select.select([fd], [], [], 0.05)
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                writer_seen = True
                continue
            if chunk:
                writer_seen = True
                got['data'] += chunk
            elif writer_seen:
                break
        os.close(fd)
    got['thread'] = threading.Thread(target=drain, daemon=True)
    got['thread'].start()
    return got


def test_a_program_writes_stdout_into_a_fifo_as_a_stream(
        runtime, python_image, tmp_path):
    """stdout on a FIFO: every byte reaches the reader in order (Python's
    buffered writes and a direct ``os.write``); a seek or positioned
    write is ``ESPIPE``."""
    got = drain_fifo(str(tmp_path / 'stdout'))
    manifest = write_manifest(tmp_path, python_image, ProgramMember='python',
                              args=['python', '-c', WRITER])
    result = runtime.run(manifest)
    got['thread'].join(30)
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        output(tmp_path, 'stderr')
    assert got['data'] == b''.join(
        bytes([size % 251]) * size for size in (1, 70000, 3 << 20, 5)) + \
        b'direct'
    assert output(tmp_path, 'stderr').decode().splitlines() == [
        'Invalid seek', 'Invalid seek']


def test_a_stdout_fifo_whose_reader_went_away_fails_the_write(
        runtime, python_image, tmp_path):
    got = drain_fifo(str(tmp_path / 'stdout'), until_bytes=1)
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', 'import os\n'
              'while True:\n'
              '    try:\n'
              '        os.write(1, b"x" * 65536)\n'
              '    except BrokenPipeError:\n'
              '        os.write(2, b"broken pipe"); break\n'])
    result = runtime.run(manifest)
    got['thread'].join(30)
    assert result.report.retcode == 0, output(tmp_path, 'stderr')
    assert output(tmp_path, 'stderr') == b'broken pipe'
    assert got['data'].startswith(b'x')


SEALED_WRITER = r'''
import os, sys
sys.stdout.write("answer " * 1000)
sys.stderr.write("a warning\n")
with open("/dev/out", "wb") as f:
    f.write(b"start")
    f.seek(70000)              # a hole: reads back as zeros
    f.write(b"after the hole")
    os.pwrite(f.fileno(), b"START", 0)
with open("/dev/out", "ab") as f:
    f.write(b"|appended")
with open("/dev/out", "r+b") as f:
    print(f.read(5), file=sys.stderr)   # read back as plaintext
    f.truncate(70010)
    f.truncate(70020)          # grown again: zeros
'''


def test_sealed_outputs_are_ciphertext_on_disk_and_plaintext_to_the_program(
        runtime, python_image, tmp_path):
    """Write channels the host seals: every write, hole and new size lands
    encrypted; the program reads back what it wrote; the etags are those
    of the plaintext."""
    out = tmp_path / 'out'
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python', etag_stdout=1,
        args=['python', '-c', SEALED_WRITER],
        channels=[write_channel(str(out), '/dev/out', etag=1)])
    keys = {alias: CipherKey(os.urandom(32), os.urandom(16))
            for alias in ('/dev/stdout', '/dev/stderr', '/dev/out')}
    result = runtime.run(manifest, ciphers=keys)
    plain = {alias: KeyStream(keys[alias]).apply(0, path.read_bytes())
             for alias, path in (('/dev/stdout', tmp_path / 'stdout'),
                                 ('/dev/stderr', tmp_path / 'stderr'),
                                 ('/dev/out', out))}
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        plain['/dev/stderr']
    expected = (b'START' + bytes(70000 - 5) + b'after the hole'
                + b'|appended')[:70010] + bytes(10)
    assert plain == {'/dev/stdout': b'answer ' * 1000,
                     '/dev/stderr': b"a warning\nb'START'\n",
                     '/dev/out': expected}
    for alias, path in (('/dev/stdout', tmp_path / 'stdout'),
                        ('/dev/out', out)):
        assert b'answer' not in path.read_bytes()
        assert path.read_bytes().count(b'\0') < 1000
    assert dict(result.report.etags) == {
        '/dev/stdout': hashlib.md5(b'answer ' * 1000).hexdigest(),
        '/dev/out': hashlib.md5(expected).hexdigest()}


#: Writes ``/dev/out`` in order (a tell and a seek to where it is do not
#: end the copy), then, with argument ``rewrite``, its first bytes again.
TEED_WRITER = r'''
import os, sys
with open("/dev/out", "wb") as f:
    for size in (1, 70000, 3 << 20, 5):
        f.write(bytes([size % 251]) * size)
        f.seek(f.tell())
    f.flush()
    if sys.argv[1:] == ["rewrite"]:
        os.pwrite(f.fileno(), b"HEAD", 0)
        f.write(b"tail")
'''
TEED_BYTES = b''.join(bytes([size % 251]) * size
                      for size in (1, 70000, 3 << 20, 5))


@pytest.mark.parametrize('rewrite', [False, True])
def test_a_teed_output_streams_what_is_written_in_order(
        runtime, python_image, tmp_path, rewrite):
    """A sealed output teed to a FIFO: the FIFO gets every byte written in
    order from the start, while the file (sealed) gets every write; a
    write out of order ends the copy there, the file stays whole."""
    out = tmp_path / 'out'
    got = drain_fifo(str(tmp_path / 'tee'))
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', TEED_WRITER] + (['rewrite'] if rewrite else []),
        channels=[write_channel(str(out), '/dev/out', etag=1)])
    key = CipherKey(os.urandom(32), os.urandom(16))
    result = runtime.run(manifest, ciphers={'/dev/out': key},
                         tees={'/dev/out': str(tmp_path / 'tee')})
    got['thread'].join(30)
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        output(tmp_path, 'stderr')
    stored = KeyStream(key).apply(0, out.read_bytes())
    assert TEED_BYTES[:1000] not in out.read_bytes()
    if rewrite:
        assert stored == b'HEAD' + TEED_BYTES[4:] + b'tail'
        assert got['data'] == TEED_BYTES
    else:
        assert stored == got['data'] == TEED_BYTES
    assert dict(result.report.etags)['/dev/out'] == \
        hashlib.md5(stored).hexdigest()


def test_only_sealed_outputs_are_teed(runtime, python_image, tmp_path):
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', 'pass'],
        channels=[write_channel(str(tmp_path / 'out'), '/dev/out')])
    result = runtime.run(manifest, tees={'/dev/out': str(tmp_path / 'x')})
    assert result.report.status == \
        'channel /dev/out: only a sealed output can be teed'
