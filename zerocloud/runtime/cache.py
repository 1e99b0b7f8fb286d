"""Compiled-module cache: compile a program once, map it in on every run.

On disk: ``<cache_dir>/<sha256 of module bytes>-<settings digest>.cwasm``,
the settings digest covering the wasmtime version and the engine settings
that change code generation (``zerocloud.runtime.engine``).  Files are
written to a temporary name and renamed, so concurrent workers never see a
partial file; an unreadable or stale file is recompiled and replaced.

In memory (one warm worker process): the program identity (path, member,
device, inode, size, mtime_ns) maps to its sha256, and (settings, sha256) to
the loaded ``Module``, so a warm run neither rehashes nor reloads the 20 MB
Python module.  A changed file changes its identity and is hashed again.

Every cached module was compiled from bytes wasmtime validated, so a module
served from the cache counts as validated.

Status texts: ``program <path> not found`` (ENOENT 2), ``program <path> is
unreadable`` (EIO 5), ``program is not a WebAssembly module`` and ``program
failed validation: <reason>`` (ENOEXEC 8; the latter with report line 1 = 1).
"""

import errno
import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import wasmtime

from zerocloud.runtime import image
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.errors import SessionFailure

WASM_MAGIC = b'\0asm'
Identity = Tuple[str, Optional[str], int, int, int, int]


@dataclass
class LoadedModule:
    module: wasmtime.Module
    sha256: str
    from_disk_cache: bool


class ModuleCache:
    """Per-process memo in front of the on-disk ``.cwasm`` cache."""

    def __init__(self, cache_dir: str):
        self.cache_dir = cache_dir
        self._digests: Dict[Identity, str] = {}
        self._modules: Dict[Tuple[EngineSettings, str], wasmtime.Module] = {}

    def _identity(self, path: str, member: Optional[str]) -> Identity:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise SessionFailure('program not found', errno.ENOENT)
        except OSError:
            raise SessionFailure('program is unreadable', errno.EIO)
        if not os.path.isfile(path):
            raise SessionFailure('program is unreadable', errno.EIO)
        return (os.path.abspath(path), member, st.st_dev, st.st_ino,
                st.st_size, st.st_mtime_ns)

    @staticmethod
    def _read(path: str, member: Optional[str]) -> bytes:
        if member is not None:
            return image.read_member(path, member)
        try:
            with open(path, 'rb') as handle:
                return handle.read()
        except OSError:
            raise SessionFailure('program is unreadable', errno.EIO)

    def cache_path(self, settings: EngineSettings, digest: str) -> str:
        key = hashlib.sha256(settings.cache_key().encode()).hexdigest()[:16]
        return os.path.join(self.cache_dir, '%s-%s.cwasm' % (digest, key))

    def load(self, engine: wasmtime.Engine, settings: EngineSettings,
             path: str, member: Optional[str] = None) -> LoadedModule:
        """The compiled module for ``path`` (or its tar ``member``)."""
        identity = self._identity(path, member)
        digest = self._digests.get(identity)
        wasm = None
        if digest is None:
            wasm = self._read(path, member)
            if wasm[:4] != WASM_MAGIC:
                raise SessionFailure('program is not a WebAssembly module',
                                     errno.ENOEXEC)
            digest = hashlib.sha256(wasm).hexdigest()
            self._digests[identity] = digest
        module = self._modules.get((settings, digest))
        if module is not None:
            return LoadedModule(module, digest, True)
        cwasm = self.cache_path(settings, digest)
        if os.path.exists(cwasm):
            try:
                module = wasmtime.Module.deserialize_file(engine, cwasm)
            except wasmtime.WasmtimeError:
                module = None  # stale or damaged: compile and replace it
        from_disk = module is not None
        if module is None:
            if wasm is None:
                wasm = self._read(path, member)
            module = self._compile(engine, wasm)
            self._store(cwasm, module)
        self._modules[(settings, digest)] = module
        return LoadedModule(module, digest, from_disk)

    @staticmethod
    def _compile(engine: wasmtime.Engine, wasm: bytes) -> wasmtime.Module:
        try:
            return wasmtime.Module(engine, wasm)
        except wasmtime.WasmtimeError as err:
            reason = str(err).strip().splitlines()
            raise SessionFailure('program failed validation: %s'
                                 % (reason[0] if reason else 'invalid'),
                                 errno.ENOEXEC, validation=1)

    def _store(self, cwasm: str, module: wasmtime.Module) -> None:
        """Write the serialized module atomically; a failure only costs a
        recompile next time, so it is not an error of the run."""
        try:
            os.makedirs(self.cache_dir, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.cache_dir, suffix='.tmp')
        except OSError:
            return
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(module.serialize())
            os.chmod(temp, 0o644)
            os.replace(temp, cwasm)
        except OSError:
            try:
                os.unlink(temp)
            except OSError:
                pass
