"""``Memory`` caps the whole sandbox: one memory, one bounded table.

Issue 15 item 4: a module of four 768 MiB memories, each page touched, and
a ``table.grow`` of 250 million entries both ran with gigabytes of RSS.
"""

import errno

import wasmtime

from zerocloud.runtime.engine import DISABLED_PROPOSALS, EngineSettings
from zerocloud.runtime.session import TABLE_ELEMENTS

from .helpers import output, write_manifest

PAGES_768_MIB = 768 * 16

#: Four memories of 768 MiB, every page of each touched.
FOUR_MEMORIES = '''(module
  (memory (export "memory") %(pages)d)
  (memory $m1 %(pages)d) (memory $m2 %(pages)d) (memory $m3 %(pages)d)
  (func (export "_start") (local $page i32)
    (loop $each
      (i32.store8 (i32.mul (local.get $page) (i32.const 65536))
                  (i32.const 1))
      (i32.store8 $m1 (i32.mul (local.get $page) (i32.const 65536))
                  (i32.const 1))
      (i32.store8 $m2 (i32.mul (local.get $page) (i32.const 65536))
                  (i32.const 1))
      (i32.store8 $m3 (i32.mul (local.get $page) (i32.const 65536))
                  (i32.const 1))
      (local.set $page (i32.add (local.get $page) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $page) (i32.const %(pages)d))))))
''' % {'pages': PAGES_768_MIB}

#: Grows its table by 250 million entries, then by 1000; writes both
#: answers of ``table.grow`` (the old size, or -1) as 4-byte words.
TABLE_GROWER = '''(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (table 1 funcref)
  (func (export "_start")
    (i32.store (i32.const 16)
               (table.grow (ref.null func) (i32.const 250000000)))
    (i32.store (i32.const 20) (table.grow (ref.null func) (i32.const 1000)))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1)
                          (i32.const 8)))))
'''

#: Starts with a table over the cap.
BIG_TABLE = '''(module (memory (export "memory") 1) (table %d funcref)
  (func (export "_start")))''' % (TABLE_ELEMENTS + 1)


def write_program(tmp_path, wat: str) -> str:
    path = tmp_path / 'program.wasm'
    path.write_bytes(wasmtime.wat2wasm(wat))
    return str(path)


def test_a_second_memory_fails_validation(runtime, tmp_path):
    result = runtime.run(write_manifest(
        tmp_path, write_program(tmp_path, FOUR_MEMORIES), memory=1 << 30))
    assert result.exit_status == errno.ENOEXEC
    assert result.report.status.startswith(
        'program failed validation: multiple memories')


def test_table_grow_beyond_the_cap_returns_minus_one(runtime, tmp_path):
    result = runtime.run(write_manifest(
        tmp_path, write_program(tmp_path, TABLE_GROWER), memory=1 << 16))
    assert result.report.status == 'ok'
    refused, grown = (int.from_bytes(output(tmp_path)[i:i + 4], 'little',
                                     signed=True) for i in (0, 4))
    assert (refused, grown) == (-1, 1)


def test_a_table_over_the_cap_at_start_is_refused(runtime, tmp_path):
    result = runtime.run(write_manifest(
        tmp_path, write_program(tmp_path, BIG_TABLE)))
    assert result.exit_status == errno.ENOMEM
    assert result.report.status == (
        'table limit exceeded: the module needs more than 1 table of %d '
        'entries at start' % TABLE_ELEMENTS)


def test_disabled_proposals_change_the_cache_key():
    key = EngineSettings().cache_key()
    assert all(proposal in key for proposal in DISABLED_PROPOSALS)
