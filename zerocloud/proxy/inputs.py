"""A node's input object as a client's GET returns it, wherever it is read.

A node placed next to its input reads the object server's local ``.data``
file.  That is the object only for a plain object of a replicated policy;
the object server refuses the local read otherwise (before the body is
sent: ``409`` with ``X-Zerocloud-Stream-Input: <reason>``,
:mod:`zerocloud.protocol`) and the proxy already knows about erasure-coded
containers from their info.  Such a node then runs

* on the same server when the object is encrypted there, given the body
  key of that object: the proxy unwraps it (the object's key derives from
  the keymaster's root secret, which only the proxy holds) and sends it
  with the node (:class:`zerocloud.protocol.BodyKey`); the server decrypts
  into RAM.  If the key does not fit its ``.data`` file (overwritten
  meanwhile), the node stays on the object's servers with the object
  streamed;
* next to a symlink's target, read under the symlink's name, when the
  caller may read that target directly, and then as that target is read
  (in place, decrypted in place or streamed); a versioned object's current
  version is a symlink into the hidden versions container, so it stays
  local;
* otherwise on any object server, with the input streamed from a GET
  through the proxy pipeline as the caller: decrypted, erasure-decoded,
  large objects and symlinks resolved with the caller's rights (a target the
  caller may not read: 403 naming the object).

Wherever it reads from, the program sees the ``LOCAL_*`` variables of the
object as a client does (from the proxy's GET or HEAD when the server's
copy is ciphertext or not the object).

This module holds the pieces of that decision that need no Swift request.
"""

from typing import Callable, Dict, Mapping, Optional
from urllib.parse import parse_qs

from swift.common.exceptions import EncryptionException
from swift.common.middleware.crypto.crypto_utils import (
    Crypto, load_crypto_meta)
from swift.common.middleware.versioned_writes.object_versioning import (
    build_versions_object_name)
from swift.common.swob import str_to_wsgi, wsgi_to_str, wsgi_unquote
from swift.common.utils import Timestamp, split_path

from zerocloud import cgi
from zerocloud.job.model import Channel, SwiftPath
from zerocloud.protocol import BodyKey

#: Container sysmeta (as in Swift's container info) naming the hidden
#: container that holds a versioned container's versions.
VERSIONS_CONTAINER_SYSMETA = 'versions-container'
VERSION_ID_PARAM = 'version-id'


def parse_content_location(value: str) -> Optional[tuple]:
    """``/v1/a/c/o[?version-id=V]`` → (``SwiftPath``, version id or None);
    ``None`` when it is not an object's location."""
    path, _, query = value.partition('?')
    try:
        _version, account, container, obj = split_path(
            wsgi_unquote(path), 4, 4, True)
        path_of = SwiftPath(wsgi_to_str(account), wsgi_to_str(container),
                            wsgi_to_str(obj))
    except (ValueError, UnicodeError):
        return None
    versions = parse_qs(query).get(VERSION_ID_PARAM)
    return path_of, versions[0] if versions else None


def versions_container(container_sysmeta: Mapping[str, str]
                       ) -> Optional[str]:
    """The hidden container of a versioned container's versions, from its
    container info's ``sysmeta`` (stored quoted, as Swift's
    object versioning writes it)."""
    value = container_sysmeta.get(VERSIONS_CONTAINER_SYSMETA)
    if not value:
        return None
    return wsgi_to_str(wsgi_unquote(str_to_wsgi(value)).split('/')[0])


def link_target(content_location: Optional[str], channel_path: SwiftPath,
                container_sysmeta: Callable[[str, str], Mapping[str, str]]
                ) -> Optional[tuple]:
    """Where the bytes of a symlink's resolution are stored.

    ``content_location`` is what a GET of ``channel_path`` answered.
    Returns (path, is its own version) or ``None``.  A version of the
    channel's own object (``<channel path>?version-id=V``) is one the
    caller just read through it; any other path is a target the caller
    must be allowed to read directly before it is read in place.
    """
    if not content_location:
        return None
    parsed = parse_content_location(content_location)
    if parsed is None:
        return None
    path, version = parsed
    if version is None:
        return path, False
    if path != channel_path:
        return None
    hidden = versions_container(
        container_sysmeta(path.account, path.container))
    if hidden is None:
        return None
    try:
        name = build_versions_object_name(path.obj, version)
    except ValueError:
        return None
    return SwiftPath(path.account, hidden, name), True


def body_key(refusal: Mapping[str, str], headers: Mapping[str, str],
             fetch_keys: Callable) -> Optional[BodyKey]:
    """The key for reading an encrypted object in place.

    ``refusal``: what its server said (the ``.data`` file's ``timestamp``
    and stored ``body_meta``, :data:`zerocloud.protocol.STREAM_INPUT_HEADER`);
    ``headers``: the user's HEAD of the object; ``fetch_keys``: the
    keymaster's callback from that HEAD.  ``None`` when that HEAD saw
    another version than the server's file, or the meta is unusable: the
    object is streamed then.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    etag = (lower.get('etag') or '').strip('"')
    try:
        if not etag or Timestamp(refusal['timestamp']) != Timestamp(
                lower.get('x-timestamp')):
            return None
        meta = load_crypto_meta(refusal['body_meta'])
        crypto = Crypto()
        crypto.check_crypto_meta(meta)
        object_key = fetch_keys(key_id=meta['key_id'])['object']
        key = crypto.unwrap_key(object_key, meta['body_key'])
        return BodyKey(key, meta['iv'], refusal['timestamp'],
                       meta['key_id'], etag)
    except (KeyError, TypeError, ValueError, EncryptionException):
        return None


def local_environ(channel: Channel, headers: Mapping[str, str]
                  ) -> Dict[str, str]:
    """``LOCAL_*`` variables of an input whose server copy is not what a
    client sees, from the proxy's GET or HEAD of it (the decrypted etag and
    metadata)."""
    lower = {name.lower(): value for name, value in headers.items()}
    meta = {name: value for name, value in headers.items()
            if name.lower().startswith('x-object-meta-')
            or name.lower() in ('x-timestamp', 'content-encoding')}
    if lower.get('etag'):
        meta['ETag'] = lower['etag'].strip('"')
    size = lower.get('content-length', '')
    return cgi.local_object_environ(
        channel.device, channel.path.path_info, meta,
        int(size) if size.isdigit() else None, lower.get('content-type'),
        writable=False)
