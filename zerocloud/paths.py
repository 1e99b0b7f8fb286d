"""Where ZeroCloud keeps machine-local state: system images, compiled modules.

Everything lives under ``$ZEROCLOUD_HOME`` (default ``~/.cache/zerocloud``) so
a
fresh clone, the all-in-one launcher and the test suite share one download of
the Python system image and one cache of compiled WebAssembly.
"""

import os

PYTHON_IMAGE_FILE = 'python.tar'
#: Names under which the default configuration offers the Python image; the
#: seed's ``file://python2.7:python`` must keep working.
PYTHON_IMAGE_NAMES = ('python2.7', 'python3', 'python')


def state_dir() -> str:
    return os.environ.get('ZEROCLOUD_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache', 'zerocloud')


def sysimage_dir() -> str:
    return os.path.join(state_dir(), 'sysimages')


def python_image_path() -> str:
    return os.path.join(sysimage_dir(), PYTHON_IMAGE_FILE)


def module_cache_dir() -> str:
    return os.path.join(state_dir(), 'modules')


def default_sysimage_devices() -> str:
    """The ``zerovm_sysimage_devices`` value of the default configuration."""
    image = python_image_path()
    return ' '.join('%s %s' % (name, image) for name in PYTHON_IMAGE_NAMES)
