"""The sandbox runtime: a ZeroVM-manifest-compatible executor on wasmtime."""
