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

A module this process compiled is written to the cache and then mapped
back from that file, like every other: the compiled code of the Python
snapshot (280 MB) is then one file mapping shared by every worker process,
not one private copy each.  ``evict`` removes what no current setting can
load (another wasmtime version) and the modules of replaced images.

Every cached module was compiled from bytes wasmtime validated, so a module
served from the cache counts as validated.

A runtime may refuse to compile large modules inside a run
(``compile_large=False``, the pool workers): a module over
``LARGE_MODULE_BYTES`` that is in neither cache is then not compiled but
answered ``program is being compiled; retry later`` (EAGAIN 11), and the
object server compiles it in the background (``SandboxPool.warm``) and
answers ``503`` with ``Retry-After``.  Compiling the Python image takes a
minute or more, far beyond a run's time limit.

Status texts: ``program <path> not found`` (ENOENT 2), ``program <path> is
unreadable`` (EIO 5), ``program is not a WebAssembly module`` and ``program
failed validation: <reason>`` (ENOEXEC 8; the latter with report line 1 = 1),
``program is being compiled; retry later`` (EAGAIN 11).
"""

import errno
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

import wasmtime

from zerocloud.runtime import image, reactor
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.errors import SessionFailure

WASM_MAGIC = b'\0asm'
#: Modules above this size are not compiled inside a run when the runtime
#: defers large compiles (the Python 3.11 image, 20 MB, compiles in 2 s).
LARGE_MODULE_BYTES = 64 << 20
STATUS_NOT_COMPILED = 'program is being compiled; retry later'
CWASM_SUFFIX = '.cwasm'
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

    @staticmethod
    def settings_digest(settings: EngineSettings) -> str:
        return hashlib.sha256(settings.cache_key().encode()).hexdigest()[:16]

    def cache_path(self, settings: EngineSettings, digest: str) -> str:
        return os.path.join(self.cache_dir, '%s-%s%s' % (
            digest, self.settings_digest(settings), CWASM_SUFFIX))

    def evict(self, keep_settings: Iterable[EngineSettings],
              replaced: Iterable[str] = ()) -> int:
        """Delete compiled modules whose settings are none of
        ``keep_settings`` (another wasmtime version, a setting that no
        longer exists) or whose module digest is in ``replaced``, and the
        unpacked support trees of those digests; returns files removed."""
        keep = {self.settings_digest(s) for s in keep_settings}
        gone = set(replaced)
        removed = 0
        try:
            names = os.listdir(self.cache_dir)
        except FileNotFoundError:
            return 0
        for name in names:
            if not name.endswith(CWASM_SUFFIX):
                continue
            digest, _, key = name[:-len(CWASM_SUFFIX)].partition('-')
            if key in keep and digest not in gone:
                continue
            try:
                os.unlink(os.path.join(self.cache_dir, name))
                removed += 1
            except OSError:
                pass
        for digest in gone:
            shutil.rmtree(os.path.join(self.cache_dir, reactor.TREES_DIR, digest),
                          ignore_errors=True)
        return removed

    def load(self, engine: wasmtime.Engine, settings: EngineSettings,
             path: str, member: Optional[str] = None,
             compile_large: bool = True) -> LoadedModule:
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
            if not compile_large and len(wasm) > LARGE_MODULE_BYTES:
                raise SessionFailure(STATUS_NOT_COMPILED, errno.EAGAIN)
            module = self._compile(engine, wasm)
            if self._store(cwasm, module):
                module = wasmtime.Module.deserialize_file(engine, cwasm)
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

    def _store(self, cwasm: str, module: wasmtime.Module) -> bool:
        """Write the serialized module atomically; True when it is there.
        A failure only costs a recompile next time, so it is not an error
        of the run."""
        try:
            os.makedirs(self.cache_dir, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.cache_dir, suffix='.tmp')
        except OSError:
            return False
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(module.serialize())
            os.chmod(temp, 0o644)
            os.replace(temp, cwasm)
            return True
        except OSError:
            try:
                os.unlink(temp)
            except OSError:
                pass
            return False
