import errno
import gzip
import io
import os
import tarfile

import pytest

from zerocloud.runtime import image
from zerocloud.runtime.errors import SessionFailure, reason


def make_tar(path, members, compress=False):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data else None)
    raw = buffer.getvalue()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return str(path)


def member(name, data=b'', kind=tarfile.REGTYPE, **extra):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(info, key, value)
    return info, data


@pytest.mark.parametrize('compress', [False, True])
def test_unpack_plain_and_gzip(tmp_path, compress):
    tar = make_tar(tmp_path / 'img.tar', [
        member('dir', kind=tarfile.DIRTYPE), member('./dir/a.py', b'A'),
        member('main.py', b'print(1)')], compress)
    dest = tmp_path / 'root'
    dest.mkdir()
    assert image.unpack(tar, str(dest), '/dev/image') == 9
    assert (dest / 'dir' / 'a.py').read_bytes() == b'A'
    assert (dest / 'main.py').read_bytes() == b'print(1)'


@pytest.mark.parametrize('info,message', [
    (member('/etc/passwd', b'x'), 'absolute member name /etc/passwd'),
    (member('a/../../x', b'x'), 'member name with .. a/../../x'),
    (member('link', kind=tarfile.SYMTYPE, linkname='/etc/passwd'),
     'link member link refused'),
    (member('hard', kind=tarfile.LNKTYPE, linkname='main.py'),
     'link member hard refused'),
    (member('fifo', kind=tarfile.FIFOTYPE), 'special file member fifo '
     'refused'),
    (member('dev', kind=tarfile.CHRTYPE), 'special file member dev refused'),
])
def test_unpack_refuses_unsafe_members(tmp_path, info, message):
    tar = make_tar(tmp_path / 'img.tar', [member('ok', b'1'), info])
    dest = tmp_path / 'root' / 'image'
    dest.mkdir(parents=True)
    with pytest.raises(SessionFailure) as caught:
        image.unpack(tar, str(dest), '/dev/image')
    assert caught.value.status == 'image /dev/image: ' + message
    assert caught.value.exit_status == errno.EFAULT
    # Nothing of the refused member anywhere: not in the destination, not
    # beside it (where a/../../x would land).
    assert sorted(os.listdir(dest)) == ['ok']
    assert os.listdir(tmp_path / 'root') == ['image']
    assert sorted(os.listdir(tmp_path)) == ['img.tar', 'root']


def test_unpack_size_limits(tmp_path, monkeypatch):
    tar = make_tar(tmp_path / 'img.tar', [member('a', b'x' * 10),
                                          member('b', b'x' * 10)])
    with pytest.raises(SessionFailure) as caught:
        image.unpack(tar, str(tmp_path), '/dev/image', max_bytes=15)
    assert caught.value.status == ('image /dev/image: more than 15 bytes '
                                   'unpacked')
    monkeypatch.setattr(image, 'MAX_MEMBER_BYTES', 5)
    with pytest.raises(SessionFailure) as caught:
        image.unpack(tar, str(tmp_path), '/dev/image')
    assert caught.value.status == ('image /dev/image: member a larger than '
                                   '5 bytes')


def test_not_a_tar(tmp_path):
    bogus = tmp_path / 'bogus'
    bogus.write_bytes(b'\x00asm' + b'\x01' * 600)
    with pytest.raises(SessionFailure) as caught:
        image.unpack(str(bogus), str(tmp_path), '/dev/image')
    assert caught.value.status == 'image /dev/image: not a tar file'


@pytest.mark.parametrize('compress', [False, True])
def test_read_member(tmp_path, compress):
    tar = make_tar(tmp_path / 'sys.tar', [member('python', b'\0asm-bytes'),
                                          member('other', b'zz')], compress)
    assert image.read_member(tar, 'python') == b'\0asm-bytes'
    with pytest.raises(SessionFailure) as caught:
        image.read_member(tar, 'missing')
    assert caught.value.exit_status == errno.ENOENT
    assert caught.value.status == \
        'program member missing not found in its image'


@pytest.mark.parametrize('below,reason', [
    (member('a/b', b'below'), 'File exists'),
    (member('a/b', kind=tarfile.DIRTYPE), 'Not a directory'),
])
def test_member_below_a_file_names_the_member_not_the_host(tmp_path, below,
                                                           reason):
    tar = make_tar(tmp_path / 'img.tar', [member('a', b'file'), below])
    dest = tmp_path / 'root'
    dest.mkdir()
    with pytest.raises(SessionFailure) as caught:
        image.unpack(tar, str(dest), '/dev/image')
    assert caught.value.status == \
        'image /dev/image: cannot unpack member a/b (%s)' % reason
    assert caught.value.exit_status == errno.EIO


def test_reason_leaves_the_path_of_an_os_error_out():
    assert reason(FileExistsError(errno.EEXIST, 'File exists',
                                  '/srv/node/tmp/x')) == 'File exists'
    assert reason(OSError('/srv/a and /srv/b are the same file')) == \
        'OSError'
    assert reason(tarfile.ReadError('unexpected end of data')) == \
        'unexpected end of data'
