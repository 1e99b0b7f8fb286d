"""Sandbox worker process: runs sessions for the object-server pool.

``python -m zerocloud.runtime.worker [--cache-dir DIR] [--parent-pid PID]
[--wall-clock epoch|exit] [--cache-limits JSON]``

The object-server filter never runs WebAssembly inside its own (eventlet)
process: the runtime's wall-clock timer is a real OS thread, and wasm would
stall every other request of that server process.  Instead
:mod:`zerocloud.runtime.pool` keeps a few of these long-lived, plain (not
monkey-patched) processes and talks to them over two pipes.  One worker runs
one session at a time and keeps its :class:`~zerocloud.runtime.session.Runtime`
between sessions, so compiled modules stay mapped.

``--wall-clock`` picks how the runtime enforces a session's ``Timeout``
(``zerocloud.runtime.limits``): ``epoch`` (the default) interrupts the guest
and the worker lives on; ``exit`` runs guests compiled without epoch checks
(about 20 % faster when CPU-bound) and the worker *exits* when a session
overruns, after answering it (below).  The pool starts its workers with
``exit`` by default.  ``--cache-limits`` (``CacheLimits.to_json()``) bounds
compiles and the module caches (``zerocloud.runtime.cache``).

Protocol: one JSON object per line, worker stdin = requests, stdout = replies.

* On start the worker writes ``{"ready": <pid>}`` once the runtime is loaded,
  or ``{"error": "..."}`` and exits when it cannot be loaded.
* ``{"manifest": "<path>", "skip_validation": false, "validate_only": false,
  "ciphers": {"<alias>": {"key": "<base64>", "iv": "<base64>"}}}`` runs one
  session and answers ``{"exit_status": <int>, "report": "<six-line report
  text>", "fuel": <int or null>}``.  ``ciphers`` (optional) names the
  channels read or written encrypted and their keys (read channels stored
  encrypted, outputs sealed: ``zerocloud.runtime.served``): keys travel on
  this pipe only, never in a file.  ``tees`` (optional, ``{"<alias>":
  "<FIFO path>"}``) names sealed outputs whose bytes written in order also
  go to a FIFO the object server reads while the node runs.
* With ``--wall-clock exit``, a session still running at its ``Timeout``
  answers ``{"exit_status": 4, "report": "<report with status session
  timeout>", "fuel": null, "exiting": true}`` from the watchdog thread; the
  worker then exits at once with status 4 without reading another request.
  The pool must not send it anything more: it reaps the process and starts a
  new one when needed.
* ``{"warm": "<program path>", "member": "<tar member or null>", "fuel":
  false, "deterministic": false}`` compiles a program into the module cache
  for those engine settings and answers ``{"warmed": true}``.  Runs never
  compile a large module themselves (``Runtime(defer_large_compiles=True)``,
  see ``zerocloud.runtime.cache``): they answer ``program is being compiled;
  retry later`` and the pool is asked to warm it.  A user program is
  compiled in a child process with its own limits
  (``zerocloud.runtime.compiler``), for a run as for a warm request.
* Any request that fails for another reason (bad JSON, bad fields, an
  unexpected exception in the runtime) answers ``{"error": "<type>: <text>"}``;
  the worker keeps serving.

Guest stdio is bound to files by the runtime, never to the worker's own
stdio.  To keep stray prints (from the runtime or a library) out of the
protocol anyway, the worker moves the protocol pipes to private descriptors
at start and points fd 0 at ``/dev/null`` and fd 1 at its stderr.

Lifetime: the worker exits when its stdin closes (the pool closed it or its
parent is gone).  On Linux it also asks the kernel for SIGKILL when its parent
dies (``PR_SET_PDEATHSIG``), so a SIGKILLed object server leaves no workers.
It deliberately stays in its parent's process group: Swift servers call
``setsid()`` and stop with ``killpg(0, SIGTERM)``, which then stops the
workers too.  SIGXFSZ is ignored, so a write beyond the file-size limit fails
with EFBIG inside the session instead of killing the worker.
"""

import argparse
import ctypes
import json
import os
import signal
import sys
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Tuple

from zerocloud.cipher import CipherKey
from zerocloud.runtime.limits import (WALL_CLOCK_EPOCH, WALL_CLOCKS,
                                      CacheLimits)

MODULE = 'zerocloud.runtime.worker'
READY = 'ready'
ERROR = 'error'
WARMED = 'warmed'
EXITING = 'exiting'

_PR_SET_PDEATHSIG = 1


class RequestError(ValueError):
    """A request line that is not a valid protocol request."""


def encode_message(message: Dict[str, Any]) -> bytes:
    """One protocol line; JSON never contains a raw newline."""
    return json.dumps(message, separators=(',', ':')).encode('utf-8') + b'\n'


def decode_message(line: bytes) -> Dict[str, Any]:
    """Parse one protocol line; RequestError unless it is a JSON object."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise RequestError('not a JSON line: %s' % exc)
    if not isinstance(message, dict):
        raise RequestError('a protocol line must be a JSON object')
    return message


def _flag(request: Dict[str, Any], name: str) -> bool:
    value = request.get(name, False)
    if not isinstance(value, bool):
        raise RequestError('%r must be true or false' % name)
    return value


def _text(request: Dict[str, Any], name: str, required: bool) -> Optional[str]:
    value = request.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise RequestError('%r must be a non-empty string' % name)
    return value


def _ciphers(request: Dict[str, Any]) -> Dict[str, CipherKey]:
    value = request.get('ciphers', {})
    if not isinstance(value, dict):
        raise RequestError("'ciphers' must be an object")
    try:
        return {alias: CipherKey.from_json(key)
                for alias, key in value.items()}
    except ValueError as exc:
        raise RequestError(str(exc))


def _tees(request: Dict[str, Any]) -> Dict[str, str]:
    value = request.get('tees', {})
    if not isinstance(value, dict) or not all(
            isinstance(path, str) and path for path in value.values()):
        raise RequestError("'tees' must map aliases to FIFO paths")
    return value


def session_reply(result: Any) -> Dict[str, Any]:
    """The reply to a manifest request, from a SessionResult."""
    return {'exit_status': int(result.exit_status),
            'report': result.report.render(),
            'fuel': None if result.fuel is None else int(result.fuel)}


def handle(runtime: Any, line: bytes) -> Dict[str, Any]:
    """Answer one request line; never raises for a bad request or run."""
    try:
        request = decode_message(line)
        if 'warm' in request:
            runtime.warm(_text(request, 'warm', True),
                         _text(request, 'member', False),
                         fuel=_flag(request, 'fuel'),
                         deterministic=_flag(request, 'deterministic'))
            return {WARMED: True}
        result = runtime.run(_text(request, 'manifest', True),
                             skip_validation=_flag(request, 'skip_validation'),
                             validate_only=_flag(request, 'validate_only'),
                             ciphers=_ciphers(request),
                             tees=_tees(request))
        return session_reply(result)
    except Exception as exc:
        return {ERROR: '%s: %s' % (type(exc).__name__, exc)}


def serve(runtime: Any, requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests until the request pipe closes."""
    for line in requests:
        if line.strip():
            replies.write(encode_message(handle(runtime, line)))
            replies.flush()


def claim_protocol_pipes() -> Tuple[BinaryIO, BinaryIO]:
    """Move the protocol off fds 0/1 so nothing else can read or write it."""
    requests = os.fdopen(os.dup(0), 'rb')
    replies = os.fdopen(os.dup(1), 'wb')
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return requests, replies


def die_with_parent(parent_pid: Optional[int]) -> None:
    """Ask Linux to SIGKILL us when the parent dies; exit if it already has."""
    if sys.platform.startswith('linux'):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        sys.exit(0)


def reply_before_exit(replies: BinaryIO) -> Callable[[Any], None]:
    """The runtime's last words in ``exit`` mode: the overrunning session's
    reply, marked so the pool does not reuse this worker."""
    def announce(result: Any) -> None:
        reply = session_reply(result)
        reply[EXITING] = True
        replies.write(encode_message(reply))
        replies.flush()
    return announce


def load_runtime(cache_dir: Optional[str], wall_clock: str,
                 on_timeout_exit: Callable[[Any], None],
                 cache_limits: CacheLimits) -> Any:
    """The real runtime, imported late so a broken one is reported."""
    from zerocloud.runtime.session import Runtime
    return Runtime(cache_dir=cache_dir, wall_clock=wall_clock,
                   on_timeout_exit=on_timeout_exit, defer_large_compiles=True,
                   cache_limits=cache_limits)


RuntimeFactory = Callable[
    [Optional[str], str, Callable[[Any], None], CacheLimits], Any]


def main(argv: Optional[List[str]] = None,
         runtime_factory: RuntimeFactory = load_runtime) -> int:
    """Run the worker; runtime_factory lets tests serve a stand-in runtime."""
    parser = argparse.ArgumentParser(
        prog='python -m ' + MODULE,
        description='Run ZeroCloud sessions for a sandbox pool over pipes.')
    parser.add_argument('--cache-dir', help='compiled-module cache directory')
    parser.add_argument('--parent-pid', type=int,
                        help='exit at once unless this is still our parent')
    parser.add_argument('--wall-clock', choices=WALL_CLOCKS,
                        default=WALL_CLOCK_EPOCH,
                        help='interrupt an overrunning guest (epoch) or '
                        'answer and exit the worker (exit, faster guests)')
    parser.add_argument('--cache-limits', type=CacheLimits.from_json,
                        default=CacheLimits(),
                        help='compile and module-cache bounds (JSON)')
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    requests, replies = claim_protocol_pipes()
    try:
        runtime = runtime_factory(args.cache_dir, args.wall_clock,
                                  reply_before_exit(replies),
                                  args.cache_limits)
    except Exception as exc:
        replies.write(encode_message(
            {ERROR: 'cannot load the runtime: %s: %s'
             % (type(exc).__name__, exc)}))
        replies.flush()
        return 1
    replies.write(encode_message({READY: os.getpid()}))
    replies.flush()
    try:
        serve(runtime, requests, replies)
    except BrokenPipeError:
        pass  # the pool went away mid-reply; nothing is left to answer
    return 0


if __name__ == '__main__':
    sys.exit(main())
