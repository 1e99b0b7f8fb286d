"""Attacks on the sandbox wall itself, as a tenant's program would try them.

Issue #8's attack pass found the wall holding; these tests keep it so
through later rewrites (two of them found holes since closed, marked
below).  Each
POSTs a real job (a Python script on the ``file://python:python`` system
image, or a WebAssembly program written as WAT and stored as a
``swift://`` executable, see :mod:`.lab`) that tries one escape, and checks
what the guest saw and what became of the host and the store:

- ``test_host_files_are_absent_from_the_guest``: read ``/etc/passwd``,
  Swift's and the object server's own config and log,
  ``/proc/self/environ``, ``/proc/self/maps``, ``/proc/1/cmdline``; list
  ``/root``, ``/proc``, ``/etc``.
- ``test_dot_dot_stops_at_every_root``: climb with ``..`` out of ``/dev``,
  ``/tmp`` and the image root.
- ``test_symlinks_made_by_the_guest_lead_nowhere``: symlinks in ``/tmp`` to
  ``/etc/passwd``, ``../../..`` and ``..``.
- ``test_link_members_of_a_zapp_are_refused``: a zapp whose member is a
  symlink or hard link to ``/etc/passwd`` or ``../../..``.
- ``test_system_map_link_is_not_followed``: ``boot/system.map`` as a link to
  ``/etc/passwd``.
- ``test_zapp_members_cannot_land_outside_the_image``: members named
  ``../../…/tmp/x`` or ``/tmp/x`` (a write to the host while unpacking).
- ``test_python_cannot_change_its_inputs``,
  ``test_wasi_calls_cannot_change_its_inputs``: a stored object bound as
  ``/dev/input`` and stdin opened for writing, appending, truncating;
  unlinked, renamed, re-timed; ``path_open`` with write rights,
  ``fd_write`` and ``fd_filestat_set_size`` on its descriptors.
- ``test_guest_cannot_create_files_beside_its_channels``: new files in a
  writable ``/dev``, which no scratch or output limit counts.  **Was a
  hole**: the guest wrote 80 MiB there and the node ended ``ok``.
- ``test_guest_cannot_swap_its_channels``: remove, rename or replace the
  output channel (with a ``/tmp`` file, or a symlink climbing to a host
  file, which a non-root copy-back used to follow).
- ``test_python_sockets_reach_nothing``, ``test_wasi_sockets_are_refused``:
  connect to the proxy and to a listening socket of the test; ``sock_*``
  calls on every descriptor; importing a socket-opening host call.
- ``test_environment_carries_no_credentials_or_host_variables``: the
  caller's token (sent in every credential header) and the servers'
  variables in ``os.environ`` and ``/dev/nvram``.
- ``test_python_cannot_start_threads_or_processes``,
  ``test_webassembly_threads_are_refused``: threads, subprocesses, fork,
  exec; ``wasi::thread-spawn`` and a shared memory.

Bombs (memory, time, scratch) are in ``test_attack_sandbox_limits``.
"""

import configparser
import io
import json
import os
import socket
import tarfile
import uuid
from typing import Dict

import pytest
import requests

from .helpers import Account, zapp
from .lab import PRECIOUS, WASI_FD_WRITE, WAT_PRINT, Lab, ok_lines

#: Errno values as the guest sees them (WASI numbering).
WASI_EACCES = 2
WASI_EBADF = 8
WASI_ENOTSOCK = 57
#: What Python in the guest gets for a path outside every preopen.
OUTSIDE = 'PermissionError'


@pytest.fixture(scope='module')
def lab(cluster) -> Lab:
    return Lab(Account(cluster))


def host_secrets(cluster) -> Dict[str, str]:
    """Host text a guest must never print: label -> a distinctive line."""
    with open('/etc/passwd') as passwd:
        secrets = {'/etc/passwd': passwd.readline().strip()}
    swift_conf = configparser.ConfigParser()
    swift_conf.read(os.path.join(cluster.etc_dir, 'swift.conf'))
    secrets['swift hash prefix'] = swift_conf['swift-hash'][
        'swift_hash_path_prefix']
    secrets['object server config'] = 'bind_port = %d' % (
        cluster.ports['object-server-1'])
    return secrets


def assert_no_host_text(cluster, text: str) -> None:
    for label, secret in host_secrets(cluster).items():
        assert secret not in text, label


# Each probe prints "<what> <outcome>", the outcome being the exception
# class the guest got, or what it got back (for reads, never to happen).
PROBE = '''import os

def attempt(call):
    try:
        return 'got ' + repr(call())
    except Exception as err:
        return type(err).__name__

'''

# ------------------------------------------------------- host files, .., links

HOST_READER = PROBE + '''
for path in %(files)r:
    print(path, attempt(lambda: open(path, 'rb').read()))
for path in %(folders)r:
    print(path, attempt(lambda: os.listdir(path)))
print('/', sorted(os.listdir('/')))
'''


def test_host_files_are_absent_from_the_guest(cluster, lab):
    """Read host files, the server's own config and /proc from the guest."""
    files = ['/etc/passwd', '/etc/shadow', '/etc/swift/swift.conf',
             os.path.join(cluster.etc_dir, 'swift.conf'),
             os.path.join(cluster.etc_dir, 'object-server-1.conf'),
             cluster.log_path('object-server-1'),
             '/proc/self/environ', '/proc/self/maps', '/proc/1/cmdline']
    folders = ['/root', '/proc', '/etc', cluster.workdir]
    resp = lab.run_python(HOST_READER % {'files': files, 'folders': folders})
    assert ok_lines(resp) == (
        ['%s FileNotFoundError' % path for path in files + folders] +
        ["/ ['main.py']"])
    assert_no_host_text(cluster, resp.text)


def test_dot_dot_stops_at_every_root(cluster, lab):
    """Climb out of /dev, /tmp and the image root with '..'."""
    files = ['/../etc/passwd', '../../../etc/passwd', '/dev/../etc/passwd',
             '/dev/../../../../../../etc/passwd', '/tmp/../etc/passwd',
             '/tmp/../../../../../../etc/passwd', 'dev/../../etc/passwd']
    folders = ['/..', '..', '/dev/..', '/tmp/..', '/tmp/../..']
    resp = lab.run_python(HOST_READER % {'files': files, 'folders': folders})
    assert ok_lines(resp) == (
        ['%s %s' % (path, OUTSIDE) for path in files + folders] +
        ["/ ['main.py']"])
    assert_no_host_text(cluster, resp.text)


GUEST_LINKS = PROBE + '''
print('absolute', attempt(lambda: os.symlink('/etc/passwd', '/tmp/abs')))
print('upwards', attempt(lambda: os.symlink('../../../../../../etc/passwd',
                                             '/tmp/up')))
print('read upwards', attempt(lambda: open('/tmp/up', 'rb').read()))
print('parent', attempt(lambda: os.symlink('..', '/tmp/parent')))
print('list parent', attempt(lambda: os.listdir('/tmp/parent')))
print('read through parent', attempt(
    lambda: open('/tmp/parent/etc/passwd', 'rb').read()))
'''


def test_symlinks_made_by_the_guest_lead_nowhere(cluster, lab):
    """Make symlinks in /tmp to /etc/passwd, ../../.. and .., follow them."""
    resp = lab.run_python(GUEST_LINKS)
    assert ok_lines(resp) == [
        'absolute ' + OUTSIDE,
        'upwards got None',   # a dangling link may be made ...
        'read upwards ' + OUTSIDE,   # ... but never followed out
        'parent got None',
        'list parent ' + OUTSIDE,
        'read through parent ' + OUTSIDE]
    assert_no_host_text(cluster, resp.text)


ZAPP_MAP = json.dumps([{
    'name': 'linker',
    'exec': {'path': 'file://python:python', 'args': 'main.py'},
    'devices': [{'name': 'python'}, {'name': 'stdout'}]}])
LINK_READER = '''import os
for name in sorted(os.listdir('/')):
    print(name, open(name, 'rb').read() if os.path.isfile(name) else '')
'''


def tar_with_links(files: Dict[str, str],
                   links: Dict[str, tuple]) -> bytes:
    """A tar of ``files`` plus ``{name: (tar link type, target)}``."""
    buf = io.BytesIO(zapp(files))
    with tarfile.open(fileobj=buf, mode='a') as tar:
        for name, (kind, target) in links.items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def post_tar(account: Account, body: bytes) -> requests.Response:
    return account.execute(body, headers={
        'Content-Type': 'application/x-tar'})


@pytest.mark.parametrize('kind,target', [
    (tarfile.SYMTYPE, '/etc/passwd'),
    (tarfile.SYMTYPE, '../../../../../../../../etc/passwd'),
    (tarfile.SYMTYPE, '../../..'),
    (tarfile.LNKTYPE, '/etc/passwd'),
], ids=['symlink-to-host', 'symlink-upwards', 'symlink-to-parent',
        'hardlink-to-host'])
def test_link_members_of_a_zapp_are_refused(cluster, lab, kind, target):
    """POST a zapp whose member links to a host file or climbs upwards."""
    resp = post_tar(lab.account, tar_with_links(
        {'boot/system.map': ZAPP_MAP, 'main.py': LINK_READER},
        {'escape': (kind, target)}))
    assert resp.status_code == 422, resp.text
    assert resp.headers['X-Nexe-Status'] == (
        'image /dev/image: link member escape refused')
    assert_no_host_text(cluster, resp.text)


@pytest.mark.parametrize('kind', [tarfile.SYMTYPE, tarfile.LNKTYPE],
                         ids=['symlink', 'hardlink'])
def test_system_map_link_is_not_followed(lab, kind):
    """POST a zapp whose boot/system.map links to /etc/passwd."""
    resp = post_tar(lab.account, tar_with_links(
        {'main.py': LINK_READER},
        {'boot/system.map': (kind, '/etc/passwd')}))
    assert (resp.status_code, resp.text) == (
        400, 'System boot map was not found in request')


@pytest.mark.parametrize('prefix,refusal', [
    ('../' * 16, 'member name with ..'),
    ('/', 'absolute member name'),
], ids=['dot-dot', 'absolute'])
def test_zapp_members_cannot_land_outside_the_image(lab, prefix, refusal):
    """POST a zapp with a member that would unpack into the host's /tmp."""
    planted = '/tmp/zerocloud-planted-%s' % uuid.uuid4().hex
    member = prefix + planted.lstrip('/')
    resp = post_tar(lab.account, zapp({
        'boot/system.map': ZAPP_MAP, 'main.py': 'print("ran")\n',
        member: 'planted by a guest\n'}))
    assert resp.status_code == 422, resp.text
    assert resp.headers['X-Nexe-Status'] == 'image /dev/image: %s %s' % (
        refusal, member)
    assert not os.path.lexists(planted)


# ------------------------------------------------------------ writing inputs

INPUT_WRITER = PROBE + '''
attacks = [
    ('write', lambda: open('/dev/input', 'w').write('X')),
    ('append', lambda: open('/dev/input', 'a').write('X')),
    ('update', lambda: open('/dev/input', 'r+').write('X')),
    ('truncate', lambda: os.truncate('/dev/input', 0)),
    ('remove', lambda: os.remove('/dev/input')),
    ('rename', lambda: os.rename('/dev/input', '/dev/moved')),
    ('replace', lambda: os.replace('/dev/output', '/dev/input')),
    ('link', lambda: os.link('/dev/input', '/dev/linked')),
    ('retime', lambda: os.utime('/dev/input', (0, 0))),
    ('write stdin', lambda: os.write(0, b'X')),
    ('truncate stdin', lambda: os.ftruncate(0, 0)),
]
for name, call in attacks:
    print(name, attempt(call))
print('next to', os.environ.get('LOCAL_PATH_INFO'))
open('/dev/output', 'w').write('written')
'''


def test_python_cannot_change_its_inputs(lab):
    """Open, truncate, remove, rename, re-time a bound object from Python."""
    precious_etag = lab.precious_etag()
    resp = lab.run_python(INPUT_WRITER, lab.precious_devices() + [
        {'name': 'output', 'path': lab.url('python-output')}])
    refused = ['%s PermissionError' % name for name in (
        'write', 'append', 'update', 'truncate', 'remove', 'rename',
        'replace', 'link', 'retime')]
    assert ok_lines(resp) == refused + [
        'write stdin OSError', 'truncate stdin OSError',
        'next to /%s/%s' % (lab.account.name, lab.object_path(PRECIOUS))]
    # /dev was writable (the output is there), yet the input is intact.
    assert lab.account.get(lab.object_path('python-output')).content == \
        b'written'
    lab.assert_precious_intact(precious_etag)


#: Prints the errno of each call in ``WASI_INPUT_ATTACKS`` order.  Preopen
#: 4 is /dev; the descriptor path_open returns is kept at 16.
WASI_INPUT_WRITER = '''(module %s
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size"
    (func $set_size (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "input")
  (data (i32.const 1040) "HACKED")
  %s
  (func $open_input (param $oflags i32) (param $rights i64)
                    (param $fdflags i32) (result i32)
    (call $path_open (i32.const 4) (i32.const 0) (i32.const 1024)
      (i32.const 5) (local.get $oflags) (local.get $rights) (i64.const 0)
      (local.get $fdflags) (i32.const 16)))
  (func $write (param $fd i32) (result i32)
    (i32.store (i32.const 32) (i32.const 1040))
    (i32.store (i32.const 36) (i32.const 6))
    (call $fd_write (local.get $fd) (i32.const 32) (i32.const 1)
                    (i32.const 40)))
  (func (export "_start")
    ;; rights: fd_read 2, fd_write 64; oflags: trunc 8; fdflags: append 1
    (call $print (call $open_input (i32.const 0) (i64.const 64) (i32.const 0)))
    (call $print (call $open_input (i32.const 8) (i64.const 2) (i32.const 0)))
    (call $print (call $open_input (i32.const 0) (i64.const 64) (i32.const 1)))
    (call $print (call $write (i32.const 0)))
    (call $print (call $set_size (i32.const 0) (i64.const 0)))
    (call $print (call $open_input (i32.const 0) (i64.const 2) (i32.const 0)))
    (call $print (call $write (i32.load (i32.const 16))))
    (call $print (call $set_size (i32.load (i32.const 16)) (i64.const 0)))))
''' % (WASI_FD_WRITE, WAT_PRINT)
WASI_INPUT_ATTACKS = [
    'path_open with fd_write right', 'path_open with O_TRUNC',
    'path_open for append', 'fd_write on stdin', 'set_size on stdin',
    'path_open read-only', 'fd_write on the read-only fd',
    'set_size on the read-only fd']


def test_wasi_calls_cannot_change_its_inputs(lab):
    """path_open with write rights, fd_write and set_size on a bound object."""
    precious_etag = lab.precious_etag()
    resp = lab.run_wasm(WASI_INPUT_WRITER, lab.precious_devices() + [
        {'name': 'output', 'path': lab.url('wasm-output')}])
    errnos = dict(zip(WASI_INPUT_ATTACKS, map(int, ok_lines(resp))))
    assert len(errnos) == len(WASI_INPUT_ATTACKS), resp.text
    assert errnos.pop('path_open read-only') == 0   # reading is fine
    for attack in WASI_INPUT_ATTACKS[:3]:
        assert errnos.pop(attack) == WASI_EACCES, attack
    for attack in ('fd_write on stdin', 'set_size on stdin',
                   'fd_write on the read-only fd'):
        assert errnos.pop(attack) == WASI_EBADF, attack
    assert errnos.pop('set_size on the read-only fd') != 0
    lab.assert_precious_intact(precious_etag)


DEV_FILLER = PROBE + '''
def fill():
    chunk = b'x' * (1 << 20)
    with open('/dev/extra', 'wb') as extra:
        for _ in range(80):   # more than the 64 MiB scratch cap
            extra.write(chunk)
    return os.path.getsize('/dev/extra')

print('create', attempt(fill))
print('mkdir', attempt(lambda: os.mkdir('/dev/folder')))
print('symlink', attempt(lambda: os.symlink('output', '/dev/alias')))
print(sorted(os.listdir('/dev')))
'''


def test_guest_cannot_create_files_beside_its_channels(lab):
    """Write 80 MiB into a new /dev file that no limit counts.

    A node with a write channel in /dev gets a writable /dev; files made
    there beside the channels are counted by neither the scratch cap nor
    the output limits, so they fill the object server's device (up to the
    1 GiB file-size limit per file, any number of files, until the node's
    timeout).  /dev must hold exactly the node's channels.
    """
    resp = lab.run_python(DEV_FILLER, [
        {'name': 'output', 'path': lab.url('filler-output')}])
    assert ok_lines(resp) == [
        'create ' + OUTSIDE, 'mkdir ' + OUTSIDE, 'symlink ' + OUTSIDE,
        "['image', 'nvram', 'output', 'python']"]


CHANNEL_SWAPPER = PROBE + '''
open('/tmp/decoy', 'w').write('decoy')
attacks = [
    ('remove', lambda: os.remove('/dev/output')),
    ('rename', lambda: os.rename('/dev/output', '/dev/moved')),
    ('replace', lambda: os.replace('/tmp/decoy', '/dev/output')),
    ('link over', lambda: os.symlink('../' * 20 + 'etc/passwd',
                                     '/dev/output')),
]
for name, call in attacks:
    print(name, attempt(call))
open('/dev/output', 'w').write('written')
'''


def test_guest_cannot_swap_its_channels(lab):
    """Remove, rename, replace the output; put a symlink in its place."""
    resp = lab.run_python(CHANNEL_SWAPPER, [
        {'name': 'output', 'path': lab.url('swapper-output')}])
    assert ok_lines(resp) == ['%s %s' % (name, OUTSIDE) for name in (
        'remove', 'rename', 'replace', 'link over')]
    assert lab.account.get(lab.object_path('swapper-output')).content == \
        b'written'


# --------------------------------------------------------------- the network

SOCKET_USER = PROBE + '''import socket, urllib.request
for port in %(ports)r:
    print(port, 'socket', attempt(lambda: socket.socket(
        socket.AF_INET, socket.SOCK_STREAM).connect(('127.0.0.1', port))))
    print(port, 'create_connection', attempt(
        lambda: socket.create_connection(('127.0.0.1', port), timeout=2)))
    print(port, 'urllib', attempt(lambda: urllib.request.urlopen(
        'http://127.0.0.1:%%d/info' %% port, timeout=2).read()))
'''


def test_python_sockets_reach_nothing(cluster, lab):
    """Connect to the proxy and to a listening socket of the test."""
    with socket.create_server(('127.0.0.1', 0)) as listener:
        ports = [cluster.proxy_port, listener.getsockname()[1]]
        resp = lab.run_python(SOCKET_USER % {'ports': ports})
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()   # nobody connected
    assert ok_lines(resp) == [
        line % port for port in ports for line in (
            '%d socket OSError', '%d create_connection AttributeError',
            '%d urllib AttributeError')]


#: sock_accept, sock_recv, sock_send, sock_shutdown on descriptors 0 to 6
#: (stdio, the /, /dev and /tmp preopens, one past them): each errno.
WASI_SOCKET_USER = '''(module %s
  (import "wasi_snapshot_preview1" "sock_accept"
    (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv"
    (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send"
    (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown"
    (func $shutdown (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  %s
  (func (export "_start")
    (local $fd i32)
    (i32.store (i32.const 128) (i32.const 1024))
    (i32.store (i32.const 132) (i32.const 16))
    (loop $each
      (call $print (call $accept (local.get $fd) (i32.const 0)
                                 (i32.const 16)))
      (call $print (call $recv (local.get $fd) (i32.const 128) (i32.const 1)
                               (i32.const 0) (i32.const 20) (i32.const 24)))
      (call $print (call $send (local.get $fd) (i32.const 128) (i32.const 1)
                               (i32.const 0) (i32.const 20)))
      (call $print (call $shutdown (local.get $fd) (i32.const 2)))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $fd) (i32.const 7))))))
''' % (WASI_FD_WRITE, WAT_PRINT)
SOCKET_OPENER = '''(module
  (import "wasi_snapshot_preview1" "sock_open"
    (func $sock_open (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sock_open (i32.const 1) (i32.const 1) (i32.const 0)))))
'''


def test_wasi_sockets_are_refused(lab):
    """sock_* calls on every descriptor; import a socket-opening call."""
    resp = lab.run_wasm(WASI_SOCKET_USER, lab.precious_devices())
    assert [int(line) for line in ok_lines(resp)] == (
        [WASI_ENOTSOCK] * 4 * 6 + [WASI_EBADF] * 4)
    resp = lab.run_wasm(SOCKET_OPENER)
    assert resp.status_code == 422, resp.text
    assert resp.headers['X-Nexe-Status'] == (
        'program is not a WASI command: unknown import: '
        '`wasi_snapshot_preview1::sock_open` has not been defined')


# ------------------------------------------------------------ the environment

ENVIRONMENT_DUMP = '''import json, os
print(json.dumps(dict(os.environ)))
print(json.dumps(open('/dev/nvram').read()))
'''


def test_environment_carries_no_credentials_or_host_variables(cluster, lab):
    """Look for the caller's token and the host's variables in the guest."""
    token = lab.account.token
    resp = lab.run_python(ENVIRONMENT_DUMP, headers={
        'X-Storage-Token': token, 'X-Service-Token': token,
        'Authorization': 'Bearer ' + token,
        'Proxy-Authorization': 'Bearer ' + token,
        'Cookie': 'session=' + token})
    environ_line, nvram_line = ok_lines(resp)
    environ, nvram = json.loads(environ_line), json.loads(nvram_line)
    # The request did reach the guest ...
    assert environ['REQUEST_METHOD'] == 'POST'
    assert environ['REMOTE_USER'].startswith('test,test:tester,AUTH_test')
    # ... without its credentials or anything of the servers' environment.
    for key, value in environ.items():
        assert token not in key + value, key
        assert not key.startswith(('SWIFT', 'OS_', 'ST_')), key
    assert {'HOME', 'PATH', 'USER', 'PWD', 'SHELL', 'PYTHONPATH',
            'LD_PRELOAD'}.isdisjoint(environ)
    host_values = {os.environ.get(name) for name in ('PATH', 'HOME')}
    assert host_values.isdisjoint(environ.values())
    assert token not in nvram
    assert cluster.workdir not in nvram and cluster.workdir not in \
        environ_line


# ---------------------------------------------------- threads and processes

SPAWNER = PROBE + '''import subprocess, threading
ran = []
print('thread', attempt(lambda: threading.Thread(
    target=ran.append, args=['thread']).start()))
print('subprocess', attempt(lambda: subprocess.run(
    ['/bin/sh', '-c', 'echo escaped'], check=True)))
print('fork', attempt(lambda: os.fork()))
print('exec', attempt(lambda: os.execv('/bin/sh', ['sh'])))
print('ran', ran)
'''


def test_python_cannot_start_threads_or_processes(lab):
    """Start a thread, a subprocess, fork and exec from Python."""
    resp = lab.run_python(SPAWNER)
    assert ok_lines(resp) == ['thread RuntimeError', 'subprocess OSError',
                              'fork AttributeError', 'exec AttributeError',
                              'ran []']


THREAD_SPAWNER = '''(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $spawn (i32.const 0)))))
'''
SHARED_MEMORY = '''(module
  (memory (export "memory") 1 1 shared)
  (func (export "_start")))
'''


def test_webassembly_threads_are_refused(lab):
    """Import wasi::thread-spawn; declare a shared memory for threads."""
    resp = lab.run_wasm(THREAD_SPAWNER)
    assert resp.status_code == 422, resp.text
    assert resp.headers['X-Nexe-Status'] == (
        'program is not a WASI command: unknown import: '
        '`wasi::thread-spawn` has not been defined')
    resp = lab.run_wasm(SHARED_MEMORY)
    assert resp.status_code == 422, resp.text
    assert resp.headers['X-Nexe-Status'].startswith(
        'program failed validation: ')
