"""App snapshots' pure parts: which imports a script's snapshot adds, its
name, and the store's bookkeeping (no wizer run here; the functional test
builds one)."""

import io
import os
import tarfile

import pytest

from zerocloud import tarscan
from zerocloud.object.appsnapshots import read_script, script_member
from zerocloud.runtime import appsnap, snapshot

from test.unit.runtime.test_sysimage import GOOD_REPORT

PACKAGES = {'sklearn', 'scipy', 'numpy', 'pandas', 'statsmodels', 'six',
            'csv', 'json'}


def test_top_level_imports_in_order_once():
    source = b'''
import os, sys
import scipy.stats as st
from sklearn.linear_model import LinearRegression
from . import sibling
try:
    import statsmodels.api
except ImportError:
    statsmodels = None
if True:
    import six
with open('/dev/null'):
    import numpy.linalg
def later():
    import pandas
class Kept:
    import json
import scipy.stats
'''
    assert appsnap.script_imports(source) == [
        'os', 'sys', 'scipy.stats', 'sklearn.linear_model',
        'sklearn.linear_model.LinearRegression', 'statsmodels.api', 'six',
        'numpy.linalg']


@pytest.mark.parametrize('source', [b'def broken(:\n', b'(' * 100000,
                                    b'x = 1\n' * (appsnap.MAX_SCRIPT_BYTES
                                                  // 6 + 1)])
def test_a_script_that_cannot_be_read_adds_nothing(source):
    assert appsnap.script_imports(source) == []


def test_only_the_images_modules_its_snapshot_has_not_loaded():
    names = ['os', 'scipy.stats', 'sklearn.linear_model', 'numpy.linalg',
             'pandas', 'mymodule', 'six', 'scipy.stats', 'csv', 'json.tool']
    loaded = {'os', 'numpy', 'numpy.linalg', 'pandas', 'scipy'}
    assert appsnap.system_imports(names, PACKAGES, loaded) == [
        'scipy.stats', 'six', 'sklearn.linear_model']
    many = ['scipy.m%02d' % n for n in range(40)]
    assert appsnap.system_imports(many, PACKAGES, loaded) == sorted(many)[
        :appsnap.MAX_IMPORTS]


def test_importable_names_of_the_zip_and_site_packages():
    assert appsnap.importable([
        'sklearn/__init__.pyc', 'six.py', 'json/decoder.pyc', '_abc.pyc',
        'scipy-1.18.1.dist-info/METADATA', 'bad-name/x.py',
        'matplotlib/pyplot.py']) == {'sklearn', 'six', 'json', '_abc',
                                     'matplotlib'}


def test_the_key_names_the_base_and_the_imports():
    key = appsnap.snapshot_key('a' * 64, ['scipy.stats'])
    assert len(key) == 32
    assert key == appsnap.snapshot_key('a' * 64, ['scipy.stats'])
    assert key != appsnap.snapshot_key('b' * 64, ['scipy.stats'])
    assert key != appsnap.snapshot_key('a' * 64, ['scipy.stats', 'six'])


@pytest.mark.parametrize('args, member', [
    ('main.py', 'main.py'), ('/app/main.py x y', 'app/main.py'),
    ('-u -X dev ./run.py', 'run.py'), ('-W ignore main.py', 'main.py'),
    ('-c "import x"', None), ('-m pkg', None), ('', None), ('-', None)])
def test_the_script_a_node_runs(args, member):
    assert script_member(args) == member


def test_the_store_offers_only_built_snapshots_and_keeps_the_newest(
        tmp_path):
    store = appsnap.AppSnapshots(str(tmp_path), keep=2)
    os.makedirs(store.folder)
    assert store.ready('k1') is None
    for number, key in enumerate(('k1', 'k2', 'k3')):
        with open(store.path(key, '.tar'), 'w'):
            pass
        with open(store.path(key, '.sha256'), 'w') as handle:
            handle.write('%064d\n' % number)
        os.utime(store.path(key, '.tar'), (number, number))
    ready = store.ready('k1')   # used now: the newest
    assert ready.digest == '0' * 64 and ready.tar.endswith('k1.tar')
    assert store.evict() == ['%064d' % 1]
    assert store.ready('k2') is None
    assert store.ready('k3') is not None and store.ready('k1') is not None
    assert not store.failed('k1') and not store.building('k1')
    with open(store.path('k4', '.building'), 'w') as marker:
        marker.write('%d\n' % os.getpid())
    assert store.building('k4')
    with open(store.path('k4', '.building'), 'w') as marker:
        marker.write('999999999\n')
    assert not store.building('k4')


def test_the_script_is_read_from_the_image_within_bounds(tmp_path):
    path = tmp_path / 'image.tar'
    with tarfile.open(path, 'w') as tar:
        for name, data in (('./app/main.py', b'import scipy.stats\n'),
                           ('big.py', b'#' * (appsnap.MAX_SCRIPT_BYTES + 1))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    bounds = tarscan.ScanBounds(1 << 24, 100)
    assert read_script(str(path), 'app/main.py', bounds) == \
        b'import scipy.stats\n'
    assert read_script(str(path), 'big.py', bounds) == b''
    assert read_script(str(path), 'gone.py', bounds) == b''
    assert read_script(str(tmp_path / 'none.tar'), 'main.py', bounds) == b''


def test_an_app_snapshot_report_takes_classes_but_no_failure():
    wanted = ['scipy.stats', 'sklearn.linear_model.LinearRegression']
    report = dict(GOOD_REPORT, app_imports=['scipy.stats'],
                  app_not_modules=['sklearn.linear_model.LinearRegression'])
    snapshot.check_report(report, wanted)
    for bad in (dict(report, app_imports=[], app_not_modules=wanted),
                dict(report, app_not_modules=[],
                     app_import_failures=['sklearn...: boom'])):
        with pytest.raises(snapshot.SnapshotError) as caught:
            snapshot.check_report(bad, wanted)
        assert 'for the app of' in str(caught.value)
