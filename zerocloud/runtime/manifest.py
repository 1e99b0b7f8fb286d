"""ZeroVM manifest (version ``20130611``): parser and writer.

The syntax is ZeroVM's, quirks included, so existing ZeroCloud manifests run
unchanged:

* at most 512 KiB (the rest is cut) and 8192 lines; a line counts only when
  it holds exactly one ``=`` (so ``=====`` banners and values containing ``=``
  are ignored); keys are case-sensitive and trimmed; unknown keys are ignored;
* numbers use C base detection (``0x1f`` hex, ``017`` octal, else decimal);
  trailing junk is ``invalid numeric value``;
* errors on a line read ``MANIFEST <line>: <message>`` and exit with
  EFAULT(14), except ``Memory`` out of range (ENOMEM 12); a manifest that
  cannot be opened is ENOENT(2).  (ZeroVM's 10914-channel cap, ENFILE,
  cannot be reached within 8192 lines, so it is not checked.)

Keys: ``Version`` (must be ``20130611``), ``Program``, ``Timeout`` (seconds,
>= 1), ``Memory = <bytes>, <etag 0|1>`` (1 byte .. 4 GiB; the NaCl stack
deduction and "heap > 8 MiB" rule are dropped: wasm has no fixed stack
region), ``Channel`` (at least three), ``Etag``, ``Node`` and ``NameServer``
(accepted, unused: there is no networking here).  ``Job`` (daemon mode) is
refused with EFAULT.

``Channel = <uri>, <alias>, <type>, <etag>, <gets>, <getsize>, <puts>,
<putsize>``: exactly 8 fields; ``uri`` an absolute host path (network URIs
are refused with EPROTONOSUPPORT 93, ``;``-replicated sources with EFAULT);
aliases unique, ``/dev/stdin``, ``/dev/stdout`` and ``/dev/stderr``
mandatory, others under ``/dev/``; type 0..3; etag 0|1; limits >= 0.  A
channel reads when gets>0 and getsize>0 and writes when puts>0 and putsize>0;
neither is a nil channel (EINVAL 22); read-write needs type 1 or 3.

Extensions of this implementation:

``ProgramMember = <name>``
    ``Program`` is a tar file (a system image) and the module is that member.
``Fuel = <n>``
    CPU cap in wasm fuel units; 0 or absent = no metering (metering costs
    about 40 % on call-heavy code, so it is off unless asked for).
``Deterministic = 1``
    Clock pinned to nvram ``[time] seconds`` (or 0), ``random_get`` from a
    PRNG seeded with ``Seed = <int>`` (default 0), ``poll_oneoff`` never
    sleeps.
``Scratch = <bytes>``
    Size cap of the guest's writable ``/tmp`` (default 64 MiB; 0 = no /tmp).
"""

import errno
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

from zerocloud.runtime.errors import SessionFailure

VERSION = '20130611'
MAX_MANIFEST_BYTES = 0x80000
MAX_LINES = 8192
MIN_CHANNELS = 3
MAX_MEMORY = 4 << 30
INT32_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1
DEFAULT_SCRATCH = 64 << 20
STANDARD_ALIASES = ('/dev/stdin', '/dev/stdout', '/dev/stderr')
SINGLE_KEYS = ('Version', 'Program', 'Timeout', 'Memory', 'NameServer',
               'Node', 'Job', 'Etag', 'ProgramMember', 'Fuel',
               'Deterministic', 'Seed', 'Scratch')
REQUIRED_KEYS = ('Version', 'Program', 'Timeout', 'Memory')


@dataclass
class Channel:
    uri: str
    alias: str
    type: int
    etag: bool
    gets: int
    getsize: int
    puts: int
    putsize: int

    @property
    def readable(self) -> bool:
        return self.gets > 0 and self.getsize > 0

    @property
    def writable(self) -> bool:
        return self.puts > 0 and self.putsize > 0

    @property
    def standard(self) -> bool:
        return self.alias in STANDARD_ALIASES


@dataclass
class Manifest:
    program: str
    timeout: int
    memory: int
    memory_etag: bool
    channels: List[Channel]
    program_member: Optional[str] = None
    fuel: int = 0
    deterministic: bool = False
    seed: int = 0
    scratch: int = DEFAULT_SCRATCH

    def channel(self, alias: str) -> Optional[Channel]:
        for channel in self.channels:
            if channel.alias == alias:
                return channel
        return None


def parse_c_int(text: str) -> int:
    """strtol(text, NULL, 0) that refuses junk; raises ValueError."""
    body = text.strip()
    sign = 1
    if body and body[0] in '+-':
        sign = -1 if body[0] == '-' else 1
        body = body[1:]
    if not body:
        raise ValueError(text)
    if body[:2].lower() == '0x':
        value = int(body[2:], 16) if body[2:].isalnum() else None
    elif body.startswith('0') and len(body) > 1:
        value = int(body[1:], 8) if body[1:].isdigit() else None
    else:
        value = int(body, 10) if body.isdigit() else None
    if value is None:
        raise ValueError(text)
    return sign * value


def _fail(line: int, message: str, code: int = errno.EFAULT):
    raise SessionFailure('MANIFEST %d: %s' % (line, message), code)


def _number(line: int, text: str, low: int, high: int, what: str,
            code: int = errno.EFAULT) -> int:
    try:
        value = parse_c_int(text)
    except ValueError:
        _fail(line, 'invalid numeric value')
    if not low <= value <= high:
        _fail(line, 'invalid %s' % what, code)
    return value


def _parse_channel(line: int, value: str) -> Channel:
    fields = [f.strip() for f in value.split(',')]
    if len(fields) != 8:
        _fail(line, 'channel needs 8 fields, got %d' % len(fields))
    uri, alias = fields[0], fields[1]
    if ';' in uri:
        _fail(line, 'replicated channel sources are not supported')
    if ':' in uri.split('/', 1)[0] and not uri.startswith('/'):
        _fail(line, 'network channels are not supported',
              errno.EPROTONOSUPPORT)
    if not uri.startswith('/'):
        _fail(line, 'channel uri %s is not an absolute path' % uri)
    if alias not in STANDARD_ALIASES:
        parts = alias.split('/')
        if (not alias.startswith('/dev/') or '' in parts[1:]
                or '.' in parts or '..' in parts):
            _fail(line, 'channel alias %s must be a file under /dev/' % alias)
    ctype = _number(line, fields[2], 0, 3, 'channel type')
    etag = _number(line, fields[3], 0, 1, 'channel etag')
    limits = [_number(line, f, 0, INT64_MAX, 'channel limit')
              for f in fields[4:]]
    channel = Channel(uri, alias, ctype, bool(etag), *limits)
    if not channel.readable and not channel.writable:
        raise SessionFailure('MANIFEST %d: %s is a nil channel (no read or '
                             'write limits)' % (line, alias), errno.EINVAL)
    if channel.readable and channel.writable and ctype in (0, 2):
        _fail(line, 'read-write channel %s needs type 1 or 3' % alias)
    return channel


def parse_manifest_text(text: str) -> Manifest:
    """Parse manifest text; raises SessionFailure with the ZeroVM status."""
    values: Dict[str, tuple] = {}
    channels: List[Channel] = []
    aliases = set()
    for number, raw in enumerate(text.split('\n')[:MAX_LINES], 1):
        if raw.count('=') != 1:
            continue
        key, value = (part.strip() for part in raw.split('='))
        if key == 'Channel':
            channel = _parse_channel(number, value)
            if channel.alias in aliases:
                _fail(number, '%s is already allocated' % channel.alias)
            aliases.add(channel.alias)
            channels.append(channel)
        elif key in SINGLE_KEYS:
            if key in values:
                _fail(number, 'duplicate key %s' % key)
            values[key] = (number, value)
    for key in REQUIRED_KEYS:
        if key not in values:
            raise SessionFailure('MANIFEST: %s not specified' % key)
    line, version = values['Version']
    if version != VERSION:
        _fail(line, 'invalid version %s (expected %s)' % (version, VERSION))
    if 'Job' in values:
        _fail(values['Job'][0], 'daemon mode (Job) is not supported')
    line, program = values['Program']
    if not program:
        _fail(line, 'empty Program')
    timeout = _number(values['Timeout'][0], values['Timeout'][1], 1,
                      INT32_MAX, 'Timeout')
    line, memory_value = values['Memory']
    tokens = [t.strip() for t in memory_value.split(',')]
    if len(tokens) != 2:
        _fail(line, 'invalid memory token count')
    memory = _number(line, tokens[0], 1, MAX_MEMORY, 'memory size',
                     errno.ENOMEM)
    memory_etag = _number(line, tokens[1], 0, 1, 'memory etag token')
    if len(channels) < MIN_CHANNELS:
        raise SessionFailure('MANIFEST: not enough channels')
    if not all(alias in aliases for alias in STANDARD_ALIASES):
        raise SessionFailure('MANIFEST: missing standard channels')
    manifest = Manifest(program, timeout, memory, bool(memory_etag), channels)
    if 'ProgramMember' in values:
        manifest.program_member = values['ProgramMember'][1] or None
    if 'Fuel' in values:
        manifest.fuel = _number(*values['Fuel'], 0, INT64_MAX, 'Fuel')
    if 'Deterministic' in values:
        manifest.deterministic = bool(
            _number(*values['Deterministic'], 0, 1, 'Deterministic'))
    if 'Seed' in values:
        manifest.seed = _number(*values['Seed'], -INT64_MAX, INT64_MAX,
                                'Seed')
    if 'Scratch' in values:
        manifest.scratch = _number(*values['Scratch'], 0, INT64_MAX,
                                   'Scratch')
    return manifest


def load_manifest(path: str) -> Manifest:
    """Read and parse a manifest file (first 512 KiB only, as ZeroVM)."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read(MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise SessionFailure('cannot open manifest', errno.ENOENT)
    except IsADirectoryError:
        raise SessionFailure('cannot read manifest: is a directory',
                             errno.EIO)
    except OSError as err:
        raise SessionFailure('cannot read manifest: %s'
                             % os.strerror(err.errno or errno.EIO), errno.EIO)
    return parse_manifest_text(data.decode('utf-8', 'replace'))


def render_manifest(manifest: Manifest, node: Optional[int] = None) -> str:
    """The text :func:`parse_manifest_text` reads back as ``manifest``.

    ``node`` (the job's node number) is written for the record only.
    """
    lines = ['Version=%s' % VERSION,
             'Program=%s' % manifest.program,
             'Timeout=%d' % manifest.timeout,
             'Memory=%d,%d' % (manifest.memory, int(manifest.memory_etag))]
    if manifest.program_member:
        lines.append('ProgramMember=%s' % manifest.program_member)
    if manifest.fuel:
        lines.append('Fuel=%d' % manifest.fuel)
    lines.append('Scratch=%d' % manifest.scratch)
    if manifest.deterministic:
        lines.append('Deterministic=1')
        lines.append('Seed=%d' % manifest.seed)
    for ch in manifest.channels:
        lines.append('Channel=%s,%s,%d,%d,%d,%d,%d,%d' % (
            ch.uri, ch.alias, ch.type, int(ch.etag), ch.gets, ch.getsize,
            ch.puts, ch.putsize))
    if node is not None:
        lines.append('Node=%d' % node)
    return '\n'.join(lines) + '\n'
