"""CPython for WASI (the real Python system image) through Runtime.run."""

from test.unit.runtime.helpers import (
    check_seed_script, output, run_python, run_python_filter)


def test_seed_script_from_image(runtime, python_image, tmp_path):
    check_seed_script(runtime, python_image, tmp_path)


def test_import_module_from_image_root(runtime, python_image, tmp_path):
    result = run_python(runtime, python_image, tmp_path, ['main.py'], files={
        'mymath.py': 'def add(a, b):\n    return a + b\n',
        'main.py': 'import mymath\nprint("5 + 6 = %s" % mymath.add(5, 6))\n'})
    assert result.report.status == 'ok'
    assert output(tmp_path) == b'5 + 6 = 11\n'


def test_csv_reader_over_dev_input(runtime, python_image, tmp_path):
    data = tmp_path / 'data.csv'
    data.write_text('name,qty\napple,3\npear,4\n')
    script = ('import csv\n'
              'rows = list(csv.DictReader(open("/dev/input")))\n'
              'print(sum(int(r["qty"]) for r in rows))\n'
              'open("/dev/output", "w").write(",".join(r["name"] '
              'for r in rows))\n'
              'open("/tmp/scratch", "w").write("ok")\n')
    result = run_python_filter(runtime, python_image, tmp_path, script,
                               str(data))
    assert result.report.status == 'ok', output(tmp_path, 'stderr')
    assert output(tmp_path) == b'7\n'
    assert output(tmp_path, 'out') == b'apple,pear'


def test_python_memory_error_inside_guest(runtime, python_image, tmp_path):
    script = ('try:\n    x = bytearray(200 << 20)\n'
              'except MemoryError:\n    print("MemoryError")\n')
    result = run_python(runtime, python_image, tmp_path, ['-c', script],
                        memory=96 << 20)
    assert result.report.status == 'ok'
    assert output(tmp_path) == b'MemoryError\n'


def test_python_exit_code_and_stderr(runtime, python_image, tmp_path):
    result = run_python(runtime, python_image, tmp_path,
                        ['-c', 'import sys; sys.exit(3)'])
    assert (result.exit_status, result.report.retcode) == (0, 3)


def test_python_deterministic_runs_match(runtime, python_image, tmp_path):
    script = ('import random, time, os\n'
              'print(random.random(), time.time(), os.urandom(4).hex())\n')
    etags = set()
    for _ in range(2):
        result = run_python(runtime, python_image, tmp_path, ['-c', script],
                            etag_stdout=1, Deterministic=1, Seed=5)
        assert result.report.status == 'ok', output(tmp_path, 'stderr')
        etags.add(result.report.etag_of('/dev/stdout'))
    assert len(etags) == 1
    assert b' 0.0 ' in output(tmp_path)
