import gzip
import io
import json
import os
import tarfile

import pytest

from zerocloud import jobsource
from zerocloud.job import JobError

SYSTEM_MAP = json.dumps([{"name": "example"}]).encode()


def make_tar(members, gz=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    return gzip.compress(data) if gz else data


def spooled(tmp_path, data):
    return jobsource.spool(io.BytesIO(data).read, len(data), 1 << 20,
                           str(tmp_path))


@pytest.mark.parametrize('ctype,kind', [
    ('application/json', 'json'), ('application/json; charset=utf-8', 'json'),
    ('application/x-tar', 'tar'), ('application/x-gzip', 'tar'),
    ('application/x-gtar', 'tar'), ('application/python', 'script'),
    ('text/plain', 'script')])
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
    assert jobsource.find_system_map(image, ctype) == SYSTEM_MAP
    assert image.size == len(data)


def test_cluster_map_wins(tmp_path):
    data = make_tar([('boot/system.map', b'[1]'),
                     ('boot/cluster.map', b'[2]')])
    assert jobsource.find_system_map(spooled(tmp_path, data),
                                     'application/x-tar') == b'[2]'


def test_missing_system_map(tmp_path):
    image = spooled(tmp_path, make_tar([('main.py', b'x')]))
    with pytest.raises(JobError) as err:
        jobsource.find_system_map(image, 'application/x-tar')
    assert (err.value.status, err.value.message) == (
        400, 'System boot map was not found in request')


def test_corrupt_tar(tmp_path):
    image = spooled(tmp_path, b'this is not a tar at all' * 40)
    with pytest.raises(JobError) as err:
        jobsource.find_system_map(image, 'application/x-gzip')
    assert (err.value.status, err.value.message) == (
        422, 'Error reading application/x-gzip stream')


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
