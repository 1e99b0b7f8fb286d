import gzip
import io
import json
import os
import tarfile

import pytest

from zerocloud.job import source as jobsource
from zerocloud.job.model import JobError
from zerocloud.tarscan import ScanBounds

SYSTEM_MAP = json.dumps([{"name": "example"}]).encode()
BOUNDS = ScanBounds()
MAX_CONFIG = 65536
#: Small bounds, so that a few MiB of zeros make a bomb.
SMALL = ScanBounds(max_bytes=65536, max_members=3)
BOMB = b'\0' * (4 << 20)


def make_tar(members, gz=False):
    """A tar of (name or TarInfo, data) pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        for name, data in members:
            info = name if isinstance(name, tarfile.TarInfo) else \
                tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    return gzip.compress(data) if gz else data


def find_map(tmp_path, data, bounds=BOUNDS, ctype='application/x-tar'):
    return jobsource.find_system_map(spooled(tmp_path, data), ctype, bounds,
                                     MAX_CONFIG)


def spooled(tmp_path, data):
    return jobsource.spool(io.BytesIO(data).read, len(data), 1 << 20,
                           str(tmp_path))


@pytest.mark.parametrize('ctype,kind', [
    ('application/json', 'json'), ('application/json; charset=utf-8', 'json'),
    ('application/x-tar', 'tar'), ('application/x-gzip', 'tar'),
    ('application/x-gtar', 'tar'), ('application/python', 'script'),
    ('text/plain', 'script'), ('APPLICATION/JSON', 'json'),
    # Issue 15 item 16: parts of "application/json" are other media types.
    ('application', 'script'), ('/', 'script'), ('json', 'script'),
    ('application/js', 'script'), ('n', 'script'), ('', 'script')])
def test_body_kind(ctype, kind):
    assert jobsource.body_kind(ctype) == kind


def test_read_limited_enforces_size_and_length():
    assert jobsource.read_limited(io.BytesIO(b'abc').read, 3, 10) == b'abc'
    with pytest.raises(JobError) as err:
        jobsource.read_limited(io.BytesIO(b'x' * 11).read, None, 10)
    assert err.value.status == 413
    with pytest.raises(JobError) as err:
        jobsource.read_limited(io.BytesIO(b'12345').read, 10, 100)
    assert err.value.status == 499
    assert err.value.message == 'application/json POST unfinished'


@pytest.mark.parametrize('gz', [False, True])
def test_system_map_found_in_zapp(tmp_path, gz):
    data = make_tar([('boot/system.map', SYSTEM_MAP), ('main.py', b'x')], gz)
    image = spooled(tmp_path, data)
    ctype = 'application/x-gzip' if gz else 'application/x-tar'
    assert jobsource.find_system_map(image, ctype, BOUNDS,
                                     MAX_CONFIG) == SYSTEM_MAP
    assert image.size == len(data)


def test_cluster_map_wins(tmp_path):
    data = make_tar([('boot/system.map', b'[1]'),
                     ('boot/cluster.map', b'[2]')])
    assert find_map(tmp_path, data) == b'[2]'


def test_missing_system_map(tmp_path):
    with pytest.raises(jobsource.NoSystemMap) as err:
        find_map(tmp_path, make_tar([('main.py', b'x')]))
    assert (err.value.status, err.value.message) == (
        400, 'System boot map was not found in request')


def test_corrupt_tar(tmp_path):
    with pytest.raises(JobError) as err:
        find_map(tmp_path, b'this is not a tar at all' * 40,
                 ctype='application/x-gzip')
    assert (err.value.status, err.value.message) == (
        422, 'Error reading application/x-gzip stream')


def test_corrupt_gzip(tmp_path):
    data = make_tar([('main.py', b'x' * 4096)], gz=True)
    with pytest.raises(JobError) as err:
        find_map(tmp_path, data[:10] + b'\xff' * 8 + data[18:],
                 ctype='application/x-gzip')
    assert err.value.status == 422


def test_map_beyond_the_byte_bound(tmp_path):
    data = make_tar([('filler', b'x' * 70000), ('boot/system.map', b'[]')])
    with pytest.raises(jobsource.NoSystemMap) as err:
        find_map(tmp_path, data, ScanBounds(max_bytes=65536))
    assert (err.value.status, err.value.message) == (
        400, 'System boot map was not found within the first 65536 bytes '
             '(uncompressed) of the tar')
    assert find_map(tmp_path, data, ScanBounds(max_bytes=72704)) == b'[]'


def test_map_beyond_the_member_bound(tmp_path):
    data = make_tar([('a', b''), ('b', b''), ('c', b''),
                     ('boot/system.map', b'[]')])
    with pytest.raises(jobsource.NoSystemMap) as err:
        find_map(tmp_path, data, SMALL)
    assert err.value.message == ('System boot map was not found within the '
                                 'first 3 members of the tar')
    assert find_map(tmp_path, data, ScanBounds(max_members=4)) == b'[]'


def test_huge_member_before_the_map_is_never_expanded(tmp_path, expansion):
    data = make_tar([('filler', BOMB), ('boot/system.map', b'[]')], gz=True)
    with pytest.raises(jobsource.NoSystemMap) as err:
        find_map(tmp_path, data, SMALL, 'application/x-gzip')
    assert 'within the first 65536 bytes' in err.value.message
    assert 0 < expansion.total <= SMALL.max_bytes


def test_map_before_a_bomb_is_used(tmp_path, expansion):
    data = make_tar([('boot/system.map', b'[]'), ('filler', BOMB),
                     ('boot/cluster.map', b'[1]')], gz=True)
    assert find_map(tmp_path, data, SMALL, 'application/x-gzip') == b'[]'
    assert expansion.total <= SMALL.max_bytes


def test_long_name_header_cannot_expand_past_the_bound(tmp_path, expansion):
    long_name = tarfile.TarInfo('././@LongLink')
    long_name.type = tarfile.GNUTYPE_LONGNAME
    data = make_tar([(long_name, BOMB), ('boot/system.map', b'[]')], gz=True)
    with pytest.raises(jobsource.NoSystemMap):
        find_map(tmp_path, data, SMALL, 'application/x-gzip')
    assert expansion.total <= SMALL.max_bytes


def test_chained_pax_headers_are_a_bad_tar(tmp_path):
    record = b'14 comment=x\n'
    pax = tarfile.TarInfo('././@PaxHeader')
    pax.type = tarfile.XHDTYPE
    data = make_tar([(pax, record)] * 900 + [('boot/system.map', b'[]')])
    with pytest.raises(JobError) as err:
        find_map(tmp_path, data)
    assert (err.value.status, err.value.message) == (
        422, 'Error reading application/x-tar stream')


def test_map_larger_than_maxconfig_is_413_unread(tmp_path, expansion):
    data = make_tar([('boot/system.map', BOMB)], gz=True)
    with pytest.raises(JobError) as err:
        find_map(tmp_path, data, ctype='application/x-gzip')
    assert (err.value.status, err.value.message) == (
        413, 'Job description is larger than 65536 bytes')
    assert expansion.total < len(BOMB) // 100


def test_spool_short_body_is_499_and_leaves_nothing(tmp_path):
    with pytest.raises(JobError) as err:
        jobsource.spool(io.BytesIO(b'abc').read, 10, 100, str(tmp_path))
    assert err.value.status == 499
    assert os.listdir(tmp_path) == []


def test_spool_too_large_is_413(tmp_path):
    with pytest.raises(JobError) as err:
        jobsource.spool(io.BytesIO(b'abc').read, 300, 100, str(tmp_path))
    assert err.value.status == 413


def test_script_image_is_a_tar_with_member_script(tmp_path):
    script = b'#!file://python2.7:python\nprint("hi")\n'
    read = io.BytesIO(script).read
    head = jobsource.read_script_head(read)
    image = jobsource.script_image(head, read, len(script), 1 << 20,
                                   str(tmp_path))
    with tarfile.open(image.path) as tar:
        assert tar.getnames() == ['script']
        assert tar.extractfile('script').read() == script


def test_chunked_body_is_spooled_to_its_end(tmp_path):
    image = jobsource.spool(io.BytesIO(b'x' * 200000).read, None, 1 << 20,
                            str(tmp_path))
    assert image.size == 200000
    with open(image.path, 'rb') as fp:
        assert fp.read() == b'x' * 200000


def test_chunked_body_beyond_the_limit_is_413_and_leaves_nothing(tmp_path):
    with pytest.raises(JobError) as err:
        jobsource.spool(io.BytesIO(b'x' * 101).read, None, 100, str(tmp_path))
    assert (err.value.status, err.value.message) == (
        413, 'Request body is larger than 100 bytes')
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('size', [0, 1, 511, 512, 513, 100000])
def test_script_image_of_a_chunked_body_is_the_same_tar(tmp_path, size):
    script = b'#!file://python:python\n' + b'p' * size
    images = []
    for length in (len(script), None):
        read = io.BytesIO(script).read
        head = jobsource.read_script_head(read)
        image = jobsource.script_image(head, read, length, 1 << 20,
                                       str(tmp_path))
        with open(image.path, 'rb') as fp:
            images.append(fp.read())
        with tarfile.open(image.path) as tar:
            assert tar.getnames() == ['script']
            assert tar.extractfile('script').read() == script
        assert image.size == len(images[-1])
    # The same bytes but the header's mtime and checksum (136 to 156).
    assert images[0][:136] + images[0][156:] == \
        images[1][:136] + images[1][156:]


def test_system_map_of_a_tar_made_from_its_directory(tmp_path):
    """``tar -C app .`` names members ``./boot/system.map``."""
    data = make_tar([('./main.py', b'x'), ('./boot/system.map', SYSTEM_MAP)])
    assert find_map(tmp_path, data) == SYSTEM_MAP


@pytest.mark.parametrize('name', ['../boot/system.map', '.boot/system.map',
                                  '/boot/system.map'])
def test_a_member_of_another_name_is_not_the_system_map(tmp_path, name):
    with pytest.raises(jobsource.NoSystemMap):
        find_map(tmp_path, make_tar([(name, SYSTEM_MAP)]))


def test_a_sealed_spool_is_ciphertext_on_disk_and_plaintext_to_read(
        tmp_path):
    plain = b'what a node wrote|' * 5000
    with jobsource.spool_file(str(tmp_path), 'zerocloud-out-', sealed=True) as (
            fp, spooled):
        for start in range(0, len(plain), 7000):   # pieces off the block
            fp.write(plain[start:start + 7000])
    with open(spooled.path, 'rb') as stored:
        on_disk = stored.read()
    assert len(on_disk) == spooled.size == len(plain)
    assert b'what a node wrote' not in on_disk
    assert b''.join(spooled.chunks()) == plain
    # Another spool of the same bytes has a key of its own.
    with jobsource.spool_file(str(tmp_path), sealed=True) as (fp, other):
        fp.write(plain)
    with open(other.path, 'rb') as stored:
        assert stored.read() != on_disk
    spooled.remove()
    other.remove()
    assert os.listdir(str(tmp_path)) == []
