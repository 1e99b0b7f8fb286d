"""Which program a Python node runs: the system image, or the app snapshot
made for its script's imports (:mod:`zerocloud.runtime.appsnap`, where the
operator's side is documented)."""

import io
import json
import os
import tarfile
import zipfile
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Set, Tuple

from zerocloud import protocol, tarscan
from zerocloud.job.model import Node
from zerocloud.runtime import appsnap, image, nvram, snapshot
from zerocloud.runtime.cache import ModuleCache
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.limits import CacheLimits

#: The Python system image's device name, its program and the settings
#: its app snapshots are compiled for: the pool workers' plain variant.
PYTHON_IMAGE = 'python'
PYTHON_MEMBER = 'python'
PLAIN = EngineSettings(epoch=False)


def script_member(args: str) -> Optional[str]:
    """The image member ``python <args>`` runs as its script, None for
    ``-c``, ``-m`` and stdin (the sandbox's working directory is ``/``)."""
    words = nvram.split_args(args)
    index = 0
    while index < len(words):
        word = words[index]
        if word in ('-c', '-m', '-'):
            return None
        if word in ('-X', '-W'):
            index += 2
            continue
        if not word.startswith('-'):
            return tarscan.member_path(word.lstrip('/')) or None
        index += 1
    return None


def read_script(image_path: str, member: str,
                bounds: tarscan.ScanBounds) -> bytes:
    """The script's source, b'' when the image (within ``bounds``) does
    not hold it or it is too large to be read for its imports."""
    try:
        with tarscan.scan(image_path, bounds) as tar:
            for info in tar.members():
                if info.isreg() and tarscan.member_path(info.name) == member:
                    if info.size > appsnap.MAX_SCRIPT_BYTES:
                        return b''
                    out = io.BytesIO()
                    tar.copy(info, out)
                    return out.getvalue()
    except (tarscan.UnreadableTar, tarscan.BoundReached):
        pass
    return b''


@dataclass(frozen=True)
class BaseFacts:
    """What the Python image's snapshot is: its program's sha256, the
    top-level names it can import, the modules it has loaded."""
    digest: str
    importable: Set[str]
    loaded: Set[str]


def base_facts(python_image: str) -> BaseFacts:
    """Read from the image: its ``BUILD.json`` and the names in its
    standard-library zip and site-packages folder."""
    build = json.loads(image.read_member(python_image, appsnap.BUILD_MEMBER))
    report = build['snapshot_report']
    site = snapshot.SITE_PACKAGES + '/'
    paths = [name[len(site):] for name in
             image.system_member_names(python_image)
             if name.startswith(site)]
    with tarfile.open(python_image) as archive, zipfile.ZipFile(
            archive.extractfile(snapshot.STDLIB_ZIP)) as stdlib:
        paths += stdlib.namelist()
    return BaseFacts(build['snapshot_sha256'], appsnap.importable(paths),
                     set(report.get('loaded_modules', ())))


class AppSnapshotChooser:
    """One per object-server process (see the module docstring)."""

    def __init__(self, python_image: str, cache_dir: str, keep: int,
                 cache_limits: CacheLimits, logger):
        self.python_image = python_image
        self.logger = logger
        #: Lines to log, from :meth:`choose` (list appends are atomic).
        self.notes: List[str] = []
        self.store = appsnap.AppSnapshots(cache_dir, keep)
        self.cache = ModuleCache(cache_dir, cache_limits)
        #: The image's facts by its (size, mtime): read once, in a real
        #: thread.  No lock (green locks cannot be taken there): two first
        #: requests may both read them, to the same result.
        self._base: Dict[Tuple[int, float], BaseFacts] = {}

    def _base_facts(self) -> BaseFacts:
        stat = os.stat(self.python_image)
        version = (stat.st_size, stat.st_mtime)
        facts = self._base.get(version)
        if facts is None:
            facts = base_facts(self.python_image)
            self._base = {version: facts}
        return facts

    def choose(self, program: str, member: Optional[str], node: Node,
               members: Mapping[str, str], bounds: tarscan.ScanBounds,
               plain: bool) -> Tuple[str, Optional[str], str]:
        """(Program, ProgramMember, ``X-Nexe-Snapshot``) for a node whose
        program resolved to ``program``/``member``; ``plain``: a run
        without fuel, not deterministic.  Runs in a real thread (it reads
        tars), and may start a build; it takes no lock and logs nothing
        (green locks cannot be taken there): what it has to say goes to
        :attr:`notes`, for the server's green thread to log.  Never fails
        the node: the node runs from ``program`` then."""
        try:
            return self._choose(program, member, node, members, bounds,
                                plain)
        except Exception as err:
            self.notes.append('zerocloud: app snapshot of node %s: %s: %s'
                              % (node.name, type(err).__name__, err))
            return program, member, appsnap.SNAPSHOT_NONE

    def log_notes(self) -> None:
        """Log what :meth:`choose` noted (on the server's green thread)."""
        notes, self.notes = self.notes, []
        for note in notes:
            self.logger.info(note)

    def _choose(self, program: str, member: Optional[str], node: Node,
                members: Mapping[str, str], bounds: tarscan.ScanBounds,
                plain: bool) -> Tuple[str, Optional[str], str]:
        if program != self.python_image or member != PYTHON_MEMBER or \
                not plain or protocol.IMAGE_MEMBER not in members:
            return program, member, appsnap.SNAPSHOT_NONE
        script = script_member(node.args or '')
        if script is None:
            return program, member, appsnap.SNAPSHOT_NONE
        base = self._base_facts()
        imports = appsnap.system_imports(appsnap.script_imports(read_script(
            members[protocol.IMAGE_MEMBER], script, bounds)),
            base.importable, base.loaded)
        if not imports:
            return program, member, appsnap.SNAPSHOT_NONE
        key = appsnap.snapshot_key(base.digest, imports)
        ready = self.store.ready(key)
        if ready is not None and os.path.exists(
                self.cache.cache_path(PLAIN, ready.digest)):
            return ready.tar, PYTHON_MEMBER, appsnap.SNAPSHOT_APP
        if ready is not None or self.store.failed(key):
            return program, member, appsnap.SNAPSHOT_NONE
        if self.store.building(key):
            return program, member, appsnap.SNAPSHOT_BUILDING
        if self.store.start(self.python_image, key, imports):
            self.notes.append('zerocloud: building app snapshot %s of %s '
                              '(for node %s)' % (key, ','.join(imports),
                                                 node.name))
            return program, member, appsnap.SNAPSHOT_BUILDING
        return program, member, appsnap.SNAPSHOT_NONE
