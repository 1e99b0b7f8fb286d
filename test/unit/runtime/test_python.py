"""CPython for WASI (the real Python system image) through Runtime.run."""

import io
import tarfile

from test.unit.runtime.helpers import (
    output, read_channel, run_python_filter, write_manifest)

SEED_SCRIPT = ('import sys\nprint("Hello from ZeroVM!")\n'
               'print("sys.platform is \'%s\'" % sys.platform)\n')


def _tar(path, files):
    with tarfile.open(str(path), 'w') as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def test_seed_script_from_image(runtime, python_image, tmp_path):
    image = _tar(tmp_path / 'script.tar', {'script.py': SEED_SCRIPT})
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', 'script.py'], fstab=[('/dev/image', '/', True)],
        channels=[read_channel(image, '/dev/image')])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        output(tmp_path, 'stderr')
    assert output(tmp_path) == (b"Hello from ZeroVM!\n"
                                b"sys.platform is 'wasi'\n")


def test_import_module_from_image_root(runtime, python_image, tmp_path):
    image = _tar(tmp_path / 'app.tar', {
        'mymath.py': 'def add(a, b):\n    return a + b\n',
        'main.py': 'import mymath\nprint("5 + 6 = %s" % mymath.add(5, 6))\n'})
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', 'main.py'], fstab=[('/dev/image', '/', True)],
        channels=[read_channel(image, '/dev/image')])
    result = runtime.run(manifest)
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
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', script], memory=96 << 20)
    result = runtime.run(manifest)
    assert result.report.status == 'ok'
    assert output(tmp_path) == b'MemoryError\n'


def test_python_exit_code_and_stderr(runtime, python_image, tmp_path):
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', 'import sys; sys.exit(3)'])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 3)


def test_python_deterministic_runs_match(runtime, python_image, tmp_path):
    script = ('import random, time, os\n'
              'print(random.random(), time.time(), os.urandom(4).hex())\n')
    etags = set()
    for _ in range(2):
        manifest = write_manifest(
            tmp_path, python_image, ProgramMember='python', etag_stdout=1,
            args=['python', '-c', script], Deterministic=1, Seed=5)
        result = runtime.run(manifest)
        assert result.report.status == 'ok', output(tmp_path, 'stderr')
        etags.add(result.report.etag_of('/dev/stdout'))
    assert len(etags) == 1
    assert b' 0.0 ' in output(tmp_path)
