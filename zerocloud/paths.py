"""Where ZeroCloud keeps machine-local state: system images, compiled modules.

Everything lives under ``$ZEROCLOUD_HOME`` (default ``~/.cache/zerocloud``) so
a
fresh clone, the all-in-one launcher and the test suite share one download of
the Python system image and one cache of compiled WebAssembly.
"""

import os

PYTHON_IMAGE_FILE = 'python315.tar'
PYTHON311_IMAGE_FILE = 'python311.tar'
#: Names under which the default configuration offers the Python image
#: (CPython 3.15 with numpy and pandas); the seed's
#: ``file://python2.7:python`` must keep working.
PYTHON_IMAGE_NAMES = ('python2.7', 'python3', 'python')
#: The standard-library-only CPython 3.11 image, kept under its version.
PYTHON311_IMAGE_NAMES = ('python3.11',)


def state_dir() -> str:
    return os.environ.get('ZEROCLOUD_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache', 'zerocloud')


def sysimage_dir() -> str:
    return os.path.join(state_dir(), 'sysimages')


def python_image_path() -> str:
    return os.path.join(sysimage_dir(), PYTHON_IMAGE_FILE)


def python311_image_path() -> str:
    return os.path.join(sysimage_dir(), PYTHON311_IMAGE_FILE)


def module_cache_dir() -> str:
    return os.path.join(state_dir(), 'modules')


def default_sysimage_devices() -> str:
    """The ``zerovm_sysimage_devices`` value of the default configuration."""
    pairs = [(name, python_image_path()) for name in PYTHON_IMAGE_NAMES]
    pairs += [(name, python311_image_path()) for name in PYTHON311_IMAGE_NAMES]
    return ' '.join('%s %s' % pair for pair in pairs)
