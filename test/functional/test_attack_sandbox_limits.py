"""Bombs against the sandbox: each fails its node cleanly, and only it.

Issue #8's attack pass found these limits holding; these tests keep them
holding.  Each POSTs a real job (see :mod:`.lab`) and checks the answer
names the limit, that nothing the node wrote is stored, and, where a bomb
could take its server down, that the same object server runs the next job:

- ``test_memory_bomb_stops_at_the_cap_and_the_server_serves_on``: grow
  memory until refused (the guest gets the whole cap, not a page more),
  then use memory beyond it, as a program that ignores a failed malloc.
- ``test_sleeping_guest_is_ended_at_the_timeout``: block in a host call (a
  one-hour ``poll_oneoff``), which interrupting compiled code cannot stop.
  (The busy ``while True: pass`` loop is test_seed's
  ``test_runaway_program_times_out_and_stores_nothing``.)
- ``test_scratch_bomb_fails_the_node_and_stores_nothing``: fill ``/tmp``,
  catch the error and exit 0.  (A stdout bomb would have to pass
  ``zerovm_maxoutput``, 1 GiB by default, and there is no smaller
  per-channel limit, so the scratch cap, 64 MiB, is the one bombed.)
"""

import re

import pytest

from .helpers import Account, LogWatch
from .lab import (
    PRECIOUS_BYTES, WASI_FD_WRITE, WAT_PRINT, Lab, ok_lines, sleeper_wat)


@pytest.fixture(scope='module')
def lab(cluster) -> Lab:
    return Lab(Account(cluster))


#: Grows memory 1 MiB, then one page, at a time until refused; then, with
#: the number of 64 KiB pages obtained on the stack, what fills in ``%s``.
MEMORY_GROWER = '''(module %s
  (memory (export "memory") 1)
  %s
  (func (export "_start")
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (memory.size)
    %%s))
''' % (WASI_FD_WRITE, WAT_PRINT)
#: Reports the pages obtained.
MEMORY_COUNTER = MEMORY_GROWER % '(call $print)'
#: Ignores the refusal, as a program that does not check malloc would:
#: stores one past anything a 32-bit memory can hold.
MEMORY_BOMB = MEMORY_GROWER % '''(drop)
    (i32.store offset=65536 (i32.const -1) (i32.const 1))'''
WASM_PAGE = 65536
MEMORY_TRAP = re.compile(r'guest trap: out of bounds memory access '
                         r'\(memory limit of (\d+) bytes reached\)$')


def assert_server_serves_on(lab, watch: LogWatch, bomb: str) -> None:
    """A job over the same object runs on the server that ran ``bomb``."""
    follower = 'after-' + bomb
    resp = lab.run_python('import sys\nprint(sys.stdin.read(), end="")\n',
                          lab.precious_devices(), name=follower)
    assert resp.status_code == 200, resp.text
    assert resp.content == PRECIOUS_BYTES
    ran = watch.servers_that_ran()
    assert len(ran[bomb]) == 1
    assert ran[follower] == ran[bomb]


def test_memory_bomb_stops_at_the_cap_and_the_server_serves_on(cluster, lab):
    """Grow memory until refused, then use memory beyond it."""
    counted = lab.run_wasm(MEMORY_COUNTER)
    pages = int(ok_lines(counted)[0])
    watch = LogWatch(cluster)
    resp = lab.run_wasm(MEMORY_BOMB, lab.precious_devices(),
                        name='memory-bomb')
    assert resp.status_code == 422, resp.text
    cap = MEMORY_TRAP.match(resp.headers['X-Nexe-Status'])
    assert cap, resp.headers['X-Nexe-Status']
    assert resp.text.splitlines() == ['Node memory-bomb failed: ' +
                                      cap.group(0)]
    # The guest got the whole cap (rounded down to pages), not a byte more.
    assert 0 <= int(cap.group(1)) - pages * WASM_PAGE < WASM_PAGE
    assert_server_serves_on(lab, watch, 'memory-bomb')


#: Blocks in the host for an hour: one relative CLOCK_MONOTONIC (1)
#: subscription at 0; events at 64, their count at 128.
SLEEPER = sleeper_wat(3600)


def test_sleeping_guest_is_ended_at_the_timeout(cluster, lab):
    """Block in a host call (an hour's poll_oneoff) past the node timeout."""
    watch = LogWatch(cluster)
    resp = lab.run_wasm(SLEEPER, lab.precious_devices() + [
        {'name': 'output', 'path': lab.url('sleeper-output')}],
        name='sleeper')
    assert resp.status_code == 422, resp.text
    assert resp.headers['X-Nexe-Status'] == 'session timeout'
    assert resp.text.splitlines() == ['Node sleeper failed: session timeout']
    assert lab.account.get(lab.object_path('sleeper-output')
                           ).status_code == 404
    assert_server_serves_on(lab, watch, 'sleeper')


SCRATCH_FILLER = '''chunk = b'x' * (1 << 20)
written = 0
try:
    with open('/tmp/bomb', 'wb') as bomb:
        while True:
            bomb.write(chunk)
            written += len(chunk)
except OSError as err:
    print('stopped after', written, 'bytes:', type(err).__name__)
'''
SCRATCH_EXCEEDED = re.compile(r'scratch space exceeded \(\d+ bytes\)$')


def test_scratch_bomb_fails_the_node_and_stores_nothing(lab):
    """Write to /tmp until refused, catch the error and exit 0."""
    resp = lab.run_python(SCRATCH_FILLER, [
        {'name': 'stdout', 'path': lab.url('scratch-output')}],
        name='scratch-bomb')
    assert resp.status_code == 422, resp.text
    assert SCRATCH_EXCEEDED.match(resp.headers['X-Nexe-Status']), \
        resp.headers
    assert resp.text.splitlines() == [
        'Node scratch-bomb failed: ' + resp.headers['X-Nexe-Status']]
    assert lab.account.get(lab.object_path('scratch-output')
                           ).status_code == 404
