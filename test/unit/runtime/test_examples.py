"""The C examples, compiled for WASI with clang, run in the sandbox."""

import os
import subprocess

import pytest

from test.unit.runtime.helpers import output, write_manifest

EXAMPLES = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                        'examples')


def example_wasm(name, tmp_path_factory):
    built = os.path.join(EXAMPLES, name + '.wasm')
    source = os.path.join(EXAMPLES, name + '.c')
    if os.path.exists(built) and (os.path.getmtime(built)
                                  >= os.path.getmtime(source)):
        return built
    target = str(tmp_path_factory.mktemp('examples') / (name + '.wasm'))
    subprocess.run(['clang', '--target=wasm32-wasi', '-O2', '-o', target,
                    source], check=True)
    return target


@pytest.mark.parametrize('name,expected', [
    ('wordcount', b'4 7 37\n'),
    ('passthrough', None),
])
def test_c_example(runtime, tmp_path, tmp_path_factory, name, expected):
    stdin = tmp_path / 'in.txt'
    text = b'the quick brown\nfox jumps\nover dogs\n\n'
    stdin.write_bytes(text)
    manifest = write_manifest(tmp_path, example_wasm(name, tmp_path_factory),
                              stdin=str(stdin))
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0)
    assert output(tmp_path) == (expected or text)
