"""The one exception a session step raises to end a run early.

Every failure before or around the guest (bad manifest, missing program,
unsafe image, refused channel) carries the report's status text and the
ZeroVM-style exit status (an errno, see ``zerocloud.runtime.session``), so
the session can turn it into a report instead of a traceback.

A status reaches the client of a storage server (``X-Nexe-Status``), so it
names the things the job named (channel aliases, image members), never the
host paths behind them.
"""

import errno
import re


class SessionFailure(Exception):
    """A run that must stop with ``status`` and exit status ``exit_status``."""

    def __init__(self, status: str, exit_status: int = errno.EFAULT,
                 validation: int = 2):
        super().__init__(status)
        self.status = status
        self.exit_status = exit_status
        self.validation = validation


def reason(err: Exception) -> str:
    """What went wrong, without the host path ``str()`` of an OSError
    names."""
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return str(err)


def error_text(err: Exception) -> str:
    """The most specific line of a wasmtime error (its last cause); of an
    OSError, its reason without the host path."""
    if isinstance(err, OSError):
        return reason(err)
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if 'Caused by:' in lines:
        causes = lines[lines.index('Caused by:') + 1:]
        if causes:
            return re.sub(r'^\d+: ', '', causes[-1])
    return lines[0] if lines else type(err).__name__
