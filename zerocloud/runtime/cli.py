"""``zerovm``: run one manifest in the sandbox and print the ZeroVM report.

Usage: ``zerovm [-s] [-F] [-t 0|1|2|3] [-v N] [-P] [-Q] [-T abs-path]
[-M manifest] manifest``

-s   skip validation (report line 1 = 2)
-F   load, validate and instantiate the program and open the channels, then
     stop before running it (report ``ok``, exit 0)
-t   report mode: 0 = stdout (default); 1 = one line joined by ``"; "`` on
     stderr (in place of syslog); 2 = no report (ZeroVM's "fast reports"
     printed nothing); 3 = ``0x%06x`` length prefix plus the text on stdout
-v   verbosity 0..3; accepted for compatibility (nothing is logged)
-P   do not preallocate write channels; accepted (we never preallocate)
-Q   skip the platform check; accepted (there is none)
-T   append a timing trace (session start, end and status) to that file;
     the path must be absolute
-M   legacy spelling of the manifest argument

Exit status is the session's (``zerocloud.runtime.session``); bad usage
prints this help and exits EINVAL (22).  Unlike ZeroVM, running as root is
allowed: the runtime protects channels itself (``zerocloud.runtime.sandbox``).
No Python traceback is ever printed.
"""

import errno
import getopt
import os
import sys
import time
from typing import List, Optional

from zerocloud.runtime.session import Runtime

USAGE = __doc__.split('\n\n', 1)[1].split('\n\nExit status', 1)[0]
REPORT_MODES = (0, 1, 2, 3)


class UsageError(Exception):
    pass


def _parse_args(argv: List[str]) -> dict:
    try:
        options, rest = getopt.gnu_getopt(argv, 'PFQst:v:M:T:')
    except getopt.GetoptError as err:
        raise UsageError(str(err))
    settings = {'skip': False, 'validate_only': False, 'mode': 0,
                'trace': None, 'manifest': None}
    manifests = rest[:]
    for flag, value in options:
        if flag == '-s':
            settings['skip'] = True
        elif flag == '-F':
            settings['validate_only'] = True
        elif flag == '-t':
            if not value.isdigit() or int(value) not in REPORT_MODES:
                raise UsageError('invalid report mode %s' % value)
            settings['mode'] = int(value)
        elif flag == '-v':
            if not value.isdigit():
                raise UsageError('invalid verbosity %s' % value)
        elif flag == '-T':
            if not os.path.isabs(value):
                raise UsageError('trace path must be absolute')
            settings['trace'] = value
        elif flag == '-M':
            manifests.append(value)
    if len(manifests) != 1:
        raise UsageError('exactly one manifest expected')
    settings['manifest'] = manifests[0]
    return settings


def _emit_report(text: str, mode: int) -> None:
    if mode == 0:
        sys.stdout.write(text)
    elif mode == 1:
        sys.stderr.write('; '.join(text.rstrip('\n').split('\n')) + '\n')
    elif mode == 3:
        sys.stdout.write('0x%06x%s' % (len(text), text))
    sys.stdout.flush()


def _trace(path: str, started: float, status: str) -> None:
    elapsed = time.monotonic() - started
    try:
        with open(path, 'a') as handle:
            handle.write('[%d] %.6f [%.6f]: session start\n'
                         % (os.getpid(), 0.0, 0.0))
            handle.write('%.6f [%.6f]: session end: %s\n'
                         % (elapsed, elapsed, status))
    except OSError as err:
        sys.stderr.write('zerovm: cannot write trace %s: %s\n'
                         % (path, err.strerror))


def main(argv: Optional[List[str]] = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        return errno.EINTR
    except Exception as err:  # never a traceback
        sys.stderr.write('zerovm: internal error: %s\n' % err)
        return errno.EIO


def _main(argv: List[str]) -> int:
    try:
        settings = _parse_args(argv)
    except UsageError as err:
        sys.stderr.write('zerovm: %s\n\nZeroVM on wasmtime.  %s\n'
                         % (err, USAGE))
        return errno.EINVAL
    started = time.monotonic()
    result = Runtime().run(settings['manifest'],
                           skip_validation=settings['skip'],
                           validate_only=settings['validate_only'])
    _emit_report(result.report.render(), settings['mode'])
    if settings['trace']:
        _trace(settings['trace'], started, result.report.status)
    return result.exit_status


if __name__ == '__main__':
    sys.exit(main())
