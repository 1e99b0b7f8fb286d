"""Sandbox overhead benchmark: ``.venv/bin/python bench/runtime.py [-n N]``.

Prints, from one run (medians of N):

P2   ``print(1)`` in CPython-WASI through a warm ``Runtime.run`` versus
     ``python3 -c 'print(1)'`` started natively (the real interpreter
     behind this venv, so no shim or venv start-up is counted);
P4   a pure-Python CPU loop, sandboxed versus native, and
     ``examples/cpuloop.c`` as wasm (fuel off) versus gcc -O2 natively;
P2 and P4 (Python) once per wall-clock mode: ``epoch`` (the ``zerovm``
     command's) and ``exit`` (the sandbox pool workers'), both in this
     process through a warm ``Runtime``.  The ``exit`` runs have a 600 s
     ``Timeout`` they never reach; one that did would end this process, as
     it ends a pool worker;
load the Python module loaded from the compiled-module cache;
plus the pure-Python loop under engine variants (epoch interruption off,
fuel on) to show where the time goes.

Needs the Python image (``make sysimage``), clang and gcc.
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
from zerocloud.runtime.sysimage import ensure_python_image  # noqa: E402

# The real interpreter behind the venv (not a pyenv shim or a venv wrapper).
NATIVE_PYTHON = os.path.realpath(sys.executable)
LOOP = ('s = 0\nfor i in range(3000000):\n    s += i * i % 7\nprint(s)\n')
C_ROUNDS = '300000000'


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
    image = ensure_python_image()
    runtimes = {mode: Runtime(wall_clock=mode) for mode in WALL_CLOCKS}
    runtime = runtimes['epoch']
    workdir = tempfile.mkdtemp(prefix='zerocloud-bench-')
    try:
        print_one = manifest(workdir, image, ['python', '-c', 'print(1)'],
                             'python')
        p2_native = median_ms(native([NATIVE_PYTHON, '-c', 'print(1)']),
                              repeat)
        for mode, each in runtimes.items():
            sandboxed(each, print_one)()  # warm the process
            p2_box = median_ms(sandboxed(each, print_one), repeat)
            print('P2 print(1), %s wall clock: sandbox %.1f ms, native '
                  '%.1f ms, ratio %.2fx'
                  % (mode, p2_box, p2_native, p2_box / p2_native))

        loop = manifest(workdir, image, ['python', '-c', LOOP], 'python')
        loop_repeat = max(3, repeat // 3)
        p4_native = median_ms(native([NATIVE_PYTHON, '-c', LOOP]), loop_repeat)
        for mode, each in runtimes.items():
            p4_box = median_ms(sandboxed(each, loop), loop_repeat)
            print('P4 python loop, %s wall clock: sandbox %.0f ms, native '
                  '%.0f ms, ratio %.2fx'
                  % (mode, p4_box, p4_native, p4_box / p4_native))

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

        settings = runtime.settings()
        warm = runtime._warm_for(settings)
        digest = next(iter(warm.pre))
        cwasm = runtime.cache.cache_path(settings, digest)
        for name in warm.pre:
            path = runtime.cache.cache_path(settings, name)
            if os.path.getsize(path) > os.path.getsize(cwasm):
                cwasm = path
        load = median_ms(lambda: wasmtime.Module.deserialize_file(
            warm.engine, cwasm), repeat)
        print('module load from cache (%d MB .cwasm): %.2f ms'
              % (os.path.getsize(cwasm) >> 20, load))

        from zerocloud.runtime.image import read_member
        python_wasm = read_member(image, 'python')
        for epoch, fuel in ((True, False), (False, False), (True, True)):
            ms = engine_variant(python_wasm, workdir, epoch, fuel,
                                loop_repeat)
            print('python loop, bare engine epoch=%d fuel=%d: %.0f ms '
                  '(%.2fx native)' % (epoch, fuel, ms, ms / p4_native))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
