"""The all-in-one cluster, exercised through real clients (swift CLI, curl,
HTTP) and the ``zerocloud-saio`` launcher run as a separate process."""

import configparser
import hashlib
import hmac
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import requests

from swift.common.ring import RingBuilder

from zerocloud import devices, saio
from zerocloud.saio import (
    OBJECT_SERVER_COUNT, PART_POWER, Cluster, LaunchError)

from .helpers import (
    REQUEST_TIMEOUT, cluster_ring, configure, files_holding)

LAUNCH_TIMEOUT = 60
#: The checkout: ``make run``'s work directory is its ``var/saio``.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
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


def test_info_lists_both_policies_and_the_filters(cluster):
    info = requests.get(cluster.proxy_url + '/info',
                        timeout=REQUEST_TIMEOUT).json()
    policies = info['swift']['policies']
    assert [p['name'] for p in policies] == ['Policy-0', 'ec']
    assert policies[0].get('default') is True
    # copy, dlo, keymaster and encryption (admin-only) do not register here.
    for name in ('job_chain', 'proxy_query', 'slo', 'symlink',
                 'versioned_writes', 'object_versioning', 'tempauth',
                 # Swift's sample pipeline, for Swift's own tests to run:
                 'bulk_upload', 'bulk_delete', 'tempurl', 'ratelimit',
                 'staticweb', 'container_quotas', 'account_quotas'):
        assert name in info, name


def temp_url(cluster, method, path, key):
    expires = int(time.time()) + 600
    signature = hmac.new(key.encode(), ('%s\n%d\n%s' % (
        method, expires, path)).encode(), hashlib.sha256).hexdigest()
    return '%s%s?temp_url_sig=%s&temp_url_expires=%d' % (
        cluster.proxy_url, path, signature, expires)


def test_a_temp_url_reads_its_object_but_never_runs_code(cluster):
    """tempurl (in the pipeline for Swift's own tests) replaces
    swift.authorize with "allow everything" for its one request: a job on
    a temp URL could read every object of the account, so none runs."""
    headers = auth_headers(cluster)
    account_url = cluster.storage_url()
    key = uuid.uuid4().hex
    assert requests.post(account_url, headers=dict(
        headers, **{'X-Account-Meta-Temp-URL-Key': key}),
        timeout=REQUEST_TIMEOUT).status_code == 204
    for container in ('shared', 'private'):
        assert requests.put(account_url + '/' + container, headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code in (201, 202)
    secret = b'not-for-temp-url-holders-%s' % uuid.uuid4().hex.encode()
    assert requests.put(account_url + '/private/secret', data=secret,
                        headers=headers,
                        timeout=REQUEST_TIMEOUT).status_code == 201
    assert requests.put(account_url + '/shared/doc', data=b'shared',
                        headers=headers,
                        timeout=REQUEST_TIMEOUT).status_code == 201
    path = '/v1/AUTH_test/shared/doc'
    resp = requests.get(temp_url(cluster, 'GET', path, key),
                        timeout=REQUEST_TIMEOUT)
    assert resp.status_code == 200 and resp.content == b'shared'
    job = [{'name': 'leak', 'exec': {'path': 'file://python3.11:python'},
            'file_list': [{'device': 'stdin',
                           'path': 'swift://AUTH_test/private/secret'},
                          {'device': 'stdout'}]}]
    resp = requests.post(temp_url(cluster, 'POST', path, key),
                         data=json.dumps(job), timeout=30, headers={
                             'X-Zerovm-Execute': '1.0',
                             'Content-Type': 'application/json'})
    assert resp.status_code == 403, (resp.status_code, resp.headers)
    assert resp.text == 'A temp URL does not grant running code'
    resp = requests.get(temp_url(cluster, 'GET', path, key), timeout=30,
                        headers={'X-Zerovm-Execute': 'open/1.0'})
    assert resp.status_code == 403
    assert secret.decode() not in resp.text


def test_each_request_is_logged_once_to_the_proxy_log(cluster):
    marker = uuid.uuid4().hex
    requests.get(cluster.proxy_url + '/info', params={'probe': marker},
                 timeout=REQUEST_TIMEOUT)
    deadline = time.monotonic() + 5
    while True:
        with open(cluster.log_path('proxy-server')) as log:
            hits = [line for line in log if marker in line]
        if hits or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(hits) == 1, hits


def expected_object_dir(cluster, account, container, obj,
                        objects='objects'):
    """objects/<part>/<suffix>/<hash> from the cluster's own hash settings.

    Servers that ignored ``swift_dir`` would hash without this prefix/suffix
    and store the object elsewhere.  ``objects-1`` for the ``ec`` policy.
    """
    conf = configparser.ConfigParser()
    conf.read(os.path.join(cluster.etc_dir, 'swift.conf'))
    prefix = conf.get('swift-hash', 'swift_hash_path_prefix').encode()
    suffix = conf.get('swift-hash', 'swift_hash_path_suffix').encode()
    name = ('/%s/%s/%s' % (account, container, obj)).encode()
    digest = hashlib.md5(prefix + name + suffix).hexdigest()
    part = int(digest[:8], 16) >> (32 - PART_POWER)
    return os.path.join(objects, str(part), digest[-3:], digest)


def data_files(cluster, object_dir):
    """Storage node -> names of the .data files under ``object_dir``."""
    found = {}
    for node in range(1, OBJECT_SERVER_COUNT + 1):
        path = os.path.join(cluster.device_path(node), object_dir)
        if os.path.isdir(path):
            names = [name for name in os.listdir(path)
                     if name.endswith('.data')]
            if names:
                found[node] = names
    return found


def test_object_put_lands_on_three_of_four_object_servers(cluster):
    url = cluster.storage_url() + '/placement'
    assert requests.put(url, headers=auth_headers(cluster),
                        timeout=REQUEST_TIMEOUT).status_code in (201, 202)
    resp = requests.put(url + '/obj', data=b'replicated',
                        headers=auth_headers(cluster), timeout=REQUEST_TIMEOUT)
    assert resp.status_code == 201
    object_dir = expected_object_dir(cluster, 'AUTH_test', 'placement', 'obj')
    holders = data_files(cluster, object_dir)
    assert len(holders) == 3, holders


def test_ec_object_is_stored_as_three_fragments_and_reads_back(cluster):
    url = cluster.storage_url() + '/erasure'
    resp = requests.put(url, headers=dict(auth_headers(cluster),
                                          **{'X-Storage-Policy': 'ec'}),
                        timeout=REQUEST_TIMEOUT)
    assert resp.status_code in (201, 202)
    assert requests.head(url, headers=auth_headers(cluster), timeout=10
                         ).headers['X-Storage-Policy'] == 'ec'
    # Over the 1 MiB EC segment size: several segments per fragment.
    payload = os.urandom(2 * 1024 * 1024 + 12345)
    assert requests.put(url + '/blob', data=payload,
                        headers=auth_headers(cluster),
                        timeout=30).status_code == 201
    resp = requests.get(url + '/blob', headers=auth_headers(cluster),
                        timeout=30)
    assert resp.status_code == 200
    assert resp.content == payload
    fragments = data_files(cluster, expected_object_dir(
        cluster, 'AUTH_test', 'erasure', 'blob', objects='objects-1'))
    assert len(fragments) == 3, fragments
    # <timestamp>#<fragment index>#d.data: one fragment per server.
    indexes = sorted(re.match(r'[\d.]+#(\d+)', names[0]).group(1)
                     for names in fragments.values())
    assert indexes == ['0', '1', '2']
    assert data_files(cluster, expected_object_dir(
        cluster, 'AUTH_test', 'erasure', 'blob')) == {}


def test_object_servers_are_four_hosts_in_both_object_rings(cluster):
    servers = ['object-server-%d' % n
               for n in range(1, OBJECT_SERVER_COUNT + 1)]
    addresses = [cluster.addresses[name] for name in servers]
    assert [ip for ip, _port in addresses] == [
        '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']
    for ip, port in addresses:
        resp = requests.options('http://%s:%d/' % (ip, port),
                                timeout=REQUEST_TIMEOUT)
        assert resp.status_code == 200
        assert resp.headers['Server'].startswith('object-server/')
        # Bound to its own address only, not to 127.0.0.1 or a wildcard.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(('127.0.0.1', port), timeout=5)
    for ring_name in ('object', 'object-1'):
        ring = cluster_ring(cluster.etc_dir, ring_name)
        assert sorted((dev['ip'], dev['port']) for dev in ring.devs) == \
            sorted(addresses), ring_name


def test_non_admin_is_denied_and_accounts_are_separate(cluster):
    url = cluster.storage_url('tester') + '/private'
    assert requests.put(url, headers=auth_headers(cluster),
                        timeout=REQUEST_TIMEOUT).status_code in (201, 202)
    assert requests.put(url + '/secret', data=b'x',
                        headers=auth_headers(cluster),
                        timeout=REQUEST_TIMEOUT).status_code == 201
    for target in (url, url + '/secret'):
        resp = requests.get(target, headers=auth_headers(cluster, 'tester3'),
                            timeout=REQUEST_TIMEOUT)
        assert resp.status_code == 403, target
    assert cluster.storage_url('tester2').endswith('/v1/AUTH_test2')
    resp = requests.get(url, headers=auth_headers(cluster, 'tester2'),
                        timeout=REQUEST_TIMEOUT)
    assert resp.status_code == 403
    own = requests.get(cluster.storage_url('tester2'),
                       headers=auth_headers(cluster, 'tester2'),
                       timeout=REQUEST_TIMEOUT)
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


def launch(workdir, port, cwd, *options):
    """Start the launcher; cwd keeps the import independent of the repo."""
    return subprocess.Popen(
        [sys.executable, '-m', 'zerocloud.saio', '--port', str(port),
         '--workdir', workdir, '--quiet', *options],
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
                            timeout=REQUEST_TIMEOUT).status_code in (201, 202)
        assert requests.put(obj_url, data=b'survives', headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code == 201
        assert len(processes_mentioning(workdir)) >= OBJECT_SERVER_COUNT + 4
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
        # --quiet on a warm image cache: nothing on stderr (no third-party
        # deprecation warnings, no progress lines of the system images).
        assert proc.stderr.read().decode() == ''
        assert processes_mentioning(workdir) == []

        ring_path = os.path.join(workdir, 'etc', 'object.ring.gz')
        with open(ring_path, 'rb') as ring:
            ring_bytes = ring.read()
        with Cluster(workdir, port=0) as again:
            resp = requests.get(again.storage_url() + '/kept/obj',
                                headers={'X-Auth-Token': again.token()},
                                timeout=REQUEST_TIMEOUT)
            assert resp.content == b'survives'
        with open(ring_path, 'rb') as ring:
            assert ring.read() == ring_bytes
        assert processes_mentioning(workdir) == []
    finally:
        stop_and_read_stderr(proc)


def files_under(root):
    return [os.path.join(directory, name)
            for directory, _dirs, names in os.walk(root) for name in names]


def test_encryption_at_rest_and_its_secret_survive_a_restart(
        scratch_dir, tmp_path):
    """--encryption stores ciphertext; the secret is made once, 0600;
    after a restart without encryption the old object still reads back and
    new ones are stored in the clear."""
    workdir = os.path.join(scratch_dir, 'saio')
    devices = os.path.join(workdir, 'srv')
    secret_path = os.path.join(workdir, 'etc', 'keymaster.conf')
    secret_text = b'encrypted-at-rest-%s' % uuid.uuid4().hex.encode()
    clear_text = b'stored-in-the-clear-%s' % uuid.uuid4().hex.encode()
    proc = launch(workdir, free_port(), tmp_path, '--encryption')
    try:
        env = exported(read_exports(proc))
        headers = {'X-Auth-Token': env['OS_AUTH_TOKEN']}
        container = env['OS_STORAGE_URL'] + '/vault'
        assert requests.put(container, headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code in (201, 202)
        assert requests.put(container + '/secret', data=secret_text * 100,
                            headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code == 201
        resp = requests.get(container + '/secret', headers=headers,
                            timeout=REQUEST_TIMEOUT)
        assert resp.content == secret_text * 100
        stored = [path for path in files_under(devices)
                  if path.endswith('.data') and '/objects/' in path]
        assert len(stored) == 3, stored
        assert files_holding(devices, secret_text) == []
        assert os.stat(secret_path).st_mode & 0o777 == 0o600
        with open(secret_path, 'rb') as conf:
            root_secret = conf.read()
        assert b'encryption_root_secret' in root_secret
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
    finally:
        stop_and_read_stderr(proc)

    with Cluster(workdir, port=0, encryption=False) as again:
        headers = {'X-Auth-Token': again.token()}
        container = again.storage_url() + '/vault'
        resp = requests.get(container + '/secret', headers=headers,
                            timeout=REQUEST_TIMEOUT)
        assert resp.status_code == 200
        assert resp.content == secret_text * 100
        assert requests.put(container + '/open', data=clear_text,
                            headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code == 201
        assert len(files_holding(devices, clear_text)) == 3
        assert files_holding(devices, secret_text) == []
    assert os.stat(secret_path).st_mode & 0o777 == 0o600
    with open(secret_path, 'rb') as conf:
        assert conf.read() == root_secret


def downgrade_to_single_host_layout(etc_dir):
    """Turn a work directory into what the launcher wrote before storage
    policies and hosts: one policy, every server on 127.0.0.1, no secret.

    Device addresses are changed in place, as the old launcher's rings had
    the same devices and partitions.
    """
    conf = configparser.RawConfigParser()
    conf.read(os.path.join(etc_dir, 'swift.conf'))
    conf.remove_section('storage-policy:1')
    with open(os.path.join(etc_dir, 'swift.conf'), 'w') as out:
        conf.write(out)
    for name in ('object-1.ring.gz', 'object-1.builder', 'keymaster.conf'):
        os.unlink(os.path.join(etc_dir, name))
    for ring in ('account', 'container', 'object'):
        builder_path = os.path.join(etc_dir, '%s.builder' % ring)
        builder = RingBuilder.load(builder_path)
        for dev in builder.devs:
            dev.update(ip='127.0.0.1', replication_ip='127.0.0.1')
        builder.get_ring().save(os.path.join(etc_dir, '%s.ring.gz' % ring))
        builder.save(builder_path)


def part_devices(ring):
    """Partition -> its device ids: what a rebalance would change."""
    return [[dev['id'] for dev in ring.get_part_nodes(part)]
            for part in range(ring.partition_count)]


def test_a_workdir_of_the_single_host_launcher_is_upgraded_in_place(
        scratch_dir):
    workdir = os.path.join(scratch_dir, 'saio')
    # The old launcher had no encryption: its objects are stored in clear.
    with Cluster(workdir, port=0, encryption=False) as old:
        headers = {'X-Auth-Token': old.token()}
        container = old.storage_url() + '/kept'
        assert requests.put(container, headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code in (201, 202)
        assert requests.put(container + '/obj', data=b'from before',
                            headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code == 201
    etc_dir = os.path.join(workdir, 'etc')
    downgrade_to_single_host_layout(etc_dir)
    old_ring = cluster_ring(etc_dir, 'object')
    assert {dev['ip'] for dev in old_ring.devs} == {'127.0.0.1'}
    partitions = part_devices(old_ring)

    with Cluster(workdir, port=0) as upgraded:
        headers = {'X-Auth-Token': upgraded.token()}
        resp = requests.get(upgraded.storage_url() + '/kept/obj',
                            headers=headers, timeout=REQUEST_TIMEOUT)
        assert resp.content == b'from before'
        info = requests.get(upgraded.proxy_url + '/info',
                            timeout=REQUEST_TIMEOUT).json()
        assert [p['name'] for p in info['swift']['policies']] == \
            ['Policy-0', 'ec']
        ec_url = upgraded.storage_url() + '/ec-after'
        assert requests.put(ec_url, headers=dict(
            headers, **{'X-Storage-Policy': 'ec'}),
            timeout=REQUEST_TIMEOUT).status_code in (201, 202)
        assert requests.put(ec_url + '/obj', data=b'fragments',
                            headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code == 201
        assert requests.get(ec_url + '/obj', headers=headers,
                            timeout=REQUEST_TIMEOUT).content == b'fragments'
    new_ring = cluster_ring(etc_dir, 'object')
    assert {dev['ip'] for dev in new_ring.devs} == {
        '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'}
    assert part_devices(new_ring) == partitions
    secret_path = os.path.join(etc_dir, 'keymaster.conf')
    assert os.stat(secret_path).st_mode & 0o777 == 0o600


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


def test_sysimage_prints_one_line_on_a_warm_cache():
    """What ``make sysimage`` (part of ``make run``) shows once the images
    are built and compiled: one line, not one per compiled variant."""
    command = [sys.executable, '-m', 'zerocloud.runtime.sysimage']
    # The first call warms the cache if a test before us has not.
    warm = subprocess.run(command, capture_output=True, text=True,
                          timeout=1800)
    assert warm.returncode == 0, warm.stderr
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith('zerocloud-sysimage: system images ready in')
    assert [os.path.basename(path) for path in result.stdout.split()] == \
        ['python315.tar', 'python311.tar']


def most_metadata(limits):
    """X-Object-Meta-* headers of exactly ``max_meta_overall_size`` (name
    and value lengths, as Swift counts them), in values as long as Swift
    allows: few enough headers for a client to read them back (Python's
    http.client refuses a response of more than 100)."""
    headers = {}
    remaining = limits['max_meta_overall_size']
    while remaining:
        name = 'key%05d' % len(headers)
        size = min(limits['max_meta_value_length'], remaining - len(name))
        assert size > 0
        headers['X-Object-Meta-' + name] = (uuid.uuid4().hex * 8)[:size]
        remaining -= len(name) + size
    assert len(headers) <= limits['max_meta_count']
    return headers


def test_an_object_with_the_most_metadata_fits_the_default_work_dir(
        tmp_path):
    """``make run``'s storage (under the checkout's var/, whatever its
    filesystem) holds an object with the most metadata Swift allows,
    encrypted at rest: on ext4 its xattrs would not fit (507, then 503)."""
    var = os.path.join(CHECKOUT, 'var')
    os.makedirs(var, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix='test-most-metadata-', dir=var)
    srv = os.path.join(workdir, 'srv')
    short_filesystem = devices.xattr_shortfall(workdir) is not None
    proc = launch(workdir, free_port(), tmp_path)
    try:
        env = exported(read_exports(proc))
        limits = requests.get(env['ST_AUTH'].replace('/auth/v1.0', '/info'),
                              timeout=REQUEST_TIMEOUT).json()['swift']
        metadata = most_metadata(limits)
        headers = {'X-Auth-Token': env['OS_AUTH_TOKEN']}
        container = env['OS_STORAGE_URL'] + '/meta'
        assert requests.put(container, headers=headers,
                            timeout=REQUEST_TIMEOUT).status_code in (201, 202)
        resp = requests.put(container + '/full', data=b'payload',
                            headers=dict(headers, **metadata), timeout=30)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        resp = requests.get(container + '/full', headers=headers, timeout=30)
        assert resp.status_code == 200 and resp.content == b'payload'
        for name, value in metadata.items():
            assert resp.headers.get(name) == value, name
        # Where the checkout's filesystem is short (ext4), the devices are
        # the launcher's XFS image, mounted while it runs.
        assert os.path.ismount(srv) == short_filesystem
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
        assert not os.path.ismount(srv)
    finally:
        stop_and_read_stderr(proc)
        if os.path.ismount(srv):
            subprocess.run(['umount', srv])
        shutil.rmtree(workdir, ignore_errors=True)


# -- faults at start ---------------------------------------------------------

def test_a_server_dying_at_start_is_named_with_its_log(scratch_dir):
    """Every other server is stopped and the message quotes the log."""
    workdir = os.path.join(scratch_dir, 'saio')
    doomed = Cluster(workdir, port=0)
    doomed.prepare()
    configure(doomed, 'object-server-3', 'pipeline:main',
              pipeline='refuses object-server')
    try:
        doomed.start()
    except LaunchError as err:
        message = str(err)
    else:
        doomed.stop()
        raise AssertionError('a cluster without object servers started')
    first_line = message.splitlines()[0]
    assert 'object-server-3' in first_line and 'status 1' in first_line
    assert "No section 'refuses'" in message
    assert processes_mentioning(workdir) == []


def test_a_bad_filter_option_stops_the_server_at_start_naming_it(
        scratch_dir):
    """A bad value is refused when the pipeline is loaded, not later as
    failed jobs; the launcher's message quotes the server's."""
    workdir = os.path.join(scratch_dir, 'saio')
    doomed = Cluster(workdir, port=0)
    doomed.prepare()
    configure(doomed, 'object-server-2', 'filter:object_query',
              zerovm_maxpool='many')
    with pytest.raises(LaunchError) as err:
        doomed.start()
    message = str(err.value)
    assert 'object-server-2' in message.splitlines()[0]
    # The server's own message, alone: no traceback to dig through.
    assert message.splitlines()[-1].strip() == \
        "zerovm_maxpool must be a whole number, not 'many'"
    assert 'Traceback' not in message
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
