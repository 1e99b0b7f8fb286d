"""``Memory`` caps the whole sandbox: one memory, one bounded table.

Issue 15 item 4: a module of four 768 MiB memories, each page touched, and
a ``table.grow`` of 250 million entries both ran with gigabytes of RSS.
"""

import errno

import wasmtime

from zerocloud.runtime.engine import DISABLED_PROPOSALS, EngineSettings
from zerocloud.runtime.session import TABLE_ELEMENTS
from test.wasm_bombs import FOUR_MEMORIES, TABLE_GROWER, table_grow_answers

from .helpers import output, write_manifest

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
    assert table_grow_answers(output(tmp_path)) == (-1, 1)


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
