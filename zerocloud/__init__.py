"""ZeroCloud: run sandboxed WebAssembly programs inside OpenStack Swift."""

__version__ = '0.1.0'
