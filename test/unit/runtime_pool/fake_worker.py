"""A sandbox worker with a stand-in runtime, for pool tests without wasm.

Run as ``fake_worker.py -m zerocloud.runtime.worker [worker options]`` (the
argv the pool gives its ``python``).  The "manifest" is a one-line command:

``ok <retcode>``   answer a normal report with that retcode
``sleep <s>``      sleep, then answer like ``ok 0``
``hang``           never answer
``die``            exit without answering
``print``          write junk to stdout (Python and fd 1), then answer ``ok 0``
``raise``          raise inside the runtime
``wall-clock``     answer ``ok 0`` with the worker's wall-clock mode as status
``overrun``        as an ``exit``-mode runtime at its deadline: answer a
                   ``session timeout`` through the exit callback, exit 4
``overrun-linger`` the same, but keep running after the answer
"""

import dataclasses
import hashlib
import os
import sys
import time
from typing import Callable, Optional

from zerocloud.runtime import worker
from zerocloud.runtime.report import Report


@dataclasses.dataclass
class FakeResult:
    exit_status: int
    report: Report
    fuel: Optional[int]


class FakeRuntime:
    def __init__(self, cache_dir: Optional[str], wall_clock: str,
                 on_timeout_exit: Callable[[FakeResult], None],
                 cache_limits: object):
        self.cache_dir = cache_dir
        self.wall_clock = wall_clock
        self.on_timeout_exit = on_timeout_exit

    def warm(self, program_path: str, member: Optional[str] = None,
             fuel: bool = False, deterministic: bool = False) -> None:
        if not os.path.exists(program_path):
            raise FileNotFoundError(program_path)

    def run(self, manifest_path: str, *, skip_validation: bool = False,
            validate_only: bool = False,
            ciphers: Optional[dict] = None,
            tees: Optional[dict] = None) -> FakeResult:
        with open(manifest_path) as manifest:
            command, _, argument = manifest.read().strip().partition(' ')
        if command == 'sleep':
            time.sleep(float(argument))
        elif command == 'hang':
            time.sleep(3600)
        elif command == 'die':
            os._exit(9)
        elif command == 'print':
            print('stray print')
            sys.stdout.flush()
            os.write(1, b'stray fd write\n')
        elif command == 'raise':
            raise RuntimeError('runtime exploded')
        elif command.startswith('overrun'):
            self.on_timeout_exit(FakeResult(
                4, Report(validation=0, status='session timeout'), None))
            if command == 'overrun-linger':
                time.sleep(3600)
            os._exit(4)
        retcode = int(argument) if command == 'ok' else 0
        status = 'ok' if not validate_only else 'validated only'
        if command == 'wall-clock':
            status = self.wall_clock
        if command == 'ciphers':   # what reached the worker, keys hashed
            status = ' '.join('%s=%s' % (alias, hashlib.sha256(
                key.key + key.iv).hexdigest()[:8])
                for alias, key in sorted((ciphers or {}).items()))
        if command == 'tees':
            status = ' '.join('%s=%s' % item
                              for item in sorted((tees or {}).items()))
        return FakeResult(0, Report(validation=0, retcode=retcode,
                                    status=status), 7)


if __name__ == '__main__':
    assert sys.argv[1:3] == ['-m', worker.MODULE], sys.argv
    sys.exit(worker.main(sys.argv[3:], runtime_factory=FakeRuntime))
