"""WASI imports we replace: a fixed /dev, read-only channels, determinism.

wasmtime-py preopens whole directories with one writable flag, and ``/dev``
must be writable when a run has write channels there.  So the WASI calls that
can change a file or a directory entry by name are shadowed
(``Linker.allow_shadowing``) and checked before they reach wasmtime's own
implementation.

``/dev`` holds exactly the run's channels.  A call that would add, remove or
rename an entry of ``/dev`` or of one of its subdirectories gets WASI
``EACCES``, so no file outside the output limits can be written there and no
channel can be swapped for another file or a link:

* ``path_open`` with ``O_CREAT`` of a name that does not exist yet;
* ``path_create_directory``, ``path_symlink`` and ``path_link`` (the new
  name); ``path_unlink_file``, ``path_remove_directory`` and
  ``path_rename`` (either name).

Read channels are protected by identity as well:

* ``path_open`` with write intent (``FD_WRITE``, ``FD_ALLOCATE``,
  ``FD_FILESTAT_SET_SIZE`` or ``FD_DATASYNC`` rights, ``O_TRUNC``, append);
* ``path_link`` (the source, e.g. a link made in ``/tmp``),
  ``path_filestat_set_times`` and ``fd_filestat_set_times``.

Targets and the directories that hold them are identified by (device, inode)
through wasmtime's own ``path_filestat_get``/``fd_filestat_get`` (so
symlinks, hard links, ``..`` and any directory fd resolve exactly as the real
call would); the identities of ``/dev``, its subdirectories and the read
channels are taken the same way at the first call that checks a path
(every call that could change ``/dev`` is one, so it is still as the run
began; a run that never makes one pays nothing).  A call that cannot
be checked (no guest memory to borrow, see ``RunGuard._stat_inode``) is
refused too.  Writes through a descriptor opened without write rights are
already refused by wasmtime.  ``/tmp`` is left alone.  This is the first
wall; ``zerocloud.runtime.sandbox`` adds an OS-level one.

Runs with a served channel (an object stored encrypted, read in place; a
named device or stdout on a FIFO; an output sealed by the object server)
also shadow ``fd_read``, ``fd_pread``, ``fd_write``, ``fd_pwrite``,
``fd_filestat_set_size``, ``fd_seek``, ``fd_tell``, ``fd_close`` and
``fd_renumber``, and follow what ``path_open`` opened: see
``zerocloud.runtime.served``.

Deterministic mode replaces ``clock_time_get`` (always the nvram time, never
advancing), ``random_get`` (a PRNG seeded from the manifest ``Seed``) and
``poll_oneoff`` (every subscription is reported ready at once: clocks never
sleep, files are always ready).
"""

import random
import struct
from typing import Callable, Dict, List, Optional, Set, Tuple

import wasmtime

from zerocloud.runtime.served import ServedFile, ServedCalls

WASI = 'wasi_snapshot_preview1'

ERRNO_SUCCESS = 0
ERRNO_ACCES = 2
OFLAGS_CREAT = 1
OFLAGS_TRUNC = 8
FDFLAGS_APPEND = 1
LOOKUP_SYMLINK_FOLLOW = 1
RIGHTS_WRITE_INTENT = (1 << 0) | (1 << 6) | (1 << 8) | (1 << 22)
FILESTAT_SIZE = 64
SUBSCRIPTION_SIZE = 48
EVENT_SIZE = 32
U32 = 0xFFFFFFFF

I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()

Inode = Tuple[int, int]


class Unverifiable(Exception):
    """A guarded call whose target cannot be identified; it is refused."""


def _functype(params: str) -> wasmtime.FuncType:
    return wasmtime.FuncType([I64 if p == 'I' else I32 for p in params],
                             [I32])


# name -> parameter types ('i' = i32, 'I' = i64); all return an errno i32.
GUARDED_CALLS = {
    'path_open': 'iiiiiIIii',
    'path_unlink_file': 'iii',
    'path_rename': 'iiiiii',
    'path_link': 'iiiiiii',
    'path_create_directory': 'iii',
    'path_remove_directory': 'iii',
    'path_symlink': 'iiiii',
    'path_filestat_set_times': 'iiiiIIi',
    'fd_filestat_set_times': 'iIIi',
}
DETERMINISTIC_CALLS = {
    'clock_time_get': 'iIi',
    'random_get': 'ii',
    'poll_oneoff': 'iiii',
}
HELPER_CALLS = {
    'path_filestat_get': 'iiiii',
    'fd_filestat_get': 'ii',
}
#: Shadowed in runs with a served channel (:mod:`zerocloud.runtime.
#: served`); ``path_open`` is guarded anyway.  Runs whose only served
#: channels are stdout and stderr (sealed, or stdout on a FIFO) shadow just
#: ``STDIO_SERVED_CALLS``: those descriptors are only written, and every
#: other call keeps wasmtime's speed.
SERVED_CALLS = {
    'fd_read': 'iiii',
    'fd_pread': 'iiiIi',
    'fd_write': 'iiii',
    'fd_pwrite': 'iiiIi',
    'fd_filestat_set_size': 'iI',
    'fd_seek': 'iIii',
    'fd_tell': 'ii',
    'fd_close': 'i',
    'fd_renumber': 'ii',
}
STDIO_SERVED_CALLS = ('fd_write', 'fd_pwrite', 'fd_close', 'fd_renumber')
#: What a linker shadows for served channels: nothing, stdio's writes, all.
SERVED_NONE, SERVED_STDIO, SERVED_ALL = 0, 1, 2


class RunGuard:
    """Per-run state behind the shadowed imports of one store."""

    def __init__(self, read_only: List[str], dev_folders: List[str],
                 dev_fd: int, deterministic: bool, clock_seconds: int = 0,
                 seed: int = 0,
                 served: Optional[Dict[str, ServedFile]] = None,
                 served_stdio: Optional[Dict[int, ServedFile]] = None):
        """``read_only``, ``dev_folders`` and the keys of ``served`` are
        paths relative to ``/dev`` (``.`` is ``/dev`` itself)."""
        self.read_only = read_only
        self.served = served or {}
        self.served_stdio = served_stdio or {}
        #: The reads and writes the host serves, in a run with served
        #: channels.
        self.calls: Optional[ServedCalls] = None
        self.dev_folders = dev_folders
        self.dev_fd = dev_fd
        #: Identities of the read channels and of /dev's folders, taken at
        #: the first call that checks them (see :meth:`_identified`).
        self._protected: Optional[Set[Inode]] = None
        self._fixed_folders: Set[Inode] = set()
        self.deterministic = deterministic
        self.clock_ns = clock_seconds * 1_000_000_000
        self.rng = random.Random(seed)
        self.original: Dict[str, wasmtime.Func] = {}

    def bind(self, shim: wasmtime.Module, base: wasmtime.Linker,
             store: wasmtime.Store, memory: wasmtime.Memory) -> None:
        """Reach wasmtime's own implementations for this store.

        WASI host functions read the *calling instance's* ``memory``, so they
        cannot be called straight from Python; the shim module (see
        ``shim_module``) re-exports the guest's memory and calls them.
        """
        names = list(SHIM_CALLS)
        imports = [base.get(store, WASI, name) for name in names]
        shim_instance = wasmtime.Instance(store, shim, imports + [memory])
        exports = shim_instance.exports(store)
        self.original = {name: exports[name] for name in names}
        if self.served or self.served_stdio:
            self.calls = ServedCalls(
                {self._identify(store, memory, relative): file
                 for relative, file in self.served.items()},
                self._call_original, self._fd_inode, self.served_stdio)

    def _identified(self, caller) -> Set[Inode]:
        """The read channels' identities, taken at the first call that
        checks a path (so a run that never does pays no stats): every call
        that could add, remove or swap an entry of /dev is such a call, so
        /dev is still as the run began."""
        if self._protected is None:
            memory = caller.get('memory')
            self._fixed_folders = {self._identify(caller, memory, relative)
                                   for relative in self.dev_folders}
            self._protected = {self._identify(caller, memory, relative)
                               for relative in self.read_only}
        return self._protected

    def _call_original(self, caller, name: str, *args) -> int:
        return self.original[name](caller, *args)

    def _fd_inode(self, caller, fd: int) -> Optional[Inode]:
        return self._stat_inode(caller, caller.get('memory'),
                                'fd_filestat_get', (fd,), (0, 0))

    def _identify(self, store: 'wasmtime.Store | wasmtime.Caller',
                  memory: wasmtime.Memory,
                  relative: str) -> Inode:
        """WASI's (dev, ino) of a file under /dev, as the guest will see it.

        wasmtime reports a keyed hash per WASI context, not the host inode,
        so it is asked through the same calls the guest uses.
        """
        encoded = relative.encode()
        saved = memory.read(store, 0, len(encoded))
        memory.write(store, encoded, 0)
        try:
            inode = self._stat_inode(store, memory, 'path_filestat_get',
                                     (self.dev_fd, 0, 0, len(encoded)),
                                     (0, len(encoded)))
        finally:
            memory.write(store, saved, 0)
        if inode is None:
            raise RuntimeError('/dev/%s is not visible to the guest'
                               % relative)
        return inode

    # -- identification of protected files --------------------------------

    def _stat_inode(self, caller, memory, call: str, args: tuple,
                    avoid: Tuple[int, int]) -> Optional[Inode]:
        """(dev, ino) of a target, or None when it does not resolve.

        Guest memory is the scratch space: the guest is suspended inside
        this call and single-threaded, so 64 (8-aligned) bytes next to
        ``avoid`` (the path, as guest pointers) are borrowed and restored
        before returning.  Raises ``Unverifiable`` when no such bytes exist.
        """
        size = memory.data_len(caller)
        start, length = avoid[0] & U32, avoid[1] & U32
        for scratch in ((start + length + 7) & ~7,
                        (start - FILESTAT_SIZE) & ~7, 0):
            end = scratch + FILESTAT_SIZE
            if 0 <= scratch and end <= size and (
                    end <= start or scratch >= start + length):
                break
        else:
            raise Unverifiable(call)
        saved = memory.read(caller, scratch, scratch + FILESTAT_SIZE)
        try:
            if self.original[call](caller, *args, scratch) != ERRNO_SUCCESS:
                return None
            dev, ino = struct.unpack_from(
                '<QQ', memory.read(caller, scratch, scratch + 16))
            return dev, ino
        finally:
            memory.write(caller, saved, scratch)

    def _path_protected(self, caller, fd, flags, path, path_len) -> bool:
        protected = self._identified(caller)
        inode = self._stat_inode(caller, caller.get('memory'),
                                 'path_filestat_get',
                                 (fd, flags, path, path_len), (path, path_len))
        return inode in protected

    def _entry_in_dev(self, caller, fd, path, path_len) -> bool:
        """True when the directory entry ``path`` names lies in ``/dev`` or
        one of its subdirectories.

        That directory is the path without its last component (trailing
        slashes ignored), resolved from ``fd``; a path of one component is
        in ``fd`` itself.  Its prefix is already in guest memory, so nothing
        is written there but the stat result.  A path outside guest memory
        is left to the real call, which fails with ``EFAULT``.
        """
        self._identified(caller)
        memory = caller.get('memory')
        start, length = path & U32, path_len & U32
        if start + length > memory.data_len(caller):
            return False
        raw = memory.read(caller, start, start + length)
        slash = raw.rfind(b'/', 0, len(raw.rstrip(b'/')))
        if slash < 0:
            folder = self._stat_inode(caller, memory, 'fd_filestat_get',
                                      (fd,), (path, path_len))
        else:
            folder = self._stat_inode(
                caller, memory, 'path_filestat_get',
                (fd, LOOKUP_SYMLINK_FOLLOW, path, max(slash, 1)),
                (path, path_len))
        return folder in self._fixed_folders

    # -- guarded calls ------------------------------------------------------

    def path_open(self, caller, fd, dirflags, path, path_len, oflags,
                  rights_base, rights_inheriting, fdflags, opened):
        writes = (rights_base & RIGHTS_WRITE_INTENT or oflags & OFLAGS_TRUNC
                  or fdflags & FDFLAGS_APPEND)
        if writes or oflags & OFLAGS_CREAT:
            protected = self._identified(caller)
            target = self._stat_inode(
                caller, caller.get('memory'), 'path_filestat_get',
                (fd, dirflags & LOOKUP_SYMLINK_FOLLOW, path, path_len),
                (path, path_len))
            if writes and target in protected:
                return ERRNO_ACCES
            if oflags & OFLAGS_CREAT and target is None and \
                    self._entry_in_dev(caller, fd, path, path_len):
                return ERRNO_ACCES
        status = self.original['path_open'](
            caller, fd, dirflags, path, path_len, oflags, rights_base,
            rights_inheriting, fdflags, opened)
        if status == ERRNO_SUCCESS and self.calls is not None:
            self.calls.opened(caller, opened, rights_base,
                              bool(fdflags & FDFLAGS_APPEND))
        return status

    def path_unlink_file(self, caller, fd, path, path_len):
        if self._entry_in_dev(caller, fd, path, path_len):
            return ERRNO_ACCES
        return self.original['path_unlink_file'](caller, fd, path, path_len)

    def path_rename(self, caller, fd, old, old_len, new_fd, new, new_len):
        if (self._entry_in_dev(caller, fd, old, old_len)
                or self._entry_in_dev(caller, new_fd, new, new_len)):
            return ERRNO_ACCES
        return self.original['path_rename'](caller, fd, old, old_len,
                                            new_fd, new, new_len)

    def path_link(self, caller, fd, flags, old, old_len, new_fd, new,
                  new_len):
        if (self._path_protected(caller, fd, flags, old, old_len)
                or self._entry_in_dev(caller, new_fd, new, new_len)):
            return ERRNO_ACCES
        return self.original['path_link'](caller, fd, flags, old, old_len,
                                          new_fd, new, new_len)

    def path_create_directory(self, caller, fd, path, path_len):
        if self._entry_in_dev(caller, fd, path, path_len):
            return ERRNO_ACCES
        return self.original['path_create_directory'](caller, fd, path,
                                                      path_len)

    def path_remove_directory(self, caller, fd, path, path_len):
        if self._entry_in_dev(caller, fd, path, path_len):
            return ERRNO_ACCES
        return self.original['path_remove_directory'](caller, fd, path,
                                                      path_len)

    def path_symlink(self, caller, old, old_len, fd, new, new_len):
        if self._entry_in_dev(caller, fd, new, new_len):
            return ERRNO_ACCES
        return self.original['path_symlink'](caller, old, old_len, fd, new,
                                             new_len)

    def path_filestat_set_times(self, caller, fd, flags, path, path_len,
                                atim, mtim, fst_flags):
        if self._path_protected(caller, fd, flags, path, path_len):
            return ERRNO_ACCES
        return self.original['path_filestat_set_times'](
            caller, fd, flags, path, path_len, atim, mtim, fst_flags)

    def fd_filestat_set_times(self, caller, fd, atim, mtim, fst_flags):
        protected = self._identified(caller)
        inode = self._stat_inode(caller, caller.get('memory'),
                                 'fd_filestat_get', (fd,), (0, 0))
        if inode in protected:
            return ERRNO_ACCES
        return self.original['fd_filestat_set_times'](caller, fd, atim, mtim,
                                                      fst_flags)

    # -- deterministic calls ------------------------------------------------

    def clock_time_get(self, caller, clock_id, precision, out):
        caller.get('memory').write(caller, struct.pack('<Q', self.clock_ns),
                                   out)
        return ERRNO_SUCCESS

    def random_get(self, caller, buf, length):
        caller.get('memory').write(caller, self.rng.randbytes(length), buf)
        return ERRNO_SUCCESS

    def poll_oneoff(self, caller, subscriptions, events, count, nevents):
        memory = caller.get('memory')
        raw = memory.read(caller, subscriptions,
                          subscriptions + count * SUBSCRIPTION_SIZE)
        out = bytearray(count * EVENT_SIZE)
        for index in range(count):
            userdata, tag = struct.unpack_from('<QB', raw,
                                               index * SUBSCRIPTION_SIZE)
            struct.pack_into('<QHB', out, index * EVENT_SIZE, userdata, 0,
                             tag)
        memory.write(caller, bytes(out), events)
        memory.write(caller, struct.pack('<I', count), nevents)
        return ERRNO_SUCCESS


SHIM_CALLS = dict(GUARDED_CALLS, **HELPER_CALLS, **SERVED_CALLS)


def shim_module(engine: wasmtime.Engine) -> wasmtime.Module:
    """wasm that imports WASI calls and the guest memory, and exports
    wrappers plus that memory, so the calls see the guest's memory."""
    parts = ['(module']
    names = list(SHIM_CALLS)
    wat_type = {'i': 'i32', 'I': 'i64'}
    for index, name in enumerate(names):
        params = ' '.join(wat_type[p] for p in SHIM_CALLS[name])
        parts.append('(import "%s" "%s" (func $f%d (param %s) (result i32)))'
                     % (WASI, name, index, params))
    parts.append('(import "guest" "memory" (memory 0))')
    parts.append('(export "memory" (memory 0))')
    for index, name in enumerate(names):
        signature = SHIM_CALLS[name]
        params = ' '.join(wat_type[p] for p in signature)
        body = ' '.join('local.get %d' % i for i in range(len(signature)))
        parts.append('(func (export "%s") (param %s) (result i32) %s '
                     'call $f%d)' % (name, params, body, index))
    parts.append(')')
    return wasmtime.Module(engine, wasmtime.wat2wasm('\n'.join(parts)))


def _dispatch(name: str, current: Callable[[], object]) -> Callable:
    def call(caller, *args):
        try:
            return getattr(current(), name)(caller, *args)
        except Unverifiable:
            return ERRNO_ACCES
    return call


def guarded_linker(engine: wasmtime.Engine, deterministic: bool,
                   current: Callable[[], RunGuard],
                   served: int = SERVED_NONE) -> wasmtime.Linker:
    """A WASI linker whose shadowed calls go to ``current()``'s guard (and,
    as ``served`` says, calls on served channels to the guard's
    :class:`ServedCalls`).

    The linker holds no per-run state, so one is built per engine and mode
    and reused for every run.
    """
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.allow_shadowing = True
    calls = dict(GUARDED_CALLS)
    if deterministic:
        calls.update(DETERMINISTIC_CALLS)
    for name, params in calls.items():
        linker.define_func(WASI, name, _functype(params),
                           _dispatch(name, current), access_caller=True)
    for name, params in SERVED_CALLS.items():
        if served == SERVED_ALL or (served == SERVED_STDIO
                                    and name in STDIO_SERVED_CALLS):
            linker.define_func(WASI, name, _functype(params),
                               _dispatch(name, lambda: current().calls),
                               access_caller=True)
    return linker


def base_linker(engine: wasmtime.Engine) -> wasmtime.Linker:
    """Plain WASI linker, used to fetch the originals the shim calls."""
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    return linker
