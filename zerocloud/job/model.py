"""Job descriptions: parse, validate and expand them into node instances.

A job description (also called *system map* or *servlet*) is a JSON array of
node descriptions::

    [{"name": "sort",
      "exec": {"path": "swift://~/bin/sort.wasm", "args": "-r",
               "env": {"LANG": "C"}, "name": "sort"},
      "count": 1, "replicate": 1, "attach": "default",
      "connect": ["merge"],
      "devices": [
          {"name": "stdin", "path": "swift://~/data/in*"},
          {"name": "stdout", "path": "swift://~/out/sorted-*",
           "content_type": "text/plain", "meta": {"by": "sort"},
           "min_size": 1}]}]

This module is pure (no I/O): the proxy filter calls :func:`parse_job` with a
*lister* callback that lists accounts/containers, and ships each resulting
:class:`Node` to an object server as ``Node.to_dict()`` (the ``sysmap``); the
object server rebuilds it with :meth:`Node.from_dict`.

Rules users see (all errors are :class:`JobError`, status 400 unless noted):

* A node ``name`` is made of ASCII letters, digits, ``-``, ``_`` and ``.``
  and is not ``.`` or ``..``: it appears in comma-separated ``X-Nexe-*``
  headers and in device paths.
* ``exec.path`` is ``swift://account/container/object``, ``file://image:path``
  (a member of the user image or of a system image), ``file://path`` (member
  of the user image) or a plain relative path such as ``python`` or
  ``bin/app.wasm``, which the object server looks up in the user image first,
  then in the system images.  An account of ``.`` or ``~`` means the account
  the job was POSTed to.
* ``devices`` (``file_list`` is a deprecated alias that wins when both are
  given) name standard devices (``stdin stdout stderr input output script
  image debug db``) or configured system images.  Any other name is rejected.
* Readable devices (``stdin``, ``input``, ``script``) read a Swift object or,
  without an object part, a container's listing database.  Only ``stdin``
  may go without a path: it then receives the request body.
* Writable devices (``stdout``, ``stderr``, ``output``) write a Swift object,
  feed another node (``zvm://node:device``), or, without a path, form the
  node's part of the HTTP response.  At most one writable device per node may
  go without a path.
* Wildcards: ``*`` in the container and/or object part of a readable path
  matches a whole name (anchored at both ends) and never crosses ``/``;
  ``**`` does.  Every match becomes one instance ``<name>-1``, ``<name>-2``…
  and the text each ``*`` matched fills the ``*`` of writable paths, left to
  right (``swift://a/c_in*/in*`` matching ``c_in2/input1`` turns
  ``swift://a/c_out*/out*`` into ``swift://a/c_out2/output1``).  Without a
  wildcard input, ``count: N`` (N > 1) makes ``<name>-1…<name>-N`` and a
  ``*`` in a writable path becomes the instance name (``wout.*`` →
  ``wout.sort-2``); with a single instance it becomes the node name.
* ``connect: ["merge"]`` lets every instance of this node write
  ``/dev/out/<merge instance>``, read by that instance as
  ``/dev/in/<this instance>``; a device path ``zvm://merge:/dev/stdin``
  sends that device's bytes to merge's ``stdin`` instead.  Connections form
  a DAG that runs in stages; a cycle (including a node connected to itself)
  is rejected, and so is a job of more connections than the server allows
  (``zerovm_max_connections``), before any are made.
* ``replicate`` (1 to 3) runs that many identical copies of each instance.
* ``attach`` names the device whose object decides where an instance runs;
  by default the first readable Swift device as listed, else the ``image``
  device, else the first writable Swift device.
"""

import json
import re
from dataclasses import dataclass, field
from typing import (Callable, Collection, Dict, Iterable, List, Mapping,
                    Optional, Sequence, Tuple, Union)

READABLE, WRITABLE, RANDOM, NETWORK, CDR, CHECKPOINT = 1, 2, 4, 8, 16, 32

STD_DEVICES: Dict[str, int] = {
    'stdin': READABLE,
    'stdout': WRITABLE,
    'stderr': WRITABLE,
    'input': RANDOM | READABLE,
    'output': RANDOM | WRITABLE,
    'script': RANDOM | READABLE,
    'image': CDR,
    'debug': NETWORK,
    'db': CHECKPOINT,
}
#: Access of a path-less system image device (a tar read at random).
SYSIMAGE_ACCESS = RANDOM | READABLE
#: stat() types a channel may present inside the sandbox.
CHANNEL_MODES = ('file', 'char', 'pipe', 'block')
#: Upper bound on instances per job, so a typo in ``count`` cannot make the
#: proxy build millions of nodes.
MAX_INSTANCES = 1000
MAX_REPLICATE = 3
#: Upper bound on connections (``connect`` and ``zvm://`` edges) per job by
#: default: each is a spooled stream and a member of two node requests, and
#: ``connect`` makes them quadratically (300 × 300 nodes: 90 000).
MAX_CONNECTIONS = 4096
#: Node names end up in ``X-Nexe-*`` headers (comma-separated per node),
#: ``/dev/in/<name>`` device paths and log lines: plain ASCII only, and
#: short enough that a wide job's headers stay readable.
NODE_NAME = re.compile(r'(?!\.\.?$)[A-Za-z0-9._-]{1,64}')
INVALID_NODE_NAME = ('Invalid node name: use up to 64 letters, digits, "-", '
                     '"_" and "." (not "." or "..")')
IMMEDIATE_CONTENT_TYPE = 'text/html'


class JobError(Exception):
    """A job description the user must fix; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


# ---------------------------------------------------------------- locations

@dataclass(frozen=True)
class SwiftPath:
    """``swift://account/container/object``; container/object may be absent."""
    account: str
    container: Optional[str]
    obj: Optional[str]

    @property
    def url(self) -> str:
        if self.obj is not None:
            return 'swift://%s/%s/%s' % (self.account, self.container or '',
                                         self.obj)
        if self.container is not None:
            return 'swift://%s/%s' % (self.account, self.container)
        return 'swift://%s' % self.account

    @property
    def path_info(self) -> str:
        return '/' + self.url[len('swift://'):]

    @property
    def has_wildcard(self) -> bool:
        return '*' in (self.container or '') or '*' in (self.obj or '')

    @property
    def is_container(self) -> bool:
        return self.container is not None and self.obj is None


@dataclass(frozen=True)
class FilePath:
    """A member of a tar image.

    ``image`` None means the user image, except when ``relative`` is true:
    then no image was named and the object server searches the user image
    first, then the system images (plain ``exec.path`` such as ``python``).
    """
    image: Optional[str]
    path: str
    relative: bool = False

    @property
    def url(self) -> str:
        if self.relative:
            return self.path
        if self.image is None:
            return 'file://' + self.path
        return 'file://%s:%s' % (self.image, self.path)


@dataclass(frozen=True)
class ZvmPath:
    """``zvm://node:device``: the bytes go to ``device`` of node ``node``."""
    node: str
    device: str

    @property
    def url(self) -> str:
        return 'zvm://%s:%s' % (self.node, self.device)


@dataclass(frozen=True)
class NetworkPath:
    """``tcp://host:port`` or ``udp://host:port`` (the ``debug`` device)."""
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return '%s://%s:%d' % (self.scheme, self.host, self.port)


Location = Union[SwiftPath, FilePath, ZvmPath, NetworkPath]


def parse_location(url: str, account: Optional[str] = None
                   ) -> Optional[Location]:
    """Parse a location URL; None when it is not one we know.

    ``.`` or ``~`` as the account of a ``swift://`` URL becomes ``account``
    when given.  Structural checks (empty container, wildcard account) are
    left to the caller, which knows the context for the error message.
    """
    if not isinstance(url, str) or '://' not in url:
        return None
    scheme, rest = url.split('://', 1)
    if scheme == 'swift':
        parts = rest.split('/', 2)
        acct = parts[0]
        if account is not None and acct in ('.', '~'):
            acct = account
        container = parts[1] if len(parts) > 1 and parts[1] else None
        obj = parts[2] if len(parts) > 2 and parts[2] else None
        if obj is not None and container is None:
            container = ''
        return SwiftPath(acct, container, obj)
    if scheme == 'file':
        image, sep, member = rest.partition(':')
        if not sep:
            return FilePath(None, rest) if rest else None
        return FilePath(image, member) if image and member else None
    if scheme == 'zvm':
        node, sep, device = rest.partition(':')
        if device.startswith('/dev/'):
            device = device[len('/dev/'):]
        return ZvmPath(node, device) if node and sep and device else None
    if scheme in ('tcp', 'udp'):
        host, sep, port = rest.rpartition(':')
        if host and sep and port.isdigit() and 0 < int(port) < 65536:
            return NetworkPath(scheme, host, int(port))
    return None


def _exec_location(url: str, account: Optional[str]) -> Optional[Location]:
    """Like :func:`parse_location`, plus plain relative executable paths."""
    location = parse_location(url, account)
    if location is None and isinstance(url, str) and url.strip() \
            and '://' not in url and not any(c.isspace() for c in url):
        return FilePath(None, url, relative=True)
    return location


# ------------------------------------------------------------ job model

@dataclass
class Channel:
    """One device of an instance (``/dev/<device>`` in the sandbox)."""
    device: str
    access: int
    path: Optional[Location]
    content_type: str
    meta: Dict[str, str] = field(default_factory=dict)
    mode: str = 'file'
    min_size: int = 0

    @property
    def readable(self) -> bool:
        return bool(self.access & READABLE)

    @property
    def writable(self) -> bool:
        return bool(self.access & WRITABLE)

    @property
    def is_immediate(self) -> bool:
        """A path-less output: its bytes become part of the HTTP response."""
        return self.writable and self.path is None

    def to_dict(self) -> dict:
        return {'device': self.device, 'access': self.access,
                'path': self.path.url if self.path else None,
                'content_type': self.content_type, 'meta': dict(self.meta),
                'mode': self.mode, 'min_size': self.min_size}

    @classmethod
    def from_dict(cls, d: dict) -> 'Channel':
        path = d.get('path')
        location = parse_location(path) if path is not None else None
        if path is not None and location is None:
            raise ValueError('bad channel path %r' % path)
        return cls(device=str(d['device']), access=int(d['access']),
                   path=location, content_type=str(d['content_type']),
                   meta={str(k): str(v) for k, v in d['meta'].items()},
                   mode=str(d['mode']), min_size=int(d['min_size']))


@dataclass(frozen=True)
class Edge:
    """One inter-node channel end, as seen by the node that holds it.

    ``direction`` is ``'out'`` (this node writes ``/dev/<device>``, delivered
    to ``peer``) or ``'in'`` (this node reads ``/dev/<device>``, written by
    ``peer``).  ``device`` is the name under ``/dev``: ``out/<peer>`` and
    ``in/<peer>`` for ``connect`` lists, the named devices (``stdout``,
    ``stdin``, ``sort``…) for ``zvm://`` paths.
    """
    direction: str
    peer: str
    device: str


@dataclass
class Node:
    """One instance of a node description, after count/wildcard expansion.

    ``connect``/``bind`` list the downstream/upstream instance names (unique,
    in edge order); ``edges`` holds the device name of every connection.
    ``wants_stream`` means a path-less ``stdin`` that reads the request body.
    """
    id: int
    name: str
    group: str
    exe: Location
    exe_name: Optional[str]
    args: str
    env: Dict[str, str]
    channels: List[Channel]
    connect: List[str] = field(default_factory=list)
    bind: List[str] = field(default_factory=list)
    attach: str = 'default'
    location: Optional[str] = None
    replicate: int = 1
    wildcards: List[str] = field(default_factory=list)
    wants_stream: bool = False
    edges: List[Edge] = field(default_factory=list)

    def channel(self, device: str) -> Optional[Channel]:
        for channel in self.channels:
            if channel.device == device:
                return channel
        return None

    def immediate_channel(self) -> Optional[Channel]:
        """The (at most one) path-less writable channel."""
        for channel in self.channels:
            if channel.is_immediate:
                return channel
        return None

    def placement_channel(self) -> Optional[Channel]:
        """The channel whose Swift object decides where this instance runs.

        Default: the first readable Swift channel as listed (``script`` only
        when nothing else qualifies).  Images and outputs do not pin a node
        by default: an image is small and fetched anywhere, outputs are
        stored by the proxy, and leaving such nodes free spreads a stage
        over the cluster.  An explicit ``attach`` names the device, which
        must have a Swift path to count.  None means "run anywhere".
        """
        swift = [c for c in self.channels if isinstance(c.path, SwiftPath)]
        if self.attach != 'default':
            return next((c for c in swift if c.device == self.attach), None)
        readable = [c for c in swift if c.readable]
        preference = ([c for c in readable if c.device != 'script'],
                      readable)
        return next((group[0] for group in preference if group), None)

    def _add_edge(self, edge: Edge) -> None:
        if edge in self.edges:
            return
        self.edges.append(edge)
        peers = self.connect if edge.direction == 'out' else self.bind
        if edge.peer not in peers:
            peers.append(edge.peer)

    def to_dict(self) -> dict:
        """JSON-safe form: the ``sysmap`` shipped to an object server."""
        return {'id': self.id, 'name': self.name, 'group': self.group,
                'exe': self.exe.url, 'exe_name': self.exe_name,
                'args': self.args, 'env': dict(self.env),
                'channels': [c.to_dict() for c in self.channels],
                'connect': list(self.connect), 'bind': list(self.bind),
                'edges': [[e.direction, e.peer, e.device]
                          for e in self.edges],
                'attach': self.attach, 'location': self.location,
                'replicate': self.replicate,
                'wildcards': list(self.wildcards),
                'wants_stream': self.wants_stream}

    @classmethod
    def from_dict(cls, d: dict) -> 'Node':
        """Rebuild a node from :meth:`to_dict`; JobError when malformed."""
        try:
            exe = _exec_location(d['exe'], None)
            if exe is None:
                raise ValueError('bad exe %r' % d['exe'])
            return cls(
                id=int(d['id']), name=str(d['name']), group=str(d['group']),
                exe=exe, exe_name=_optional_str(d.get('exe_name')),
                args=str(d.get('args') or ''),
                env={str(k): str(v) for k, v in d.get('env', {}).items()},
                channels=[Channel.from_dict(c) for c in d['channels']],
                connect=[str(n) for n in d.get('connect', [])],
                bind=[str(n) for n in d.get('bind', [])],
                edges=[Edge(str(a), str(b), str(c))
                       for a, b, c in d.get('edges', [])],
                attach=str(d.get('attach', 'default')),
                location=_optional_str(d.get('location')),
                replicate=int(d.get('replicate', 1)),
                wildcards=[str(w) for w in d.get('wildcards', [])],
                wants_stream=bool(d.get('wants_stream', False)))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise JobError('Invalid sysmap: %s' % err) from None


def _optional_str(value) -> Optional[str]:
    return None if value is None else str(value)


@dataclass
class Job:
    nodes: List[Node]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def stages(self) -> List[List[Node]]:
        """Topological layers: a node runs after all the nodes it binds."""
        done: set = set()
        remaining = list(self.nodes)
        layers: List[List[Node]] = []
        while remaining:
            layer = [n for n in remaining if all(b in done for b in n.bind)]
            if not layer:
                raise JobError('Cycle in connect: %s' % ', '.join(
                    n.name for n in remaining))
            layers.append(layer)
            done.update(n.name for n in layer)
            remaining = [n for n in remaining if n.name not in done]
        return layers


Lister = Callable[[str, Optional[str]], Iterable[str]]


# -------------------------------------------------------------- validation

def _bad_chars(text: str) -> bool:
    """Control characters, non-characters and lone surrogates."""
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7f or code in (0xfffe, 0xffff) \
                or 0xd800 <= code <= 0xdfff:
            return True
    return False


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class _DeviceSpec:
    device: str
    access: int
    path: Optional[Location]
    content_type: str
    meta: Dict[str, str]
    mode: str
    min_size: int

    @property
    def wildcard_input(self) -> bool:
        return bool(self.access & READABLE) and \
            isinstance(self.path, SwiftPath) and self.path.has_wildcard


@dataclass
class _NodeSpec:
    name: str
    exe: Location
    exe_name: Optional[str]
    args: str
    env: Dict[str, str]
    count: int
    replicate: int
    attach: str
    location: Optional[str]
    connect: List[str]
    devices: List[_DeviceSpec]


class _Parser:
    """Validation and expansion state for one job description."""

    def __init__(self, account: str, sysimages: Collection[str],
                 lister: Optional[Lister], default_content_type: str,
                 max_instances: int):
        self.account = account
        self.sysimages = frozenset(sysimages)
        self.lister = lister
        self.default_content_type = default_content_type
        self.max_instances = max_instances

    # -- node stanza (spec 2.3, in order)

    def node_spec(self, item) -> _NodeSpec:
        if not isinstance(item, dict):
            raise JobError('Job description must be a JSON array of node '
                           'objects')
        name = item.get('name')
        if not name:
            raise JobError('Must specify node name')
        if not isinstance(name, str) or not NODE_NAME.fullmatch(name):
            raise JobError(INVALID_NODE_NAME)
        stanza = item.get('exec')
        if not stanza or not isinstance(stanza, dict):
            raise JobError('Must specify exec stanza for %s' % name)
        exe = _exec_location(stanza.get('path'), self.account)
        if exe is None:
            raise JobError('Must specify executable path for %s' % name)
        if isinstance(exe, ZvmPath):
            raise JobError('Executable path cannot be a zvm path in %s' % name)
        if isinstance(exe, NetworkPath):
            raise JobError('Executable path must be swift:// or file:// in %s'
                           % name)
        if isinstance(exe, SwiftPath):
            if not exe.account or not exe.container or exe.obj is None \
                    or exe.has_wildcard or '*' in exe.account:
                raise JobError('Invalid path %s in %s' % (exe.url, name))
        args = stanza.get('args', '')
        if args is None:
            args = ''
        if not isinstance(args, str):
            raise JobError('Invalid exec args for %s: must be a string' % name)
        env = stanza.get('env') or {}
        if not isinstance(env, dict) or not all(
                isinstance(k, str) and isinstance(v, str)
                for k, v in env.items()):
            raise JobError('Invalid exec env for %s: must be an object of '
                           'strings' % name)
        if any(not k or '=' in k for k in env):
            raise JobError('Invalid nexe property for %s' % name)
        exe_name = stanza.get('name')
        if exe_name is not None and (not isinstance(exe_name, str)
                                     or not exe_name):
            raise JobError('Invalid exec name for %s: must be a non-empty '
                           'string' % name)
        properties = [exe.url, args, exe_name or ''] + \
            [text for pair in env.items() for text in pair]
        if any(_bad_chars(text) for text in properties):
            raise JobError('Invalid nexe property for %s' % name)
        count = item.get('count', 1)
        if not _is_count(count) or count < 1:
            raise JobError('Invalid node count: %s' % json.dumps(count))
        if count > self.max_instances:
            raise JobError('Too many node instances in job (more than %d)'
                           % self.max_instances)
        replicate = item.get('replicate', 1)
        if not _is_count(replicate) or not 1 <= replicate <= MAX_REPLICATE:
            raise JobError('Invalid replicate for %s: %s (must be 1 to %d)'
                           % (name, json.dumps(replicate), MAX_REPLICATE))
        attach = item.get('attach', 'default')
        if not isinstance(attach, str) or not attach:
            raise JobError('Invalid attach for %s: must be a device name'
                           % name)
        location = item.get('location')
        if location is not None and (not isinstance(location, str)
                                     or _bad_chars(location)):
            raise JobError('Invalid location for %s: must be a string' % name)
        connect = item.get('connect', [])
        if not isinstance(connect, list) or not all(
                isinstance(c, str) and c for c in connect):
            raise JobError('Invalid connect for %s: must be a list of node '
                           'names' % name)
        entries = item['file_list'] if 'file_list' in item \
            else item.get('devices', [])
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise JobError('Invalid devices for %s: must be a list' % name)
        devices = [self.device_spec(entry, name) for entry in entries]
        self.check_devices(name, devices, attach)
        return _NodeSpec(name, exe, exe_name, args, dict(env), count,
                         replicate, attach, location, list(connect), devices)

    # -- device entries (spec 2.4)

    def device_spec(self, entry, node: str) -> _DeviceSpec:
        if not isinstance(entry, dict):
            raise JobError('Invalid device entry in %s: must be an object'
                           % node)
        device = entry.get('device', entry.get('name'))
        if device is None or device == '':
            raise JobError('Must specify device for file in %s' % node)
        if not isinstance(device, str) or _bad_chars(device):
            raise JobError('Bad device name: %s in %s'
                           % (json.dumps(device), node))
        raw_path = entry.get('path')
        if raw_path == '':
            raw_path = None
        if raw_path is not None and not isinstance(raw_path, str):
            raise JobError('Invalid path %s in %s'
                           % (json.dumps(raw_path), node))
        if device in STD_DEVICES:
            access = STD_DEVICES[device]
        elif device in self.sysimages:
            access = SYSIMAGE_ACCESS
        else:
            raise JobError('Could not resolve channel path "%s" for device: %s'
                           % (raw_path or '', device))
        path = self.device_path(device, access, raw_path, node)
        content_type = entry.get('content_type')
        if content_type is None:
            content_type = self.default_content_type if path is not None \
                else IMMEDIATE_CONTENT_TYPE
        if not isinstance(content_type, str) or not content_type \
                or _bad_chars(content_type):
            raise JobError('Invalid content_type for device %s in %s'
                           % (device, node))
        meta = entry.get('meta') or {}
        if not isinstance(meta, dict) or not all(
                isinstance(k, str) and k and isinstance(v, str)
                and not _bad_chars(k) and not _bad_chars(v)
                for k, v in meta.items()):
            raise JobError('Invalid meta for device %s in %s: must be an '
                           'object of strings' % (device, node))
        mode = entry.get('mode', 'file')
        if mode not in CHANNEL_MODES:
            raise JobError('Invalid mode %s for device %s in %s (one of %s)'
                           % (json.dumps(mode), device, node,
                              ', '.join(CHANNEL_MODES)))
        min_size = entry.get('min_size', 0)
        if not _is_count(min_size) or min_size < 0:
            raise JobError('Invalid min_size for device %s in %s: must be a '
                           'non-negative integer' % (device, node))
        return _DeviceSpec(device, access, path, content_type, dict(meta),
                           mode, min_size)

    def device_path(self, device: str, access: int, raw: Optional[str],
                    node: str) -> Optional[Location]:
        if raw is None:
            if device in STD_DEVICES and access & READABLE \
                    and device != 'stdin':
                raise JobError('Device %s in %s needs a swift:// path'
                               % (device, node))
            return None
        path = parse_location(raw, self.account)
        if access & READABLE and device in STD_DEVICES:
            if not isinstance(path, SwiftPath):
                raise JobError('Readable device must be a swift object')
            if not path.account or not path.container:
                raise JobError('Invalid path %s in %s' % (raw, node))
            self.check_account(path)
            return path
        allowed: Tuple[type, ...] = ()
        if access & WRITABLE:
            allowed = (SwiftPath, ZvmPath)
        elif access & (CDR | CHECKPOINT):
            allowed = (SwiftPath,)
        elif access & NETWORK:
            allowed = (NetworkPath,)
        if path is None or not isinstance(path, allowed):
            raise JobError('Invalid path %s in %s' % (raw, node))
        if isinstance(path, SwiftPath):
            if not path.account or not path.container:
                raise JobError('Invalid path %s in %s' % (raw, node))
            if path.obj is None:
                raise JobError('Container path must be read-only')
            self.check_account(path)
            if path.has_wildcard and not access & WRITABLE:
                raise JobError('Wildcards are not allowed in path %s of '
                               'device %s in %s' % (raw, device, node))
        if isinstance(path, ZvmPath) and (
                _bad_chars(path.device) or _bad_chars(path.node)
                or path.device in self.sysimages
                or STD_DEVICES.get(path.device, READABLE) & READABLE == 0
                or '' in path.device.split('/')
                or '..' in path.device.split('/')):
            raise JobError('Invalid path %s in %s' % (raw, node))
        return path

    @staticmethod
    def check_account(path: SwiftPath) -> None:
        if '*' in path.account:
            raise JobError('Invalid path: %s' % path.url)

    @staticmethod
    def check_devices(node: str, devices: List[_DeviceSpec],
                      attach: str) -> None:
        names = [d.device for d in devices]
        for name in names:
            if names.count(name) > 1:
                raise JobError('Duplicate device %s in %s' % (name, node))
        immediate = [d.device for d in devices
                     if d.access & WRITABLE and d.path is None]
        if len(immediate) > 1:
            raise JobError(
                'Node %s has more than one output device without a path (%s);'
                ' only one can form the response, give the others a path'
                % (node, ', '.join(immediate)))
        if attach != 'default' and attach not in names:
            raise JobError('Invalid attach for %s: no device named %s'
                           % (node, attach))
        if sum(d.wildcard_input for d in devices) > 1:
            raise JobError('Cannot resolve wildcard for node %s: only one '
                           'readable device may use wildcards' % node)

    # -- expansion (spec 2.6 with DESIGN §3)

    def expand(self, spec: _NodeSpec, first_id: int) -> List[Node]:
        wild = next((d for d in spec.devices if d.wildcard_input), None)
        matches: List[Tuple[SwiftPath, List[str]]] = []
        if wild is not None:
            if spec.count != 1:
                raise JobError('Cannot resolve wildcard for node %s: count '
                               'cannot be combined with a wildcard input'
                               % spec.name)
            matches = self.match(wild.path)
            names = ['%s-%d' % (spec.name, i)
                     for i in range(1, len(matches) + 1)]
        elif spec.count > 1:
            names = ['%s-%d' % (spec.name, i)
                     for i in range(1, spec.count + 1)]
        else:
            names = [spec.name]
        for device in spec.devices:
            if device.access & WRITABLE and isinstance(device.path, SwiftPath)\
                    and not device.path.has_wildcard and len(names) > 1:
                raise JobError('Single path %s for multiple node definition: '
                               '%s, please use wildcard'
                               % (device.path.url, spec.name))
        nodes = []
        for index, name in enumerate(names):
            values = matches[index][1] if wild is not None else None
            channels = []
            for device in spec.devices:
                path = device.path
                if isinstance(path, ZvmPath):
                    continue
                if device is wild:
                    path = matches[index][0]
                elif device.access & WRITABLE and isinstance(path, SwiftPath)\
                        and path.has_wildcard:
                    path = _fill_wildcards(path, values, name)
                channels.append(Channel(
                    device.device, device.access, path, device.content_type,
                    dict(device.meta), device.mode, device.min_size))
            nodes.append(Node(
                id=first_id + index, name=name, group=spec.name, exe=spec.exe,
                exe_name=spec.exe_name, args=spec.args, env=dict(spec.env),
                channels=channels, attach=spec.attach,
                location=spec.location, replicate=spec.replicate,
                wildcards=list(values or []),
                wants_stream=any(c.device == 'stdin' and c.path is None
                                 for c in channels)))
        return nodes

    def match(self, pattern: SwiftPath) -> List[Tuple[SwiftPath, List[str]]]:
        """Concrete paths matching a wildcard path, with the text of each *."""
        if self.lister is None:
            raise JobError('Wildcards cannot be resolved here: %s'
                           % pattern.url)
        account = pattern.account
        container_pattern = pattern.container or ''
        if '*' in container_pattern:
            regex = _wildcard_regex(container_pattern)
            containers = []
            for name in self.lister(account, None):
                found = regex.fullmatch(name)
                if found:
                    containers.append((name, list(found.groups())))
        else:
            containers = [(container_pattern, [])]
        results: List[Tuple[SwiftPath, List[str]]] = []
        for container, values in containers:
            if pattern.obj is None:
                results.append((SwiftPath(account, container, None), values))
                continue
            regex = _wildcard_regex(pattern.obj)
            for name in self.lister(account, container):
                found = None if name.endswith('/') else regex.fullmatch(name)
                if found:
                    results.append((SwiftPath(account, container, name),
                                    values + list(found.groups())))
        if not results:
            raise JobError('No objects found in path %s' % pattern.url)
        return results


_WILDCARD_TOKEN = re.compile(r'\*\*|\*')


def _wildcard_regex(pattern: str) -> 're.Pattern[str]':
    """``*`` = any text without ``/``, ``**`` = any text; each one a group."""
    parts, last = [], 0
    for token in _WILDCARD_TOKEN.finditer(pattern):
        parts.append(re.escape(pattern[last:token.start()]))
        parts.append('(.*)' if token.group() == '**' else '([^/]*)')
        last = token.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile(''.join(parts), re.DOTALL)


def _fill_wildcards(path: SwiftPath, values: Optional[Sequence[str]],
                    instance: str) -> SwiftPath:
    """Replace each ``*`` (or ``**``) of container then object, in order, by
    the wildcard ``values`` of the input or, without a wildcard input, by the
    instance name."""
    remaining = list(values) if values is not None else None

    def fill(part: Optional[str]) -> Optional[str]:
        if part is None:
            return None

        def next_value(_match: 're.Match[str]') -> str:
            if remaining is None:
                return instance
            if not remaining:
                raise JobError('Wildcards in input cannot be resolved into '
                               'output path %s' % path.url)
            return remaining.pop(0)
        return _WILDCARD_TOKEN.sub(next_value, part)

    filled = SwiftPath(path.account, fill(path.container), fill(path.obj))
    if not filled.container or '/' in filled.container:
        raise JobError('Wildcards in input cannot be resolved into output '
                       'path %s' % path.url)
    return filled


# ------------------------------------------------------------ connections

def _connect(specs: List[_NodeSpec], nodes: List[Node],
             max_connections: int) -> None:
    """Add edges for ``connect`` lists and ``zvm://`` devices (spec 2.7),
    once their number is known to be at most ``max_connections``."""
    by_group: Dict[str, List[Node]] = {}
    by_name = {node.name: node for node in nodes}
    for node in nodes:
        by_group.setdefault(node.group, []).append(node)

    def targets(source_group: str, target: str) -> List[Node]:
        found = by_group.get(target) or \
            ([by_name[target]] if target in by_name else [])
        if not found:
            raise JobError('Non-existing node in connect %s' % target)
        if len(found) == 1 and found[0].group == source_group \
                and len(by_group[source_group]) == 1:
            raise JobError('Cannot bind to itself: %s' % target)
        return found

    count = 0
    for spec in specs:
        sources = by_group[spec.name]
        for target in spec.connect + [device.path.node
                                      for device in spec.devices
                                      if isinstance(device.path, ZvmPath)]:
            peers = targets(spec.name, target)
            # Every source to every peer, but never to itself.
            count += len(sources) * len(peers) - sum(
                1 for peer in peers if peer.group == spec.name)
    if count > max_connections:
        raise JobError('Too many connections in job: %d (this server allows '
                       '%d: zerovm_max_connections)'
                       % (count, max_connections))
    received: Dict[Tuple[str, str], str] = {}
    for spec in specs:
        for source in by_group[spec.name]:
            for target in spec.connect:
                for peer in targets(spec.name, target):
                    if peer is not source:
                        source._add_edge(Edge('out', peer.name,
                                              'out/' + peer.name))
                        peer._add_edge(Edge('in', source.name,
                                            'in/' + source.name))
            for device in spec.devices:
                if not isinstance(device.path, ZvmPath):
                    continue
                for peer in targets(spec.name, device.path.node):
                    if peer is source:
                        continue
                    peer_device = _fill_device(device.path.device, source)
                    _claim_device(peer, peer_device, source, received)
                    source._add_edge(Edge('out', peer.name, device.device))
                    peer._add_edge(Edge('in', source.name, peer_device))


def _fill_device(device: str, source: Node) -> str:
    """``*`` in a zvm target device: the sender's wildcard values, in order,
    or the sender's instance name when it has none."""
    values = list(source.wildcards)
    return re.sub(r'\*', lambda _m: values.pop(0) if values else source.name,
                  device)


def _claim_device(peer: Node, device: str, source: Node,
                  received: Dict[Tuple[str, str], str]) -> None:
    """One sender per receiving device; a declared path-less device yields."""
    earlier = received.setdefault((peer.name, device), source.name)
    if earlier != source.name:
        raise JobError('Device %s of node %s receives from more than one '
                       'node: %s, %s' % (device, peer.name, earlier,
                                         source.name))
    declared = peer.channel(device)
    if declared is None:
        return
    if declared.path is not None:
        raise JobError('Device %s of node %s is bound to %s and cannot also '
                       'receive from %s' % (device, peer.name,
                                            declared.path.url, source.name))
    peer.channels.remove(declared)
    if device == 'stdin':
        peer.wants_stream = False


def _check_cycles(nodes: List[Node]) -> None:
    """Reject the first cycle found, naming its nodes in order."""
    by_name = {node.name: node for node in nodes}
    state: Dict[str, int] = {}     # 1 = on the current path, 2 = finished
    for root in nodes:
        if root.name in state:
            continue
        path = [root.name]
        state[root.name] = 1
        iterators = [iter(root.connect)]
        while iterators:
            peer = next(iterators[-1], None)
            if peer is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(peer) == 1:
                cycle = path[path.index(peer):] + [peer]
                raise JobError('Cycle in connect: %s' % ' -> '.join(cycle))
            elif peer not in state:
                state[peer] = 1
                path.append(peer)
                iterators.append(iter(by_name[peer].connect))


def _check_writers(nodes: List[Node]) -> None:
    """Two instances writing one object would race; refuse it up front."""
    writers: Dict[str, str] = {}
    for node in nodes:
        for channel in node.channels:
            if channel.writable and isinstance(channel.path, SwiftPath):
                url = channel.path.url
                earlier = writers.setdefault(url, node.name)
                if earlier != node.name:
                    raise JobError('Output path %s is written by more than '
                                   'one node: %s, %s'
                                   % (url, earlier, node.name))


# -------------------------------------------------------------- entry points

def _load_document(doc: Union[bytes, str, list]) -> list:
    if isinstance(doc, (bytes, str)):
        try:
            doc = json.loads(doc)
        except (ValueError, RecursionError):
            raise JobError('Could not parse system map', 422) from None
    if not isinstance(doc, list):
        raise JobError('Job description must be a JSON array of node objects')
    return doc


def parse_job(doc: Union[bytes, str, list], *, account: str,
              sysimages: Collection[str] = (),
              lister: Optional[Lister] = None,
              default_content_type: str = 'application/octet-stream',
              max_instances: int = MAX_INSTANCES,
              max_connections: int = MAX_CONNECTIONS) -> Job:
    """Validate a job description and expand it into instances.

    ``lister(account, container)`` returns object names of a container, or
    the account's container names when ``container`` is None; it is only
    called for wildcard inputs and may raise :class:`JobError`.
    """
    items = _load_document(doc)
    parser = _Parser(account, sysimages, lister, default_content_type,
                     max_instances)
    specs: List[_NodeSpec] = []
    nodes: List[Node] = []
    groups: set = set()
    instances: set = set()
    for item in items:
        spec = parser.node_spec(item)
        if spec.name in groups or spec.name in instances:
            raise JobError('Duplicate node name %s' % spec.name)
        groups.add(spec.name)
        expanded = parser.expand(spec, len(nodes) + 1)
        for node in expanded:
            if node.name in instances or (node.name in groups
                                          and node.name != spec.name):
                raise JobError('Duplicate node name %s' % node.name)
            instances.add(node.name)
        specs.append(spec)
        nodes.extend(expanded)
        if len(nodes) > max_instances:
            raise JobError('Too many node instances in job (more than %d)'
                           % max_instances)
    if not nodes:
        raise JobError('Config parser cannot resolve any job nodes')
    _connect(specs, nodes, max_connections)
    _check_cycles(nodes)
    _check_writers(nodes)
    return Job(nodes)


def job_from_script(head: bytes, *, account: str,
                    container: Optional[str] = None,
                    obj: Optional[str] = None) -> list:
    """The job document for a POSTed script (spec 1.4).

    ``head`` is the start of the script; the script itself is shipped as the
    user image with one member ``script``, which the interpreter gets as its
    last argument.  POSTed to an object, the object becomes ``stdin``.
    """
    if not head.startswith(b'#!'):
        raise JobError('Unsupported Content-Type')
    end = head.find(b'\n')
    if end < 0:
        raise JobError('Cannot find shebang (#!) in script')
    try:
        line = head[2:end].decode('utf-8')
    except UnicodeDecodeError:
        raise JobError('Bad interpreter: the shebang line is not UTF-8') \
            from None
    tokens = line.split()
    if not tokens:
        raise JobError('Bad interpreter: the shebang line is empty')
    interpreter, args = tokens[0], tokens[1:]
    location = parse_location(interpreter, account)
    if not isinstance(location, (SwiftPath, FilePath)):
        raise JobError('Bad interpreter %s' % interpreter)
    if isinstance(location, FilePath) and location.image is None:
        raise JobError('Must supply image name in shebang url %s'
                       % interpreter)
    devices: List[dict] = []
    if container and obj:
        devices.append({'name': 'stdin', 'path': SwiftPath(
            account, container, obj).url})
    devices.append({'name': 'stdout', 'content_type': 'text/plain'})
    if isinstance(location, FilePath) and location.image != 'image':
        devices.append({'name': location.image})
    return [{'name': 'script',
             'exec': {'path': location.url,
                      'args': ' '.join(args + ['script'])},
             'devices': devices}]


_TEMPLATE_FIELD = re.compile(r'\{\.([^{}=\s]+)(?:=([^}]*))?\}')


def substitute(template: str, params: Mapping[str, str],
               object_path: Optional[str] = None) -> str:
    """Fill ``{.name}`` / ``{.name=default}`` fields of a template (2.11).

    Values are inserted raw (no JSON escaping), ``{.object_path}`` becomes
    ``object_path`` (a ``swift://`` URL), unknown fields their default or
    nothing.  One pass, so inserted values are never expanded again.
    """
    def replace(found: 're.Match[str]') -> str:
        name, default = found.group(1), found.group(2)
        if name == 'object_path':
            if object_path is not None:
                return object_path
        elif name in params:
            return params[name]
        return default or ''
    return _TEMPLATE_FIELD.sub(replace, template)
