"""WebAssembly modules that attack the engine's limits (issue 15, items 4-6),
shared by the runtime's unit tests and the functional tests."""

import wasmtime

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
#: answers of ``table.grow`` (the old size, or -1) as two little-endian
#: 4-byte words on stdout.
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


def table_grow_answers(stdout: bytes):
    """The two ``table.grow`` results TABLE_GROWER wrote."""
    return tuple(int.from_bytes(stdout[i:i + 4], 'little', signed=True)
                 for i in (0, 4))


def compile_bomb(levels: int = 60000, locals_: int = 1000) -> bytes:
    """One function of ``locals_`` locals and ``levels`` nested if/else
    (about 1 MB): Cranelift needs seconds and gigabytes for it."""
    parts = ['(module (memory (export "memory") 1) (func (export "_start") '
             '(local %s)' % ' '.join(['i32'] * locals_)]
    parts += ['local.get %d if' % (i % locals_) for i in range(levels)]
    parts += ['else local.get %d local.get %d i32.add local.set %d end'
              % (i * 7 % locals_, i * 11 % locals_, (i * 13 + 1) % locals_)
              for i in range(levels)]
    parts.append('))')
    return wasmtime.wat2wasm('\n'.join(parts))


def distinct_program(number: int, size: int = 0) -> bytes:
    """A valid command module of its own digest (``number`` is in its
    data), padded with a passive data segment to about ``size`` bytes."""
    padding = max(0, size - 200)
    return wasmtime.wat2wasm(
        '(module (memory (export "memory") 1) (func (export "_start")) '
        '(data "program %d") (data "%s"))' % (number, 'x' * padding))
