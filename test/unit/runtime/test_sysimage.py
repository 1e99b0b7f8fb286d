import hashlib
import os
import shutil

import pytest
import wasmtime

from zerocloud.runtime import sysimage
from zerocloud.runtime.cache import ModuleCache
from zerocloud.runtime.engine import EngineSettings


def _no_download():
    raise sysimage.SysimageError('download attempted')


def test_existing_image_is_verified_once_then_stamped(python_image, tmp_path,
                                                      monkeypatch):
    monkeypatch.setattr(sysimage, '_download_module', _no_download)
    dest = tmp_path / 'python.tar'
    shutil.copyfile(python_image, dest)
    assert sysimage.ensure_python_image(str(dest), warm=False) == str(dest)
    stamp = tmp_path / 'python.tar.sha256'
    assert stamp.read_text().endswith(sysimage.MODULE_SHA256 + '\n')
    monkeypatch.setattr(sysimage.image, 'read_member', None)  # stamp only
    assert sysimage.ensure_python_image(str(dest), warm=False) == str(dest)


def test_wrong_image_is_replaced(tmp_path, monkeypatch):
    dest = tmp_path / 'python.tar'
    dest.write_bytes(b'not a tar')
    monkeypatch.setattr(sysimage, '_download_module', _no_download)
    with pytest.raises(sysimage.SysimageError, match='download attempted'):
        sysimage.ensure_python_image(str(dest), warm=False)
    monkeypatch.setattr(sysimage, '_download_module', lambda: b'\0asm')
    sysimage.ensure_python_image(str(dest), warm=False)
    assert sysimage.image.read_member(str(dest), 'python') == b'\0asm'


def test_main_prints_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sysimage, '_download_module', _no_download)
    assert sysimage.main([str(tmp_path / 'python.tar')]) == 1
    assert capsys.readouterr().err == (
        'zerocloud-sysimage: error: download attempted\n')


def test_warm_compiles_for_both_wall_clocks_once(tmp_path, monkeypatch):
    modules = tmp_path / 'modules'
    monkeypatch.setattr(sysimage.paths, 'module_cache_dir',
                        lambda: str(modules))
    monkeypatch.setattr(sysimage, '_download_module',
                        lambda: wasmtime.wat2wasm('(module)'))
    dest = str(tmp_path / 'python.tar')
    sysimage.ensure_python_image(dest)
    digest = hashlib.sha256(wasmtime.wat2wasm('(module)')).hexdigest()
    cache = ModuleCache(str(modules))
    assert sorted(os.listdir(modules)) == sorted(
        os.path.basename(cache.cache_path(EngineSettings(epoch=epoch), digest))
        for epoch in (True, False))
    monkeypatch.setattr(ModuleCache, '_compile', None)  # no compile again
    sysimage.ensure_python_image(dest)
    assert len(os.listdir(modules)) == 2
