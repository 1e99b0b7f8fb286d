"""A guest cannot alter a read channel, nor reach anything but its channels,
nor add, remove or rename an entry of /dev.

Both walls are tested: the WASI guard alone (attacks refused with EACCES)
and the OS wall alone (guard disabled: the read-only bind mounts, or the
mode 0500 directories of a non-root process, refuse).  A write channel
copied back after the run is never read through a link.
"""

import os
import tempfile

import pytest

from zerocloud.runtime import guard, sandbox
from zerocloud.runtime.errors import SessionFailure
from zerocloud.runtime.manifest import Channel
from test.unit.runtime.helpers import (
    BIG, output, read_channel, run_python_filter, write_channel,
    write_manifest)

WASI_EACCES = 2
WASI_ENOENT = 44
WASI_EPERM = 63
ORIGINAL = b'swift object data\n'
ATTACKS = 'wtauro lszmf'.replace(' ', '')
#: Modes of dev_entries.wat that add, remove or rename a /dev entry.
DEV_ENTRY_ATTACKS = 'cCDkyhxnpq'


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


@pytest.fixture
def elsewhere(tmp_path):
    """A directory on another filesystem than ``tmp_path``, where a
    non-root write channel is copied back rather than hard linked."""
    other_fs = '/dev/shm'
    if not os.path.isdir(other_fs) or \
            os.stat(other_fs).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip('needs %s on another filesystem than %s'
                    % (other_fs, tmp_path))
    with tempfile.TemporaryDirectory(dir=other_fs) as folder:
        yield folder


#: Replaces the write channel by a relative symlink that climbs to the host.
LINK_OUTPUT_TO_HOST = '''import os
os.remove('/dev/output')
os.symlink('../' * 20 + 'etc/passwd', '/dev/output')
'''


def test_without_mount_namespace_output_copied_back_is_never_a_host_file(
        runtime, python_image, tmp_path, monkeypatch, elsewhere):
    """Non-root, a write channel on another filesystem is written in the
    run directory and copied to its host path after the run: a guest that
    swaps it for a symlink climbing out must not get a host file copied
    into its output."""
    monkeypatch.setattr(sandbox, 'private_mounts', lambda: False)
    host_output = os.path.join(elsewhere, 'out')
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', LINK_OUTPUT_TO_HOST],
        channels=[write_channel(host_output, '/dev/output')])
    runtime.run(manifest)
    with open(host_output, 'rb') as copied, open('/etc/passwd',
                                                 'rb') as passwd:
        assert passwd.readline() not in copied.read()


# ------------------------------------------------------------ /dev entries

def _dev_entries_run(runtime, wat_programs, tmp_path, mode):
    """Run dev_entries.wat with write channels /dev/output and
    /dev/out/peer (files ``out`` and ``peer`` in ``tmp_path``)."""
    manifest = write_manifest(
        tmp_path, wat_programs['dev_entries'], args=['dev_entries', mode],
        channels=[write_channel(str(tmp_path / 'out'), '/dev/output'),
                  write_channel(str(tmp_path / 'peer'), '/dev/out/peer')])
    return runtime.run(manifest)


def _assert_channels_untouched(tmp_path):
    for name in ('out', 'peer'):
        assert (tmp_path / name).read_bytes() == b''
    assert sorted(os.listdir(tmp_path)) == [
        'manifest', 'nvram', 'out', 'peer', 'stderr', 'stdout']


@pytest.mark.parametrize('mode', list(DEV_ENTRY_ATTACKS))
def test_guard_refuses_new_removed_or_renamed_dev_entries(
        runtime, wat_programs, tmp_path, mode):
    result = _dev_entries_run(runtime, wat_programs, tmp_path, mode)
    assert (result.exit_status, result.report.retcode) == (0, WASI_EACCES)
    _assert_channels_untouched(tmp_path)


def test_guard_refuses_a_call_it_cannot_check(runtime, wat_programs,
                                              tmp_path):
    """mkdir with a path filling all guest memory: the guard has no memory
    left to identify the path's folder, so it refuses."""
    result = _dev_entries_run(runtime, wat_programs, tmp_path, 'g')
    assert (result.exit_status, result.report.retcode) == (0, WASI_EACCES)
    _assert_channels_untouched(tmp_path)


@pytest.mark.parametrize('mode', list(DEV_ENTRY_ATTACKS))
@pytest.mark.parametrize('private', [True, False],
                         ids=['mount-namespace', 'folder-mode'])
def test_os_wall_alone_fixes_dev_entries(runtime, wat_programs, tmp_path,
                                         monkeypatch, mode, private):
    """Guard disabled: read-only bind mounts (root) or mode 0500 folders
    (any other user: root ignores folder modes) refuse."""
    if private and not sandbox.private_mounts():
        pytest.skip('needs root for the private mount namespace')
    if not private:
        if os.geteuid() == 0:
            pytest.skip('root ignores folder modes')
        monkeypatch.setattr(sandbox, 'private_mounts', lambda: False)
    monkeypatch.setattr(guard.RunGuard, '_identify',
                        lambda *args: (-1, -1))  # wall 1 protects nothing
    result = _dev_entries_run(runtime, wat_programs, tmp_path, mode)
    assert result.exit_status == 0, result.report.status
    assert result.report.retcode != 0
    _assert_channels_untouched(tmp_path)


@pytest.mark.parametrize('private', [True, False],
                         ids=['mount-namespace', 'no-mount-namespace'])
def test_channels_and_tmp_stay_writable(runtime, wat_programs, tmp_path,
                                        monkeypatch, private):
    """Both walls up: writing the channels (one in a subdirectory, as the
    ``connect`` edges /dev/out/<peer>) and creating a /tmp file work."""
    if private and not sandbox.private_mounts():
        pytest.skip('needs root for the private mount namespace')
    if not private:
        monkeypatch.setattr(sandbox, 'private_mounts', lambda: False)
    result = _dev_entries_run(runtime, wat_programs, tmp_path, 'w')
    assert (result.exit_status, result.report.retcode) == (0, 0)
    assert (tmp_path / 'out').read_bytes() == b'FILLED'
    assert (tmp_path / 'peer').read_bytes() == b'FILLED'


PY_DEV_ENTRIES = '''import os
calls = [
    lambda: open('/dev/junk', 'w'),
    lambda: os.mkdir('/dev/folder'),
    lambda: os.symlink('output', '/dev/alias'),
    lambda: os.link('/dev/output', '/dev/copy'),
    lambda: os.remove('/dev/output'),
    lambda: os.rename('/dev/output', '/dev/moved'),
    lambda: os.replace('/dev/input', '/dev/output'),
    lambda: os.rmdir('/dev/out'),
]
open('/tmp/made', 'w').write('scratch')
calls.append(lambda: os.replace('/tmp/made', '/dev/output'))
for call in calls:
    try:
        call()
        print('done')
    except PermissionError:
        print('refused')
print(sorted(os.listdir('/dev')), os.listdir('/dev/out'))
open('/dev/output', 'w').write('fine')
open('/dev/out/peer', 'w').write('edge')
'''


def test_python_guest_sees_and_keeps_only_its_channels_in_dev(
        runtime, python_image, tmp_path):
    data = tmp_path / 'object.data'
    data.write_bytes(ORIGINAL)
    manifest = write_manifest(
        tmp_path, python_image, ProgramMember='python',
        args=['python', '-c', PY_DEV_ENTRIES],
        channels=[read_channel(str(data), '/dev/input'),
                  write_channel(str(tmp_path / 'out'), '/dev/output'),
                  write_channel(str(tmp_path / 'peer'), '/dev/out/peer')])
    result = runtime.run(manifest)
    assert (result.exit_status, result.report.retcode) == (0, 0), \
        output(tmp_path, 'stderr')
    assert output(tmp_path).decode().splitlines() == ['refused'] * 9 + [
        "['input', 'nvram', 'out', 'output'] ['peer']"]
    assert output(tmp_path, 'out') == b'fine'
    assert output(tmp_path, 'peer') == b'edge'
    assert data.read_bytes() == ORIGINAL


# ------------------------------------------------------- copy-back (non-root)

def _copied_back_workspace(tmp_path, host_folder, alias):
    """A non-root workspace whose write channel ``alias`` (host file
    ``host_folder/out``) is copied back after the run; and its file."""
    channel = Channel(os.path.join(host_folder, 'out'), alias, 0, False,
                      0, 0, BIG, BIG)
    sandbox.prepare_host_channel(channel)
    workspace = sandbox.Workspace(str(tmp_path), 0)
    placed = workspace.add_write_channel(channel)
    assert workspace.copy_back, 'the channel was not placed as a copy'
    return workspace, placed


def test_copy_back_copies_the_placed_file(tmp_path, monkeypatch, elsewhere):
    monkeypatch.setattr(sandbox, 'private_mounts', lambda: False)
    workspace, placed = _copied_back_workspace(tmp_path, elsewhere,
                                               '/dev/out/peer')
    try:
        with open(placed, 'wb') as guest_output:
            guest_output.write(b'written by the guest')
        workspace.finish()
    finally:
        workspace.close()
    with open(os.path.join(elsewhere, 'out'), 'rb') as copied:
        assert copied.read() == b'written by the guest'


@pytest.mark.parametrize('alias,swapped', [
    ('/dev/output', 'output'), ('/dev/out/peer', 'out/peer'),
    ('/dev/out/peer', 'out')], ids=['file', 'file-in-folder', 'folder'])
def test_copy_back_never_follows_a_link(tmp_path, monkeypatch, elsewhere,
                                        alias, swapped):
    """The channel's file, or the folder holding it, swapped for a symlink
    to a host file (or a folder holding one): the run fails, nothing of
    that host file reaches the output."""
    monkeypatch.setattr(sandbox, 'private_mounts', lambda: False)
    host_secrets = tmp_path / 'host'
    host_secrets.mkdir()
    (host_secrets / 'peer').write_bytes(b'host secret')
    workspace, _ = _copied_back_workspace(tmp_path, elsewhere, alias)
    try:
        replaced = os.path.join(workspace.dev, swapped)
        os.rename(replaced, replaced + '.old')
        target = host_secrets if swapped == 'out' else host_secrets / 'peer'
        os.symlink(target, replaced)
        with pytest.raises(SessionFailure) as failure:
            workspace.finish()
    finally:
        workspace.close()
    assert (failure.value.status, failure.value.exit_status) == (
        'channel %s: replaced by the program' % alias, 1)
    with open(os.path.join(elsewhere, 'out'), 'rb') as copied:
        assert copied.read() == b''
