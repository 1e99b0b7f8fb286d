"""Inputs that are not plain on disk: the pure parts of both sides (issue
#10; the whole path: test/functional/test_inputs.py)."""

import base64
import errno
import hashlib
import io
import json
import os
from dataclasses import replace

import pytest
from swift.common.middleware.crypto.crypto_utils import (
    Crypto, append_crypto_meta, dump_crypto_meta)
from swift.common.swob import HTTPException, Request
from swift.common.utils import Timestamp
from swift.container.backend import ContainerBroker

from zerocloud import protocol
from zerocloud.cipher import KeyStream
from zerocloud.job.model import READABLE, Channel, SwiftPath
from zerocloud.object import decryption
from zerocloud.object.containerdb import (
    UNKNOWN_ETAG, decrypt_etag, decrypt_etags)
from zerocloud.object.filter import ObjectQueryMiddleware
from zerocloud.object.members import RequestBody
from zerocloud.object.node import stream_reason
from zerocloud.object.hostmemory import (
    filesystem_type, node_dir_prefix, orphaned_node_dirs, process_alive)
from zerocloud.proxy import inputs

CONTAINER_KEY = b'k' * 32
OTHER_KEY = b'o' * 32


# ------------------------------------------------------------ object side

@pytest.mark.parametrize('metadata, erasure_coded, reason', [
    ({'ETag': 'ab', 'X-Object-Meta-Color': 'red'}, False, None),
    ({}, True, protocol.STREAM_ERASURE_CODED),
    ({'X-Object-Sysmeta-Crypto-Body-Meta': '{}'}, False,
     protocol.STREAM_ENCRYPTED),
    ({'X-Object-Transient-Sysmeta-Crypto-Meta-Color': '{}'}, False,
     protocol.STREAM_ENCRYPTED),
    ({'X-Static-Large-Object': 'True'}, False, protocol.STREAM_SLO),
    ({'X-Static-Large-Object': 'no'}, False, None),
    ({'X-Object-Manifest': 'c/prefix'}, False, protocol.STREAM_DLO),
    # An encrypted symlink is named a symlink: it may lead to a plain
    # object the node can read in place.
    ({'X-Object-Sysmeta-Symlink-Target': 'c/o',
      'X-Object-Sysmeta-Crypto-Etag': 'x'}, False, protocol.STREAM_SYMLINK),
])
def test_stream_reason(metadata, erasure_coded, reason):
    assert stream_reason(metadata, erasure_coded) == reason


def test_parse_listing_keys():
    encoded = base64.b64encode(CONTAINER_KEY).decode()
    assert protocol.parse_listing_keys(json.dumps(
        {'': encoded, 'old': encoded})) == {None: CONTAINER_KEY,
                                            'old': CONTAINER_KEY}
    for bad in ('[1]', '{"": "not base64!"}', 'nope', '{"": 3}'):
        with pytest.raises(ValueError):
            protocol.parse_listing_keys(bad)


def _object_post(length: int) -> Request:
    return Request.blank('/sda1/0/a/c/o', method='POST', headers={
        protocol.EXECUTE_HEADER: '1.0', protocol.JOB_ID_HEADER: 'job',
        'Content-Type': protocol.TAR_CONTENT_TYPE,
        'Content-Length': str(length)})


def _members_body(members) -> Request:
    """An execution request whose body is ``members`` ((name, bytes)...)."""
    body = b''.join(chunk for name, data in members
                    for chunk in protocol.iter_member(name, len(data),
                                                      [data]))
    req = _object_post(len(body))
    req.environ['wsgi.input'] = io.BytesIO(body)
    return req


def test_inputs_beyond_the_ram_limit_are_spilled_sealed(tmp_path):
    """Inputs RAM has no room for go to the spill directory, encrypted
    under keys of their own; what fits stays in RAM, plain."""
    ram, spill = tmp_path / 'ram', tmp_path / 'spill'
    ram.mkdir()
    spill.mkdir()
    small, big = b's' * 400, b'input|' * 300
    req = _members_body([(protocol.SYSMAP_MEMBER, b'{}'), ('stdin', small),
                         ('input', big), ('in/a', big)])
    body = RequestBody(req, 1 << 20, 1000, 0, lambda name: True)
    members, live = body.receive(str(ram), str(spill))
    assert live is None
    assert sorted(body.sealed) == ['in/a', 'input']
    assert os.path.dirname(members['stdin']) == str(ram)
    with open(members['stdin'], 'rb') as fp:
        assert fp.read() == small
    for name in body.sealed:
        assert os.path.dirname(members[name]) == str(spill)
        with open(members[name], 'rb') as fp:
            stored = fp.read()
        assert b'input|' not in stored
        assert KeyStream(body.sealed[name]).apply(0, stored) == big
    assert body.sealed['input'] != body.sealed['in/a']
    assert body.in_ram == 402


def test_an_image_beyond_the_ram_limit_is_413(tmp_path):
    req = _members_body([(protocol.SYSMAP_MEMBER, b'{}'),
                         (protocol.IMAGE_MEMBER, b'i' * 1500)])
    body = RequestBody(req, 1 << 20, 1000, 0, lambda name: True)
    with pytest.raises(HTTPException) as refused:
        body.receive(str(tmp_path), str(tmp_path))
    assert refused.value.status_int == 413
    assert refused.value.body == (
        b'The node needs 1502 bytes of inputs in memory; this server keeps '
        b'at most 1000 per node (zerovm_ram_limit)')


def test_a_full_ram_dir_is_503_not_a_traceback(tmp_path):
    middleware = ObjectQueryMiddleware(None, {'zerovm_ram_dir': str(tmp_path)})

    def full(req):
        raise OSError(errno.ENOSPC, 'No space left on device')
    middleware.execute = full
    sent = []
    body = middleware(_object_post(10).environ,
                      lambda status, headers, exc_info=None: sent.append(
                          (status, dict(headers))))
    assert sent[0][0].startswith('503')
    assert sent[0][1]['Retry-After'] == '1'
    assert b''.join(body) == b"No room for the node's files on this server now"


def _encrypted_etag(etag: str, key: bytes, path: str,
                    secret_id=None) -> str:
    crypto = Crypto()
    iv = crypto.create_iv()
    ciphertext = crypto.create_encryption_ctxt(key, iv).update(
        etag.encode())
    key_id = {'v': '2', 'path': path}
    if secret_id:
        key_id['secret_id'] = secret_id
    return append_crypto_meta(base64.b64encode(ciphertext).decode(), {
        'cipher': crypto.cipher, 'iv': iv, 'key_id': key_id})


def test_decrypt_etag():
    crypto = Crypto()
    keys = {None: CONTAINER_KEY, 'old': OTHER_KEY}
    plain = 'ab' * 16

    def decrypted(value):
        return decrypt_etag(value, 'AUTH_a', 'box', keys, crypto)
    assert decrypted(plain) == plain
    assert decrypted(_encrypted_etag(plain, CONTAINER_KEY,
                                     '/AUTH_a/box/o')) == plain
    assert decrypted(_encrypted_etag(plain, OTHER_KEY, '/AUTH_a/box/o',
                                     secret_id='old')) == plain
    # A symlink's listing etag carries its target after the etag.
    linked = plain + '; symlink_target=box/t'
    assert decrypted(_encrypted_etag(linked, CONTAINER_KEY,
                                     '/AUTH_a/box/l')) == linked
    # Another container's key, an unknown secret: as a listing shows them.
    assert decrypted(_encrypted_etag(plain, CONTAINER_KEY,
                                     '/AUTH_a/other/o')) == UNKNOWN_ETAG
    assert decrypted(_encrypted_etag(plain, CONTAINER_KEY, '/AUTH_a/box/o',
                                     secret_id='gone')) == UNKNOWN_ETAG
    assert decrypted('x; swift_meta=garbage') == UNKNOWN_ETAG


def test_decrypt_etags_in_a_real_container_database(tmp_path):
    path = str(tmp_path / 'c.db')
    broker = ContainerBroker(path, account='AUTH_a', container='box')
    broker.initialize(Timestamp.now().internal, 0)
    etags = {name: hashlib.md5(name.encode()).hexdigest()
             for name in ('one', 'two')}
    for name, etag in etags.items():
        broker.put_object(name, Timestamp.now().internal, 3, 'text/plain',
                          _encrypted_etag(etag, CONTAINER_KEY,
                                          '/AUTH_a/box/' + name))
    broker.put_object('clear', Timestamp.now().internal, 3, 'text/plain',
                      'cd' * 16)
    broker.get_info()   # merges the pending updates into the file
    decrypt_etags(path, 'AUTH_a', 'box', {None: CONTAINER_KEY})
    listed = {item[0]: item[4] for item in broker.list_objects_iter(
        10, '', None, None, None)}
    assert listed == dict(etags, clear='cd' * 16)
    # Swift's rule against updating rows holds again in the copy.
    with pytest.raises(Exception, match='UPDATE not allowed'):
        with broker.get() as conn:
            conn.execute("UPDATE object SET etag = 'x'")


def test_filesystem_type_takes_the_longest_mount_point():
    mounts = ('/dev/vda / ext4 rw 0 0\n'
              'tmpfs /dev/shm tmpfs rw 0 0\n'
              'tmpfs /srv/with\\040space tmpfs rw 0 0\n')
    assert filesystem_type('/dev/shm', mounts) == 'tmpfs'
    assert filesystem_type('/dev/shm/x', mounts) == 'tmpfs'
    assert filesystem_type('/dev/shmx', mounts) == 'ext4'
    assert filesystem_type('/srv/with space/d', mounts) == 'tmpfs'
    assert filesystem_type('/x', '') is None


def test_orphaned_node_dirs_are_those_of_dead_processes():
    names = [node_dir_prefix(11) + 'abc', node_dir_prefix(12) + 'def',
             'zerocloud-node-junk', 'other-13-x', node_dir_prefix(13) + 'g']
    assert orphaned_node_dirs(names, lambda pid: pid == 12) == [
        names[0], names[4]]
    assert process_alive(os.getpid())


# ------------------------------------------------------------- proxy side

def test_parse_content_location():
    assert inputs.parse_content_location('/v1/AUTH_a/c/o%20x/y') == (
        SwiftPath('AUTH_a', 'c', 'o x/y'), None)
    assert inputs.parse_content_location(
        '/v1/AUTH_a/c/o?version-id=1700000000.12345') == (
        SwiftPath('AUTH_a', 'c', 'o'), '1700000000.12345')
    assert inputs.parse_content_location('/v1/AUTH_a/c') is None


def test_link_target_of_a_plain_symlink_must_be_checked():
    def no_sysmeta(account, container):
        raise AssertionError('not needed')
    link = SwiftPath('AUTH_a', 'c', 'link')
    assert inputs.link_target('/v1/AUTH_b/d/target', link, no_sysmeta) == (
        SwiftPath('AUTH_b', 'd', 'target'), False)
    assert inputs.link_target(None, link, no_sysmeta) is None


def test_link_target_of_a_versioned_object_is_its_stored_version():
    path = SwiftPath('AUTH_a', 'docs', 'report')
    sysmeta = {'versions-container': '%00versions%00docs'}

    def lookup(account, container):
        assert (account, container) == ('AUTH_a', 'docs')
        return sysmeta
    version = '1700000000.12345'
    target, own = inputs.link_target(
        '/v1/AUTH_a/docs/report?version-id=' + version, path, lookup)
    assert own
    inverted = (~Timestamp(version)).internal
    assert target == SwiftPath('AUTH_a', '\x00versions\x00docs',
                               '\x00report\x00' + inverted)
    # A version of another object, a container without versions, a bad
    # version id: not read in place.
    assert inputs.link_target('/v1/AUTH_a/docs/other?version-id=' + version,
                              path, lookup) is None
    assert inputs.link_target('/v1/AUTH_a/docs/report?version-id=x',
                              path, lookup) is None
    sysmeta.clear()
    assert inputs.link_target('/v1/AUTH_a/docs/report?version-id=' +
                              version, path, lookup) is None


def test_local_environ_comes_from_the_get():
    channel = Channel('input', READABLE, SwiftPath('AUTH_a', 'c', 'o'),
                      'application/octet-stream')
    environ = inputs.local_environ(channel, {
        'Etag': '"' + 'ab' * 16 + '"', 'Content-Length': '12',
        'Content-Type': 'text/plain', 'X-Timestamp': '1700000000.00000',
        'X-Object-Meta-Color': 'red', 'X-Trans-Id': 'tx'})
    assert environ == {
        'LOCAL_DOCUMENT_ROOT': '/dev/input', 'LOCAL_OBJECT': 'on',
        'LOCAL_PATH_INFO': '/AUTH_a/c/o', 'LOCAL_CONTENT_TYPE': 'text/plain',
        'LOCAL_CONTENT_LENGTH': '12', 'LOCAL_HTTP_ETAG': 'ab' * 16,
        'LOCAL_HTTP_X_TIMESTAMP': '1700000000.00000',
        'LOCAL_HTTP_X_OBJECT_META_COLOR': 'red'}


# ------------------------------------------------------ reading in place

OBJECT_KEY = b'j' * 32
BODY_KEY = b'b' * 32
PLAINTEXT = b'the plaintext of an encrypted object\n' * 100
TIMESTAMP = '1700000000.12345'
KEY_ID = {'v': '2', 'path': '/AUTH_a/c/o'}


class StoredObject:
    """An object as Swift's encrypter stores it: ciphertext and metadata."""

    def __init__(self, tmp_path):
        crypto = Crypto()
        self.iv = crypto.create_iv()
        self.body_meta = dump_crypto_meta({
            'iv': self.iv, 'cipher': crypto.cipher,
            'body_key': crypto.wrap_key(OBJECT_KEY, BODY_KEY),
            'key_id': KEY_ID})
        self.metadata = {'X-Timestamp': TIMESTAMP,
                         'X-Object-Sysmeta-Crypto-Body-Meta': self.body_meta}
        self.data_file = str(tmp_path / 'o.data')
        with open(self.data_file, 'wb') as fp:
            fp.write(crypto.create_encryption_ctxt(BODY_KEY, self.iv).update(
                PLAINTEXT))
        self.key = protocol.BodyKey(BODY_KEY, self.iv, TIMESTAMP, KEY_ID,
                                    hashlib.md5(PLAINTEXT).hexdigest())


def test_body_key_travels_as_one_header_value():
    key = protocol.BodyKey(BODY_KEY, b'i' * 16, TIMESTAMP, KEY_ID, 'ab' * 16)
    assert protocol.BodyKey.decode(key.encode()) == key
    assert BODY_KEY.hex() not in repr(key)
    for bad in ('', 'not base64!', base64.b64encode(b'[]').decode(),
                base64.b64encode(b'{"key": "x"}').decode()):
        with pytest.raises(ValueError):
            protocol.BodyKey.decode(bad)


def test_mismatch_names_what_differs(tmp_path):
    stored = StoredObject(tmp_path)
    assert decryption.mismatch(stored.key, stored.metadata) is None
    for changed, what in ((dict(timestamp='1700000001.00000'), 'timestamp'),
                          (dict(iv=bytes(16)), 'iv'),
                          (dict(key_id=dict(KEY_ID, path='/x/y/z')),
                           'key id'),
                          (dict(key=b'short'), 'key length')):
        assert decryption.mismatch(replace(stored.key, **changed),
                                   stored.metadata) == what
    assert decryption.mismatch(stored.key, {'X-Timestamp': TIMESTAMP}) == \
        'no body crypto meta'


def test_decrypt_checks_the_plaintext_etag(tmp_path):
    stored = StoredObject(tmp_path)
    plain = str(tmp_path / 'plain')
    assert decryption.decrypt(stored.data_file, plain, stored.key)
    with open(plain, 'rb') as fp:
        assert fp.read() == PLAINTEXT
    wrong = replace(stored.key, key=bytes(b ^ 1 for b in BODY_KEY))
    assert not decryption.decrypt(stored.data_file, plain, wrong)


def test_proxy_unwraps_the_body_key_for_the_version_it_saw(tmp_path):
    stored = StoredObject(tmp_path)
    asked = []

    def fetch_keys(key_id=None):
        asked.append(key_id)
        return {'object': OBJECT_KEY}
    refusal = {'timestamp': TIMESTAMP, 'body_meta': stored.body_meta}
    head = {'Etag': stored.key.etag, 'X-Timestamp': TIMESTAMP}
    assert inputs.body_key(refusal, head, fetch_keys) == stored.key
    assert asked == [KEY_ID]
    # The user's HEAD saw another version than the server's file, no etag,
    # unusable meta: stream instead.
    assert inputs.body_key(refusal, dict(head, **{
        'X-Timestamp': '1700000009.00000'}), fetch_keys) is None
    assert inputs.body_key(refusal, {'X-Timestamp': TIMESTAMP},
                           fetch_keys) is None
    assert inputs.body_key(dict(refusal, body_meta='garbage'), head,
                           fetch_keys) is None
    assert inputs.body_key({'timestamp': TIMESTAMP}, head,
                           fetch_keys) is None
