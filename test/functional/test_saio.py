"""The all-in-one cluster, exercised through real clients (swift CLI, curl,
HTTP) and the ``zerocloud-saio`` launcher run as a separate process."""

import configparser
import hashlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests

from zerocloud import saio
from zerocloud.saio import (
    OBJECT_SERVER_COUNT, PART_POWER, Cluster, LaunchError)

LAUNCH_TIMEOUT = 60
EXPORT_PREFIXES = ('export PATH=', 'export ST_AUTH=', 'export OS_AUTH_TOKEN=',
                   'export OS_STORAGE_URL=')


def run_swift(cluster, *args, cwd=None, user='tester'):
    result = subprocess.run(['swift', *args], env=cluster.env_for(user),
                            cwd=cwd, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def auth_headers(cluster, user='tester'):
    return {'X-Auth-Token': cluster.token(user)}


def test_swift_cli_upload_list_and_download_round_trip(cluster, tmp_path):
    payload = os.urandom(70000)
    (tmp_path / 'hello.bin').write_bytes(payload)
    run_swift(cluster, 'post', 'example')
    run_swift(cluster, 'upload', 'example', 'hello.bin', cwd=tmp_path)
    listing = run_swift(cluster, 'list', 'example').decode().split()
    assert 'hello.bin' in listing
    out = tmp_path / 'back.bin'
    run_swift(cluster, 'download', 'example', 'hello.bin', '-o', str(out))
    assert out.read_bytes() == payload


def test_curl_with_os_token_and_storage_url(cluster):
    env = dict(os.environ, OS_AUTH_TOKEN=cluster.token(),
               OS_STORAGE_URL=cluster.storage_url())
    result = subprocess.run(
        ['bash', '-c', 'curl -s -i -H "X-Auth-Token: $OS_AUTH_TOKEN" '
         '"$OS_STORAGE_URL"'], env=env, capture_output=True, timeout=30)
    status_line = result.stdout.split(b'\r\n', 1)[0].decode()
    assert status_line.split()[1].startswith('2'), status_line


def test_info_lists_proxy_query(cluster):
    info = requests.get(cluster.proxy_url + '/info', timeout=10).json()
    assert 'proxy_query' in info
    assert [p['name'] for p in info['swift']['policies']] == ['Policy-0']


def test_each_request_is_logged_once_to_the_proxy_log(cluster):
    marker = uuid.uuid4().hex
    requests.get(cluster.proxy_url + '/info', params={'probe': marker},
                 timeout=10)
    deadline = time.monotonic() + 5
    while True:
        with open(cluster.log_path('proxy-server')) as log:
            hits = [line for line in log if marker in line]
        if hits or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(hits) == 1, hits


def expected_object_dir(cluster, account, container, obj):
    """objects/<part>/<suffix>/<hash> from the cluster's own hash settings.

    Servers that ignored ``swift_dir`` would hash without this prefix/suffix
    and store the object elsewhere.
    """
    conf = configparser.ConfigParser()
    conf.read(os.path.join(cluster.etc_dir, 'swift.conf'))
    prefix = conf.get('swift-hash', 'swift_hash_path_prefix').encode()
    suffix = conf.get('swift-hash', 'swift_hash_path_suffix').encode()
    name = ('/%s/%s/%s' % (account, container, obj)).encode()
    digest = hashlib.md5(prefix + name + suffix).hexdigest()
    part = int(digest[:8], 16) >> (32 - PART_POWER)
    return os.path.join('objects', str(part), digest[-3:], digest)


def test_object_put_lands_on_three_of_four_object_servers(cluster):
    url = cluster.storage_url() + '/placement'
    assert requests.put(url, headers=auth_headers(cluster),
                        timeout=10).status_code in (201, 202)
    resp = requests.put(url + '/obj', data=b'replicated',
                        headers=auth_headers(cluster), timeout=10)
    assert resp.status_code == 201
    object_dir = expected_object_dir(cluster, 'AUTH_test', 'placement', 'obj')
    holders = []
    for node in range(1, OBJECT_SERVER_COUNT + 1):
        path = os.path.join(cluster.device_path(node), object_dir)
        if os.path.isdir(path) and any(name.endswith('.data')
                                       for name in os.listdir(path)):
            holders.append(node)
    assert len(holders) == 3, holders


def test_non_admin_is_denied_and_accounts_are_separate(cluster):
    url = cluster.storage_url('tester') + '/private'
    assert requests.put(url, headers=auth_headers(cluster),
                        timeout=10).status_code in (201, 202)
    assert requests.put(url + '/secret', data=b'x',
                        headers=auth_headers(cluster),
                        timeout=10).status_code == 201
    for target in (url, url + '/secret'):
        resp = requests.get(target, headers=auth_headers(cluster, 'tester3'),
                            timeout=10)
        assert resp.status_code == 403, target
    assert cluster.storage_url('tester2').endswith('/v1/AUTH_test2')
    resp = requests.get(url, headers=auth_headers(cluster, 'tester2'),
                        timeout=10)
    assert resp.status_code == 403
    own = requests.get(cluster.storage_url('tester2'),
                       headers=auth_headers(cluster, 'tester2'), timeout=10)
    assert own.status_code in (200, 204)
    assert 'private' not in own.text.split()


# -- the launcher as a process ------------------------------------------------

def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def processes_mentioning(text):
    """(pid, cmdline) of live processes whose command line contains text."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as cmdline:
                args = cmdline.read().replace(b'\0', b' ').decode(
                    'utf-8', 'replace')
        except OSError:
            continue
        if text in args:
            found.append((int(entry), args))
    return found


def launch(workdir, port, cwd):
    """Start the launcher; cwd keeps the import independent of the repo."""
    return subprocess.Popen(
        [sys.executable, '-m', 'zerocloud.saio', '--port', str(port),
         '--workdir', workdir, '--quiet'],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_exports(proc):
    """The four export lines, or a failure carrying the launcher's stderr."""
    output = b''
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (output.count(b'\n') < len(EXPORT_PREFIXES)
               and time.monotonic() < deadline):
            if selector.select(timeout=0.5):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                output += chunk
    lines = output.decode().splitlines()
    assert len(lines) == len(EXPORT_PREFIXES), (
        lines, proc.poll(), stop_and_read_stderr(proc))
    return lines


def stop_and_read_stderr(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=30)[1].decode()
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1].decode()


def exported(lines):
    values = {}
    for line in lines:
        for assignment in line[len('export '):].split():
            key, _sep, value = assignment.partition('=')
            values[key] = value
    return values


def test_launcher_prints_exports_stops_on_sigint_and_keeps_data(
        scratch_dir, tmp_path):
    workdir = os.path.join(scratch_dir, 'saio')
    port = free_port()
    proc = launch(workdir, port, tmp_path)
    try:
        lines = read_exports(proc)
        assert [line.split('=', 1)[0] + '=' for line in lines] == \
            list(EXPORT_PREFIXES)
        env = exported(lines)
        assert env['ST_AUTH'] == 'http://127.0.0.1:%d/auth/v1.0' % port
        assert env['ST_USER'] == 'test:tester' and env['ST_KEY'] == 'testing'
        assert env['PATH'] == os.path.dirname(sys.executable) + ':$PATH'
        obj_url = env['OS_STORAGE_URL'] + '/kept/obj'
        headers = {'X-Auth-Token': env['OS_AUTH_TOKEN']}
        assert requests.put(env['OS_STORAGE_URL'] + '/kept', headers=headers,
                            timeout=10).status_code in (201, 202)
        assert requests.put(obj_url, data=b'survives', headers=headers,
                            timeout=10).status_code == 201
        assert len(processes_mentioning(workdir)) >= OBJECT_SERVER_COUNT + 4
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
        assert processes_mentioning(workdir) == []

        ring_path = os.path.join(workdir, 'etc', 'object.ring.gz')
        with open(ring_path, 'rb') as ring:
            ring_bytes = ring.read()
        with Cluster(workdir, port=0) as again:
            resp = requests.get(again.storage_url() + '/kept/obj',
                                headers={'X-Auth-Token': again.token()},
                                timeout=10)
            assert resp.content == b'survives'
        with open(ring_path, 'rb') as ring:
            assert ring.read() == ring_bytes
        assert processes_mentioning(workdir) == []
    finally:
        stop_and_read_stderr(proc)


def test_launcher_exits_non_zero_when_a_server_dies(scratch_dir, tmp_path):
    workdir = os.path.join(scratch_dir, 'saio')
    proc = launch(workdir, free_port(), tmp_path)
    try:
        read_exports(proc)
        victim = [pid for pid, args in processes_mentioning(workdir)
                  if 'object-server-3.conf' in args]
        assert victim
        os.killpg(os.getpgid(victim[0]), signal.SIGKILL)
        assert proc.wait(timeout=30) == 1
        message = proc.stderr.read().decode().strip().splitlines()[-1]
        assert 'object-server-3' in message
        assert os.path.join(workdir, 'log', 'object-server-3.log') in message
        assert processes_mentioning(workdir) == []
    finally:
        stop_and_read_stderr(proc)


def test_launcher_refuses_a_port_in_use(tmp_path):
    workdir = str(tmp_path / 'work')
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, '-m', 'zerocloud.saio', '--port', str(port),
             '--workdir', workdir, '--quiet'],
            cwd=tmp_path, capture_output=True, timeout=60)
    assert result.returncode != 0
    errors = result.stderr.decode().strip().splitlines()
    assert len(errors) == 1 and str(port) in errors[0], errors
    assert 'in use' in errors[0]
    assert b'export' not in result.stdout
    assert processes_mentioning(workdir) == []


# -- faults at start ---------------------------------------------------------

def test_a_server_dying_at_start_is_named_with_its_log(scratch_dir, tmp_path):
    """Every other server is stopped and the message quotes the log."""
    fake_bin = tmp_path / 'bin'
    fake_bin.mkdir()
    real_bin = os.path.dirname(sys.executable)
    for kind in ('proxy', 'account', 'container'):
        name = 'swift-%s-server' % kind
        (fake_bin / name).symlink_to(os.path.join(real_bin, name))
    broken = fake_bin / 'swift-object-server'
    broken.write_text('#!/bin/sh\necho "object server refuses: $1"\nexit 3\n')
    broken.chmod(0o755)
    workdir = os.path.join(scratch_dir, 'saio')
    doomed = Cluster(workdir, port=0)
    doomed.bin_dir = str(fake_bin)
    try:
        doomed.start()
    except LaunchError as err:
        message = str(err)
    else:
        doomed.stop()
        raise AssertionError('a cluster without object servers started')
    first_line = message.splitlines()[0]
    assert 'object-server-' in first_line and 'status 3' in first_line
    assert 'object server refuses:' in message
    assert processes_mentioning(workdir) == []


def test_missing_memcached_names_the_debian_package(scratch_dir,
                                                    monkeypatch):
    monkeypatch.setattr(saio, 'MEMCACHED_BINARY', '/nonexistent/memcached')
    monkeypatch.setenv('PATH', '/nonexistent')
    with pytest.raises(LaunchError, match='Debian package memcached'):
        Cluster(os.path.join(scratch_dir, 'saio'), port=0).prepare()


def test_unusable_workdir_is_reported(tmp_path):
    not_a_dir = tmp_path / 'file'
    not_a_dir.write_text('')
    with pytest.raises(LaunchError, match='cannot use work directory'):
        Cluster(str(not_a_dir / 'saio'), port=0).prepare()
