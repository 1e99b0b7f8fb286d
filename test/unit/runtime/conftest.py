"""Fixtures for runtime tests: WAT programs, manifests, a warm Runtime."""

import os

import pytest
import wasmtime

from zerocloud.runtime.session import Runtime
from zerocloud.runtime.sysimage import (ensure_python311_image,
                                        ensure_python_image)

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


@pytest.fixture(scope='session')
def runtime():
    return Runtime()


@pytest.fixture(scope='session')
def python_image():
    """CPython 3.11 for WASI (a command module, standard library only)."""
    return ensure_python311_image()


@pytest.fixture(scope='session')
def sci_python_image():
    """The default Python image: the numpy+pandas snapshot (a reactor)."""
    return ensure_python_image()


@pytest.fixture(scope='session')
def wat_programs(tmp_path_factory):
    """Fixture name -> path of its compiled .wasm."""
    out = tmp_path_factory.mktemp('wasm')
    programs = {}
    for name in os.listdir(FIXTURES):
        if name.endswith('.wat'):
            with open(os.path.join(FIXTURES, name)) as handle:
                wasm = wasmtime.wat2wasm(handle.read())
            path = out / (name[:-4] + '.wasm')
            path.write_bytes(wasm)
            programs[name[:-4]] = str(path)
    return programs
