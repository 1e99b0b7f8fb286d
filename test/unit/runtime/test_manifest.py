import errno

import pytest

from zerocloud.runtime.errors import SessionFailure
from zerocloud.runtime.manifest import (
    Channel, Manifest, load_manifest, parse_c_int, parse_manifest_text,
    render_manifest)

STDIO = ('Channel = /dev/null, /dev/stdin, 0, 0, 1, 1, 0, 0\n'
         'Channel = /tmp/o, /dev/stdout, 0, 1, 0, 0, 1, 1\n'
         'Channel = /tmp/e, /dev/stderr, 0, 0, 0, 0, 1, 1\n')
HEAD = ('Version = 20130611\nProgram = /p.wasm\nTimeout = 5\n'
        'Memory = 1048576, 0\n')


def failure(text):
    with pytest.raises(SessionFailure) as caught:
        parse_manifest_text(text)
    return caught.value.status, caught.value.exit_status


@pytest.mark.parametrize('text,value', [('10', 10), ('0x1F', 31),
                                        ('017', 15), ('0', 0), (' 7 ', 7),
                                        ('-3', -3)])
def test_c_numbers(text, value):
    assert parse_c_int(text) == value


@pytest.mark.parametrize('text', ['', '12a', '0x', '09', '1.5', '0xg'])
def test_c_numbers_refuse_junk(text):
    with pytest.raises(ValueError):
        parse_c_int(text)


def test_valid_manifest_and_quirks():
    manifest = parse_manifest_text(
        '=====banner=====\n' + HEAD + STDIO +
        'NodeName = 1\nChannel = /a=b, /dev/x, 0, 0, 1, 1, 0, 0\n'
        'Channel = /data/in, /dev/input, 3, 1, 0x10, 010, 0, 0\n'
        'Fuel = 1000\nDeterministic = 1\nSeed = 42\nScratch = 0\n'
        'ProgramMember = python\r\n')
    assert manifest.program == '/p.wasm'
    assert (manifest.timeout, manifest.memory) == (5, 1048576)
    assert [c.alias for c in manifest.channels] == [
        '/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/input']
    channel = manifest.channel('/dev/input')
    assert (channel.gets, channel.getsize, channel.etag) == (16, 8, True)
    assert channel.readable and not channel.writable
    assert (manifest.fuel, manifest.deterministic, manifest.seed,
            manifest.scratch, manifest.program_member) == (
        1000, True, 42, 0, 'python')


@pytest.mark.parametrize('text,expected', [
    (HEAD.replace('20130611', '09082012') + STDIO,
     ('MANIFEST 1: invalid version 09082012 (expected 20130611)',
      errno.EFAULT)),
    (HEAD.replace('Timeout = 5', 'Timeout = 0') + STDIO,
     ('MANIFEST 3: invalid Timeout', errno.EFAULT)),
    (HEAD.replace('Timeout = 5', 'Timeout = 5s') + STDIO,
     ('MANIFEST 3: invalid numeric value', errno.EFAULT)),
    (HEAD.replace('Timeout = 5\n', '') + STDIO,
     ('MANIFEST: Timeout not specified', errno.EFAULT)),
    (HEAD + 'Timeout = 6\n' + STDIO,
     ('MANIFEST 5: duplicate key Timeout', errno.EFAULT)),
    (HEAD.replace('1048576, 0', '1048576') + STDIO,
     ('MANIFEST 4: invalid memory token count', errno.EFAULT)),
    (HEAD.replace('1048576, 0', '1048576, 2') + STDIO,
     ('MANIFEST 4: invalid memory etag token', errno.EFAULT)),
    (HEAD.replace('1048576, 0', '0x100000001, 0') + STDIO,
     ('MANIFEST 4: invalid memory size', errno.ENOMEM)),
    (HEAD + STDIO.replace('0, 0, 1, 1, 0, 0', '0, 0, 1, 1, 0'),
     ('MANIFEST 5: channel needs 8 fields, got 7', errno.EFAULT)),
    (HEAD + STDIO + 'Channel = /x, /dev/x, 4, 0, 1, 1, 0, 0\n',
     ('MANIFEST 8: invalid channel type', errno.EFAULT)),
    (HEAD + STDIO + 'Channel = /x, /dev/x, 0, 0, -1, 1, 0, 0\n',
     ('MANIFEST 8: invalid channel limit', errno.EFAULT)),
    (HEAD + STDIO + 'Channel = x, /dev/x, 0, 0, 1, 1, 0, 0\n',
     ('MANIFEST 8: channel uri x is not an absolute path', errno.EFAULT)),
    (HEAD + STDIO + 'Channel = tcp:1:, /dev/in/a, 0, 0, 1, 1, 0, 0\n',
     ('MANIFEST 8: network channels are not supported',
      errno.EPROTONOSUPPORT)),
    (HEAD + STDIO + 'Channel = /x;/y, /dev/x, 0, 0, 1, 1, 0, 0\n',
     ('MANIFEST 8: replicated channel sources are not supported',
      errno.EFAULT)),
    (HEAD + STDIO + 'Channel = /x, /dev/stdout, 0, 0, 1, 1, 0, 0\n',
     ('MANIFEST 8: /dev/stdout is already allocated', errno.EFAULT)),
    (HEAD + STDIO + 'Channel = /x, /dev/x, 0, 0, 0, 0, 0, 0\n',
     ('MANIFEST 8: /dev/x is a nil channel (no read or write limits)',
      errno.EINVAL)),
    (HEAD + STDIO + 'Channel = /x, /dev/x, 0, 0, 1, 1, 1, 1\n',
     ('MANIFEST 8: read-write channel /dev/x needs type 1 or 3',
      errno.EFAULT)),
    (HEAD + STDIO + 'Channel = /x, /dev/../etc, 0, 0, 1, 1, 0, 0\n',
     ('MANIFEST 8: channel alias /dev/../etc must be a file under /dev/',
      errno.EFAULT)),
    (HEAD + STDIO.split('Channel = /tmp/e')[0],
     ('MANIFEST: not enough channels', errno.EFAULT)),
    (HEAD + STDIO.replace('/dev/stderr', '/dev/debug'),
     ('MANIFEST: missing standard channels', errno.EFAULT)),
    (HEAD + STDIO + 'Job = /tmp/sock\n',
     ('MANIFEST 8: daemon mode (Job) is not supported', errno.EFAULT)),
])
def test_manifest_errors(text, expected):
    assert failure(text) == expected


def test_lines_beyond_8192_are_ignored():
    filler = '\n' * (8192 - 7)
    manifest = parse_manifest_text(
        HEAD + STDIO + filler + 'Channel = /x, /dev/late, 0, 0, 1, 1, 0, 0\n')
    assert manifest.channel('/dev/late') is None


def test_load_manifest_errors(tmp_path):
    with pytest.raises(SessionFailure) as caught:
        load_manifest(str(tmp_path / 'missing'))
    assert caught.value.exit_status == errno.ENOENT
    with pytest.raises(SessionFailure) as caught:
        load_manifest(str(tmp_path))
    assert caught.value.exit_status == errno.EIO


def test_rendered_manifest_parses_back_to_itself():
    original = Manifest(
        program='/srv/image.tar', timeout=7, memory=1 << 20,
        memory_etag=False, program_member='python', fuel=1000,
        deterministic=True, seed=42, scratch=4096,
        channels=[Channel('/dev/null', '/dev/stdin', 3, False, 9, 99, 0, 0),
                  Channel('/tmp/o', '/dev/stdout', 3, True, 0, 0, 8, 88),
                  Channel('/tmp/e', '/dev/stderr', 3, False, 0, 0, 8, 88)])
    text = render_manifest(original, node=3)
    assert text.endswith('Node=3\n')
    assert parse_manifest_text(text) == original
