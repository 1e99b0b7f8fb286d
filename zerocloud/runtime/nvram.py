"""The ``/dev/nvram`` channel: argv, environment, mounts and clock of a run.

ZeroVM left argv/env to the guest's runtime (ZRT), which read an INI-like
file on the read-only channel ``/dev/nvram``.  We keep that format so the
object server can keep writing it, and decode it on the host into WASI argv,
environ and preopens::

    [args]
    args = python main.py a\\x20b
    [env]
    name=PATH_INFO, value=/a\\x2cb
    [fstab]
    channel=/dev/image, mountpoint=/, access=ro, removable=yes
    [mapping]
    channel=/dev/stdin, mode=char
    [time]
    seconds=1400000000

* ``[args]``: split on spaces; each argument ``\\xNN``-unescaped (the writer
  escapes backslash, ``"``, ``,``, space, newline and other control bytes).
* ``[env]``: ``name=<K>, value=<V>``; both sides ``\\xNN``-unescaped
  (``,`` travels as ``\\x2c``).
* ``[fstab]``: a tar channel unpacked read-only at ``mountpoint`` (``access``
  other than ``ro`` is refused: mounts are always read-only here).
* ``[mapping]``: accepted and kept, but WASI cannot present a file as a
  character device, so it changes nothing.
* ``[time]``: ``seconds=<unix time>``, the clock of deterministic runs.
* ``[debug]`` and unknown sections are ignored.

Malformed nvram is a session failure ``nvram <line>: <message>`` (EFAULT).
"""

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from zerocloud.runtime.errors import SessionFailure

MAX_NVRAM_BYTES = 1 << 20
_ESCAPE_RE = re.compile(r'\\x([0-9a-fA-F]{2})')
_ARG_SPECIALS = set('\\",  \n')
_ENV_SPECIALS = set('\\,\n\r')


@dataclass
class FstabEntry:
    channel: str
    mountpoint: str
    removable: bool = False


@dataclass
class Nvram:
    args: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)
    fstab: List[FstabEntry] = field(default_factory=list)
    mapping: Dict[str, str] = field(default_factory=dict)
    time: Optional[int] = None


def unescape(text: str) -> str:
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)


def split_args(text: str) -> List[str]:
    """ZRT's reading of an args line: words split on spaces, each one
    ``\\xNN``-unescaped.  Job ``exec.args`` follow the same convention
    (zpm escapes ``a,b`` and ``c d`` to ``a\\x2cb c\\x20d``)."""
    return [unescape(word) for word in text.split(' ') if word]


def _escape(text: str, specials: set) -> str:
    return ''.join('\\x%02x' % ord(ch) if ch in specials or ord(ch) < 32
                   else ch for ch in text)


def _pairs(line: int, text: str) -> Dict[str, str]:
    pairs = {}
    for item in text.split(','):
        key, sep, value = item.partition('=')
        if not sep:
            raise SessionFailure('nvram %d: expected key=value, got %r'
                                 % (line, item.strip()))
        pairs[key.strip()] = value.strip()
    return pairs


def parse(text: str) -> Nvram:
    """Decode nvram text; raises SessionFailure on malformed lines."""
    nvram = Nvram()
    section = None
    for number, raw in enumerate(text.split('\n'), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('[') and line.endswith(']'):
            section = line[1:-1].strip()
            continue
        if section == 'args':
            key, sep, value = line.partition('=')
            if not sep or key.strip() != 'args':
                raise SessionFailure('nvram %d: expected args = ...' % number)
            nvram.args = split_args(value)
        elif section == 'env':
            pairs = _pairs(number, line)
            if 'name' not in pairs or 'value' not in pairs:
                raise SessionFailure('nvram %d: env needs name= and value='
                                     % number)
            nvram.env[unescape(pairs['name'])] = unescape(pairs['value'])
        elif section == 'fstab':
            pairs = _pairs(number, line)
            if 'channel' not in pairs or 'mountpoint' not in pairs:
                raise SessionFailure('nvram %d: fstab needs channel= and '
                                     'mountpoint=' % number)
            if pairs.get('access', 'ro') != 'ro':
                raise SessionFailure('nvram %d: only access=ro mounts are '
                                     'supported' % number)
            nvram.fstab.append(FstabEntry(
                pairs['channel'], pairs['mountpoint'],
                pairs.get('removable', 'no') == 'yes'))
        elif section == 'mapping':
            pairs = _pairs(number, line)
            if 'channel' in pairs:
                nvram.mapping[pairs['channel']] = pairs.get('mode', '')
        elif section == 'time':
            key, _, value = line.partition('=')
            if key.strip() == 'seconds':
                try:
                    nvram.time = int(value.strip())
                except ValueError:
                    raise SessionFailure('nvram %d: invalid time seconds'
                                         % number)
    return nvram


def load(path: str) -> Nvram:
    try:
        with open(path, 'rb') as handle:
            data = handle.read(MAX_NVRAM_BYTES)
    except OSError as err:
        raise SessionFailure('cannot read nvram: %s' % err.strerror)
    return parse(data.decode('utf-8', 'replace'))


def render(args: List[str], env: Dict[str, str],
           fstab: Iterable[Tuple[str, str, bool]] = (),
           mapping: Optional[Dict[str, str]] = None,
           time: Optional[int] = None) -> str:
    """nvram text for ``args``/``env``; fstab items are (alias, mountpoint,
    removable); mapping maps alias to ZRT mode."""
    lines = ['[args]',
             'args = ' + ' '.join(_escape(a, _ARG_SPECIALS) for a in args)]
    if env:
        lines.append('[env]')
        lines.extend('name=%s, value=%s' % (_escape(k, _ENV_SPECIALS),
                                            _escape(v, _ENV_SPECIALS))
                     for k, v in env.items())
    fstab = list(fstab)
    if fstab:
        lines.append('[fstab]')
        lines.extend('channel=%s, mountpoint=%s, access=ro, removable=%s'
                     % (alias, mountpoint, 'yes' if removable else 'no')
                     for alias, mountpoint, removable in fstab)
    if mapping:
        lines.append('[mapping]')
        lines.extend('channel=%s, mode=%s' % item for item in mapping.items())
    if time is not None:
        lines.extend(['[time]', 'seconds=%d' % time])
    return '\n'.join(lines) + '\n'
