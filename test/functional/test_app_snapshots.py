"""App snapshots (issue 17): a Python zapp whose script imports heavy
modules of the image is run from a snapshot of those imports once one is
built, on a cluster of its own with the default ``zerovm_app_snapshots``
(the other test clusters have them off).

- Its first run comes from the system image (``X-Nexe-Snapshot:
  building``: the import happens in the run) and starts a build in the
  background on its server.
- Once built, its runs come from the snapshot (``X-Nexe-Snapshot: app``):
  the modules are in ``sys.modules`` before the script imports them
  (``scipy.stats`` of ``from scipy import stats`` too; the class named by
  ``from sklearn.linear_model import LinearRegression`` is no module, and
  no failure), and it prints the same answer.
- A script importing nothing beyond the image's own snapshot, and a run
  with ``-c``, say ``none``.

The snapshots this test leaves in the machine's module cache are removed
at its start and its end.
"""

import time

import pytest

from zerocloud import paths
from zerocloud.runtime import appsnap

from .helpers import (
    Account, python_node, started_cluster, store_zapp,
    unique)

#: Seconds a snapshot may take to be built and compiled on 2 cores.
BUILD_WAIT = 600
FIT = '''import sys
preloaded = all(name in sys.modules
                for name in ('sklearn.linear_model', 'scipy.stats'))
from scipy import stats
from sklearn.linear_model import LinearRegression
import numpy as np
x = np.arange(100, dtype=float).reshape(-1, 1)
model = LinearRegression().fit(x, 3 * x.ravel() + 2)
print(preloaded, round(float(model.coef_[0]), 6),
      round(float(model.intercept_), 6))
'''
PLAIN = 'import json, numpy\nprint(json.dumps(int(numpy.arange(4).sum())))\n'


@pytest.fixture(scope='module')
def snapshots_cluster():
    appsnap.AppSnapshots(paths.module_cache_dir(), keep=0).trim()
    with started_cluster('zerocloud-appsnap-', app_snapshots=True) as cluster:
        yield cluster
    appsnap.AppSnapshots(paths.module_cache_dir(), keep=0).trim()


def _run(account: Account, image: str, script: str):
    resp = account.post_job([python_node('fit', image, script=script,
                                         devices=[{'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    return resp.headers['X-Nexe-Snapshot'], resp.text


def test_a_zapp_runs_from_a_snapshot_of_its_imports_once_built(
        snapshots_cluster):
    account = Account(snapshots_cluster)
    container = unique('apps')
    account.put_container(container)
    image = store_zapp(account, container, {'main.py': FIT,
                                            'plain.py': PLAIN})
    assert _run(account, image, 'plain.py') == ('none', '6\n')
    assert _run(account, image, '-c print(1)') == ('none', '1\n')
    status, text = _run(account, image, 'main.py')
    assert (status, text) == ('building', 'False 3.0 2.0\n')
    deadline = time.monotonic() + BUILD_WAIT
    while status != 'app':
        assert time.monotonic() < deadline, 'no snapshot after %d s' % \
            BUILD_WAIT
        time.sleep(15)
        status, text = _run(account, image, 'main.py')
        assert status in ('building', 'app')
    assert text == 'True 3.0 2.0\n'
    # Every later run starts from a fresh copy of it.
    assert _run(account, image, 'main.py') == ('app', 'True 3.0 2.0\n')
