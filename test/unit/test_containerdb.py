"""The copy of a container database a non-owner's node reads, built on a
real Swift container database."""

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from swift.common.db import chexor
from swift.common.utils import ShardRange, Timestamp
from swift.container.backend import ContainerBroker

from zerocloud.object.containerdb import non_owner_metadata, snapshot_database

#: Values only the owners may see, each unique so the raw bytes of the copy
#: can be searched for it.
SECRETS = {
    'X-Container-Meta-Temp-Url-Key': 'secret-tempurl-key-4f1c',
    'X-Container-Meta-Temp-Url-Key-2': 'secret-tempurl-key2-9b7e',
    'X-Container-Sync-Key': 'secret-sync-key-77aa',
    'X-Container-Sync-To': '//realm/cluster/AUTH_peer/secret-sync-target',
    'X-Container-Read': 'secret-reader-account:alice',
    'X-Container-Write': 'secret-writer-account:bob',
    'X-Container-Sysmeta-Versions-Location': 'secret-sysmeta-versions',
}
FORMER_KEY = 'secret-former-tempurl-key-31d0'
DELETED_OBJECT = 'secret-deleted-object-name-c2e8'
DELETED_SHARD = '.shards_AUTH_test/secret-deleted-shard-5a5a'
SYNC_PEER = 'secret-sync-peer-id-0e0e'


def build_container(path: Path) -> ContainerBroker:
    """A container with public and owner-only metadata, a former temp-url
    key, live and deleted objects, sync state and a deleted shard range."""
    broker = ContainerBroker(str(path), account='AUTH_test', container='box')
    broker.initialize(Timestamp.now().internal, 0)
    stamp = Timestamp.now().internal
    metadata = {name: (value, stamp) for name, value in SECRETS.items()}
    metadata['X-Container-Meta-Color'] = ('blue', stamp)
    metadata['X-Container-Meta-Notes'] = ('', stamp)   # a deleted item
    broker.update_metadata(metadata)
    for name in ('kept-1', 'kept-2', DELETED_OBJECT):
        broker.put_object(name, Timestamp.now().internal, 3, 'text/plain',
                          'ab' * 16)
    broker.delete_object(DELETED_OBJECT, Timestamp.now().internal)
    broker.set_x_container_sync_points(5, 6)
    broker.merge_syncs([{'remote_id': SYNC_PEER, 'sync_point': 4}])
    broker.merge_syncs([{'remote_id': SYNC_PEER, 'sync_point': 4}],
                       incoming=False)
    broker.merge_shard_ranges([
        ShardRange(DELETED_SHARD, Timestamp.now(), deleted=True),
        ShardRange('.shards_AUTH_test/live-shard', Timestamp.now())])
    broker.get_info()   # merges the pending object updates into the file
    leave_former_key_in_a_free_page(path)
    return broker


def leave_former_key_in_a_free_page(path: Path) -> None:
    """What a key changed on a server whose SQLite does not zero deleted
    content (upstream's default) leaves behind: the former key, pushed into
    an overflow page by long metadata, stays in that page once freed."""
    with closing(sqlite3.connect(str(path))) as conn:
        conn.execute('PRAGMA secure_delete = OFF')
        (current,) = conn.execute(
            'SELECT metadata FROM container_info').fetchone()
        stamp = Timestamp.now().internal
        conn.execute('UPDATE container_info SET metadata = ?', (json.dumps({
            'X-Container-Meta-Notes': ['n' * 6000, stamp],
            'X-Container-Meta-Temp-Url-Key': [FORMER_KEY, stamp]}),))
        conn.commit()
        conn.execute('UPDATE container_info SET metadata = ?', (current,))
        conn.commit()


def rows(path: Path, query: str) -> list:
    with closing(sqlite3.connect(str(path))) as conn:
        return conn.execute(query).fetchall()


def test_non_owner_metadata_keeps_set_user_metadata_only():
    stamp = '1700000000.00000'
    metadata = {
        'X-Container-Meta-Color': ['blue', stamp],
        'x-container-meta-temp-url-key': ['k', stamp],
        'X-Container-Meta-Temp-Url-Key-2': ['k2', stamp],
        'X-Container-Meta-Gone': ['', stamp],
        'X-Container-Read': ['.r:*', stamp],
        'X-Container-Sysmeta-Anything': ['s', stamp],
        'X-Versions-Location': ['old', stamp],
    }
    assert non_owner_metadata(metadata) == {
        'X-Container-Meta-Color': ['blue', stamp]}


def test_non_owner_copy_lacks_owner_only_data(tmp_path):
    source = tmp_path / 'source.db'
    build_container(source)
    raw_source = source.read_bytes()
    # The source holds every secret (the former key in a free page or an
    # old row version): the checks on the copy below can fail.
    for secret in [*SECRETS.values(), FORMER_KEY, DELETED_OBJECT,
                   DELETED_SHARD, SYNC_PEER]:
        assert secret.encode() in raw_source, secret
    copy = tmp_path / 'copy.db'
    snapshot_database(str(source), str(copy), scrub=True)

    raw_copy = copy.read_bytes()
    for secret in [*SECRETS.values(), FORMER_KEY, DELETED_OBJECT,
                   DELETED_SHARD, SYNC_PEER]:
        assert secret.encode() not in raw_copy, secret
    broker = ContainerBroker(str(copy), account='AUTH_test', container='box')
    assert {name: value for name, (value, _) in broker.metadata.items()} == {
        'X-Container-Meta-Color': 'blue'}
    info = broker.get_info()
    assert (info['x_container_sync_point1'],
            info['x_container_sync_point2']) == (-1, -1)
    assert info['object_count'] == 2
    assert rows(copy, 'SELECT name, deleted FROM object ORDER BY name') == [
        ('kept-1', 0), ('kept-2', 0)]
    assert rows(copy, 'SELECT * FROM incoming_sync') == []
    assert rows(copy, 'SELECT * FROM outgoing_sync') == []
    assert rows(copy, 'SELECT name FROM shard_range') == [
        ('.shards_AUTH_test/live-shard',)]
    # The container hash covers exactly the rows left (Swift's triggers ran).
    expected = '0' * 32
    for name, created_at in rows(copy,
                                 'SELECT name, created_at FROM object'):
        expected = chexor(expected, name, created_at)
    assert info['hash'] == expected
    assert rows(copy, 'PRAGMA freelist_count') == [(0,)]


def test_owner_copy_is_the_whole_database(tmp_path):
    source = tmp_path / 'source.db'
    build_container(source)
    copy = tmp_path / 'copy.db'
    snapshot_database(str(source), str(copy), scrub=False)

    broker = ContainerBroker(str(copy), account='AUTH_test', container='box')
    assert broker.metadata['X-Container-Meta-Temp-Url-Key'][0] == \
        SECRETS['X-Container-Meta-Temp-Url-Key']
    assert broker.metadata['X-Container-Sync-Key'][0] == \
        SECRETS['X-Container-Sync-Key']
    assert (DELETED_OBJECT, 1) in rows(copy,
                                       'SELECT name, deleted FROM object')
    assert rows(copy, 'SELECT remote_id FROM incoming_sync') == [
        (SYNC_PEER,)]
