"""Sandbox overhead benchmark: ``.venv/bin/python bench/runtime.py [-n N]``.

Prints, from one run (medians of N), for each Python image: the default
one (CPython 3.15 snapshot with numpy and pandas, ``python``) and the old
standard-library-only CPython 3.11 (``python3.11``):

P2   ``print(1)`` through a warm ``Runtime.run`` versus
     ``python3 -c 'print(1)'`` started natively (the real interpreter
     behind this venv, so no shim or venv start-up is counted);
P4   a pure-Python CPU loop, sandboxed versus native;
P2 and P4 once per wall-clock mode: ``epoch`` (the ``zerovm`` command's)
     and ``exit`` (the sandbox pool workers'), both in this process through
     a warm ``Runtime``.  The ``exit`` runs have a 600 s ``Timeout`` they
     never reach; one that did would end this process, as it ends a pool
     worker;

then ``examples/cpuloop.c`` as wasm (fuel off) versus gcc -O2 natively; a
numpy matrix multiply (timed inside the program, so start-up is not
counted) in the sandbox versus the native interpreter's numpy, when that
has numpy; the time to load each Python module from the compiled-module
cache; and the 3.11 loop under bare engine variants (epoch interruption
off, fuel on) to show where the time goes.

Needs the Python images (``make sysimage``), clang and gcc.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import wasmtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from zerocloud.runtime import nvram  # noqa: E402
from zerocloud.runtime.limits import WALL_CLOCKS  # noqa: E402
from zerocloud.runtime.session import Runtime  # noqa: E402
from zerocloud.runtime.sysimage import (  # noqa: E402
    ensure_python311_image, ensure_python_image)

# The real interpreter behind the venv (not a pyenv shim or a venv wrapper).
NATIVE_PYTHON = os.path.realpath(sys.executable)
LOOP = ('s = 0\nfor i in range(3000000):\n    s += i * i % 7\nprint(s)\n')
C_ROUNDS = '300000000'
MATMUL = ('import time, numpy as np\n'
          'a = np.random.default_rng(1).random((300, 300))\n'
          'started = time.perf_counter()\n'
          'for _ in range(20):\n'
          '    b = a @ a\n'
          'print((time.perf_counter() - started) * 1000)\n')


def median_ms(action, repeat):
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def manifest(workdir, program, args, member=None, **keys):
    nvram_path = os.path.join(workdir, 'nvram')
    with open(nvram_path, 'w') as handle:
        handle.write(nvram.render(args, {}))
    lines = ['Version = 20130611', 'Program = %s' % program, 'Timeout = 600',
             'Memory = %d, 0' % (512 << 20),
             'Channel = /dev/null, /dev/stdin, 0, 0, 1, 1, 0, 0',
             'Channel = %s/out, /dev/stdout, 0, 0, 0, 0, 1000000, 1000000'
             % workdir,
             'Channel = %s/err, /dev/stderr, 0, 0, 0, 0, 1000000, 1000000'
             % workdir,
             'Channel = %s, /dev/nvram, 3, 0, 100, 100000, 0, 0' % nvram_path]
    if member:
        lines.append('ProgramMember = %s' % member)
    lines += ['%s = %s' % item for item in keys.items()]
    path = os.path.join(workdir, 'manifest')
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    return path


def sandboxed(runtime, path):
    def run():
        result = runtime.run(path)
        assert result.report.status == 'ok', result.report.status
    return run


def reported_ms(runtime, path, workdir):
    """Milliseconds a sandboxed program printed as its last line."""
    sandboxed(runtime, path)()
    with open(os.path.join(workdir, 'out')) as handle:
        return float(handle.read().split()[-1])


def native(command):
    return lambda: subprocess.run(command, check=True,
                                  stdout=subprocess.DEVNULL)


def engine_variant(python_wasm, workdir, epoch, fuel, repeat):
    """The loop under a bare engine, to split the sandbox's costs."""
    config = wasmtime.Config()
    config.epoch_interruption = epoch
    config.consume_fuel = fuel
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, python_wasm)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()

    def run():
        store = wasmtime.Store(engine)
        if epoch:
            store.set_epoch_deadline(1 << 30)
        if fuel:
            store.set_fuel(1 << 62)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ['python', '-c', LOOP]
        wasi.stdout_file = os.path.join(workdir, 'variant.out')
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        instance.exports(store)['_start'](store)
    return median_ms(run, repeat)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-n', type=int, default=15, help='repetitions')
    options = parser.parse_args()
    repeat = options.n
    images = {'python 3.15 (default)': ensure_python_image(),
              'python 3.11': ensure_python311_image()}
    runtimes = {mode: Runtime(wall_clock=mode) for mode in WALL_CLOCKS}
    runtime = runtimes['epoch']
    workdir = tempfile.mkdtemp(prefix='zerocloud-bench-')
    loop_repeat = max(3, repeat // 3)
    try:
        p2_native = median_ms(native([NATIVE_PYTHON, '-c', 'print(1)']),
                              repeat)
        p4_native = median_ms(native([NATIVE_PYTHON, '-c', LOOP]), loop_repeat)
        for label, image in images.items():
            print_one = manifest(workdir, image, ['python', '-c', 'print(1)'],
                                 'python')
            for mode, each in runtimes.items():
                sandboxed(each, print_one)()  # warm the process
                p2_box = median_ms(sandboxed(each, print_one), repeat)
                print('P2 %s print(1), %s wall clock: sandbox %.1f ms, native '
                      '%.1f ms, ratio %.2fx'
                      % (label, mode, p2_box, p2_native, p2_box / p2_native))
            loop = manifest(workdir, image, ['python', '-c', LOOP], 'python')
            for mode, each in runtimes.items():
                p4_box = median_ms(sandboxed(each, loop), loop_repeat)
                print('P4 %s loop, %s wall clock: sandbox %.0f ms, native '
                      '%.0f ms, ratio %.2fx'
                      % (label, mode, p4_box, p4_native, p4_box / p4_native))

        source = os.path.join(ROOT, 'examples', 'cpuloop.c')
        c_wasm = os.path.join(workdir, 'cpuloop.wasm')
        c_native = os.path.join(workdir, 'cpuloop')
        subprocess.run(['clang', '--target=wasm32-wasi', '-O2', '-o', c_wasm,
                        source], check=True)
        subprocess.run(['gcc', '-O2', '-o', c_native, source], check=True)
        c_loop = manifest(workdir, c_wasm, ['cpuloop', C_ROUNDS])
        sandboxed(runtime, c_loop)()
        c_box = median_ms(sandboxed(runtime, c_loop), loop_repeat)
        c_nat = median_ms(native([c_native, C_ROUNDS]), loop_repeat)
        print('P4 C loop: wasm %.0f ms, gcc -O2 %.0f ms, ratio %.2fx'
              % (c_box, c_nat, c_box / c_nat))

        matmul = manifest(workdir, images['python 3.15 (default)'],
                          ['python', '-c', MATMUL], 'python')
        box = statistics.median(reported_ms(runtimes['exit'], matmul, workdir)
                                for _ in range(loop_repeat))
        has_numpy = subprocess.run([NATIVE_PYTHON, '-c', 'import numpy'],
                                   capture_output=True).returncode == 0
        if has_numpy:
            nat = statistics.median(float(subprocess.run(
                [NATIVE_PYTHON, '-c', MATMUL], check=True,
                capture_output=True, text=True).stdout.split()[-1])
                for _ in range(loop_repeat))
            print('numpy 300x300 matmul x20: sandbox %.0f ms, native numpy '
                  '%.0f ms, ratio %.2fx' % (box, nat, box / nat))
        else:
            print('numpy 300x300 matmul x20: sandbox %.0f ms (no native '
                  'numpy to compare with)' % box)

        settings = runtime.settings()
        warm = runtime._warm_for(settings)
        for digest in warm.programs.keys():
            cwasm = runtime.cache.cache_path(settings, digest)
            load = median_ms(lambda: wasmtime.Module.deserialize_file(
                warm.engine, cwasm), repeat)
            print('module load from cache (%d MB .cwasm): %.2f ms'
                  % (os.path.getsize(cwasm) >> 20, load))

        from zerocloud.runtime.image import read_member
        python_wasm = read_member(images['python 3.11'], 'python')
        for epoch, fuel in ((True, False), (False, False), (True, True)):
            ms = engine_variant(python_wasm, workdir, epoch, fuel,
                                loop_repeat)
            print('python 3.11 loop, bare engine epoch=%d fuel=%d: %.0f ms '
                  '(%.2fx native)' % (epoch, fuel, ms, ms / p4_native))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
