"""AES-256-CTR at any byte offset: Swift's body cipher, and our seal.

Swift's at-rest encryption stores an object's body as AES-256-CTR
ciphertext.  CTR is seekable: the keystream of byte ``n`` depends only on
the key, the IV and ``n``, and encrypting is the same operation as
decrypting.  The same cipher seals what ZeroCloud itself must keep on a
disk for a while, a node's outputs (:mod:`zerocloud.runtime.served`) and
what the proxy spools (:mod:`zerocloud.job.source`), with a key made for
that one file and held only in memory: the file is ciphertext, and once
the key is dropped it is noise.
"""

import base64
import binascii
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, Iterator

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
KEY_BYTES = 32
COUNTER_SPACE = 1 << 128
CHUNK = 1 << 16


@dataclass(frozen=True)
class CipherKey:
    """A key and its IV: an encrypted object's body key, or one sealed
    file's."""
    key: bytes = field(repr=False)
    iv: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES or len(self.iv) != BLOCK:
            raise ValueError('an AES-256-CTR key is 32 bytes and its IV 16')

    def to_json(self) -> Dict[str, str]:
        return {'key': base64.b64encode(self.key).decode('ascii'),
                'iv': base64.b64encode(self.iv).decode('ascii')}

    @classmethod
    def fresh(cls) -> 'CipherKey':
        """A random key and IV, for one sealed file."""
        return cls(os.urandom(KEY_BYTES), os.urandom(BLOCK))

    @classmethod
    def from_json(cls, value: Any) -> 'CipherKey':
        """ValueError unless ``value`` is what :meth:`to_json` makes."""
        try:
            return cls(base64.b64decode(value['key'], validate=True),
                       base64.b64decode(value['iv'], validate=True))
        except (KeyError, TypeError, binascii.Error) as err:
            raise ValueError('bad cipher key: %s' % err)


class KeyStream:
    """Encrypts or decrypts any byte range under one key; a call that goes
    on where the last one stopped reuses its cipher context."""

    def __init__(self, key: CipherKey):
        self.key = key
        self._context: Any = None
        self._next = -1

    def _context_at(self, offset: int) -> Any:
        counter = (int.from_bytes(self.key.iv, 'big') + offset // BLOCK) \
            % COUNTER_SPACE
        context = Cipher(algorithms.AES(self.key.key),
                         modes.CTR(counter.to_bytes(BLOCK, 'big'))
                         ).decryptor()
        context.update(bytes(offset % BLOCK))
        return context

    def apply(self, offset: int, data: Any) -> bytes:
        """``data`` (bytes-like) at ``offset`` through the cipher: the
        plaintext of ciphertext, or the ciphertext of plaintext (CTR mode
        does both with one operation)."""
        if offset != self._next:
            self._context = self._context_at(offset)
        self._next = offset + len(data)
        return self._context.update(data)


class SealedWriter:
    """``write()`` into ``fp`` as sealed by ``key``, from its start."""

    def __init__(self, fp: BinaryIO, key: CipherKey):
        self._fp = fp
        self._stream = KeyStream(key)
        self._offset = 0

    def write(self, data: Any) -> int:
        self._fp.write(self._stream.apply(self._offset, data))
        self._offset += len(data)
        return len(data)


def unsealed_chunks(path: str, key: CipherKey, offset: int = 0,
                    chunk: int = CHUNK) -> Iterator[bytes]:
    """The plaintext of a file sealed by ``key``, from ``offset``."""
    stream = KeyStream(key)
    with open(path, 'rb') as fp:
        fp.seek(offset)
        while True:
            data = fp.read(chunk)
            if not data:
                return
            yield stream.apply(offset, data)
            offset += len(data)


def read_unsealed(path: str, key: CipherKey, size: int, offset: int = 0
                  ) -> bytes:
    """At most ``size`` bytes of plaintext of a sealed file."""
    with open(path, 'rb') as fp:
        fp.seek(offset)
        return KeyStream(key).apply(offset, fp.read(size))
