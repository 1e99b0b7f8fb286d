"""Holding a local object's ``.data`` file, against Swift's own object
server (its disk files, on ``tmp_path``)."""

import os

import pytest
from swift.common.exceptions import DiskFileNotExist
from swift.common.storage_policy import POLICIES
from swift.common.swob import Request
from swift.common.utils import Timestamp
from swift.obj.server import ObjectController

from zerocloud.object import swiftdisk

DEVICE = 'sda1'
PATH = '/%s/0/a/c/o' % DEVICE


@pytest.fixture
def server(tmp_path):
    (tmp_path / DEVICE / 'tmp').mkdir(parents=True)
    return ObjectController({'devices': str(tmp_path),
                             'mount_check': 'false'})


def write(server, method: str, body: bytes = b'') -> None:
    headers = {'X-Timestamp': Timestamp.now().internal}
    if method == 'PUT':
        headers['Content-Type'] = 'text/plain'
    resp = Request.blank(PATH, method=method, body=body,
                         headers=headers).get_response(server)
    assert resp.status_int in (201, 204), resp.status


def hold(server, tmp_path) -> swiftdisk.StoredObject:
    return swiftdisk.hold_object(
        server, DEVICE, '0', 'a', 'c', 'o', POLICIES[0],
        str(tmp_path / DEVICE / 'tmp' / 'held'))


def test_a_held_object_outlives_a_put_and_a_delete(server, tmp_path):
    write(server, 'PUT', b'original')
    held = hold(server, tmp_path)
    write(server, 'PUT', b'overwritten')
    write(server, 'DELETE')
    with open(held.data_file, 'rb') as fp:
        assert fp.read() == b'original'
    assert (held.size, held.content_type) == (8, 'text/plain')
    assert held.metadata['Content-Length'] == '8'
    os.unlink(held.data_file)      # released: nothing else refers to it


def test_a_missing_or_deleted_object_is_not_held(server, tmp_path):
    with pytest.raises(DiskFileNotExist):
        hold(server, tmp_path)
    write(server, 'PUT', b'short-lived')
    write(server, 'DELETE')
    with pytest.raises(DiskFileNotExist):
        hold(server, tmp_path)
    assert os.listdir(tmp_path / DEVICE / 'tmp') == []


def test_an_object_replaced_while_being_held_is_looked_up_again(
        server, tmp_path, monkeypatch):
    """A PUT between opening the ``.data`` file and linking it removes the
    name: the newer object is held, never a mix of the two."""
    write(server, 'PUT', b'first')
    link = os.link
    replaced = []

    def put_first(source, dest):
        if not replaced:
            replaced.append(source)
            write(server, 'PUT', b'second!')
        return link(source, dest)
    monkeypatch.setattr(swiftdisk.os, 'link', put_first)
    held = hold(server, tmp_path)
    assert replaced
    with open(held.data_file, 'rb') as fp:
        assert fp.read() == b'second!'
    assert held.size == 7


def test_an_object_replaced_each_time_is_refused(server, tmp_path,
                                                 monkeypatch):
    write(server, 'PUT', b'first')
    link = os.link

    def always_replaced(source, dest):
        write(server, 'PUT', b'again')
        return link(source, dest)
    monkeypatch.setattr(swiftdisk.os, 'link', always_replaced)
    with pytest.raises(swiftdisk.ObjectChanging):
        hold(server, tmp_path)
    assert os.listdir(tmp_path / DEVICE / 'tmp') == []
