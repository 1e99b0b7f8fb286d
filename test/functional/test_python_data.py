"""Data work in the default Python image (CPython 3.15, numpy, pandas, scipy,
scikit-learn, matplotlib) through the real cluster.

Each job's answer is compared with what this test computes itself, so a
wrong library, a missing one or a broken snapshot fails here.
"""

import csv
import io
import random
import struct
from collections import defaultdict

import pytest

from .helpers import Account, assert_all_ok, run_python, unique


@pytest.fixture(scope='module')
def account(cluster):
    return Account(cluster)


@pytest.fixture(scope='module')
def container(account):
    name = unique('data')
    account.put_container(name)
    return name


def run_script(account, container, script, devices=(), **node):
    """Run ``script`` as one node ``job``; its answer, a 200."""
    resp = run_python(account, container, script, devices, name='job',
                      **node)
    assert resp.status_code == 200, resp.text
    return resp


GROUPBY = '''import sys
import pandas as pd
frame = pd.read_csv(sys.stdin)
sums = frame.groupby("region")["amount"].sum()
for region, total in sums.items():
    print("%s,%d" % (region, total))
'''


def test_pandas_groupby_over_a_stored_csv(account, container):
    rng = random.Random(11)
    rows = [(rng.choice(['north', 'south', 'east', 'west']),
             rng.randint(-1000, 5000)) for _ in range(5000)]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator='\n')
    writer.writerow(['region', 'amount'])
    writer.writerows(rows)
    account.put_object(container, 'sales.csv', text.getvalue().encode(),
                       'text/csv')
    expected = defaultdict(int)
    for region, amount in rows:
        expected[region] += amount
    resp = run_script(account, container, GROUPBY, devices=[
        {'name': 'stdin', 'path': 'swift://~/%s/sales.csv' % container},
        {'name': 'stdout'}])
    assert_all_ok(resp, 1)
    assert resp.text == ''.join('%s,%d\n' % item
                                for item in sorted(expected.items()))


SCRATCH = '''import numpy as np, pandas as pd
frame = pd.DataFrame({"key": np.arange(300000) % 7,
                      "value": np.arange(300000, dtype="int64")})
frame.to_csv("/tmp/frame.csv", index=False)
back = pd.read_csv("/tmp/frame.csv")
print(len(back), int(back["value"].sum()), back.groupby("key").size().min())
'''


def test_tmp_holds_typical_pandas_scratch_files(account, container):
    """A 300,000-row frame written to /tmp as CSV (about 4 MB) and read
    back: /tmp (zerovm_scratch_size, 64 MiB) is enough for that."""
    resp = run_script(account, container, SCRATCH)
    assert_all_ok(resp, 1)
    assert resp.text == '300000 %d 42857\n' % sum(range(300000))


LINALG = '''import numpy as np
a = np.array([[3.0, 2.0, -1.0], [2.0, -2.0, 4.0], [-1.0, 0.5, -1.0]])
b = np.array([1.0, -2.0, 0.0])
x = np.linalg.solve(a, b)
print(" ".join("%.6f" % v for v in x))
print("%.6f" % np.linalg.det(a))
print(np.allclose(a @ np.linalg.inv(a), np.eye(3)))
w = np.linalg.eigvalsh(np.array([[2.0, 1.0], [1.0, 2.0]]))
print(" ".join("%.6f" % v for v in w))
'''


def test_numpy_linear_algebra(account, container):
    resp = run_script(account, container, LINALG)
    assert_all_ok(resp, 1)
    assert resp.text == ('1.000000 -2.000000 -2.000000\n'
                         '-3.000000\n'
                         'True\n'
                         '1.000000 3.000000\n')


SKLEARN = '''import numpy as np
from sklearn.linear_model import LinearRegression
x = np.arange(50, dtype=float).reshape(-1, 1)
y = 3.0 * x[:, 0] + 2.0
model = LinearRegression().fit(x, y)
print("%.4f %.4f %.4f" % (model.coef_[0], model.intercept_, model.score(x, y)))
'''


def test_scikit_learn_fits_a_known_line(account, container):
    resp = run_script(account, container, SKLEARN)
    assert_all_ok(resp, 1)
    assert resp.text == '3.0000 2.0000 1.0000\n'


SCIPY = '''from scipy import stats
print("%.4f" % stats.norm.cdf(1.96))
r, _ = stats.pearsonr([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
print("%.4f" % r)
print("%.4f" % stats.binom.pmf(3, 10, 0.5))
'''


def test_scipy_stats(account, container):
    resp = run_script(account, container, SCIPY)
    assert_all_ok(resp, 1)
    assert resp.text == '0.9750\n1.0000\n0.1172\n'


CHART = '''import matplotlib
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
ax.plot([1, 2, 3, 4], [1, 4, 9, 16], marker="o")
ax.set_title("squares")
ax.set_xlabel("n")
fig.savefig("/dev/output", format="png")
print(matplotlib.get_backend())
'''


def _png_size(data: bytes):
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    assert data[12:16] == b'IHDR'
    return struct.unpack('>II', data[16:24])


def test_matplotlib_chart_stored_as_png(account, container):
    resp = run_script(account, container, CHART, devices=[
        {'name': 'stdout'},
        {'name': 'output', 'path': 'swift://~/%s/chart.png' % container,
         'content_type': 'image/png'}])
    assert_all_ok(resp, 1)
    assert resp.text.lower() == 'agg\n'
    stored = account.get('%s/chart.png' % container)
    assert stored.status_code == 200
    assert stored.headers['Content-Type'] == 'image/png'
    assert _png_size(stored.content) == (400, 300)
    assert len(stored.content) > 5000  # axes, text and a line were drawn


def test_missing_module_is_the_nexe_error(account, container):
    resp = run_script(account, container, 'import no_such_package\n')
    assert resp.headers['X-Nexe-Retcode'] == '1'
    # CPython 3.15 adds a hint about site-packages (site is off here).
    assert resp.headers['X-Nexe-Error'].startswith(
        "bad return code: ModuleNotFoundError: No module named "
        "'no_such_package'. ")


def test_memory_error_is_the_nexe_error(account, container):
    resp = run_script(account, container,
                      'block = bytearray(1536 << 20)\n')
    assert resp.headers['X-Nexe-Retcode'] == '1'
    assert resp.headers['X-Nexe-Error'] == 'bad return code: MemoryError'


CPP_EXCEPTION = '''import kiwisolver
solver = kiwisolver.Solver()
x = kiwisolver.Variable("x")
solver.addConstraint(x >= 1)
try:
    solver.addConstraint(x <= 0)
except kiwisolver.UnsatisfiableConstraint as err:
    print("caught", type(err).__name__)
'''


def test_cpp_exception_becomes_a_python_exception(account, container):
    """kiwisolver's C++ core throws; its binding turns that into a Python
    exception (WebAssembly exception handling), not a trap."""
    resp = run_script(account, container, CPP_EXCEPTION)
    assert_all_ok(resp, 1)
    assert resp.text == 'caught UnsatisfiableConstraint\n'


NUMPY_BAD_ALLOC = '''import numpy as np
try:
    np.fft.fft(np.ones(3), n=20000003)
except MemoryError as err:
    print("MemoryError", repr(str(err)))
'''


def test_cpp_exception_inside_numpy_becomes_a_python_exception(
        account, container):
    """numpy.fft is pocketfft, C++: a prime length of 20 million needs a
    Bluestein plan of over 1 GiB, more than a node's memory; the C++
    ``std::bad_alloc`` is caught inside numpy and raised as a bare
    MemoryError (numpy's own allocations name a size), not a trap."""
    resp = run_script(account, container, NUMPY_BAD_ALLOC)
    assert_all_ok(resp, 1)
    assert resp.text == "MemoryError ''\n"


SEEDS = '''import os, random, time, numpy
print(random.random(), numpy.random.rand(), os.urandom(4).hex(), time.time())
'''


def test_fresh_seeds_per_run(account, container):
    first = run_script(account, container, SEEDS).text.split()
    second = run_script(account, container, SEEDS).text.split()
    assert all(a != b for a, b in zip(first[:3], second[:3]))


def test_deterministic_replicas_agree(account, container):
    """``replicate`` runs copies in deterministic mode on different servers;
    their outputs (seeded random, numpy and urandom, a pinned clock) must
    be identical or the node fails."""
    resp = run_script(account, container, SEEDS, replicate=2)
    assert_all_ok(resp, 1)
    assert resp.headers['X-Nexe-System'] == 'job'
    values = resp.text.split()
    assert len(values) == 4 and float(values[3]) > 0
