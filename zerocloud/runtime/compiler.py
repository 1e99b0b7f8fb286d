"""Compile a user program in a process of its own, under its own limits.

Compiling is the one step of a run that the guest's limits do not bound: a
1 MB module of one function with 60 000 nested ``if``/``else`` and 1 000
locals takes Cranelift 21 s and 2 GiB.  So the module cache
(``zerocloud.runtime.cache``) compiles a user program with ``python -m
zerocloud.runtime.compiler``, a child that limits itself before it loads
wasmtime: its address space (``RLIMIT_AS``, ``CacheLimits.compile_memory``),
its CPU seconds (``RLIMIT_CPU``) and its wall-clock seconds (``alarm``,
both ``CacheLimits.compile_seconds``), and that the kernel kills when its
parent dies (``PR_SET_PDEATHSIG``).  None of these needs privileges.  The
parent also kills it a little after ``compile_seconds``.

The child writes the serialized module to a temporary file beside
``--target`` and renames it, so no reader ever sees a partial file.  Its
exit status is the outcome: 0 compiled; ``EXIT_INVALID`` the module is not
valid WebAssembly for the engine (the reason is the one line it prints);
``EXIT_UNREADABLE`` the source could not be read; anything else (a limit's
signal, Rust's abort on a refused allocation, a crash) means the program
cannot be compiled within the server's limits.  (``RLIMIT_AS`` counts
what the interpreter and wasmtime already map, about 50 MiB.)
"""

import argparse
import ctypes
import errno
import os
import resource
import signal
import subprocess
import sys
import tempfile
from typing import List, Optional

import wasmtime

from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.errors import SessionFailure, error_text
from zerocloud.runtime.limits import CacheLimits

MODULE = 'zerocloud.runtime.compiler'
STATUS_CANNOT_COMPILE = ("program cannot be compiled within the server's "
                         "limits")
STATUS_NOT_COMPILED = 'program is being compiled; retry later'
EXIT_INVALID = 3
EXIT_UNREADABLE = 4
#: Seconds the parent waits beyond ``compile_seconds`` before it kills.
KILL_GRACE = 2.0
#: Characters of a validation error kept (it reaches the client).
MAX_REASON = 200

_PR_SET_PDEATHSIG = 1
#: Exit statuses of a child its time limits ended.
TIME_SIGNALS = (-signal.SIGALRM, -signal.SIGXCPU, -signal.SIGKILL)


class CompileFailure(SessionFailure):
    """A compile that failed for what the module is, not for what the host
    went through: worth remembering by the module's digest."""


def compile_in_child(settings: EngineSettings, source: str, target: str,
                     limits: CacheLimits,
                     budget: Optional[float] = None) -> None:
    """Compile ``source`` into ``target`` (a ``.cwasm``) in a limited child,
    given at most ``budget`` seconds (a run's timeout) when that is less
    than ``limits.compile_seconds``.

    Raises CompileFailure (invalid, or beyond the limits), SessionFailure
    ``STATUS_NOT_COMPILED`` (out of ``budget`` only: a compile with the
    full limit may still succeed) or another SessionFailure (the source
    vanished, the child could not start).
    """
    seconds = limits.compile_seconds
    short = budget is not None and budget < seconds
    if short:
        seconds = budget
    argv = [sys.executable, '-m', MODULE, '--source', source,
            '--target', target, '--memory', str(limits.compile_memory),
            '--seconds', str(seconds)]
    argv += ['--fuel'] * settings.fuel
    argv += ['--deterministic'] * settings.deterministic
    argv += ['--epoch'] * settings.epoch
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL,
                              timeout=seconds + KILL_GRACE)
    except subprocess.TimeoutExpired:
        done = None
    except OSError as err:
        raise SessionFailure('runtime error: cannot start the compiler: %s'
                             % err.strerror, errno.EIO)
    if done is None or done.returncode in TIME_SIGNALS:
        if short:
            raise SessionFailure(STATUS_NOT_COMPILED, errno.EAGAIN)
        raise CompileFailure(STATUS_CANNOT_COMPILE, errno.ENOEXEC)
    if done.returncode == 0:
        return
    if done.returncode == EXIT_UNREADABLE:
        raise SessionFailure('program is unreadable', errno.EIO)
    if done.returncode == EXIT_INVALID:
        reason = done.stdout.decode('utf-8', 'replace').strip()
        raise CompileFailure('program failed validation: %s'
                             % (reason[:MAX_REASON] or 'invalid'),
                             errno.ENOEXEC, validation=1)
    raise CompileFailure(STATUS_CANNOT_COMPILE, errno.ENOEXEC)


def limit_self(memory: int, seconds: float) -> None:
    """The child's own limits, set before anything large is loaded."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, int(seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    signal.alarm(cpu)
    if sys.platform.startswith('linux'):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def write_atomically(target: str, data: bytes) -> None:
    """``data`` at ``target`` via a temporary name in its directory."""
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(target), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m ' + MODULE,
        description='Compile one WebAssembly module into a .cwasm file '
        'under memory and time limits.')
    parser.add_argument('--source', required=True)
    parser.add_argument('--target', required=True)
    parser.add_argument('--memory', type=int, required=True,
                        help='address-space limit in bytes')
    parser.add_argument('--seconds', type=float, required=True,
                        help='CPU and wall-clock limit')
    parser.add_argument('--fuel', action='store_true')
    parser.add_argument('--deterministic', action='store_true')
    parser.add_argument('--epoch', action='store_true')
    args = parser.parse_args(argv)
    limit_self(args.memory, args.seconds)
    settings = EngineSettings(fuel=args.fuel, deterministic=args.deterministic,
                              epoch=args.epoch)
    try:
        with open(args.source, 'rb') as handle:
            wasm = handle.read()
    except OSError:
        return EXIT_UNREADABLE
    try:
        module = wasmtime.Module(settings.build(), wasm)
    except wasmtime.WasmtimeError as err:
        print(error_text(err))
        return EXIT_INVALID
    write_atomically(args.target, module.serialize())
    return 0


if __name__ == '__main__':
    sys.exit(main())
