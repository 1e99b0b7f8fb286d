"""The engine's limits are per sandbox (issue 15, items 4 to 7).

A private cluster whose object servers keep compiled modules in a module
cache of their own, with small compile and cache bounds so each attack
stays fast:

- ``test_four_memories_are_refused``, ``test_table_grow_beyond_the_cap``:
  ``zerovm_maxnexemem`` bounds the whole sandbox (one memory, a bounded
  table); no sandbox worker's peak RSS passes the cap plus the interpreter.
- ``test_compile_bomb_is_refused_and_remembered``: a module that needs
  gigabytes to compile is refused (422) by a compile child that stays under
  ``zerovm_compile_memory``, and the second time from the remembered
  failure, with no compile at all.
- ``test_cache_of_user_programs_is_bounded``: distinct programs leave at
  most ``zerovm_module_cache_files`` / ``_bytes`` of compiled modules.
- ``test_program_over_the_in_run_compile_size_runs_later``: 503 with
  ``Retry-After`` while it compiles in the background, then 200 (the
  proxy's ``zerovm_job_deadline`` is 0, so a busy answer is not waited
  out by the proxy but reaches the client).

Run with ``-s`` to see the measured numbers.
"""

import hashlib
import os
import threading
import time
from typing import Dict, List

import pytest
import requests
import wasmtime

from zerocloud import saio
from zerocloud.runtime.compiler import STATUS_CANNOT_COMPILE
from test.wasm_bombs import (FOUR_MEMORIES, TABLE_GROWER, compile_bomb,
                             distinct_program, table_grow_answers)

from .helpers import (
    Account, configure, configure_object_query, started_cluster, unique,
    with_stdout)

MiB = 1 << 20
MAX_MEMORY = 256 * MiB
#: What a sandbox worker may hold beside its guest: the interpreter,
#: wasmtime and the compiled modules it keeps (``zerovm_worker_module*``).
INTERPRETER = 256 * MiB
COMPILE_MEMORY = 512 * MiB
IN_RUN = 4 * MiB
CACHE_FILES = 12
CACHE_BYTES = 8 * MiB
WORKER_MODULES = 4
WORKER_BYTES = 4 * MiB
#: Seconds a background compile may take before the test gives up.
COMPILE_WAIT = 120


@pytest.fixture(scope='module')
def module_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp('modules'))


@pytest.fixture(scope='module')
def cluster(module_cache):
    def bound(cluster):
        configure_object_query(cluster, zerovm_module_cache=module_cache,
                               zerovm_maxnexemem=str(MAX_MEMORY),
                               zerovm_compile_memory=str(COMPILE_MEMORY),
                               zerovm_compile_in_run=str(IN_RUN),
                               zerovm_module_cache_files=str(CACHE_FILES),
                               zerovm_module_cache_bytes=str(CACHE_BYTES),
                               zerovm_worker_modules=str(WORKER_MODULES),
                               zerovm_worker_module_bytes=str(WORKER_BYTES))
        # the busy answer of a compiling server reaches the client at once
        configure(cluster, 'proxy-server', 'filter:proxy_query',
                  zerovm_job_deadline='0')
    # No job here runs a system image: skip compiling them at start (minutes
    # whenever the engine settings changed), nothing else of the start.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(saio, '_ensure_sysimage', lambda: None)
        with started_cluster('zerocloud-engine-', bound) as private:
            yield private


@pytest.fixture(scope='module')
def account(cluster):
    account = Account(cluster)
    account.container = unique('engine')
    account.put_container(account.container)
    return account


def run(account: Account, wasm: bytes) -> requests.Response:
    """Store ``wasm`` and run it as a one-node job; stdout answers."""
    name = unique('program') + '.wasm'
    account.put_object(account.container, name, wasm, 'application/wasm')
    return account.post_job([{
        'name': 'engine',
        'exec': {'path': 'swift://~/%s/%s' % (account.container, name)},
        'devices': with_stdout([])}])


def processes_with(word: str) -> List[int]:
    """Pids whose command line holds ``word`` (our private cache dir makes
    them this cluster's)."""
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/cmdline' % entry, 'rb') as cmdline:
                    if word.encode() in cmdline.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def memory_of(pid: int, field: str) -> int:
    """``VmHWM`` (peak) or ``VmRSS`` of a process in bytes; 0 if gone."""
    try:
        with open('/proc/%d/status' % pid) as status:
            for line in status:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) << 10
    except OSError:
        pass
    return 0


def workers(module_cache: str) -> Dict[int, int]:
    """Sandbox worker pid -> peak RSS."""
    return {pid: memory_of(pid, 'VmHWM')
            for pid in processes_with(module_cache)
            if pid in processes_with('zerocloud.runtime.worker')}


class CompileWatch(threading.Thread):
    """Samples this cluster's compile children while a request runs."""

    def __init__(self, module_cache: str):
        super().__init__(daemon=True)
        self.module_cache = module_cache
        self.seen: Dict[int, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for pid in processes_with('zerocloud.runtime.compiler'):
                if pid in processes_with(self.module_cache):
                    self.seen[pid] = max(self.seen.get(pid, 0),
                                         memory_of(pid, 'VmHWM'))
            time.sleep(0.02)

    def __enter__(self) -> 'CompileWatch':
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.join()


def user_files(module_cache: str) -> Dict[str, os.stat_result]:
    """Compiled modules and remembered failures anywhere in the cache (no
    system image is compiled into this one)."""
    return {name: os.stat(os.path.join(folder, name))
            for folder, _, names in os.walk(module_cache)
            for name in names if name.endswith(('.cwasm', '.failed'))}


def test_four_memories_are_refused(account, module_cache):
    resp = run(account, wasmtime.wat2wasm(FOUR_MEMORIES))
    assert resp.status_code == 422, resp.text
    assert resp.headers['X-Nexe-Status'].startswith(
        'program failed validation: multiple memories')
    peaks = workers(module_cache)
    print('\nworker peak RSS after the 4 x 768 MiB module: %s MiB'
          % sorted(peak >> 20 for peak in peaks.values()))
    assert peaks and max(peaks.values()) < MAX_MEMORY + INTERPRETER


def test_table_grow_beyond_the_cap(account, module_cache):
    resp = run(account, wasmtime.wat2wasm(TABLE_GROWER))
    assert resp.status_code == 200, resp.text
    assert table_grow_answers(resp.content) == (-1, 1)
    peaks = workers(module_cache)
    print('\nworker peak RSS after the 250M-entry table.grow: %s MiB'
          % sorted(peak >> 20 for peak in peaks.values()))
    assert max(peaks.values()) < MAX_MEMORY + INTERPRETER


def test_compile_bomb_is_refused_and_remembered(account, module_cache):
    bomb = compile_bomb()
    with CompileWatch(module_cache) as first_watch:
        started = time.monotonic()
        first = run(account, bomb)
        first_seconds = time.monotonic() - started
    assert first.status_code == 422, first.text
    assert first.headers['X-Nexe-Status'] == STATUS_CANNOT_COMPILE
    [marker] = [name for name in user_files(module_cache)
                if name.startswith(hashlib.sha256(bomb).hexdigest())]
    inode = user_files(module_cache)[marker].st_ino
    with CompileWatch(module_cache) as second_watch:
        started = time.monotonic()
        second = run(account, bomb)
        second_seconds = time.monotonic() - started
    print('\ncompile bomb (%d bytes): first answer %d in %.1f s (compile '
          'child peak %s MiB), second %d in %.2f s (%d compiles)'
          % (len(bomb), first.status_code, first_seconds,
             [peak >> 20 for peak in first_watch.seen.values()],
             second.status_code, second_seconds, len(second_watch.seen)))
    assert second.status_code == 422, second.text
    assert second.headers['X-Nexe-Status'] == STATUS_CANNOT_COMPILE
    assert first_watch.seen, 'no compile child was seen'
    assert max(first_watch.seen.values()) <= COMPILE_MEMORY
    # answered from the remembered failure: no compile, the record kept
    assert second_watch.seen == {}
    assert user_files(module_cache)[marker].st_ino == inode
    assert second_seconds < 5


def test_cache_of_user_programs_is_bounded(account, module_cache):
    before = {pid: memory_of(pid, 'VmRSS')
              for pid in workers(module_cache)}
    programs = 30
    for number in range(programs):
        resp = run(account, distinct_program(number, MiB))
        assert resp.status_code == 200, resp.text
    files = user_files(module_cache)
    cached = sum(st.st_size for st in files.values())
    growth = {pid: memory_of(pid, 'VmRSS') - rss
              for pid, rss in before.items() if memory_of(pid, 'VmRSS')}
    print('\n%d distinct 1 MiB programs: module cache %d files, %.1f MiB; '
          'worker RSS growth %s MiB' % (
              programs, len(files), cached / MiB,
              sorted(round(g / MiB, 1) for g in growth.values())))
    assert 0 < len(files) <= CACHE_FILES
    assert cached <= CACHE_BYTES
    assert all(g < WORKER_BYTES + 32 * MiB for g in growth.values())


def test_program_over_the_in_run_compile_size_runs_later(account,
                                                         module_cache):
    program = distinct_program(-7, IN_RUN + 2 * MiB)
    first = run(account, program)
    assert first.status_code == 503, first.text
    assert int(first.headers['Retry-After']) > 0
    deadline = time.monotonic() + COMPILE_WAIT
    resp = first
    while resp.status_code == 503 and time.monotonic() < deadline:
        time.sleep(1)
        resp = run(account, program)
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-Status'] == 'ok'
    # the copies kept for compiling go once their compiles end (another
    # server may still be compiling the program for itself)
    sources = os.path.join(module_cache, 'sources')
    while os.listdir(sources) and time.monotonic() < deadline:
        time.sleep(1)
    assert os.listdir(sources) == []
