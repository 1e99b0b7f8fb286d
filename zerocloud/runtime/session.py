"""One sandboxed session: manifest in, report and exit status out.

``Runtime`` keeps warm wasmtime engines, linkers and compiled modules for a
long-lived worker process; ``Runtime.run(manifest)`` never raises for bad
manifests, programs or guest behaviour: the outcome is a ``SessionResult``
whose report carries the status text.  Runs are one at a time per Runtime.

Wall clock (``zerocloud.runtime.limits``): ``Runtime(wall_clock='epoch')``,
the default, interrupts the guest at ``Timeout`` and returns its result as
for any other run.  ``Runtime(wall_clock='exit', on_timeout_exit=callback)``
compiles without epoch checks (about 20 % faster CPU-bound guests, a
separate compiled-module cache key) and, at ``Timeout``, calls
``callback(result)`` on a watchdog thread and ends the whole process with
status 4: for sandbox workers, never for a process that must survive its
runs.  A program a pool worker's run compiles (``defer_large_compiles``)
gets at most ``Timeout`` seconds for that, and the guest what is left.
That timeout result has exit status 4, the status ``session
timeout``, report line 1 as far as the run got, retcode 0, no etags, no
fuel, and as accounting the CPU seconds of the running thread so far
(clock-tick resolution) and the current size of the write channels.

A run: parse the manifest (``zerocloud.runtime.manifest``), load the
program from the compiled-module cache, check it is a WASI command or a
reactor (``zerocloud.runtime.reactor``), open the channels, decode
``/dev/nvram`` (argv, env, image mounts), build the guest filesystem
(``zerocloud.runtime.sandbox``), then call ``_start`` (a reactor:
``_initialize`` if exported, then ``run``, whose result is the exit code)
under the limits (``zerocloud.runtime.limits``) and check what can only be
checked afterwards.  A reactor from a system image also sees that image's
``usr/`` files read-only at ``/usr``.  stdin/stdout/stderr are WASI stdio
bound to the channel files; every other channel is a file under ``/dev``.
Without nvram, argv is the program's base name and the environment is
empty; nothing of the host's environment ever reaches the guest.

Exit status (ZeroVM A.9) and status texts:

* 0: ``ok``: the guest returned or called ``proc_exit`` (its code is
  report line 3); also a ``validate_only`` (-F) success
* 1: EPERM: ``channel <alias>: read channel needs a private mount
  namespace (run as root)``; ``channel <alias>: replaced by the program``
  (a copied-back write channel that is no longer the file placed there)
* 2: ENOENT: ``cannot open manifest``, ``program not found``,
  ``program member <m> not found in its image``
* 4: EINTR: ``session timeout``; ``CPU limit exceeded`` (Fuel);
  ``disk quota exceeded`` (RLIMIT_FSIZE reached); ``guest trap:
  <reason>`` (unreachable, out of bounds memory access, call stack
  exhausted, ...), with `` (memory limit of <n> bytes reached)``
  appended when the guest's memory was within 1 MiB (or 10 %) of
  ``Memory`` (wasmtime does not say whether a growth was refused)
* 5: EIO: ``cannot read manifest``, ``program is unreadable``,
  ``cannot create run directory``, ``image <alias>: unreadable tar``,
  ``image <alias>: cannot unpack member <m>``,
  ``cannot open stdio channels: <reason>``,
  ``channel <alias>: cannot bind``, ``cannot make /dev read-only: <reason>``,
  ``runtime error: <message>``
* 8: ENOEXEC: ``program is not a WebAssembly module``, ``program failed
  validation: <reason>`` (report line 1 = 1), ``program is not a WASI
  command: <reason>`` (e.g. ``no _start or run function``), ``program is
  not a tar image``, ``program cannot be compiled within the server's
  limits`` (``zerocloud.runtime.compiler``)
* 11: EAGAIN: ``program is being compiled; retry later`` (a pool worker's
  run, ``zerocloud.runtime.cache``)
* 12: ENOMEM: ``MANIFEST <n>: invalid memory size``, ``memory limit
  exceeded: the module needs more than <n> bytes at start``, ``table
  limit exceeded: the module needs more than 1 table of <n> entries at
  start`` (a ``table.grow`` beyond the cap returns -1 to the guest)
* 14: EFAULT: ``MANIFEST <n>: <message>``, ``MANIFEST: <Key> not
  specified``, ``MANIFEST: not enough channels``, ``MANIFEST: missing
  standard channels``, ``nvram <n>: <message>``, ``image <alias>:
  <refusal>`` (see ``zerocloud.runtime.image``), ``channel <alias>:
  cannot open: <reason>``, ``cannot read nvram: <reason>``, ``nvram:
  fstab channel <alias> is not a read channel``, ``nvram: mountpoint
  <p> is reserved``, ``nvram: mountpoint <p> used twice``
* 22: EINVAL: ``MANIFEST <n>: <alias> is a nil channel ...``,
  ``channel <alias>: a char|fifo cannot be read and written``
* 93: EPROTONOSUPPORT: network channels; channels on directories, sockets
  or block devices
* 122: EDQUOT: ``channel <alias>: write limit exceeded (<n> > <putsize>
  bytes)``, ``scratch space exceeded (<n> bytes)``
* other: a write channel the host cannot create: ``channel <alias>: cannot
  open: <reason>`` with the OS errno (as ZeroVM)

Status texts name what the manifest calls things (channel aliases, image
members), never host paths: on a storage server they reach the client.

Report (``zerocloud.runtime.report``): line 1 is 0 when the module was
validated (every compiled or cached module was), 2 with ``-s`` or a failure
before loading.  Etags are MD5 hex of the final content of each channel with
etag=1 (read channels: their content; FIFOs and devices: the digest of no
bytes), then ``/dev/memory`` with the MD5 of the final linear memory when
``Memory``'s etag flag is 1.  Accounting: sys and user CPU seconds of the
run (this thread); the read calls, bytes read and write calls of the
sandbox worker's process while the program ran (``/proc/self/io``: its
channels, image files and scratch alike; one run at a time per worker);
the total size of the write channels; and 0 for the network fields.

Per-call channel quotas (gets, getsize, puts) and sequential-access rules
are not enforced: wasmtime offers no per-call hook and Python replacements
on the hot path would cost too much.  putsize is checked after the run, and
RLIMIT_FSIZE (the largest putsize or Scratch) bounds every file meanwhile.
"""

import errno
import hashlib
import os
import resource
import stat
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import wasmtime

from zerocloud import paths
from zerocloud.cipher import CipherKey, KeyStream
from zerocloud.runtime import image, nvram, reactor
from zerocloud.runtime.cache import ModuleCache
from zerocloud.runtime.served import (
    CipheredFile, ServedFile, StreamedFile, StreamedOutput, TeedFile)
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.errors import SessionFailure, error_text
from zerocloud.runtime.guard import (
    SERVED_ALL, SERVED_NONE, SERVED_STDIO, RunGuard, base_linker,
    guarded_linker, shim_module)
from zerocloud.runtime.limits import (WALL_CLOCK_EPOCH, CacheLimits,
                                      Alarm, ExitWatchdog, WallClock,
                                      check_wall_clock, file_size_limit)
from zerocloud.runtime.lru import BoundedLru
from zerocloud.runtime.manifest import Manifest, load_manifest
from zerocloud.runtime.report import Report
from zerocloud.runtime.sandbox import Workspace, prepare_host_channel

NVRAM_ALIAS = '/dev/nvram'
STDIN_ALIAS = '/dev/stdin'
STDOUT_ALIAS = '/dev/stdout'
#: The standard channels' descriptors.
STDIO_ALIASES = {STDIN_ALIAS: 0, STDOUT_ALIAS: 1, '/dev/stderr': 2}
#: The standard channels a program only writes.
STDIO_WRITES = (STDOUT_ALIAS, '/dev/stderr')
RESERVED_MOUNTPOINTS = ('/dev', '/tmp')
MEMORY_SLACK = 1 << 20  # a trap this close to Memory is blamed on it
#: Caps of a run's store beside ``Memory`` (``Store.set_limits``), so that
#: ``Memory`` bounds the whole sandbox, not each of its parts: one linear
#: memory, one table of at most ``TABLE_ELEMENTS`` entries (8 bytes each:
#: 8 MiB; the CPython 3.15 image has 47 157), and two instances (the
#: program and the guard's shim, which imports the program's memory).
TABLE_ELEMENTS = 1 << 20
STORE_TABLES = 1
STORE_MEMORIES = 1
STORE_INSTANCES = 2
TRAP_TEXT = {
    wasmtime.TrapCode.STACK_OVERFLOW: 'call stack exhausted',
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: 'out of bounds memory access',
    wasmtime.TrapCode.UNREACHABLE: 'unreachable instruction executed',
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: 'integer divide by zero',
    wasmtime.TrapCode.INTEGER_OVERFLOW: 'integer overflow',
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER:
        'invalid conversion to integer',
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: 'indirect call to null',
    wasmtime.TrapCode.BAD_SIGNATURE: 'indirect call type mismatch',
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: 'undefined table element',
}
_CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


@dataclass
class _Program:
    """A loaded program ready to instantiate, and how to start it."""
    pre: wasmtime.InstancePre
    entry: reactor.EntryPoints
    #: Host directory shown read-only at ``/usr`` (reactors of images).
    support: Optional[str]


@dataclass
class SessionResult:
    exit_status: int
    report: Report
    fuel: Optional[int]


#: Called with the timeout result just before an ``exit`` wall clock ends
#: the process.
TimeoutExitCallback = Callable[[SessionResult], None]


class _Warm:
    """Engine, linkers and pre-instantiated modules of one setting."""

    def __init__(self, settings: EngineSettings, current_guard,
                 limits: CacheLimits):
        self.settings = settings
        self.engine = settings.build()
        self.base = base_linker(self.engine)
        #: By which calls runs have served (``zerocloud.runtime.served``):
        #: only those pay for calls shadowed by the host.
        self.linkers = {}
        for served in (SERVED_NONE, SERVED_STDIO, SERVED_ALL):
            linker = guarded_linker(self.engine, settings.deterministic,
                                    current_guard, served)
            reactor.define_host_call(linker)
            self.linkers[served] = linker
        self.shim = shim_module(self.engine)
        #: Ready programs by module digest and linker, bounded as the
        #: loaded modules they hold (``zerocloud.runtime.cache``).
        self.programs: BoundedLru[Tuple[str, bool], _Program] = BoundedLru(
            limits.worker_modules, limits.worker_bytes)


def _md5_of(path: str, key: Optional[CipherKey] = None) -> str:
    """The md5 of a regular file's bytes (its plaintext, when ``key``
    ciphers it)."""
    digest = hashlib.md5()
    stream = KeyStream(key) if key is not None else None
    offset = 0
    try:
        if stat.S_ISREG(os.stat(path).st_mode):
            with open(path, 'rb') as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b''):
                    digest.update(stream.apply(offset, chunk) if stream
                                  else chunk)
                    offset += len(chunk)
    except OSError:
        pass
    return digest.hexdigest()


def _regular_size(path: str) -> Optional[int]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


@dataclass(frozen=True)
class IoCounters:
    """This process's read and write calls so far (``/proc/self/io``)."""
    reads: int
    read_bytes: int
    writes: int


def _io_counters() -> Optional[IoCounters]:
    try:
        with open('/proc/self/io') as handle:
            fields = dict(line.split(':', 1) for line in handle)
        return IoCounters(int(fields['syscr']), int(fields['rchar']),
                          int(fields['syscw']))
    except (OSError, KeyError, ValueError):
        return None   # no procfs: the counts stay 0


def _thread_cpu() -> Tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_stime, usage.ru_utime


def _cpu_of_thread(native_id: int) -> Tuple[float, float]:
    """sys and user CPU seconds of another thread of this process."""
    try:
        with open('/proc/self/task/%d/stat' % native_id) as handle:
            fields = handle.read().rsplit(')', 1)[1].split()
        return (int(fields[12]) / _CLOCK_TICKS,
                int(fields[11]) / _CLOCK_TICKS)
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0


def _streamed_device(channel) -> bool:
    """A channel under ``/dev`` the guest opens by name (stdin is
    wasmtime's own stream, nvram and images are read by the host): read
    or written only, never both (a FIFO cannot be)."""
    return not channel.standard and channel.alias != NVRAM_ALIAS


def _on_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False   # reported when the channels are opened


def _served_calls(manifest: Manifest, ciphers: Dict[str, CipherKey]) -> int:
    """Which calls a run needs served (``zerocloud.runtime.served``): all
    of them for a named device on a FIFO or a ciphered channel other than
    stdout and stderr, only stdio's writes when those two are all that is
    served (ciphered, or stdout on a FIFO)."""
    if any(alias not in STDIO_WRITES for alias in ciphers) or any(
            _streamed_device(channel) and _on_fifo(channel.uri)
            for channel in manifest.channels):
        return SERVED_ALL
    stdout = manifest.channel(STDOUT_ALIAS)
    if ciphers or (stdout is not None and stdout.writable
                   and _on_fifo(stdout.uri)):
        return SERVED_STDIO
    return SERVED_NONE


def _written_bytes(manifest: Manifest) -> int:
    return sum(_regular_size(c.uri) or 0 for c in manifest.channels
               if c.writable)


class Runtime:
    """Holds warm wasmtime engines and the compiled-module cache; reused for
    many runs in one process."""

    def __init__(self, cache_dir: Optional[str] = None, *,
                 wall_clock: str = WALL_CLOCK_EPOCH,
                 on_timeout_exit: Optional[TimeoutExitCallback] = None,
                 defer_large_compiles: bool = False,
                 cache_limits: CacheLimits = CacheLimits()):
        """``on_timeout_exit`` is only called in the ``exit`` mode; with
        ``defer_large_compiles`` a run never compiles a large module (see
        ``zerocloud.runtime.cache``), only ``warm`` does; ``cache_limits``
        bound compiles and the caches."""
        self.wall_clock = check_wall_clock(wall_clock)
        self.defer_large_compiles = defer_large_compiles
        self.on_timeout_exit = on_timeout_exit
        self.cache = ModuleCache(cache_dir or paths.module_cache_dir(),
                                 cache_limits)
        self._warm: Dict[EngineSettings, _Warm] = {}
        self._local = threading.local()
        #: Ends runs at their wall-clock deadline (one run at a time).
        self.alarm = Alarm()

    def _current_guard(self) -> RunGuard:
        return self._local.guard

    def _warm_for(self, settings: EngineSettings) -> _Warm:
        warm = self._warm.get(settings)
        if warm is None:
            warm = self._warm[settings] = _Warm(settings, self._current_guard,
                                                self.cache.limits)
        return warm

    def settings(self, fuel: bool = False,
                 deterministic: bool = False) -> EngineSettings:
        """Engine settings of this runtime's wall-clock mode."""
        return EngineSettings(fuel=fuel, deterministic=deterministic,
                              epoch=self.wall_clock == WALL_CLOCK_EPOCH)

    def warm(self, program_path: str, member: Optional[str] = None,
             fuel: bool = False, deterministic: bool = False) -> None:
        """Compile ``program_path`` (or its tar member) into the cache for
        this runtime's wall-clock mode, and unpack a reactor's files."""
        warm = self._warm_for(self.settings(fuel, deterministic))
        loaded = self.cache.load(warm.engine, warm.settings, program_path,
                                 member)
        if member is not None:
            reactor.support_tree(self.cache.cache_dir, program_path,
                                 loaded.sha256)

    def run(self, manifest_path: str, *, skip_validation: bool = False,
            validate_only: bool = False,
            ciphers: Optional[Dict[str, CipherKey]] = None,
            tees: Optional[Dict[str, str]] = None) -> SessionResult:
        """Run one session; ``ciphers`` maps the aliases of channels read or
        written encrypted (read channels stored encrypted, sealed outputs)
        to their keys, ``tees`` those of sealed outputs also written to a
        FIFO to theirs (``zerocloud.runtime.served``)."""
        report = Report(validation=2)
        session = _Session(self, manifest_path, report, skip_validation,
                           validate_only, ciphers or {}, tees or {})
        try:
            exit_status = session.execute()
        except SessionFailure as failure:
            report.status = failure.status
            if failure.validation != 2:
                report.validation = failure.validation
            exit_status = failure.exit_status
        except Exception as err:  # a host-side bug must not kill the worker
            report.status = 'runtime error: %s' % error_text(err)
            exit_status = errno.EIO
        finally:
            session.close()
        end_cpu = _thread_cpu()
        report.accounting[0] = max(0.0, end_cpu[0] - session.start_cpu[0])
        report.accounting[1] = max(0.0, end_cpu[1] - session.start_cpu[1])
        return SessionResult(exit_status, report, session.fuel_used)


class _Session:
    """The steps of one run; ``Runtime.run`` turns failures into reports."""

    def __init__(self, runtime: Runtime, manifest_path: str, report: Report,
                 skip_validation: bool, validate_only: bool,
                 ciphers: Dict[str, CipherKey], tees: Dict[str, str]):
        self.runtime = runtime
        self.ciphers = ciphers
        self.tees = tees
        #: The served channels' host files, by alias, open for the run.
        self.served: Dict[str, ServedFile] = {}
        self.manifest_path = manifest_path
        self.report = report
        self.skip_validation = skip_validation
        self.validate_only = validate_only
        self.workspace: Optional[Workspace] = None
        self.store: Optional[wasmtime.Store] = None
        #: The process's I/O counts when the store was made.
        self.io_before: Optional[IoCounters] = None
        self.fuel_used: Optional[int] = None
        self.kinds: Dict[str, str] = {}
        self.fsize_cap = 0
        self.manifest: Optional[Manifest] = None
        self.thread_id = threading.get_native_id()
        self.start_cpu = _thread_cpu()
        #: Wall-clock seconds a pool worker spent loading (maybe compiling)
        #: the program: the guest gets what is left of ``Timeout``.
        self.load_seconds = 0.0

    def close(self) -> None:
        self.runtime._local.guard = None
        if self.store is not None:
            # Closes the guest's stdio files now, not when a trap's
            # traceback lets go of the store.
            self.store.close()
            self.store = None
        for file in self.served.values():
            file.close()
        if self.workspace is not None:
            self.workspace.close()

    # -- program -------------------------------------------------------------

    def _load_program(self, manifest: Manifest, warm: _Warm):
        started = time.monotonic()
        loaded = self.runtime.cache.load(
            warm.engine, warm.settings, manifest.program,
            manifest.program_member,
            compile_large=not self.runtime.defer_large_compiles,
            compile_budget=(manifest.timeout
                            if self.runtime.defer_large_compiles else None))
        if self.runtime.defer_large_compiles:
            self.load_seconds = time.monotonic() - started
        self.report.validation = 2 if self.skip_validation else 0
        served = _served_calls(manifest, self.ciphers)
        program = warm.programs.get((loaded.sha256, served))
        if program is None:
            exports = {e.name: e.type for e in loaded.module.exports}
            entry = reactor.entry_points(exports)
            if entry is None:
                raise SessionFailure('program is not a WASI command: no '
                                     '_start or run function', errno.ENOEXEC)
            if not isinstance(exports.get('memory'), wasmtime.MemoryType):
                raise SessionFailure('program is not a WASI command: no '
                                     'exported memory', errno.ENOEXEC)
            try:
                pre = warm.linkers[served].instantiate_pre(loaded.module)
            except wasmtime.WasmtimeError as err:
                raise SessionFailure('program is not a WASI command: %s'
                                     % error_text(err), errno.ENOEXEC)
            support = None
            if entry.reactor and manifest.program_member is not None:
                support = reactor.support_tree(
                    self.runtime.cache.cache_dir, manifest.program,
                    loaded.sha256)
            program = _Program(pre, entry, support)
            warm.programs.put((loaded.sha256, served), program,
                              loaded.size, pinned=loaded.system)
        return program

    # -- channels, nvram, filesystem ------------------------------------------

    def _open_channels(self, manifest: Manifest) -> None:
        for channel in manifest.channels:
            self.kinds[channel.alias] = prepare_host_channel(channel)
        for alias in self.tees:
            channel = manifest.channel(alias)
            if alias not in self.ciphers or channel is None or \
                    not channel.writable:
                raise SessionFailure('channel %s: only a sealed output can '
                                     'be teed' % alias, errno.EINVAL)
        for alias, key in self.ciphers.items():
            channel = manifest.channel(alias)
            if channel is None or self.kinds[alias] != 'file' or \
                    alias == NVRAM_ALIAS or \
                    (channel.readable and channel.writable):
                raise SessionFailure('channel %s: only a read or a write '
                                     'channel on a file can be ciphered'
                                     % alias, errno.EINVAL)
            fifo = self.tees.get(alias)
            self._serve(alias, lambda uri, key=key, channel=channel,
                        fifo=fifo: TeedFile(uri, key, fifo) if fifo else
                        CipheredFile(uri, key, channel.writable), channel)
        for channel in manifest.channels:
            if self.kinds[channel.alias] == 'fifo' and \
                    _streamed_device(channel):
                self._serve(channel.alias, StreamedOutput
                            if channel.writable else StreamedFile, channel)
        stdout = manifest.channel(STDOUT_ALIAS)
        if stdout is not None and stdout.writable and \
                self.kinds[STDOUT_ALIAS] == 'fifo':
            self._serve(STDOUT_ALIAS, StreamedOutput, stdout)

    def _serve(self, alias: str, opener, channel) -> None:
        try:
            self.served[alias] = opener(channel.uri)
        except OSError as err:
            raise SessionFailure('channel %s: cannot open: %s'
                                 % (alias, err.strerror))

    def _read_nvram(self, manifest: Manifest) -> nvram.Nvram:
        channel = manifest.channel(NVRAM_ALIAS)
        if channel is None or not channel.readable:
            return nvram.Nvram(args=[os.path.basename(manifest.program)])
        config = nvram.load(channel.uri)
        if not config.args:
            config.args = [os.path.basename(manifest.program)]
        return config

    def _mount_images(self, manifest: Manifest, config: nvram.Nvram) -> None:
        workspace = self.workspace
        for entry in config.fstab:
            channel = manifest.channel(entry.channel)
            if channel is None or not channel.readable:
                raise SessionFailure('nvram: fstab channel %s is not a read '
                                     'channel' % entry.channel)
            mountpoint = os.path.normpath(entry.mountpoint)
            if not mountpoint.startswith('/') or any(
                    mountpoint == r or mountpoint.startswith(r + '/')
                    for r in RESERVED_MOUNTPOINTS):
                raise SessionFailure('nvram: mountpoint %s is reserved'
                                     % entry.mountpoint)
            target = (workspace.root if mountpoint == '/'
                      else workspace.add_mount_dir(mountpoint))
            image.unpack(channel.uri, target, channel.alias)

    def _place_channels(self, manifest: Manifest) -> None:
        for channel in manifest.channels:
            if channel.standard:
                continue
            # A FIFO the host serves: opening it must not wait for its
            # other side, which may have come and gone already.
            stand_in = channel.alias in self.served and \
                self.kinds[channel.alias] == 'fifo'
            if channel.writable:
                self.workspace.add_write_channel(
                    channel, served=channel.alias in self.served,
                    stand_in=stand_in)
            else:
                self.workspace.add_read_channel(channel,
                                                self.kinds[channel.alias],
                                                stand_in)

    def _set_stdin(self, wasi: wasmtime.WasiConfig, path: str) -> None:
        """wasmtime opens stdin here, blocking: on a FIFO whose writer is
        gone already (its data waits in the pipe), it would wait for
        another forever.  A writer held across the open keeps it from
        waiting; the data's own writer alone decides the end."""
        if self.kinds[STDIN_ALIAS] != 'fifo':
            wasi.stdin_file = path
            return
        writer = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            wasi.stdin_file = path
        finally:
            os.close(writer)

    def _wasi_config(self, manifest: Manifest, config: nvram.Nvram,
                     program: _Program) -> wasmtime.WasiConfig:
        wasi = wasmtime.WasiConfig()
        wasi.argv = config.args
        wasi.env = list(config.env.items())
        stdin = manifest.channel('/dev/stdin')
        if stdin.readable:
            self._set_stdin(wasi, stdin.uri)
        for alias, setter in (('/dev/stdout', 'stdout_file'),
                              ('/dev/stderr', 'stderr_file')):
            channel = manifest.channel(alias)
            if channel.writable:
                # A streamed stdout is wasmtime's file too (its rights, its
                # stat), though its writes are served: _open_channels.
                setattr(wasi, setter, channel.uri)
        workspace = self.workspace
        wasi.preopen_dir(workspace.root, '/', False)
        for mountpoint, path in workspace.extra_mounts.items():
            wasi.preopen_dir(path, mountpoint, False)
        wasi.preopen_dir(workspace.dev, '/dev', workspace.dev_writable)
        if workspace.tmp:
            wasi.preopen_dir(workspace.tmp, '/tmp', True)
        if program.support:
            wasi.preopen_dir(program.support, reactor.SUPPORT_GUEST_PATH,
                             False)
        return wasi

    # -- the run -------------------------------------------------------------

    def execute(self) -> int:
        manifest = self.manifest = load_manifest(self.manifest_path)
        settings = self.runtime.settings(fuel=manifest.fuel > 0,
                                         deterministic=manifest.deterministic)
        warm = self.runtime._warm_for(settings)
        program = self._load_program(manifest, warm)
        self._open_channels(manifest)
        parent = os.path.dirname(os.path.abspath(self.manifest_path))
        self.workspace = Workspace(parent, manifest.scratch)
        config = self._read_nvram(manifest)
        self._mount_images(manifest, config)
        self._place_channels(manifest)
        self.workspace.fix_dev()

        self.io_before = _io_counters()
        store = self.store = wasmtime.Store(warm.engine)
        try:
            store.set_wasi(self._wasi_config(manifest, config, program))
        except wasmtime.WasmtimeError as err:
            raise SessionFailure('cannot open stdio channels: %s'
                                 % error_text(err), errno.EIO)
        store.set_limits(memory_size=manifest.memory,
                         table_elements=TABLE_ELEMENTS, tables=STORE_TABLES,
                         memories=STORE_MEMORIES, instances=STORE_INSTANCES)
        if settings.fuel:
            store.set_fuel(manifest.fuel)
        if settings.epoch:
            store.set_epoch_deadline(1)
        dev_fd = 4 + len(self.workspace.extra_mounts)  # preopen order
        guard = RunGuard(self.workspace.read_only,
                         self.workspace.dev_folders(), dev_fd,
                         settings.deterministic, config.time or 0,
                         manifest.seed,
                         served={alias[len('/dev/'):]: file
                                 for alias, file in self.served.items()
                                 if alias not in STDIO_ALIASES},
                         served_stdio={fd: self.served[alias] for alias, fd
                                       in STDIO_ALIASES.items()
                                       if alias in self.served})
        self.runtime._local.guard = guard
        try:
            instance = program.pre.instantiate(store)
        except wasmtime.WasmtimeError as err:
            text = error_text(err)
            if 'memory' in text and ('limit' in text or 'grow' in text
                                     or 'minimum' in text):
                raise SessionFailure(
                    'memory limit exceeded: the module needs more than %d '
                    'bytes at start' % manifest.memory, errno.ENOMEM)
            if 'table' in text and 'limit' in text:
                raise SessionFailure(
                    'table limit exceeded: the module needs more than %d '
                    'table of %d entries at start' % (STORE_TABLES,
                                                      TABLE_ELEMENTS),
                    errno.ENOMEM)
            raise SessionFailure('program is not a WASI command: %s' % text,
                                 errno.ENOEXEC)
        guard.bind(warm.shim, warm.base, store,
                   instance.exports(store)['memory'])
        if self.validate_only:
            return 0
        exit_status = self._call_start(manifest, warm, store, instance,
                                       program.entry)
        self.workspace.finish()
        self._fill_report(manifest, store, instance.exports(store)['memory'])
        if exit_status == 0:
            self._check_after_run(manifest)
        return exit_status

    def _call_start(self, manifest: Manifest, warm: _Warm,
                    store: wasmtime.Store, instance: wasmtime.Instance,
                    entry: reactor.EntryPoints) -> int:
        exports = instance.exports(store)
        memory = exports['memory']
        limit = max([c.putsize for c in manifest.channels if c.writable]
                    + [manifest.scratch, 1])
        # One byte of headroom: writing exactly ``putsize`` bytes is allowed;
        # a file that reaches the cap went past it.
        with file_size_limit(limit + 1) as cap:
            self.fsize_cap = cap
            with self._wall_clock(warm, max(
                    0.0, manifest.timeout - self.load_seconds)) as clock:
                try:
                    self.report.retcode = self._enter(store, exports, entry)
                except wasmtime.ExitTrap as done:
                    self.report.retcode = done.code
                except wasmtime.Trap as trap:
                    return self._trapped(manifest, trap, clock, store, memory)
                except wasmtime.WasmtimeError as err:
                    if clock.expired:
                        self.report.status = 'session timeout'
                        return errno.EINTR
                    raise SessionFailure('runtime error: %s'
                                         % error_text(err), errno.EIO)
                finally:
                    self._count_io()
        if warm.settings.fuel:
            self.fuel_used = manifest.fuel - store.get_fuel()
        return 0

    @staticmethod
    def _enter(store: wasmtime.Store, exports, entry: reactor.EntryPoints
               ) -> int:
        """Run the program from its entry point; its exit code."""
        if not entry.reactor:
            exports[reactor.COMMAND_ENTRY](store)
            return 0
        if entry.initialize:
            exports[reactor.INITIALIZE](store)
        return exports[reactor.ENTRY](store)

    def _count_io(self) -> None:
        """Reads, bytes read and writes since the store was made (its
        stdio streams may read ahead from then on)."""
        before, after = self.io_before, _io_counters()
        if before is not None and after is not None:
            accounting = self.report.accounting
            accounting[2] = after.reads - before.reads
            accounting[3] = after.read_bytes - before.read_bytes
            accounting[4] = after.writes - before.writes

    def _wall_clock(self, warm: _Warm, seconds: float):
        if warm.settings.epoch:
            return WallClock(warm.engine, seconds, self.runtime.alarm)
        return ExitWatchdog(seconds, self._announce_timeout_exit,
                            self.runtime.alarm)

    def _announce_timeout_exit(self) -> None:
        """On the watchdog thread, just before the process exits."""
        if self.runtime.on_timeout_exit is not None:
            self.runtime.on_timeout_exit(self._timeout_result())

    def _timeout_result(self) -> SessionResult:
        """What can be said of a run still going at its deadline.

        Built from scratch, not from ``self.report``: the guest's thread may
        be returning at this very moment and filling that one in.
        """
        report = Report(validation=self.report.validation,
                        status='session timeout')
        now = _cpu_of_thread(self.thread_id)
        report.accounting[0] = max(0.0, now[0] - self.start_cpu[0])
        report.accounting[1] = max(0.0, now[1] - self.start_cpu[1])
        report.accounting[5] = _written_bytes(self.manifest)
        return SessionResult(errno.EINTR, report, None)

    def _trapped(self, manifest, trap, clock, store, memory) -> int:
        code = trap.trap_code
        if code == wasmtime.TrapCode.INTERRUPT or clock.expired:
            self.report.status = 'session timeout'
        elif code == wasmtime.TrapCode.OUT_OF_FUEL:
            self.report.status = 'CPU limit exceeded'
        else:
            reason = TRAP_TEXT.get(code) or (
                code.name.lower().replace('_', ' ') if code else
                error_text(trap))
            status = 'guest trap: %s' % reason
            headroom = manifest.memory - memory.data_len(store)
            if headroom <= max(MEMORY_SLACK, manifest.memory // 10):
                status += ' (memory limit of %d bytes reached)' % (
                    manifest.memory)
            self.report.status = status
        return errno.EINTR

    def _check_after_run(self, manifest: Manifest) -> None:
        """Limits only visible in the result: file sizes and scratch use."""
        for channel in manifest.channels:
            if not channel.writable:
                continue
            size = _regular_size(channel.uri)
            if size is None:
                continue
            if size >= self.fsize_cap:
                raise SessionFailure('disk quota exceeded', errno.EINTR)
            if size > channel.putsize:
                raise SessionFailure(
                    'channel %s: write limit exceeded (%d > %d bytes)'
                    % (channel.alias, size, channel.putsize), errno.EDQUOT)
        if self.workspace.scratch_exhausted():
            raise SessionFailure('scratch space exceeded (%d bytes)'
                                 % manifest.scratch, errno.EDQUOT)

    def _fill_report(self, manifest: Manifest, store: wasmtime.Store,
                     memory: wasmtime.Memory) -> None:
        etags: List[Tuple[str, str]] = []
        for channel in manifest.channels:
            if channel.etag:
                served = self.served.get(channel.alias)
                teed = served.whole_md5() \
                    if isinstance(served, TeedFile) else None
                etags.append((channel.alias, teed or _md5_of(
                    channel.uri, self.ciphers.get(channel.alias))))
        if manifest.memory_etag:
            etags.append(('/dev/memory', hashlib.md5(memory.read(
                store, 0, memory.data_len(store))).hexdigest()))
        self.report.etags = etags
        self.report.accounting[5] = _written_bytes(manifest)
