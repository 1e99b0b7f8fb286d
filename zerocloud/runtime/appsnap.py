"""App snapshots: a Python program's heavy imports, paid once.

The Python system image is a snapshot with numpy, pandas and matplotlib
already imported (``zerocloud.runtime.snapshot``).  A program that imports
more at its top (``from sklearn.linear_model import ...``, ``import
scipy.stats``) pays those imports on every run: seconds, where the run
itself takes milliseconds.  The original ZeroCloud had a daemon mode for
this; here it is the same snapshot recipe (``wasmtime wizer``) with the
program's imports added.

What is snapshotted is only the system image's own code: the modules of
its packages (not of the standard library) that a script imports at its
top level (the module body and the bodies of top-level ``try``, ``if`` and
``with`` blocks) and that the image's snapshot has not loaded already,
never the program's own modules, files or data.  So one snapshot serves every
program, of every account, that imports the same set
(:func:`snapshot_key`), and it holds nothing of any of them.  Every run
still starts from a fresh copy of it, with its own argv, environment,
seeds and channels, as with the system image.

The object server (``zerocloud.object.node``) reads the script a node
runs with the Python image (its first argument, a member of the node's
image), and:

* when a snapshot for its imports is built and compiled for the pool's
  plain variant, runs the node from it (``X-Nexe-Snapshot: app``);
* otherwise runs it from the system image and, unless one is being built
  on this machine already, starts building one in the background
  (``X-Nexe-Snapshot: building``), with ``python -m
  zerocloud.runtime.appsnap``: the wizer run (about a minute here), the
  tar, then the compile (about a minute more).  One build at a time per
  machine, at the lowest CPU priority (``nice`` 19), so that builds asked
  for by many different import sets cost at most one core's spare time
  and about 2 GB of memory while a compile runs;
* for a script that imports nothing more, a run with fuel or a
  deterministic one, ``X-Nexe-Snapshot: none``.

They are kept in ``<module cache>/apps/`` (``zerovm_cache_dir``), at most
``zerovm_app_snapshots`` of them (0 turns them off), least recently used
first out; each is a tar like the system image's (``python``, ``usr/``,
``BUILD.json``).  A set whose snapshot cannot be made (a module that fails
to import without the program's files) is remembered and not tried again.
"""

import argparse
import ast
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Set

from zerocloud.runtime import snapshot
from zerocloud.runtime.cache import ModuleCache
from zerocloud.runtime.limits import WALL_CLOCK_EXIT
from zerocloud.runtime.session import Runtime

#: The guest reads the modules to add from this variable while the
#: snapshot is made (``zerocloud/runtime/guest/zerocloud_guest.py``).
IMPORTS_ENV = 'ZEROCLOUD_APP_IMPORTS'
#: Members of the system image the builder needs besides ``usr/``.
REACTOR_MEMBER = 'build/reactor.wasm'
WASMTIME_MEMBER = 'build/wasmtime'
PROGRAM_MEMBER = 'python'
BUILD_MEMBER = 'BUILD.json'
APPS_DIR = 'apps'
LOCK_FILE = '.build.lock'
#: Scripts larger than this are not read for their imports.
MAX_SCRIPT_BYTES = 1 << 20
#: Modules one snapshot adds at most (the first ones, by name).
MAX_IMPORTS = 16
_MODULE_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*')

SNAPSHOT_APP = 'app'
SNAPSHOT_BUILDING = 'building'
SNAPSHOT_NONE = 'none'


class AppSnapshotError(Exception):
    """A one-line reason why a snapshot could not be made."""


def script_imports(source: bytes) -> List[str]:
    """Modules ``source`` imports at its top level, in order, each once;
    nothing for a script too large or that does not parse."""
    if len(source) > MAX_SCRIPT_BYTES:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    names: List[str] = []
    pending = list(tree.body)
    while pending:
        statement = pending.pop(0)
        if isinstance(statement, ast.Import):
            names += [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom):
            if statement.level == 0 and statement.module:
                # ``from scipy import stats`` imports ``scipy.stats``; a
                # name that is no module is found so when the snapshot is
                # made, and costs nothing.
                names.append(statement.module)
                names += ['%s.%s' % (statement.module, alias.name)
                          for alias in statement.names if alias.name != '*']
        elif isinstance(statement, (ast.Try, ast.If, ast.With)):
            pending[0:0] = statement.body
    return list(dict.fromkeys(names))


def system_imports(names: Iterable[str], packages: Set[str],
                   loaded: Set[str]) -> List[str]:
    """The ``names`` a snapshot would add: modules of the image's
    ``packages`` (the top-level names it can import) that its own snapshot
    has not ``loaded``, sorted, at most :data:`MAX_IMPORTS`; never the
    standard library's (a few milliseconds each, not worth a snapshot)."""
    kept = sorted({name for name in names
                   if _MODULE_NAME.fullmatch(name) and name not in loaded
                   and name.split('.')[0] in packages
                   and name.split('.')[0] not in sys.stdlib_module_names})
    return kept[:MAX_IMPORTS]


def importable(paths: Iterable[str]) -> Set[str]:
    """Top-level names importable from these paths of the image: the
    entries of its standard-library zip (where its packages are) and of
    its site-packages folder, relative to either."""
    names = set()
    for path in paths:
        entry = path.split('/')[0]
        if entry.endswith('.py') or entry.endswith('.pyc'):
            entry = entry.rsplit('.', 1)[0]
        if _MODULE_NAME.fullmatch(entry):
            names.add(entry)
    return names


def snapshot_key(base_digest: str, imports: Sequence[str]) -> str:
    """The name of the snapshot adding ``imports`` to the image whose
    program has sha256 ``base_digest``."""
    text = '\n'.join([base_digest] + list(imports))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Ready:
    """A built snapshot: its tar and the sha256 of its program."""
    tar: str
    digest: str


class AppSnapshots:
    """The snapshots of one machine's module cache."""

    def __init__(self, cache_dir: str, keep: int):
        self.cache_dir = cache_dir
        self.folder = os.path.join(cache_dir, APPS_DIR)
        self.keep = keep

    def path(self, key: str, suffix: str) -> str:
        return os.path.join(self.folder, key + suffix)

    def ready(self, key: str) -> Optional[Ready]:
        """The snapshot ``key``, if built (and marks it used)."""
        tar = self.path(key, '.tar')
        try:
            with open(self.path(key, '.sha256')) as handle:
                digest = handle.read().strip()
            os.utime(tar)
        except OSError:
            return None
        return Ready(tar, digest)

    def failed(self, key: str) -> bool:
        return os.path.exists(self.path(key, '.failed'))

    def building(self, key: str) -> bool:
        """Whether ``key`` is being built on this machine now."""
        try:
            with open(self.path(key, '.building')) as marker:
                os.kill(int(marker.read()), 0)
        except (OSError, ValueError):
            return False   # none, or its builder is gone
        return True

    def start(self, image_tar: str, key: str, imports: Sequence[str]
              ) -> bool:
        """Start building ``key`` in the background, unless a build runs
        on this machine already; True when one was started."""
        os.makedirs(self.folder, exist_ok=True)
        lock = open(os.path.join(self.folder, LOCK_FILE), 'a')
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        # The child inherits the lock and holds it until it is done.
        child = subprocess.Popen(
            [sys.executable, '-m', __name__, '--cache-dir', self.cache_dir,
             '--keep', str(self.keep), image_tar, key] + list(imports),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            pass_fds=(lock.fileno(),), start_new_session=True)
        with open(self.path(key, '.building'), 'w') as marker:
            marker.write('%d\n' % child.pid)
        lock.close()
        return True

    def evict(self) -> List[str]:
        """Drop the least recently used snapshots beyond ``keep``; their
        program digests (for the module cache to forget)."""
        tars = sorted((os.path.getmtime(os.path.join(self.folder, name)),
                       name[:-len('.tar')])
                      for name in os.listdir(self.folder)
                      if name.endswith('.tar'))
        gone = []
        for _, key in tars[:max(0, len(tars) - self.keep)]:
            ready = self.ready(key)
            for suffix in ('.tar', '.sha256'):
                try:
                    os.unlink(self.path(key, suffix))
                except FileNotFoundError:
                    pass
            if ready is not None:
                gone.append(ready.digest)
        return gone

    def trim(self) -> None:
        """:meth:`evict`, and drop the compiled modules and files of what
        it evicted (``keep=0``: every snapshot of this machine)."""
        if os.path.isdir(self.folder):
            ModuleCache(self.cache_dir).forget(self.evict())


def _extract(image_tar: str, root: str) -> None:
    """The builder's inputs out of our own system image: ``usr/``, the
    reactor and the wasmtime CLI."""
    with tarfile.open(image_tar) as archive:
        for info in archive:
            if info.name.startswith('usr/') or info.name in (
                    REACTOR_MEMBER, WASMTIME_MEMBER):
                archive.extract(info, root, filter='data')
    os.chmod(os.path.join(root, WASMTIME_MEMBER), 0o755)


def _write_tar(image_tar: str, program: str, build: dict, dest: str) -> None:
    """``python`` (the new snapshot), the image's ``usr/`` members and
    ``BUILD.json``, to ``dest``."""
    data = json.dumps(build, indent=1, sort_keys=True).encode()
    with tarfile.open(dest, 'w') as out, tarfile.open(image_tar) as base:
        out.add(program, PROGRAM_MEMBER)
        for info in base:
            if info.name.startswith('usr/'):
                out.addfile(info, base.extractfile(info)
                            if info.isreg() else None)
        info = tarfile.TarInfo(BUILD_MEMBER)
        info.size = len(data)
        info.mtime = int(time.time())
        with tempfile.TemporaryFile() as handle:
            handle.write(data)
            handle.seek(0)
            out.addfile(info, handle)


def build(image_tar: str, imports: Sequence[str], work: str) -> tuple:
    """Make the snapshot adding ``imports``; (its tar in ``work``, its
    program's sha256).  AppSnapshotError names what failed."""
    root = os.path.join(work, 'root')
    _extract(image_tar, root)
    environment = '%s=%s' % (IMPORTS_ENV, ','.join(imports))
    try:
        made, command, report = snapshot.make_snapshot(
            os.path.join(root, WASMTIME_MEMBER),
            os.path.join(root, REACTOR_MEMBER), root, work,
            extra_env=[environment])
        snapshot.check_report(report, list(imports))
    except snapshot.SnapshotError as err:
        raise AppSnapshotError(str(err))
    with open(made, 'rb') as handle:
        digest = hashlib.file_digest(handle, 'sha256').hexdigest()
    tar = os.path.join(work, 'app.tar')
    _write_tar(image_tar, made, {
        'base': os.path.basename(image_tar), 'imports': list(imports),
        'snapshot_sha256': digest, 'snapshot_report': report,
        'command': [os.path.basename(command[0])] + [
            part.replace(work, '<work>') for part in command[1:]]}, tar)
    return tar, digest


def _build_and_install(args: argparse.Namespace) -> None:
    store = AppSnapshots(args.cache_dir, args.keep)
    try:
        _install(store, args)
    finally:
        try:
            os.unlink(store.path(args.key, '.building'))
        except FileNotFoundError:
            pass


def _install(store: AppSnapshots, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix='appsnap-',
                                     dir=store.folder) as work:
        try:
            tar, digest = build(args.image, args.imports, work)
        except AppSnapshotError as err:
            with open(store.path(args.key, '.failed'), 'w') as handle:
                handle.write(str(err) + '\n')
            raise
        # Compiled before it is offered: a run never waits for it.
        Runtime(args.cache_dir, wall_clock=WALL_CLOCK_EXIT).warm(
            tar, PROGRAM_MEMBER)
        os.rename(tar, store.path(args.key, '.tar'))
        with open(store.path(args.key, '.sha256'), 'w') as handle:
            handle.write(digest + '\n')
    store.trim()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m zerocloud.runtime.appsnap',
        description='Build one app snapshot into a module cache.')
    parser.add_argument('--cache-dir', required=True)
    parser.add_argument('--keep', type=int, required=True)
    parser.add_argument('image', help='the Python system image (tar)')
    parser.add_argument('key')
    parser.add_argument('imports', nargs='+')
    args = parser.parse_args(argv)
    # Jobs come first: a build only takes what CPU they leave.
    os.nice(19 - os.nice(0))
    started = time.monotonic()
    try:
        _build_and_install(args)
    except Exception as err:
        print('zerocloud app snapshot %s failed: %s' % (args.key, err),
              file=sys.stderr)
        return 1
    print('zerocloud app snapshot %s of %s made in %.1f s'
          % (args.key, ','.join(args.imports), time.monotonic() - started),
          file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
