"""Reading an encrypted object in place with the one key the proxy sends.

With Swift's at-rest encryption a ``.data`` file holds AES-256-CTR
ciphertext under a random body key.  The body key is stored wrapped by the
object's key, with the IV and the key id, in
``X-Object-Sysmeta-Crypto-Body-Meta``; the object's key derives from the
keymaster's root secret, which only the proxy holds.  For a node next to
such an object the proxy unwraps the body key and sends it with the
request (:class:`zerocloud.protocol.BodyKey`), together with what it must
match here: the ``.data`` file's timestamp, the IV and key id, and the
plaintext's etag.

:func:`mismatch` compares them before the request body is read: any
difference (the object was overwritten meanwhile, another key) and the
server refuses, so the proxy streams the object instead.  The program
then reads the ``.data`` file itself, decrypted as it reads
(:func:`cipher_key`, :mod:`zerocloud.runtime.served`).  Only an image
the host unpacks is decrypted whole, by :func:`decrypt`: into a file in
RAM (``zerovm_ram_dir``), never on a device, its md5 checked against the
etag.  The key lives in this request's memory and the sandbox worker's
only: it is never written, logged or put in the node's system map.
"""

from hashlib import md5
from typing import Mapping, Optional

from swift.common.exceptions import EncryptionException
from swift.common.middleware.crypto.crypto_utils import (
    Crypto, load_crypto_meta)
from swift.common.utils import Timestamp

from zerocloud.protocol import BodyKey
from zerocloud.cipher import CipherKey

BODY_META = 'X-Object-Sysmeta-Crypto-Body-Meta'
CHUNK = 1 << 20


def body_meta_value(metadata: Mapping[str, str]) -> Optional[str]:
    """The stored (serialized) body crypto meta, as the proxy needs it."""
    return {name.lower(): v for name, v in metadata.items()}.get(
        BODY_META.lower())


def body_meta(metadata: Mapping[str, str]) -> Optional[dict]:
    """The crypto meta of an object's body, if it has a valid one."""
    value = body_meta_value(metadata)
    if not value:
        return None
    try:
        meta = load_crypto_meta(value)
        Crypto().check_crypto_meta(meta)
    except EncryptionException:
        return None
    return meta


def mismatch(key: BodyKey, metadata: Mapping[str, str]) -> Optional[str]:
    """Why ``key`` does not open the ``.data`` file of ``metadata`` (its
    what, never its value), or ``None`` when it does."""
    meta = body_meta(metadata)
    if meta is None:
        return 'no body crypto meta'
    try:
        if Timestamp(metadata.get('X-Timestamp')) != Timestamp(key.timestamp):
            return 'timestamp'
    except ValueError:
        return 'timestamp'
    if meta['iv'] != key.iv:
        return 'iv'
    if meta.get('key_id') != key.key_id:
        return 'key id'
    if len(key.key) != Crypto.key_length:
        return 'key length'
    return None


def cipher_key(key: BodyKey) -> CipherKey:
    """What the runtime needs to decrypt the body as it is read."""
    return CipherKey(key.key, key.iv)


def decrypt(data_file: str, dest: str, key: BodyKey) -> bool:
    """Decrypt ``data_file`` into ``dest``; whether its md5 is the etag.
    Blocking: run it in a real thread."""
    decryptor = Crypto().create_decryption_ctxt(key.key, key.iv, 0)
    digest = md5(usedforsecurity=False)
    with open(data_file, 'rb') as source, open(dest, 'wb') as plain:
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                break
            clear = decryptor.update(chunk)
            digest.update(clear)
            plain.write(clear)
    return digest.hexdigest() == key.etag
