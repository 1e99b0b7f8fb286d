"""wasmtime Engine configurations used for sandboxed runs.

Three settings change generated code and therefore get engines (and cache
keys) of their own:

* epoch interruption: on for the ``epoch`` wall clock (the guest checks
  the epoch at every loop head and call, which costs about a fifth of a
  CPU-bound guest's time), off for the ``exit`` wall clock, where a
  watchdog thread ends the whole process instead
  (``zerocloud.runtime.limits``);
* fuel metering (``Fuel`` > 0);
* deterministic mode (NaN canonicalisation, deterministic relaxed SIMD).

Threads and shared memory stay off: a guest is single-threaded, as under
ZeroVM.  Proposals no WASI toolchain we serve emits are off too
(``DISABLED_PROPOSALS``): a module using one fails validation.  Multi-memory
above all, so the one linear memory a run may grow to ``Memory`` bytes is
the guest's whole memory (``zerocloud.runtime.session`` caps it, the table
and the instance count per store); memory64, GC, typed function
references, custom page sizes, wide arithmetic, stack switching and the
component model with it.  Kept: SIMD, relaxed SIMD, tail calls, reference
types, bulk memory, multi-value and exception handling (the CPython 3.15
image uses ``exnref``).  The list is part of the cache key.
"""

from dataclasses import dataclass
from importlib import metadata

import wasmtime

WASMTIME_VERSION = metadata.version('wasmtime')
#: ``wasmtime.Config`` switches turned off for every engine.
DISABLED_PROPOSALS = ('wasm_multi_memory', 'wasm_memory64', 'wasm_gc',
                      'wasm_function_references', 'wasm_custom_page_sizes',
                      'wasm_wide_arithmetic', 'wasm_stack_switching',
                      'wasm_component_model')


@dataclass(frozen=True)
class EngineSettings:
    fuel: bool = False
    deterministic: bool = False
    epoch: bool = True

    def cache_key(self) -> str:
        """Text that changes whenever compiled code would differ."""
        return 'wasmtime=%s;epoch=%d;fuel=%d;deterministic=%d;off=%s' % (
            WASMTIME_VERSION, self.epoch, self.fuel, self.deterministic,
            ','.join(DISABLED_PROPOSALS))

    def build(self) -> wasmtime.Engine:
        config = wasmtime.Config()
        config.epoch_interruption = self.epoch
        config.consume_fuel = self.fuel
        config.wasm_threads = False
        config.shared_memory = False
        for proposal in DISABLED_PROPOSALS:
            setattr(config, proposal, False)
        if self.deterministic:
            config.cranelift_nan_canonicalization = True
            config.wasm_relaxed_simd_deterministic = True
        return wasmtime.Engine(config)
