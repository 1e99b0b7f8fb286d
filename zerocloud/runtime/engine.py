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
ZeroVM.
"""

from dataclasses import dataclass
from importlib import metadata

import wasmtime

WASMTIME_VERSION = metadata.version('wasmtime')


@dataclass(frozen=True)
class EngineSettings:
    fuel: bool = False
    deterministic: bool = False
    epoch: bool = True

    def cache_key(self) -> str:
        """Text that changes whenever compiled code would differ."""
        return 'wasmtime=%s;epoch=%d;fuel=%d;deterministic=%d' % (
            WASMTIME_VERSION, self.epoch, self.fuel, self.deterministic)

    def build(self) -> wasmtime.Engine:
        config = wasmtime.Config()
        config.epoch_interruption = self.epoch
        config.consume_fuel = self.fuel
        config.wasm_threads = False
        config.shared_memory = False
        if self.deterministic:
            config.cranelift_nan_canonicalization = True
            config.wasm_relaxed_simd_deterministic = True
        return wasmtime.Engine(config)
