"""Building manifests and nvram files for runtime tests."""

import io
import os
import tarfile
from typing import Dict, List, Optional, Sequence, Union

from zerocloud.runtime import nvram

BIG = 1 << 30
WRITE_LIMIT = 64 << 20


def read_channel(path: str, alias: str, etag: int = 0, ctype: int = 3) -> str:
    return '%s, %s, %d, %d, %d, %d, 0, 0' % (path, alias, ctype, etag, BIG,
                                             BIG)


def write_channel(path: str, alias: str, etag: int = 0, ctype: int = 0,
                  putsize: int = WRITE_LIMIT) -> str:
    return '%s, %s, %d, %d, 0, 0, %d, %d' % (path, alias, ctype, etag, BIG,
                                             putsize)


def write_manifest(directory, program: str, channels: Sequence[str] = (),
                   stdin: str = '/dev/null', etag_stdout: int = 0,
                   stdout_putsize: int = WRITE_LIMIT,
                   stderr_putsize: int = WRITE_LIMIT,
                   args: Optional[List[str]] = None,
                   env: Optional[Dict[str, str]] = None, fstab=(),
                   timeout: int = 10, memory: int = 256 << 20,
                   **keys) -> str:
    """Manifest with stdio in ``directory``; extra keys become lines."""
    directory = str(directory)
    lines = ['Version = 20130611', 'Program = %s' % program,
             'Timeout = %d' % timeout, 'Memory = %d, 0' % memory,
             'Channel = ' + read_channel(stdin, '/dev/stdin', ctype=0),
             'Channel = ' + write_channel(
                 os.path.join(directory, 'stdout'), '/dev/stdout',
                 etag=etag_stdout, putsize=stdout_putsize),
             'Channel = ' + write_channel(
                 os.path.join(directory, 'stderr'), '/dev/stderr',
                 putsize=stderr_putsize)]
    lines += ['Channel = ' + c for c in channels]
    if args is not None or env or fstab:
        path = os.path.join(directory, 'nvram')
        with open(path, 'w') as handle:
            handle.write(nvram.render(args or ['prog'], env or {}, fstab))
        lines.append('Channel = ' + read_channel(path, '/dev/nvram'))
    lines += ['%s = %s' % item for item in keys.items()]
    manifest = os.path.join(directory, 'manifest')
    with open(manifest, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    return manifest


def output(directory, name: str = 'stdout') -> bytes:
    with open(os.path.join(str(directory), name), 'rb') as handle:
        return handle.read()


def text_tar(path, files: Dict[str, Union[str, bytes]]) -> str:
    """A tar at ``path`` of ``files`` (member name -> text or bytes)."""
    with tarfile.open(str(path), 'w') as archive:
        for name, text in files.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def run_python(runtime, python_image: str, directory, args: List[str],
               files: Optional[Dict[str, Union[str, bytes]]] = None,
               channels: Sequence[str] = (), **keys):
    """Run ``python <args>`` from a Python system image; with ``files``, a
    user image of them (file ``image.tar`` in ``directory``) is the
    guest's ``/``.  ``keys`` as for :func:`write_manifest`."""
    channels = list(channels)
    if files is not None:
        image = text_tar(os.path.join(str(directory), 'image.tar'), files)
        channels.append(read_channel(image, '/dev/image'))
        keys['fstab'] = [('/dev/image', '/', True)]
    manifest = write_manifest(directory, python_image,
                              ProgramMember='python',
                              args=['python'] + list(args),
                              channels=channels, **keys)
    return runtime.run(manifest)


SEED_SCRIPT = ('import sys\nprint("Hello from ZeroVM!")\n'
               'print("sys.platform is \'%s\'" % sys.platform)\n')


def check_seed_script(runtime, python_image: str, directory, **keys) -> None:
    """ZeroVM's seed script, from a user image, runs and prints."""
    result = run_python(runtime, python_image, directory, ['script.py'],
                        files={'script.py': SEED_SCRIPT}, **keys)
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        output(directory, 'stderr')
    assert output(directory) == (b"Hello from ZeroVM!\n"
                                 b"sys.platform is 'wasi'\n")


def run_python_filter(runtime, python_image: str, directory, script: str,
                      data: str):
    """Run ``python -c script`` with ``data`` as /dev/input and a writable
    /dev/output (file ``out`` in ``directory``)."""
    return run_python(
        runtime, python_image, directory, ['-c', script],
        channels=[read_channel(data, '/dev/input'),
                  write_channel(str(directory / 'out'), '/dev/output')])
