"""The zerovm command: report modes, exit status, usage errors."""

import errno
import subprocess
import sys

from zerocloud.runtime import cli
from test.unit.runtime.helpers import write_manifest


def test_report_on_stdout_and_exit_status(wat_programs, tmp_path, capsys):
    manifest = write_manifest(tmp_path, wat_programs['exit7'])
    assert cli.main([manifest]) == 0
    lines = capsys.readouterr().out.split('\n')
    assert lines[:3] == ['0', '0', '7'] and lines[5] == 'ok'


def test_framed_report_and_skip_validation(wat_programs, tmp_path, capsys):
    manifest = write_manifest(tmp_path, wat_programs['hello'])
    assert cli.main(['-s', '-t', '3', '-M', manifest]) == 0
    out = capsys.readouterr().out
    length = int(out[:8], 16)
    assert len(out) == 8 + length and out[8:].startswith('2\n0\n0\n')


def test_syslog_mode_and_trace(wat_programs, tmp_path, capsys):
    manifest = write_manifest(tmp_path, wat_programs['hello'])
    trace = tmp_path / 'trace'
    assert cli.main(['-t1', '-v', '3', '-P', '-Q', '-T', str(trace),
                     manifest]) == 0
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith('0; 0; 0; disabled; ')
    assert 'session end: ok' in trace.read_text()


def test_validate_only(wat_programs, tmp_path, capsys):
    manifest = write_manifest(tmp_path, wat_programs['hello'])
    assert cli.main(['-F', manifest]) == 0
    assert (tmp_path / 'stdout').read_bytes() == b''


def test_failure_exit_status(tmp_path, capsys):
    assert cli.main([str(tmp_path / 'missing')]) == errno.ENOENT
    assert capsys.readouterr().out.split('\n')[5].startswith(
        'cannot open manifest')


def test_bad_usage(tmp_path, capsys):
    for argv in ([], ['a', 'b'], ['-x', 'm'], ['-t', '9', 'm'],
                 ['-T', 'relative', 'm']):
        assert cli.main(argv) == errno.EINVAL
        assert 'Usage: ' in capsys.readouterr().err


def test_console_script_never_prints_traceback(tmp_path):
    manifest = tmp_path / 'manifest'
    manifest.write_bytes(b'\xff\xfe\x00garbage = = =\nVersion=1\n')
    done = subprocess.run([sys.executable, '-m', 'zerocloud.runtime.cli',
                           str(manifest)], capture_output=True, text=True)
    assert done.returncode == errno.EFAULT
    assert 'Traceback' not in done.stderr + done.stdout
