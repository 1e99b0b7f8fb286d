"""Turning one job node into a sandbox session on a storage server.

The object filter receives a node description (``sysmap``) plus the members the
proxy streamed (user image, fetched executable, remote inputs).  This module
decides, without any Swift or WSGI code, which host file backs each channel,
which program runs, and writes the ZeroVM manifest and nvram the runtime reads.

Channel files:

* a member the proxy sent under the device's name (remote input, ``image``);
* the local object's ``.data`` file (or a container's database) when the
  channel's ``swift://`` path is the object this server was asked to run next
  to — bound in place, never copied; when it is stored encrypted, the
  session names it with its key (``Session.ciphers``) and the runtime
  decrypts what the program reads (:mod:`zerocloud.runtime.served`);
* a configured system image (``zerovm_sysimage_devices``) for a device of that
  name;
* ``/dev/null`` for a path-less ``stdin`` with no streamed data;
* a fresh empty file for every writable channel;
* for a connection between nodes (``connect``, ``zvm://``): a fresh file the
  upstream node writes (``/dev/out/<peer>`` or the named device), returned to
  the proxy, which hands it to the downstream node as a member named after
  that node's device (``/dev/in/<peer>`` or e.g. ``/dev/stdin``).

Programs: ``file://<image>:<path>`` is taken from the user image when the node
has one and the image is ``image`` (or the node's own image), else from the
system image of that name; a relative path is looked up in the user image,
then in every system image; a ``swift://`` executable arrives as member
``boot``.  A user image's program must lie within its first members and
bytes (``Limits.image_scan``, :mod:`zerocloud.tarscan`) and be at most
``max_input`` bytes.
"""

import os
import tarfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from zerocloud import cgi, protocol, tarscan
from zerocloud.job.model import FilePath, JobError, Node, SwiftPath
from zerocloud.runtime import image, manifest, nvram
from zerocloud.cipher import CipherKey
from zerocloud.runtime.appsnap import SNAPSHOT_NONE

USER_IMAGE = protocol.IMAGE_MEMBER
EXECUTABLE_MEMBER = protocol.EXECUTABLE_MEMBER
EDGE_CONTENT_TYPE = 'application/octet-stream'


class ExecutionError(JobError):
    """A node that cannot be turned into a session; carries an HTTP status."""


@dataclass
class LocalObject:
    """The object (or container database) this server runs the node next to."""
    path: SwiftPath
    data_file: str
    size: int
    content_type: Optional[str] = None
    metadata: Dict[str, str] = field(default_factory=dict)
    #: A copy in RAM (a container database with decrypted etags): it
    #: counts against ``zerovm_ram_limit``.
    ram_copy: bool = False
    #: The key of a ``.data`` file stored encrypted, decrypted as read.
    key: Optional[CipherKey] = None
    #: Its ``LOCAL_*`` variables come from ``metadata``; else the proxy
    #: sent them with the node (the metadata here is ciphertext).
    described: bool = True


@dataclass
class Limits:
    timeout: int
    memory: int
    max_input: int
    max_output: int
    max_iops: int
    scratch: int
    fuel: int = 0
    #: How far into a user image its program is looked for.
    image_scan: tarscan.ScanBounds = tarscan.ScanBounds()


@dataclass
class BoundChannel:
    device: str
    host_path: str
    readable: bool
    etag: bool = False


@dataclass
class Output:
    """A writable channel whose bytes go back to the proxy after the run."""
    device: str
    host_path: str
    content_type: str
    meta: Dict[str, str]
    min_size: int
    swift_path: Optional[SwiftPath]
    edge: bool = False
    #: The key its file is sealed with (``zerocloud.cipher``); ``None``
    #: for a FIFO or a file in RAM.
    key: Optional[CipherKey] = None
    #: The FIFO its bytes written in order also go to, for the object
    #: server to send them while the node runs
    #: (``zerocloud.runtime.served.TeedFile``).
    tee: Optional[str] = None

    @property
    def immediate(self) -> bool:
        """Its bytes form the node's part of the HTTP response."""
        return self.swift_path is None and not self.edge


@dataclass
class Session:
    manifest_path: str
    outputs: List[Output]
    stderr_path: str
    #: The program file (or system image) and its tar member, if any.
    program: str = ''
    member: Optional[str] = None
    #: Channels the sandbox reads or writes encrypted, by alias: read
    #: channels stored encrypted (their body keys) and every output file,
    #: stderr's too (sealed, each with a fresh key).
    ciphers: Dict[str, CipherKey] = field(default_factory=dict)
    #: ``X-Nexe-Snapshot``: whether an app snapshot ran the node.
    snapshot: str = SNAPSHOT_NONE

    @property
    def stderr_key(self) -> Optional[CipherKey]:
        return self.ciphers.get('/dev/stderr')


def _copy_program(image_path: str, member: str, dest: str,
                  limits: Limits) -> bool:
    """Copy ``member`` out of a user image to ``dest``, if the image holds
    it within ``limits.image_scan`` (the image may be a gzip bomb)."""
    try:
        with tarscan.scan(image_path, limits.image_scan) as tar:
            for info in tar.members():
                if not info.isreg() or \
                        tarscan.member_path(info.name) != member:
                    continue
                if info.size > limits.max_input:
                    raise ExecutionError(
                        'Program %s in the image is larger than %d bytes'
                        % (member, limits.max_input), 413)
                with open(dest, 'wb') as out:
                    tar.copy(info, out)
                return True
    except tarscan.UnreadableTar:
        raise ExecutionError('Could not read image of the node', 422)
    except tarscan.BoundReached as err:
        raise ExecutionError('Program %s was not found within %s of the '
                             'image' % (member, err.bound))
    return False


def _in_system_image(image_path: str, member: str) -> bool:
    """Does a system image (the operator's own, trusted) hold ``member``?
    Asked as the sandbox will look it up (:mod:`zerocloud.runtime.image`),
    so a program found here is found there."""
    try:
        info = image.system_member(image_path, member)
    except (tarfile.TarError, OSError, EOFError):
        raise ExecutionError('Could not read image of the node', 422)
    return info is not None and info.isfile()


def resolve_program(node: Node, workdir: str, members: Mapping[str, str],
                    sysimages: Mapping[str, str], limits: Limits
                    ) -> Tuple[str, Optional[str]]:
    """Return (Program, ProgramMember) for the manifest."""
    exe = node.exe
    if isinstance(exe, SwiftPath):
        if EXECUTABLE_MEMBER in members:
            return members[EXECUTABLE_MEMBER], None
        raise ExecutionError('No executable found in request')
    if not isinstance(exe, FilePath):
        raise ExecutionError('No executable found in request')
    path = tarscan.member_path(exe.path.lstrip('/'))
    if not path:
        raise ExecutionError('No executable found in request')
    user_image = members.get(USER_IMAGE)
    candidates: List[Tuple[str, str, bool]] = []   # (tar, member, is user)
    if exe.image is None or exe.image == USER_IMAGE:
        if user_image:
            candidates.append((user_image, path, True))
        if exe.image is None and exe.relative:
            candidates.extend((tar, path, False)
                              for tar in sysimages.values())
    elif exe.image in members:
        candidates.append((members[exe.image], path, True))
    elif exe.image in sysimages:
        candidates.append((sysimages[exe.image], path, False))
    for tar, member, is_user in candidates:
        # A user image is untrusted and may be gzipped: its program is
        # copied out; a system image is read in place by the runtime.
        if is_user:
            dest = os.path.join(workdir, EXECUTABLE_MEMBER)
            if _copy_program(tar, member, dest, limits):
                return dest, None
        elif _in_system_image(tar, member):
            return tar, member
    raise ExecutionError('No executable found in request')


#: (program, member) -> (program, member, ``X-Nexe-Snapshot``).
ProgramChooser = Callable[[str, Optional[str]],
                          Tuple[str, Optional[str], str]]

#: Channel type of every binding: random access, as ZeroVM's type 3.
CHANNEL_TYPE = 3


def _manifest_channel(host: str, alias: str, readable: bool, etag: bool,
                      limits: Limits) -> manifest.Channel:
    if readable:
        quotas = (limits.max_iops, limits.max_input, 0, 0)
    else:
        quotas = (0, 0, limits.max_iops, limits.max_output)
    return manifest.Channel(host, alias, CHANNEL_TYPE, etag, *quotas)


def build_manifest(program: str, member: Optional[str],
                   channels: List[BoundChannel], limits: Limits,
                   nvram_path: str, deterministic: bool = False,
                   seed: int = 0) -> manifest.Manifest:
    """The node's manifest: its channels, the standard ones a node did not
    bind (``/dev/null``), and nvram."""
    bound = [_manifest_channel(ch.host_path, '/dev/' + ch.device,
                               ch.readable, ch.etag, limits)
             for ch in channels]
    devices = {ch.device for ch in channels}
    for std, readable in (('stdin', True), ('stdout', False),
                          ('stderr', False)):
        if std not in devices:
            bound.append(_manifest_channel('/dev/null', '/dev/' + std,
                                           readable, False, limits))
    bound.append(_manifest_channel(nvram_path, '/dev/nvram', True, False,
                                   limits))
    return manifest.Manifest(
        program=program, program_member=member,
        timeout=max(1, limits.timeout), memory=limits.memory,
        memory_etag=False, channels=bound, fuel=limits.fuel,
        scratch=limits.scratch, deterministic=deterministic, seed=seed)


def prepare_session(node: Node, workdir: str, members: Mapping[str, str],
                    sysimages: Mapping[str, str],
                    local: Optional[LocalObject], limits: Limits,
                    deterministic_clock: Optional[int] = None,
                    seed: int = 0, output_dir: Optional[str] = None,
                    sealed: Optional[Mapping[str, CipherKey]] = None,
                    choose_program: Optional[ProgramChooser] = None
                    ) -> Session:
    """Bind every channel of ``node`` to a host file and write the manifest.

    ``members`` maps member names the proxy sent to their files (in
    ``workdir``, or spilled elsewhere sealed by the keys in ``sealed``);
    ``local`` is the object this server holds, if any.  With
    ``deterministic_clock`` the run is deterministic: the guest's clock is
    pinned to it and its randomness comes from ``seed``.  The files the
    node writes (outputs, edges, stderr) go to ``output_dir`` (default
    ``workdir``); the manifest, nvram and the program taken out of an image
    go to ``workdir``, and the sandbox's run directory is made next to
    them.  ``choose_program`` may put an app snapshot in the place of the
    program found (:mod:`zerocloud.object.appsnapshots`).
    """
    output_dir = output_dir or workdir
    program, member = resolve_program(node, workdir, members, sysimages,
                                      limits)
    snapshot = SNAPSHOT_NONE
    if choose_program is not None:
        program, member, snapshot = choose_program(program, member)
    channels: List[BoundChannel] = []
    outputs: List[Output] = []
    ciphers: Dict[str, CipherKey] = {
        '/dev/' + name: key for name, key in (sealed or {}).items()}
    local_env: Dict[str, str] = {}
    fstab = []
    for ch in node.channels:
        dev = ch.device
        path = ch.path if isinstance(ch.path, SwiftPath) else None
        if ch.writable:
            host = os.path.join(output_dir, 'out.' + dev)
            open(host, 'wb').close()
            channels.append(BoundChannel(dev, host, False, etag=True))
            key = ciphers['/dev/' + dev] = CipherKey.fresh()
            outputs.append(Output(dev, host, ch.content_type, dict(ch.meta),
                                  ch.min_size, path, key=key))
            continue
        if dev in members:
            host = members[dev]
        elif local is not None and path is not None and path == local.path:
            host = local.data_file
            if local.key is not None:
                ciphers['/dev/' + dev] = local.key
            if local.described:
                local_env = cgi.local_object_environ(
                    dev, local.path.path_info, local.metadata, local.size,
                    local.content_type, writable=False)
        elif dev in sysimages:
            host = sysimages[dev]
        elif dev == 'stdin' and ch.path is None:
            host = '/dev/null'
        elif dev == USER_IMAGE and ch.path is None and USER_IMAGE in members:
            host = members[USER_IMAGE]
        else:
            raise ExecutionError(
                'Could not resolve channel path "%s" for device: %s'
                % (ch.path.url if isinstance(ch.path, SwiftPath) else '',
                   dev))
        channels.append(BoundChannel(dev, host, True))
        if dev == USER_IMAGE:
            fstab.append(('/dev/' + dev, '/', True))
    for edge in node.edges:
        if edge.direction == 'out':
            host = os.path.join(output_dir, 'edge.%d' % len(outputs))
            open(host, 'wb').close()
            channels.append(BoundChannel(edge.device, host, False, etag=True))
            key = ciphers['/dev/' + edge.device] = CipherKey.fresh()
            outputs.append(Output(edge.device, host, EDGE_CONTENT_TYPE, {}, 0,
                                  None, edge=True, key=key))
        elif edge.device in members:
            channels.append(BoundChannel(edge.device, members[edge.device],
                                         True))
        else:
            raise ExecutionError('No data received for /dev/%s from %s'
                                 % (edge.device, edge.peer))
    stderr = [c for c in channels if c.device == 'stderr']
    if stderr:
        stderr_path = stderr[0].host_path
    else:
        # Undeclared stderr is still kept, so a failure can name its cause.
        stderr_path = os.path.join(output_dir, 'diag.stderr')
        channels.append(BoundChannel('stderr', stderr_path, False))
        ciphers['/dev/stderr'] = CipherKey.fresh()
    if USER_IMAGE in members and not any(c.device == USER_IMAGE
                                         for c in channels):
        channels.append(BoundChannel(USER_IMAGE, members[USER_IMAGE], True))
        fstab.append(('/dev/' + USER_IMAGE, '/', True))
    argv0 = node.exe_name or node.name
    args = [argv0] + nvram.split_args(node.args or '')
    env = dict(node.env)
    env.update(local_env)
    nvram_path = os.path.join(workdir, 'nvram')
    with open(nvram_path, 'w') as fp:
        fp.write(nvram.render(args=args, env=env, fstab=fstab,
                              mapping={'/dev/' + c.device: 'file'
                                       for c in channels},
                              time=deterministic_clock))
    manifest_path = os.path.join(workdir, 'manifest')
    with open(manifest_path, 'w') as fp:
        fp.write(manifest.render_manifest(build_manifest(
            program, member, channels, limits, nvram_path,
            deterministic=deterministic_clock is not None, seed=seed),
            node.id))
    return Session(manifest_path, outputs, stderr_path, program, member,
                   ciphers, snapshot=snapshot)
