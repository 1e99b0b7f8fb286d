"""A guest cannot alter a read channel, nor reach anything but its channels.

Both walls are tested: the WASI guard alone (attacks refused with EACCES)
and the OS wall alone (guard disabled: the read-only bind mount refuses).
"""

import os
import tempfile

import pytest

from zerocloud.runtime import guard, sandbox
from test.unit.runtime.helpers import (
    output, read_channel, run_python_filter, write_channel, write_manifest)

WASI_EACCES = 2
WASI_ENOENT = 44
WASI_EPERM = 63
ORIGINAL = b'swift object data\n'
ATTACKS = 'wtauro lszmf'.replace(' ', '')


def _setup(tmp_path, program, mode):
    data = tmp_path / 'object.data'
    data.write_bytes(ORIGINAL)
    data.chmod(0o600)
    os.utime(data, (1000000000, 1000000000))
    manifest = write_manifest(
        tmp_path, program, args=['attack', mode],
        channels=[read_channel(str(data), '/dev/input'),
                  write_channel(str(tmp_path / 'out'), '/dev/output')])
    return data, manifest


def _assert_intact(data):
    assert data.read_bytes() == ORIGINAL
    st = os.lstat(data)
    assert st.st_mtime == 1000000000
    assert st.st_nlink == 1
    assert oct(st.st_mode & 0o777) == oct(0o600)


@pytest.mark.parametrize('mode', list(ATTACKS))
def test_guard_refuses_changes_to_read_channel(runtime, wat_programs,
                                               tmp_path, mode):
    data, manifest = _setup(tmp_path, wat_programs['attacks'], mode)
    result = runtime.run(manifest)
    assert result.exit_status == 0, result.report.status
    if mode == 'z':  # a read-only descriptor: wasmtime itself refuses
        assert result.report.retcode != 0
    else:
        assert result.report.retcode == WASI_EACCES, mode
    _assert_intact(data)


@pytest.mark.parametrize('mode', list(ATTACKS))
def test_os_wall_alone_protects_read_channel(runtime, wat_programs, tmp_path,
                                             mode, monkeypatch):
    if not sandbox.private_mounts():
        pytest.skip('needs root for the private mount namespace')
    monkeypatch.setattr(guard.RunGuard, '_identify',
                        lambda *args: (-1, -1))  # wall 1 protects nothing
    data, manifest = _setup(tmp_path, wat_programs['attacks'], mode)
    result = runtime.run(manifest)
    assert result.exit_status == 0, result.report.status
    assert result.report.retcode != 0, mode
    _assert_intact(data)


def test_read_channel_readable_and_write_channel_writable(
        runtime, wat_programs, tmp_path):
    data = tmp_path / 'object.data'
    data.write_bytes(ORIGINAL * 1000)
    data.chmod(0o600)
    manifest = write_manifest(
        tmp_path, wat_programs['copy'],
        channels=[read_channel(str(data), '/dev/input'),
                  write_channel(str(tmp_path / 'out'), '/dev/output')])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0)
    assert output(tmp_path, 'out') == ORIGINAL * 1000


@pytest.mark.parametrize('mode,expected', [('d', WASI_EPERM),
                                           ('e', WASI_ENOENT)])
def test_host_files_are_unreachable(runtime, wat_programs, tmp_path, mode,
                                    expected):
    _, manifest = _setup(tmp_path, wat_programs['attacks'], mode)
    result = runtime.run(manifest)
    assert result.report.retcode == expected


PY_ESCAPES = r'''
import os, socket
results = []
for path in ("/etc/passwd", "/dev/../etc/passwd", "/../etc/passwd",
             "/tmp/../../etc/passwd", "/proc/self/environ"):
    try:
        open(path).read()
        results.append("READ " + path)
    except OSError:
        results.append("denied")
try:
    socket.socket().connect(("127.0.0.1", 22))
    results.append("SOCKET")
except Exception:
    results.append("denied")
print(sorted(os.listdir("/")), sorted(os.listdir("/dev")))
print(sorted(os.environ.items()))
print(results)
'''


def test_python_guest_sees_only_its_channels(runtime, python_image, tmp_path,
                                             monkeypatch):
    monkeypatch.setenv('ZEROCLOUD_SECRET', 'token')
    data = tmp_path / 'object.data'
    data.write_bytes(ORIGINAL)
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', PY_ESCAPES], env={'ONLY': 'this'},
        channels=[read_channel(str(data), '/dev/input')])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        output(tmp_path, 'stderr')
    lines = output(tmp_path).decode().splitlines()
    assert lines[0] == "[] ['input', 'nvram']"
    assert lines[1] == "[('ONLY', 'this')]"
    assert lines[2] == str(['denied'] * 6)


def test_python_guest_cannot_overwrite_input(runtime, python_image,
                                             tmp_path):
    data = tmp_path / 'object.data'
    data.write_bytes(ORIGINAL)
    data.chmod(0o600)
    script = ('import os\n'
              'for mode in ("w", "a", "r+"):\n'
              '    try: open("/dev/input", mode).write("X")\n'
              '    except OSError as e: print(e.errno)\n'
              'for call in (lambda: os.remove("/dev/input"),\n'
              '             lambda: os.rename("/dev/output", "/dev/input"),\n'
              '             lambda: os.truncate("/dev/input", 0)):\n'
              '    try: call()\n'
              '    except OSError as e: print(e.errno)\n'
              'open("/dev/output", "w").write("fine")\n')
    result = run_python_filter(runtime, python_image, tmp_path, script,
                               str(data))
    assert result.exit_status == 0
    assert output(tmp_path).split() == [b"%d" % WASI_EACCES] * 6
    assert output(tmp_path, 'out') == b'fine'
    assert data.read_bytes() == ORIGINAL


def test_without_mount_namespace_read_channels_are_copies(
        runtime, wat_programs, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, 'private_mounts', lambda: False)
    monkeypatch.setattr(guard.RunGuard, '_identify', lambda *args: (-1, -1))
    data, manifest = _setup(tmp_path, wat_programs['attacks'], 'w')
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0)  # wrote
    _assert_intact(data)  # ... into a per-run copy


def test_without_mount_namespace_big_read_channels_are_refused(
        runtime, wat_programs, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, 'private_mounts', lambda: False)
    monkeypatch.setattr(sandbox, 'MAX_COPIED_READ_CHANNEL', 4)
    data, manifest = _setup(tmp_path, wat_programs['attacks'], 'w')
    result = runtime.run(manifest)
    assert result.exit_status == 1  # EPERM
    assert result.report.status == ('channel /dev/input: read channel needs '
                                    'a private mount namespace (run as root)')
    _assert_intact(data)


#: Replaces the write channel by a relative symlink that climbs to the host.
LINK_OUTPUT_TO_HOST = '''import os
os.remove('/dev/output')
os.symlink('../' * 20 + 'etc/passwd', '/dev/output')
'''


def test_without_mount_namespace_output_copied_back_is_never_a_host_file(
        runtime, python_image, tmp_path, monkeypatch):
    """Non-root, a write channel on another filesystem is written in the
    run directory and copied to its host path after the run: a guest that
    swaps it for a symlink climbing out must not get a host file copied
    into its output."""
    other_fs = '/dev/shm'
    if not os.path.isdir(other_fs) or \
            os.stat(other_fs).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip('needs %s on another filesystem than %s'
                    % (other_fs, tmp_path))
    monkeypatch.setattr(sandbox, 'private_mounts', lambda: False)
    with tempfile.TemporaryDirectory(dir=other_fs) as elsewhere:
        host_output = os.path.join(elsewhere, 'out')
        manifest = write_manifest(
            tmp_path, python_image, ProgramMember='python',
            args=['python', '-c', LINK_OUTPUT_TO_HOST],
            channels=[write_channel(host_output, '/dev/output')])
        runtime.run(manifest)
        with open(host_output, 'rb') as copied, open('/etc/passwd',
                                                     'rb') as passwd:
            assert passwd.readline() not in copied.read()
