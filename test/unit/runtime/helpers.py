"""Building manifests and nvram files for runtime tests."""

import os
from typing import Dict, List, Optional, Sequence

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


def run_python_filter(runtime, python_image: str, directory, script: str,
                      data: str):
    """Run ``python -c script`` with ``data`` as /dev/input and a writable
    /dev/output (file ``out`` in ``directory``)."""
    manifest = write_manifest(
        directory, python_image, ProgramMember='python',
        args=['python', '-c', script],
        channels=[read_channel(data, '/dev/input'),
                  write_channel(str(directory / 'out'), '/dev/output')])
    return runtime.run(manifest)
