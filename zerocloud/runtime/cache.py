"""Compiled-module cache: compile a program once, map it in on every run.

On disk, ``<sha256 of module bytes>-<settings digest>.cwasm``, the settings
digest covering the wasmtime version and the engine settings that change
code generation (``zerocloud.runtime.engine``): in ``<cache_dir>`` for the
programs of system images (tar members, installed by the operator), in
``<cache_dir>/user/`` for user programs.  Files are written to a temporary
name and renamed, so concurrent workers never see a partial file; an
unreadable or stale file is recompiled and replaced.

A system image's program is compiled in this process.  A user program is
compiled in a child process under ``CacheLimits.compile_memory`` and
``compile_seconds`` (``zerocloud.runtime.compiler``).  A compile that
failed for what the module is (invalid, or beyond those limits) is
remembered by the module's digest and the limits, in ``user/<sha256>-<limits
digest>.failed`` and in memory, and answered at once from then on, never
compiled again: ``program cannot be compiled within the server's limits``
or ``program failed validation: <reason>`` (ENOEXEC 8).

Bounds (``zerocloud.runtime.limits.CacheLimits``): ``user/`` holds at most
``disk_bytes`` and ``disk_files`` (compiled modules and remembered
failures), the least recently used (by mtime, touched at every use) removed
first after each compile; a file another worker has mapped stays readable
to it.  In memory (one worker process), the program identity (path,
member, device, inode, size, mtime_ns) maps to its sha256 (at most
``IDENTITY_MEMO`` entries) and (settings, sha256) to the loaded ``Module``:
at most ``worker_modules`` user modules of ``worker_bytes`` together
(their ``.cwasm`` sizes), least recently used dropped first; the modules of
system images are kept apart, unbounded, so a warm run neither rehashes
nor reloads the Python image.

A module this process compiled is written to the cache and then mapped
back from that file, like every other: the compiled code of the Python
snapshot (280 MB) is then one file mapping shared by every worker process,
not one private copy each.  ``evict`` removes what no current setting can
load (another wasmtime version) and the modules of replaced images.

Every cached module was compiled from bytes wasmtime validated, so a module
served from the cache counts as validated.

A runtime may refuse to compile large modules inside a run
(``compile_large=False``, the pool workers): a module over
``in_run_compile_bytes`` that is in neither cache is then not compiled but
answered ``program is being compiled; retry later`` (EAGAIN 11), as is a
user program whose compile does not end within the run's timeout
(``compile_budget``), and the object server compiles it in the
background (``SandboxPool.warm``) from a copy that outlives the request
(``keep_source``) and answers ``503`` with
``Retry-After``.  Compiling the Python image takes a minute or more, far
beyond a run's time limit.

Status texts: ``program <path> not found`` (ENOENT 2), ``program <path> is
unreadable`` (EIO 5), ``program is not a WebAssembly module``, ``program
failed validation: <reason>`` (report line 1 = 1) and ``program cannot be
compiled within the server's limits`` (ENOEXEC 8), ``program is being
compiled; retry later`` (EAGAIN 11).
"""

import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple

import wasmtime

from zerocloud.runtime import image, reactor
from zerocloud.runtime.compiler import (STATUS_NOT_COMPILED, CompileFailure,
                                        compile_in_child, write_atomically)
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.errors import SessionFailure, error_text
from zerocloud.runtime.limits import CacheLimits
from zerocloud.runtime.lru import BoundedLru

WASM_MAGIC = b'\0asm'
CWASM_SUFFIX = '.cwasm'
FAILED_SUFFIX = '.failed'
USER_DIR = 'user'
SOURCES_DIR = 'sources'
#: Program identities a worker remembers the digest of.
IDENTITY_MEMO = 1024
#: Remembered compile failures a worker keeps in memory (the files stay).
FAILURE_MEMO = 1024
#: Seconds after which a kept source no compile removed is an orphan.
SOURCE_MAX_AGE = 24 * 3600
Identity = Tuple[str, Optional[str], int, int, int, int]


@dataclass
class LoadedModule:
    module: wasmtime.Module
    sha256: str
    from_disk_cache: bool
    #: Bytes of its ``.cwasm`` (what mapping it may cost), 0 if unknown.
    size: int = 0
    #: A system image's program: never evicted by user work.
    system: bool = False


def _hash_program(path: str) -> str:
    """sha256 of a WebAssembly file, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, 'rb') as handle:
            head = handle.read(1 << 20)
            if head[:4] != WASM_MAGIC:
                raise SessionFailure('program is not a WebAssembly module',
                                     errno.ENOEXEC)
            while head:
                digest.update(head)
                head = handle.read(1 << 20)
    except OSError:
        raise SessionFailure('program is unreadable', errno.EIO)
    return digest.hexdigest()


def keep_source(cache_dir: str, path: str) -> Tuple[str, str]:
    """Copy a user program where it outlives its request, for a compile in
    the background: (its sha256, the copy's path).  The caller removes the
    copy when the compile is over; copies older than ``SOURCE_MAX_AGE``
    (their process died) are removed here."""
    folder = os.path.join(cache_dir, SOURCES_DIR)
    os.makedirs(folder, exist_ok=True)
    _remove_older_than(folder, time.time() - SOURCE_MAX_AGE)
    digest = hashlib.sha256()
    fd, kept = tempfile.mkstemp(dir=folder, suffix='.wasm')
    try:
        with os.fdopen(fd, 'wb') as out, open(path, 'rb') as source:
            for chunk in iter(lambda: source.read(1 << 20), b''):
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(kept)
        raise
    return digest.hexdigest(), kept


def _remove_older_than(folder: str, cutoff: float) -> None:
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            if os.stat(path).st_mtime < cutoff:
                os.unlink(path)
        except OSError:
            pass


class ModuleCache:
    """Per-process memo in front of the on-disk ``.cwasm`` cache."""

    def __init__(self, cache_dir: str, limits: CacheLimits = CacheLimits()):
        self.cache_dir = cache_dir
        self.user_dir = os.path.join(cache_dir, USER_DIR)
        self.limits = limits
        self._digests: BoundedLru[Identity, str] = BoundedLru(IDENTITY_MEMO)
        self._modules: BoundedLru[Tuple[EngineSettings, str],
                                  LoadedModule] = BoundedLru(
            limits.worker_modules, limits.worker_bytes)
        self._failures: BoundedLru[str, SessionFailure] = BoundedLru(
            FAILURE_MEMO)
        self._failure_key = hashlib.sha256(('%s;memory=%d;seconds=%r' % (
            EngineSettings().cache_key(), limits.compile_memory,
            limits.compile_seconds)).encode()).hexdigest()[:16]

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
    def _read_member(path: str, member: str) -> bytes:
        wasm = image.read_member(path, member)
        if wasm[:4] != WASM_MAGIC:
            raise SessionFailure('program is not a WebAssembly module',
                                 errno.ENOEXEC)
        return wasm

    @staticmethod
    def settings_digest(settings: EngineSettings) -> str:
        return hashlib.sha256(settings.cache_key().encode()).hexdigest()[:16]

    def cache_path(self, settings: EngineSettings, digest: str,
                   user: bool = False) -> str:
        return os.path.join(self.user_dir if user else self.cache_dir,
                            '%s-%s%s' % (digest,
                                         self.settings_digest(settings),
                                         CWASM_SUFFIX))

    def failure_path(self, digest: str) -> str:
        return os.path.join(self.user_dir, '%s-%s%s' % (
            digest, self._failure_key, FAILED_SUFFIX))

    def evict(self, keep_settings: Iterable[EngineSettings],
              replaced: Iterable[str] = ()) -> int:
        """Delete compiled modules whose settings are none of
        ``keep_settings`` (another wasmtime version, a setting that no
        longer exists) or whose module digest is in ``replaced``, and the
        unpacked support trees of those digests; returns files removed."""
        keep = {self.settings_digest(s) for s in keep_settings}
        gone = set(replaced)
        return self._remove(lambda digest, key: key not in keep
                            or digest in gone, gone)

    def forget(self, digests: Iterable[str]) -> int:
        """Delete the compiled modules and support trees of these module
        digests, whatever their settings (app snapshots let go of);
        returns files removed."""
        gone = set(digests)
        return self._remove(lambda digest, _key: digest in gone, gone)

    def _remove(self, doomed: Callable[[str, str], bool],
                trees: Iterable[str]) -> int:
        """Delete the compiled modules ``doomed(digest, settings key)``
        names, and the support trees of ``trees``."""
        removed = 0
        for folder in (self.cache_dir, self.user_dir):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if not name.endswith(CWASM_SUFFIX):
                    continue
                digest, _, key = name[:-len(CWASM_SUFFIX)].partition('-')
                if not doomed(digest, key):
                    continue
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except OSError:
                    pass
        for digest in trees:
            shutil.rmtree(os.path.join(self.cache_dir, reactor.TREES_DIR,
                                       digest), ignore_errors=True)
        return removed

    def load(self, engine: wasmtime.Engine, settings: EngineSettings,
             path: str, member: Optional[str] = None,
             compile_large: bool = True,
             compile_budget: Optional[float] = None) -> LoadedModule:
        """The compiled module for ``path`` (or its tar ``member``, a
        system image's program); a user program's compile gets at most
        ``compile_budget`` seconds, if given (see ``compile_in_child``)."""
        system = member is not None
        identity = self._identity(path, member)
        digest = self._digests.get(identity)
        wasm = None
        if digest is None:
            if system:
                wasm = self._read_member(path, member)
                digest = hashlib.sha256(wasm).hexdigest()
            else:
                digest = _hash_program(path)
            self._digests.put(identity, digest)
        cwasm = self.cache_path(settings, digest, user=not system)
        loaded = self._modules.get((settings, digest))
        if loaded is not None:
            if not system:
                _touch(cwasm)
            return LoadedModule(loaded.module, digest, True, loaded.size,
                                system)
        if not system:
            self._raise_remembered_failure(digest)
        module = self._deserialize(engine, cwasm, touch=not system)
        from_disk = module is not None
        if module is None:
            if system and wasm is None:
                wasm = self._read_member(path, member)
            size = len(wasm) if system else _size(path)
            if not compile_large and size > self.limits.in_run_compile_bytes:
                raise SessionFailure(STATUS_NOT_COMPILED, errno.EAGAIN)
            if system:
                module = self._compile_here(engine, cwasm, wasm)
            else:
                module = self._compile_user(engine, settings, digest, path,
                                            cwasm, compile_budget)
        loaded = LoadedModule(module, digest, from_disk, _size(cwasm), system)
        self._modules.put((settings, digest), loaded, loaded.size,
                          pinned=system)
        return loaded

    @staticmethod
    def _deserialize(engine: wasmtime.Engine, cwasm: str,
                     touch: bool) -> Optional[wasmtime.Module]:
        """The module of ``cwasm``; None when absent, stale or damaged (it
        is then compiled and replaced)."""
        if not os.path.exists(cwasm):
            return None
        try:
            module = wasmtime.Module.deserialize_file(engine, cwasm)
        except wasmtime.WasmtimeError:
            return None
        if touch:
            _touch(cwasm)
        return module

    def _compile_here(self, engine: wasmtime.Engine, cwasm: str,
                      wasm: bytes) -> wasmtime.Module:
        """A system image's program, compiled in this process."""
        try:
            module = wasmtime.Module(engine, wasm)
        except wasmtime.WasmtimeError as err:
            raise SessionFailure('program failed validation: %s'
                                 % error_text(err), errno.ENOEXEC,
                                 validation=1)
        if self._store(cwasm, module):
            module = wasmtime.Module.deserialize_file(engine, cwasm)
        return module

    def _compile_user(self, engine: wasmtime.Engine,
                      settings: EngineSettings, digest: str, path: str,
                      cwasm: str, budget: Optional[float]
                      ) -> wasmtime.Module:
        """A user program, compiled in a limited child; a failure for what
        the module is gets remembered."""
        try:
            os.makedirs(self.user_dir, exist_ok=True)
        except OSError as err:
            raise SessionFailure('runtime error: cannot create the module '
                                 'cache: %s' % err.strerror, errno.EIO)
        try:
            compile_in_child(settings, path, cwasm, self.limits, budget)
        except CompileFailure as failure:
            self._remember_failure(digest, failure)
            raise
        self.sweep()
        try:
            return wasmtime.Module.deserialize_file(engine, cwasm)
        except wasmtime.WasmtimeError:  # removed by another server's sweep
            raise SessionFailure('runtime error: compiled module vanished',
                                 errno.EIO)

    def _remember_failure(self, digest: str,
                          failure: SessionFailure) -> None:
        self._failures.put(digest, failure)
        record = json.dumps({'status': failure.status,
                             'exit_status': failure.exit_status,
                             'validation': failure.validation})
        try:
            write_atomically(self.failure_path(digest), record.encode())
        except OSError:
            return  # remembered in this worker only
        self.sweep()

    def _raise_remembered_failure(self, digest: str) -> None:
        failure = self._failures.get(digest)
        if failure is None:
            path = self.failure_path(digest)
            try:
                with open(path, 'rb') as handle:
                    record = json.loads(handle.read())
                failure = SessionFailure(str(record['status']),
                                         int(record['exit_status']),
                                         int(record['validation']))
            except (OSError, ValueError, KeyError, TypeError):
                return
            _touch(path)
            self._failures.put(digest, failure)
        raise SessionFailure(failure.status, failure.exit_status,
                             failure.validation)

    def sweep(self) -> int:
        """Remove the least recently used files of ``user/`` until it is
        within ``disk_bytes`` and ``disk_files`` (the newest file always
        stays), and temporary files of compiles that died; returns files
        removed."""
        entries: List[Tuple[float, int, str]] = []
        stale = time.time() - 2 * self.limits.compile_seconds - 60
        try:
            names = os.listdir(self.user_dir)
        except OSError:
            return 0
        removed = 0
        for name in names:
            path = os.path.join(self.user_dir, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if name.endswith(CWASM_SUFFIX) or name.endswith(FAILED_SUFFIX):
                entries.append((st.st_mtime, st.st_size, path))
            elif name.endswith('.tmp') and st.st_mtime < stale:
                removed += _unlink(path)
        entries.sort()
        total = sum(size for _, size, _ in entries)
        while len(entries) > 1 and (len(entries) > self.limits.disk_files or
                                    total > self.limits.disk_bytes):
            _, size, path = entries.pop(0)
            total -= size
            removed += _unlink(path)
        return removed

    def _store(self, cwasm: str, module: wasmtime.Module) -> bool:
        """Write the serialized module atomically; True when it is there.
        A failure only costs a recompile next time, so it is not an error
        of the run."""
        try:
            os.makedirs(self.cache_dir, exist_ok=True)
            write_atomically(cwasm, module.serialize())
            return True
        except OSError:
            return False


def _touch(path: str) -> None:
    """Mark a cache file used (its mtime orders the disk LRU)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _unlink(path: str) -> int:
    try:
        os.unlink(path)
        return 1
    except OSError:
        return 0
