"""The container database a node reads, as its caller may see it.

A node whose input is a container path reads a copy of that container's
SQLite database.  Its owners get the copy as it is.  Anyone else (a listing
ACL is enough to run such a node) gets what a listing and a ``HEAD`` show
them, nothing more: Swift's proxy hides the ACLs, container-sync settings
and temp-url keys from non-owners, and system metadata from every client,
and a listing never shows deleted objects or replication bookkeeping.

With at-rest encryption, Swift stores each object's etag in the listing
encrypted with the container's key (``<base64>; swift_meta=<crypto meta>``)
and decrypts it only in the proxy's listing response.  The proxy hands the
container server that container's keys for the node's run; the copy then
holds the etags a listing shows (an etag that cannot be decrypted becomes
``<unknown>``, as in a listing).
"""

import base64
import json
import sqlite3
from contextlib import closing
from typing import Dict, List, Mapping, Optional

from swift.common.db import chexor
from swift.common.exceptions import EncryptionException
from swift.common.middleware.crypto.crypto_utils import (
    Crypto, extract_crypto_meta)
from swift.common.swob import str_to_wsgi
from swift.common.utils import split_path

#: The only metadata a non-owner's copy keeps: user metadata ...
USER_METADATA_PREFIX = 'x-container-meta-'
#: ... less the user metadata Swift shows owners only (temp-url keys, from
#: the proxy's default ``swift_owner_headers``).
OWNER_ONLY_USER_METADATA = frozenset((
    'x-container-meta-temp-url-key', 'x-container-meta-temp-url-key-2'))
#: Replication and container-sync positions (``container_stat`` columns).
SYNC_POINT_COLUMNS = ('x_container_sync_point1', 'x_container_sync_point2',
                      'reconciler_sync_point')


def non_owner_metadata(metadata: Dict[str, list]) -> Dict[str, list]:
    """The items of a container's metadata (``{name: [value, timestamp]}``)
    that Swift shows a non-owner: set user metadata, temp-url keys
    excepted."""
    return {name: entry for name, entry in metadata.items()
            if name.lower().startswith(USER_METADATA_PREFIX)
            and name.lower() not in OWNER_ONLY_USER_METADATA
            and isinstance(entry, list) and entry and entry[0] != ''}


def _tables(conn: sqlite3.Connection) -> List[str]:
    return [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")]


def _columns(conn: sqlite3.Connection, table: str) -> List[str]:
    return [row[1] for row in conn.execute(
        'PRAGMA table_info(%s)' % table)]


def scrub_for_non_owner(path: str) -> None:
    """Remove from the container database at ``path`` everything Swift
    shows its owners only, and leave no trace of it in the file.

    ``secure_delete`` zeroes what is deleted and ``VACUUM`` rebuilds the file
    without free pages, so no old value (a former key, a deleted object's
    name) survives in the bytes the node can read.  Deleting object rows
    fires Swift's triggers, which keep the policy counts and the container
    hash consistent (they call ``chexor``).
    """
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.create_function('chexor', 3, chexor)
        conn.execute('PRAGMA secure_delete = ON')
        conn.execute('BEGIN')
        # container_stat is a table in old databases and a view (with an
        # INSTEAD OF UPDATE trigger) in new ones: the same statements suit
        # both.
        (raw,) = conn.execute('SELECT metadata FROM container_stat').fetchone()
        try:
            metadata = json.loads(raw) if raw else {}
        except ValueError:
            metadata = {}
        kept = non_owner_metadata(metadata if isinstance(metadata, dict)
                                  else {})
        conn.execute('UPDATE container_stat SET metadata = ?',
                     (json.dumps(kept) if kept else '',))
        sync_points = [column for column in _columns(conn, 'container_stat')
                       if column in SYNC_POINT_COLUMNS]
        if sync_points:
            conn.execute('UPDATE container_stat SET %s' % ', '.join(
                '%s = -1' % column for column in sync_points))
        conn.execute('DELETE FROM object WHERE deleted = 1')
        tables = _tables(conn)
        for table in ('incoming_sync', 'outgoing_sync'):
            if table in tables:
                conn.execute('DELETE FROM %s' % table)
        if 'shard_range' in tables:
            conn.execute('DELETE FROM shard_range WHERE deleted = 1')
        conn.execute('COMMIT')
        conn.execute('VACUUM')


def snapshot_database(source: str, dest: str, scrub: bool) -> None:
    """Copy the database at ``source`` to ``dest``, consistently although
    the server keeps writing it (SQLite's backup API); ``scrub``: as a
    non-owner may see it.  Blocking: run it in a real thread."""
    with closing(sqlite3.connect(source)) as src, \
            closing(sqlite3.connect(dest)) as dst:
        src.backup(dst)
    if scrub:
        scrub_for_non_owner(dest)


#: What a listing shows for an etag it cannot decrypt (Swift's decrypter).
UNKNOWN_ETAG = '<unknown>'
#: The trigger that forbids updating object rows (Swift: delete, insert).
UPDATE_TRIGGER = 'object_update'


def _key_container(key_id: dict) -> Optional[tuple]:
    """(account, container) whose key encrypted a value, from its key id."""
    try:
        account, container, _obj = split_path(key_id['path'], 2, 3, True)
    except (KeyError, TypeError, ValueError):
        return None
    return account, container


def decrypt_etag(value: str, account: str, container: str,
                 keys: Mapping[Optional[str], bytes],
                 crypto: Crypto) -> str:
    """One listing etag as a listing shows it.

    ``keys``: the container's key per root secret id (``None``: the
    default).  A value without crypto meta is returned as it is.
    """
    try:
        ciphertext, meta = extract_crypto_meta(value)
    except EncryptionException:
        return UNKNOWN_ETAG
    if meta is None:
        return value
    key_id = meta.get('key_id') or {}
    key = keys.get(key_id.get('secret_id'))
    # Key ids of version 1 and 2 may hold the path as a WSGI string.
    ours = {(account, container),
            (str_to_wsgi(account), str_to_wsgi(container))}
    if key is None or _key_container(key_id) not in ours:
        return UNKNOWN_ETAG
    try:
        crypto.check_crypto_meta(meta)
        plain = crypto.create_decryption_ctxt(key, meta['iv'], 0).update(
            base64.b64decode(ciphertext))
        return plain.decode('utf-8')
    except (EncryptionException, ValueError, UnicodeDecodeError):
        return UNKNOWN_ETAG


def decrypt_etags(path: str, account: str, container: str,
                  keys: Mapping[Optional[str], bytes]) -> None:
    """Decrypt, in the database copy at ``path``, every encrypted etag.

    Swift's trigger forbids updating object rows; the copy is the node's
    own, so the trigger is dropped for the update and made again.
    Blocking: run it in a real thread.
    """
    crypto = Crypto()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.create_function('chexor', 3, chexor)
        conn.execute('BEGIN')
        rows = conn.execute(
            "SELECT ROWID, etag FROM object WHERE etag LIKE '%swift_meta=%'"
        ).fetchall()
        if rows:
            trigger = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                "AND name = ?", (UPDATE_TRIGGER,)).fetchone()
            if trigger:
                conn.execute('DROP TRIGGER %s' % UPDATE_TRIGGER)
            conn.executemany(
                'UPDATE object SET etag = ? WHERE ROWID = ?',
                [(decrypt_etag(etag, account, container, keys, crypto),
                  rowid) for rowid, etag in rows])
            if trigger:
                conn.execute(trigger[0])
        conn.execute('COMMIT')
