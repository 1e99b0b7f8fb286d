"""User programs compile in a limited child; failures are remembered;
the module caches are bounded (issue 15, items 5 and 6)."""

import errno
import io
import os
import resource
import tarfile

import pytest
import wasmtime

from zerocloud.runtime import cache as cache_module
from zerocloud.runtime.cache import ModuleCache, keep_source
from zerocloud.runtime.compiler import (STATUS_CANNOT_COMPILE,
                                        STATUS_NOT_COMPILED)
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.errors import SessionFailure
from zerocloud.runtime.limits import CacheLimits
from zerocloud.runtime.lru import BoundedLru
from test.wasm_bombs import compile_bomb, distinct_program

SETTINGS = EngineSettings(epoch=False)
#: Enough for the interpreter and wasmtime, not for the bomb.
SMALL_MEMORY = 384 << 20


@pytest.fixture(scope='module')
def engine():
    return SETTINGS.build()


@pytest.fixture(scope='module')
def bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp('bomb') / 'bomb.wasm'
    path.write_bytes(compile_bomb())
    return str(path)


@pytest.fixture
def compiles(monkeypatch):
    """The (source, budget) of every compile handed to a child."""
    calls = []
    real = cache_module.compile_in_child

    def counted(settings, source, target, limits, budget=None):
        calls.append((source, budget))
        return real(settings, source, target, limits, budget)
    monkeypatch.setattr(cache_module, 'compile_in_child', counted)
    return calls


def write(tmp_path, name: str, wasm: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(wasm)
    return str(path)


def failure_of(load) -> SessionFailure:
    with pytest.raises(SessionFailure) as caught:
        load()
    return caught.value


def test_a_compile_bomb_is_refused_once_then_answered_from_memory(
        engine, bomb, tmp_path, compiles):
    cache_dir = str(tmp_path / 'cache')
    limits = CacheLimits(compile_memory=SMALL_MEMORY)
    cache = ModuleCache(cache_dir, limits)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss << 10
    first = failure_of(lambda: cache.load(engine, SETTINGS, bomb))
    assert (first.status, first.exit_status) == (STATUS_CANNOT_COMPILE,
                                                 errno.ENOEXEC)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss << 10
    assert peak <= max(before, SMALL_MEMORY)
    again = failure_of(lambda: cache.load(engine, SETTINGS, bomb))
    # another worker (a new cache object) reads the remembered failure
    other = failure_of(lambda: ModuleCache(cache_dir, limits).load(
        engine, EngineSettings(fuel=True), bomb))
    assert again.status == other.status == STATUS_CANNOT_COMPILE
    assert len(compiles) == 1
    assert os.listdir(os.path.join(cache_dir, 'user')) == [
        os.path.basename(cache.failure_path(cache_module._hash_program(bomb)))]
    # other limits: the failure is not theirs
    raised = ModuleCache(cache_dir, CacheLimits(compile_memory=SMALL_MEMORY,
                                                compile_seconds=1))
    failure_of(lambda: raised.load(engine, SETTINGS, bomb))
    assert len(compiles) == 2


def test_time_limit_ends_a_compile(engine, bomb, tmp_path, compiles):
    cache = ModuleCache(str(tmp_path), CacheLimits(compile_seconds=1))
    # a run's budget shorter than the limit: retry later, not remembered
    short = failure_of(lambda: cache.load(engine, SETTINGS, bomb,
                                          compile_budget=0.2))
    assert (short.status, short.exit_status) == (STATUS_NOT_COMPILED,
                                                 errno.EAGAIN)
    full = failure_of(lambda: cache.load(engine, SETTINGS, bomb))
    assert full.status == STATUS_CANNOT_COMPILE
    assert [budget for _, budget in compiles] == [0.2, None]


def test_an_invalid_module_is_remembered_with_its_reason(
        engine, tmp_path, compiles):
    program = write(tmp_path, 'two.wasm', wasmtime.wat2wasm(
        '(module (memory 1) (memory 1))'))
    cache = ModuleCache(str(tmp_path / 'cache'))
    for _ in range(2):
        failure = failure_of(lambda: cache.load(engine, SETTINGS, program))
        assert failure.status.startswith(
            'program failed validation: multiple memories')
        assert failure.validation == 1
    assert len(compiles) == 1


def test_disk_cache_of_user_programs_is_bounded(engine, tmp_path):
    cache_dir = tmp_path / 'cache'
    cache = ModuleCache(str(cache_dir), CacheLimits(
        disk_files=3, disk_bytes=1 << 30, worker_modules=2))
    for number in range(6):
        program = write(tmp_path, 'p%d.wasm' % number,
                        distinct_program(number))
        cache.load(engine, SETTINGS, program)
    assert len(os.listdir(cache_dir / 'user')) == 3
    assert len(cache._modules) == 2


def test_disk_bytes_bound_keeps_the_newest(engine, tmp_path):
    cache_dir = tmp_path / 'cache'
    cache = ModuleCache(str(cache_dir), CacheLimits(disk_bytes=300 << 10))
    for number in range(5):
        program = write(tmp_path, 'p%d.wasm' % number,
                        distinct_program(number, 100 << 10))
        loaded = cache.load(engine, SETTINGS, program)
    files = os.listdir(cache_dir / 'user')
    assert 1 <= len(files) <= 2
    assert os.path.basename(cache.cache_path(
        SETTINGS, loaded.sha256, user=True)) in files
    assert sum(os.path.getsize(cache_dir / 'user' / name)
               for name in files) <= 300 << 10


def test_system_images_are_never_evicted_by_user_programs(engine, tmp_path):
    image = tmp_path / 'image.tar'
    wasm = distinct_program(-1)
    with tarfile.open(str(image), 'w') as archive:
        info = tarfile.TarInfo('prog')
        info.size = len(wasm)
        archive.addfile(info, io.BytesIO(wasm))
    cache = ModuleCache(str(tmp_path / 'cache'), CacheLimits(
        disk_files=1, worker_modules=1, worker_bytes=1))
    system = cache.load(engine, SETTINGS, str(image), 'prog')
    for number in range(3):
        cache.load(engine, SETTINGS, write(tmp_path, 'p%d.wasm' % number,
                                           distinct_program(number)))
    assert os.path.exists(cache.cache_path(SETTINGS, system.sha256))
    assert cache.load(engine, SETTINGS, str(image), 'prog').module is \
        system.module


def test_kept_source_is_a_copy_named_by_its_digest(tmp_path):
    program = write(tmp_path, 'p.wasm', distinct_program(7, 3 << 20))
    digest, kept = keep_source(str(tmp_path / 'cache'), program)
    os.unlink(program)
    assert digest == cache_module._hash_program(kept)
    assert os.path.dirname(kept) == str(tmp_path / 'cache' / 'sources')


def test_lru_bounds_count_and_bytes_and_keeps_pinned():
    lru = BoundedLru(3, max_bytes=10)
    lru.put('system', 's', 100, pinned=True)
    for key, size in (('a', 4), ('b', 4), ('c', 1)):
        lru.put(key, key.upper(), size)
    assert lru.get('a') == 'A'       # now the most recent
    lru.put('d', 'D', 4)             # 13 bytes: b goes, then within 10
    assert [lru.get(k) for k in 'abcd'] == ['A', None, 'C', 'D']
    lru.put('e', 'E', 1)             # four entries: a (oldest) goes
    assert lru.get('a') is None and len(lru) == 4
    assert lru.get('system') == 's'


@pytest.mark.parametrize('text', ['{"disk_files": 0}', '{"nope": 1}',
                                  '{"compile_memory": true}', '[]', 'x'])
def test_cache_limits_from_the_worker_command_line_are_checked(text):
    with pytest.raises(ValueError):
        CacheLimits.from_json(text)
    assert CacheLimits.from_json(CacheLimits(disk_files=3).to_json()) == \
        CacheLimits(disk_files=3)
