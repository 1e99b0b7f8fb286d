"""What the sandbox attack suites share: a lab container and WAT pieces
(the small whole programs, :func:`hello_wat`, :data:`CAT_WAT` and
:func:`sleeper_wat`, serve other suites too).

A :class:`Lab` is a container holding one stored object the attacks target
(``precious.txt``) and every attack program, stored as it is run: a Python
script as ``main.py`` of a zapp on the ``file://python:python`` system
image, or WebAssembly (compiled from WAT) as a ``swift://`` executable.
"""

from typing import Dict, Iterable, List, Optional

import requests
import wasmtime

from .helpers import Account, assert_all_ok, run_python, unique, with_stdout

PRECIOUS = 'precious.txt'
PRECIOUS_BYTES = b'bytes no guest may change\n'

#: A WAT function printing an i32 in decimal and a newline on stdout; it
#: uses memory 0..96 and needs ``WASI_FD_WRITE``.
WAT_PRINT = '''
  (func $print (param $number i32)
    (local $pos i32)
    (i32.store8 (i32.const 95) (i32.const 10))
    (local.set $pos (i32.const 95))
    (loop $digit
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos)
        (i32.add (i32.const 48) (i32.rem_u (local.get $number)
                                           (i32.const 10))))
      (local.set $number (i32.div_u (local.get $number) (i32.const 10)))
      (br_if $digit (local.get $number)))
    (i32.store (i32.const 0) (local.get $pos))
    (i32.store (i32.const 4) (i32.sub (i32.const 96) (local.get $pos)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1)
                          (i32.const 8))))
'''
WASI_FD_WRITE = '''
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))'''


def hello_wat(text: str) -> str:
    """A WASI command printing ``text`` (ASCII) on stdout."""
    data = ''.join(c if ' ' <= c <= '~' and c not in '"\\' else
                   '\\%02x' % ord(c) for c in text)
    return '''(module
  %s
  (memory (export "memory") 1)
  (data (i32.const 16) "%s")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const %d))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1)
                          (i32.const 8)))))''' % (WASI_FD_WRITE, data,
                                                  len(text))


#: A WASI command copying stdin to stdout (64000 bytes a read).
CAT_WAT = '''(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  %s
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $copy
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 64000))
      (i32.store (i32.const 8) (i32.const 0))
      (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1)
                           (i32.const 8)))
      (if (i32.load (i32.const 8))
        (then
          (i32.store (i32.const 16) (i32.const 64))
          (i32.store (i32.const 20) (i32.load (i32.const 8)))
          (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1)
                                (i32.const 24)))
          (br $copy))))))''' % WASI_FD_WRITE

def sleeper_wat(seconds: int) -> str:
    """A WASI command that sleeps ``seconds`` in one host call
    (``poll_oneoff`` on the monotonic clock), using no CPU."""
    return '''(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const %d))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1)
                             (i32.const 128)))))''' % (seconds * 10 ** 9)


def ok_lines(resp: requests.Response) -> List[str]:
    """The lines a node printed, once sure it ran to a clean end."""
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    return resp.text.splitlines()


class Lab:
    """A container of attack programs and the object they target."""

    def __init__(self, account: Account):
        self.account = account
        self.container = unique('attack')
        account.put_container(self.container)
        account.put_object(self.container, PRECIOUS, PRECIOUS_BYTES)

    def url(self, obj: str) -> str:
        return 'swift://~/%s/%s' % (self.container, obj)

    def object_path(self, obj: str) -> str:
        return '%s/%s' % (self.container, obj)

    def run_python(self, source: str, devices: Iterable[dict] = (),
                   name: str = 'attacker',
                   headers: Optional[Dict[str, str]] = None
                   ) -> requests.Response:
        """Run ``source`` as ``main.py`` of a stored zapp; stdout answers."""
        return run_python(self.account, self.container, source, devices,
                          name, headers)

    def run_wasm(self, wat: str, devices: Iterable[dict] = (),
                 name: str = 'attacker') -> requests.Response:
        """Run ``wat`` compiled and stored as a ``swift://`` executable."""
        program = unique('program') + '.wasm'
        self.account.put_object(self.container, program,
                                wasmtime.wat2wasm(wat), 'application/wasm')
        return self.account.post_job([{
            'name': name, 'exec': {'path': self.url(program)},
            'devices': with_stdout(devices)}])

    def precious_devices(self) -> List[dict]:
        """The stored object as stdin and ``/dev/input``: the node runs next
        to it, on its ``.data`` file."""
        return [{'name': 'stdin', 'path': self.url(PRECIOUS)},
                {'name': 'input', 'path': self.url(PRECIOUS)}]

    def precious_etag(self) -> str:
        resp = self.account.get(self.object_path(PRECIOUS))
        assert resp.content == PRECIOUS_BYTES
        return resp.headers['ETag']

    def assert_precious_intact(self, etag: str) -> None:
        stored = self.account.get(self.object_path(PRECIOUS))
        assert stored.status_code == 200
        assert stored.content == PRECIOUS_BYTES
        assert stored.headers['ETag'] == etag
