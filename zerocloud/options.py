"""Reading a filter's options once, when the filter is built.

Swift hands a filter its section of the server's configuration as strings.
Both ZeroCloud filters turn theirs into a frozen config object at start
(:mod:`zerocloud.proxy.config`, :mod:`zerocloud.object.config`) with these
readers, so a bad value stops the server at start with a message naming the
option, instead of showing up later as failed requests.
"""

import os
from typing import Dict, Mapping, Optional

from swift.common.utils import config_true_value
from swift.common.wsgi import ConfigFileError

from zerocloud.tarscan import (
    DEFAULT_SCAN_BYTES, DEFAULT_SCAN_MEMBERS, ScanBounds)

Conf = Mapping[str, str]


class ConfigError(ConfigFileError, ValueError):
    """An option's value is unusable; the message names the option.

    A :class:`~swift.common.wsgi.ConfigFileError`: a Swift server that meets
    one while loading its pipeline prints the message (no traceback) and
    exits 1.
    """


def _raw(conf: Conf, name: str, default) -> str:
    value = conf.get(name)
    return str(default) if value is None or str(value).strip() == '' \
        else str(value).strip()


def integer(conf: Conf, name: str, default: int, minimum: int = 0) -> int:
    """A whole number of at least ``minimum`` (``1e3`` style is refused)."""
    raw = _raw(conf, name, default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError('%s must be a whole number, not %r' % (name, raw))
    if value < minimum:
        raise ConfigError('%s must be at least %d, not %d'
                          % (name, minimum, value))
    return value


def number(conf: Conf, name: str, default: float,
           minimum: float = 0.0) -> float:
    """A number (seconds, usually) of at least ``minimum``."""
    raw = _raw(conf, name, default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError('%s must be a number, not %r' % (name, raw))
    if not value >= minimum:   # also refuses nan
        raise ConfigError('%s must be at least %g, not %r'
                          % (name, minimum, raw))
    return value


def flag(conf: Conf, name: str, default: bool) -> bool:
    return config_true_value(_raw(conf, name, default))


def text(conf: Conf, name: str, default: Optional[str]) -> Optional[str]:
    value = conf.get(name)
    return value.strip() if value and value.strip() else default


def directory(conf: Conf, name: str, default: Optional[str] = None,
              create: bool = False) -> Optional[str]:
    """An existing directory this server may write in (checked at start:
    a missing one would fail every request); ``default`` when unset.
    ``create``: made (with its parents) when missing."""
    path = text(conf, name, default)
    if path is not None and create:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
        except OSError as err:
            raise ConfigError('%s: cannot create %r (%s)'
                              % (name, path, err.strerror))
    if path is not None and not (os.path.isdir(path) and
                                 os.access(path, os.W_OK | os.X_OK)):
        raise ConfigError('%s must be a directory this server can write '
                          'in, not %r' % (name, path))
    return path


def sysimage_devices(conf: Conf) -> Dict[str, str]:
    """``zerovm_sysimage_devices``: ``name path [name path ...]``."""
    tokens = (conf.get('zerovm_sysimage_devices') or '').split()
    if len(tokens) % 2:
        raise ConfigError('zerovm_sysimage_devices must be "name path" '
                          'pairs; %r has no path' % tokens[-1])
    return dict(zip(tokens[0::2], tokens[1::2]))


def scan_bounds(conf: Conf) -> ScanBounds:
    """``zerovm_image_scan_bytes`` and ``zerovm_image_scan_members``."""
    try:
        return ScanBounds(
            integer(conf, 'zerovm_image_scan_bytes', DEFAULT_SCAN_BYTES),
            integer(conf, 'zerovm_image_scan_members', DEFAULT_SCAN_MEMBERS))
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(str(err))
