"""wasmtime Engine configurations used for sandboxed runs.

Every engine interrupts on epochs (the wall-clock ``Timeout``).  Two
settings change generated code and therefore get engines (and cache keys) of
their own: fuel metering (``Fuel`` > 0) and deterministic mode (NaN
canonicalisation, deterministic relaxed SIMD).  Threads and shared memory
stay off: a guest is single-threaded, as under ZeroVM.
"""

from dataclasses import dataclass
from importlib import metadata

import wasmtime

WASMTIME_VERSION = metadata.version('wasmtime')


@dataclass(frozen=True)
class EngineSettings:
    fuel: bool = False
    deterministic: bool = False

    def cache_key(self) -> str:
        """Text that changes whenever compiled code would differ."""
        return 'wasmtime=%s;epoch=1;fuel=%d;deterministic=%d' % (
            WASMTIME_VERSION, self.fuel, self.deterministic)

    def build(self) -> wasmtime.Engine:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.consume_fuel = self.fuel
        config.wasm_threads = False
        config.shared_memory = False
        if self.deterministic:
            config.cranelift_nan_canonicalization = True
            config.wasm_relaxed_simd_deterministic = True
        return wasmtime.Engine(config)
