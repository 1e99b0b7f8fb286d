"""``zpm bundle``: a project → ``<meta.name>.zapp`` (a gzip tar).

Members, in order: ``boot/system.map`` (the job, :mod:`.project`),
``zapp.yaml``, whatever the ``bundling`` globs match, then the ``ui``
globs, then the dependencies under ``lib/python3.15/site-packages``.
Directories are added with their content; ``__pycache__``, the ``.zapp``
work directory and the zapp being written are left out.  A glob that
matches nothing is a warning; if none matches anything, an error.

Dependencies are pure-Python wheels (the sandbox's Python cannot load
native extensions), installed by pip for the image's Python
(``pip install --target .zapp/deps --only-binary=:all: --platform any
--implementation py --abi none --python-version 3.15``): no tox, no
virtualenv, nothing built.  The installed set is reused while the
dependency list is unchanged; ``--refresh-deps`` installs it afresh.
pip's own settings apply (``PIP_INDEX_URL``, ``PIP_FIND_LINKS`` …).
"""

import contextlib
import glob
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from typing import Iterator, List, Optional, Tuple

from zerocloud.zpm import project
from zerocloud.zpm.project import ProjectError

LOG = logging.getLogger('zpm')
SYSTEM_MAP = 'boot/system.map'
WORK_DIR = '.zapp'
DEPS_DIR = 'deps'
DEPS_LIST = 'deps.txt'
#: The system image's Python, which bundled wheels must suit.
TARGET_PYTHON = '3.15'
SKIPPED_NAMES = ('__pycache__',)


def zapp_path(root: str, zapp: dict) -> str:
    return os.path.join(root, project.zapp_name(zapp) + '.zapp')


def _matches(root: str, patterns: List[str], section: str
             ) -> Iterator[str]:
    """Project-relative paths each glob matches, warning on none."""
    for pattern in patterns:
        if os.path.isabs(pattern) or '..' in pattern.replace(
                os.sep, '/').split('/'):
            raise ProjectError("%s pattern '%s' points outside the project"
                               % (section, pattern))
        found = sorted(glob.glob(pattern, root_dir=root, recursive=True))
        if not found:
            LOG.warning("'%s' in %s matched no file", pattern, section)
        yield from found


def _system_map_member(job: list) -> Tuple[tarfile.TarInfo, bytes]:
    data = json.dumps(job, indent=2).encode('utf-8')
    info = tarfile.TarInfo(SYSTEM_MAP)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    return info, data


def _install_dependencies(root: str, requirements: List[str],
                          refresh: bool) -> str:
    """Directory holding the installed dependencies (pip, cached)."""
    work = os.path.join(root, WORK_DIR)
    target = os.path.join(work, DEPS_DIR)
    listing = os.path.join(work, DEPS_LIST)
    wanted = ''.join(req + '\n' for req in requirements)
    try:
        with open(listing, encoding='utf-8') as handle:
            installed: Optional[str] = handle.read()
    except OSError:
        installed = None
    if installed == wanted and os.path.isdir(target) and not refresh:
        return target
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    command = [sys.executable, '-m', 'pip', 'install', '--quiet',
               '--disable-pip-version-check', '--no-compile',
               '--target', target, '--only-binary=:all:',
               '--platform', 'any', '--implementation', 'py',
               '--abi', 'none', '--python-version', TARGET_PYTHON,
               '--'] + requirements
    LOG.info('installing dependencies: %s', ' '.join(requirements))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        shutil.rmtree(target, ignore_errors=True)
        raise ProjectError(
            'pip could not install the dependencies (%s) as pure-Python '
            'wheels for Python %s:\n%s' % (', '.join(requirements),
                                           TARGET_PYTHON,
                                           done.stderr.strip()))
    with open(listing, 'w', encoding='utf-8') as handle:
        handle.write(wanted)
    return target


def _check_modules(target: str, entries: List[List[str]]) -> None:
    """Modules named by ``[pkg, module…]`` entries must be installed."""
    for entry in entries:
        for module in entry[1:]:
            base = os.path.join(target, *module.split('.'))
            if not (os.path.isdir(base) or os.path.isfile(base + '.py')):
                raise ProjectError(
                    "dependency %s installed no module '%s' (check the name; "
                    "--refresh-deps installs the dependencies afresh)"
                    % (entry[0], module))


def build(root: str, refresh_deps: bool = False) -> str:
    """Write the project's zapp; returns its path."""
    zapp = project.load_zapp(root)
    job = project.job_description(zapp)
    output = zapp_path(root, zapp)
    entries = project.dependencies(zapp)
    deps_dir = None
    if entries:
        deps_dir = _install_dependencies(root, [e[0] for e in entries],
                                         refresh_deps)
        _check_modules(deps_dir, entries)
    # Written by zpm itself, or zpm's own files: never from a glob.
    skipped = {SYSTEM_MAP, project.ZAPP_YAML, WORK_DIR,
               os.path.basename(output)}

    def keep(info: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
        name = os.path.normpath(info.name)
        if name in skipped or name.startswith(WORK_DIR + '/') or \
                os.path.basename(name) in SKIPPED_NAMES:
            return None
        return info

    members = list(_matches(root, project.bundling_patterns(zapp),
                            'bundling'))
    members += list(_matches(root, project.ui_patterns(zapp), 'ui'))
    members = [m for m in dict.fromkeys(members)
               if os.path.normpath(m) not in skipped]
    if not members:
        raise ProjectError("None of the files in the 'bundling' or 'ui' "
                           "sections of %s matched anything"
                           % project.ZAPP_YAML)
    partial = output + '.part'
    try:
        with tarfile.open(partial, 'w:gz') as tar:
            info, data = _system_map_member(job)
            tar.addfile(info, io.BytesIO(data))
            tar.add(os.path.join(root, project.ZAPP_YAML), project.ZAPP_YAML)
            for member in members:
                tar.add(os.path.join(root, member), member, filter=keep)
            if deps_dir:
                for name in sorted(os.listdir(deps_dir)):
                    if name != 'bin':
                        tar.add(os.path.join(deps_dir, name),
                                project.DEPENDENCY_DIR + '/' + name,
                                filter=keep)
        os.replace(partial, output)
    except BaseException:
        # An unreadable member (or ^C) leaves no half-written zapp behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    return output
