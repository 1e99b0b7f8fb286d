"""The seed document's three flows, verbatim, against the real cluster.

``running-code.rst`` posts a script, a zapp tar and a JSON job over stored
data with curl, Python ``requests`` and the ``swift`` CLI; each test below
does exactly that and checks what the document promises.
"""

import json
import os
import socket
import subprocess
import time
import uuid

import pytest
import requests

from .helpers import cluster_ring, zapp

EXAMPLE_SCRIPT = '''#!file://python2.7:python
import sys
print("Hello from ZeroVM!")
print("sys.platform is '%s'" % sys.platform)
'''

MYMATH = '''def add(a, b):
    return a + b
'''

MAIN_SUM = '''import mymath
a = 5
b = 6
the_sum = mymath.add(a, b)
print("%s + %s = %s" % (a, b, the_sum))
'''

SYSTEM_MAP = '''[{
    "name": "example",
    "exec": {
        "path": "file://python2.7:python",
        "args": "main.py"
    },
    "devices": [
        {"name": "python2.7"},
        {"name": "stdout"}
    ]
}]
'''

MAIN_CSV = '''import csv
with open('/dev/input') as fp:
    reader = csv.reader(fp)

    for id, name, email, balance in reader:
        print('%(name)s: %(balance)s' % dict(name=name, balance=balance))
'''

DATA1 = '''id,name,email,balance
1,Alice,alice@example.com,1000
2,Bob,bob@example.com,-500
'''

DATA2 = '''id,name,email,balance
3,David,david@example.com,15000
4,Erin,erin@example.com,25000
'''

JOB_JSON = '''[{
    "name": "example",
    "exec": {
        "path": "file://python2.7:python",
        "args": "main.py"
    },
    "devices": [
        {"name": "python2.7"},
        {"name": "stdout"},
        {"name": "input", "path": "swift://~/example/%s"},
        {"name": "image", "path": "swift://~/example/example.tar"}
    ]
}]
'''


def write(directory, name, text):
    path = os.path.join(directory, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as fp:
        fp.write(text)
    return path


def curl(env, *args):
    out = subprocess.run(['curl', '-s', '-i'] + list(args), env=env,
                         capture_output=True, check=True)
    head, _, body = out.stdout.partition(b'\r\n\r\n')
    lines = head.decode().split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(':')
        headers[key.strip().lower()] = value.strip()
    return status, headers, body


@pytest.fixture(scope='module')
def seed_env(cluster):
    env = dict(cluster.env_for('tester'))
    env['OS_AUTH_TOKEN'] = cluster.token('tester')
    env['OS_STORAGE_URL'] = cluster.storage_url('tester')
    return env


def test_post_script_with_curl(seed_env, tmp_path):
    write(str(tmp_path), 'example', EXAMPLE_SCRIPT)
    status, headers, body = curl(
        seed_env, '-X', 'POST', '-H', 'X-Auth-Token: ' +
        seed_env['OS_AUTH_TOKEN'], '-H', 'X-Zerovm-Execute: 1.0',
        '-H', 'Content-Type: application/python',
        '--data-binary', '@' + str(tmp_path / 'example'),
        seed_env['OS_STORAGE_URL'])
    assert status == 200, body
    assert body == b"Hello from ZeroVM!\nsys.platform is 'wasi'\n"
    assert headers['x-nexe-status'] == 'ok'
    assert headers['x-nexe-retcode'] == '0'
    assert headers['x-nexe-system'] == 'script'
    assert headers['content-type'].startswith('text/plain')
    assert int(headers['content-length']) == len(body)


def test_post_script_with_requests(seed_env, tmp_path):
    path = write(str(tmp_path), 'example', EXAMPLE_SCRIPT)
    headers = {
        'X-Zerovm-Execute': '1.0',   # requests refuses the float 1.0
        'X-Auth-Token': seed_env['OS_AUTH_TOKEN'],
        'Content-Type': 'application/python',
    }
    with open(path) as fp:
        response = requests.post(seed_env['OS_STORAGE_URL'], data=fp.read(),
                                 headers=headers)
    assert response.status_code == 200
    assert response.content.startswith(b'Hello from ZeroVM!\n')


def test_post_zapp_tar(seed_env, tmp_path):
    for name, text in (('boot/system.map', SYSTEM_MAP),
                       ('main.py', MAIN_SUM), ('mymath.py', MYMATH)):
        write(str(tmp_path), name, text)
    subprocess.run(['tar', 'cf', 'example.tar', 'boot/system.map', 'main.py',
                    'mymath.py'], cwd=str(tmp_path), check=True)
    status, headers, body = curl(
        seed_env, '-X', 'POST', '-H', 'Content-Type: application/x-tar',
        '-H', 'X-Auth-Token: ' + seed_env['OS_AUTH_TOKEN'],
        '-H', 'X-Zerovm-Execute: 1.0',
        '--data-binary', '@' + str(tmp_path / 'example.tar'),
        seed_env['OS_STORAGE_URL'])
    assert status == 200, body
    assert body == b'5 + 6 = 11\n'
    assert headers['x-nexe-system'] == 'example'

    with open(tmp_path / 'example.tar', 'rb') as fp:
        response = requests.post(seed_env['OS_STORAGE_URL'], data=fp.read(),
                                 headers={
                                     'X-Zerovm-Execute': '1.0',
                                     'X-Auth-Token':
                                         seed_env['OS_AUTH_TOKEN'],
                                     'Content-Type': 'application/x-tar'})
    assert response.content == b'5 + 6 = 11\n'


def swift(env, cwd, *args):
    return subprocess.run(['swift'] + list(args), env=env, cwd=cwd,
                          capture_output=True, text=True, check=True)


def primaries_of(cluster, account, container, obj):
    ring = cluster_ring(cluster.etc_dir)
    return {n['port'] for n in ring.get_nodes(account, container, obj)[1]}


def test_post_job_over_stored_data(cluster, seed_env, tmp_path):
    cwd = str(tmp_path)
    write(cwd, 'main.py', MAIN_CSV)
    subprocess.run(['tar', 'cf', 'example.tar', 'main.py'], cwd=cwd,
                   check=True)
    write(cwd, 'data1.csv', DATA1)
    write(cwd, 'data2.csv', DATA2)
    swift(seed_env, cwd, 'post', 'example')
    swift(seed_env, cwd, 'upload', 'example', 'example.tar')
    swift(seed_env, cwd, 'upload', 'example', 'data1.csv', 'data2.csv')
    listing = swift(seed_env, cwd, 'list', 'example').stdout.split()
    assert {'data1.csv', 'data2.csv', 'example.tar'} <= set(listing)

    job = write(cwd, 'job.json', JOB_JSON % 'data1.csv')
    object_logs = {name: cluster.log_path(name) for name in cluster.ports
                   if name.startswith('object')}
    offsets = {name: os.path.getsize(path)
               for name, path in object_logs.items()}
    status, headers, body = curl(
        seed_env, '-X', 'POST', '-H', 'Content-Type: application/json',
        '-H', 'X-Auth-Token: ' + seed_env['OS_AUTH_TOKEN'],
        '-H', 'X-Zerovm-Execute: 1.0', '--data-binary', '@' + job,
        seed_env['OS_STORAGE_URL'])
    assert status == 200, body
    assert body == b'name: balance\nAlice: 1000\nBob: -500\n'

    with open(write(cwd, 'job.json', JOB_JSON % 'data2.csv')) as fp:
        response = requests.post(seed_env['OS_STORAGE_URL'], data=fp.read(),
                                 headers={
                                     'X-Zerovm-Execute': '1.0',
                                     'X-Auth-Token':
                                         seed_env['OS_AUTH_TOKEN'],
                                     'Content-Type': 'application/json'})
    assert response.status_code == 200
    assert response.content == b'name: balance\nDavid: 15000\nErin: 25000\n'

    # The first job ran on an object server holding its input.
    account = seed_env['OS_STORAGE_URL'].rsplit('/', 1)[1]
    ran_on = set()
    for name, path in object_logs.items():
        with open(path) as fp:
            fp.seek(offsets[name])
            if 'node: example' in fp.read():
                ran_on.add(cluster.ports[name])
    assert ran_on and ran_on <= primaries_of(
        cluster, account, 'example', 'data1.csv') | primaries_of(
        cluster, account, 'example', 'data2.csv')


def post_job(cluster, job, user='tester', path=''):
    return requests.post(cluster.storage_url(user) + path,
                         data=json.dumps(job),
                         headers={'X-Zerovm-Execute': '1.0',
                                  'X-Auth-Token': cluster.token(user),
                                  'Content-Type': 'application/json'})


def python_job(script_object, devices, args='main.py'):
    return [{'name': 'py', 'exec': {'path': 'file://python:python',
                                    'args': args},
             'devices': [{'name': 'python'},
                         {'name': 'image', 'path': script_object}] + devices}]


@pytest.fixture(scope='module')
def code(cluster):
    """A container of small Python zapps, one per program."""
    container = 'code-%s' % uuid.uuid4().hex[:8]
    url = cluster.storage_url('tester') + '/' + container
    token = {'X-Auth-Token': cluster.token('tester')}
    assert requests.put(url, headers=token).status_code in (201, 202)

    def upload(name, source):
        assert requests.put(url + '/' + name, data=zapp({'main.py': source}),
                            headers=token).status_code == 201
        return 'swift://~/%s/%s' % (container, name)
    upload.container = container
    return upload


def test_outputs_are_stored_with_type_and_meta(cluster, code):
    image = code('writer.tar', 'print("stored output")\n')
    out = 'swift://~/%s/result.txt' % code.container
    resp = post_job(cluster, python_job(image, [
        {'name': 'stdout', 'path': out, 'content_type': 'text/x-result',
         'meta': {'color': 'blue'}}]))
    assert resp.status_code == 200, resp.text
    assert resp.content == b''
    stored = requests.get(cluster.storage_url('tester') + '/%s/result.txt'
                          % code.container,
                          headers={'X-Auth-Token': cluster.token('tester')})
    assert stored.status_code == 200
    assert stored.content == b'stored output\n'
    assert stored.headers['Content-Type'] == 'text/x-result'
    assert stored.headers['X-Object-Meta-Color'] == 'blue'


def test_failed_program_stores_nothing(cluster, code):
    image = code('fails.tar', 'print("partial")\nraise SystemExit(3)\n')
    out = 'swift://~/%s/never.txt' % code.container
    resp = post_job(cluster, python_job(image, [{'name': 'stdout',
                                                 'path': out}]))
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-Retcode'] == '3'
    assert resp.headers['X-Nexe-Error'].startswith('bad return code')
    assert requests.head(cluster.storage_url('tester') + '/%s/never.txt'
                         % code.container,
                         headers={'X-Auth-Token': cluster.token('tester')}
                         ).status_code == 404


def test_runaway_program_times_out_and_stores_nothing(cluster, code):
    image = code('loop.tar', 'print("started")\nwhile True:\n    pass\n')
    out = 'swift://~/%s/never-either.txt' % code.container
    # The program loops for ever: only the node timeout ends it.
    resp = post_job(cluster, python_job(image, [{'name': 'stdout',
                                                 'path': out}]))
    assert resp.status_code == 422, resp.text
    assert resp.headers['X-Nexe-Status'] == 'session timeout'
    assert 'Node py failed: session timeout' in resp.text
    assert requests.head(cluster.storage_url('tester') +
                         '/%s/never-either.txt' % code.container,
                         headers={'X-Auth-Token': cluster.token('tester')}
                         ).status_code == 404


def test_client_disconnect_mid_upload_is_499(cluster):
    host, port = cluster.proxy_host, cluster.proxy_port
    path = cluster.storage_url('tester').split(str(port), 1)[1]
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall((
            'POST %s HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\n'
            'X-Zerovm-Execute: 1.0\r\nContent-Type: application/x-tar\r\n'
            'Content-Length: 100000\r\n\r\n' % (
                path, host, cluster.token('tester'))).encode() + b'x' * 1000)
        sock.shutdown(socket.SHUT_WR)
        answer = sock.makefile('rb').readline()
    assert answer.split()[1] == b'499'


def test_crash_names_its_cause(cluster, code):
    image = code('crash.tar', 'print(1 / 0)\n')
    resp = post_job(cluster, python_job(image, [{'name': 'stdout'}]))
    assert resp.status_code == 200
    assert resp.headers['X-Nexe-Retcode'] == '1'
    assert 'ZeroDivisionError' in resp.headers['X-Nexe-Error']


def test_cross_account_read_needs_acl(cluster, code):
    other = cluster.storage_url('tester2') + '/shared-%s' % (
        uuid.uuid4().hex[:6])
    token2 = {'X-Auth-Token': cluster.token('tester2')}
    assert requests.put(other, headers=token2).status_code in (201, 202)
    assert requests.put(other + '/data.txt', data=b'secret\n',
                        headers=token2).status_code == 201
    image = code('cat.tar', 'print(open("/dev/input").read(), end="")\n')
    account2, container2 = other.split('/')[-2:]
    data = 'swift://%s/%s/data.txt' % (account2, container2)
    job = python_job(image, [{'name': 'stdout'},
                             {'name': 'input', 'path': data}])
    denied = post_job(cluster, job)
    assert denied.status_code == 403
    assert requests.post(other, headers=dict(
        token2, **{'X-Container-Read': '.r:*'})).status_code == 204
    allowed = post_job(cluster, job)
    assert allowed.status_code == 200, allowed.text
    assert allowed.content == b'secret\n'


def test_other_account_cannot_execute_on_mine(cluster):
    resp = requests.post(cluster.storage_url('tester'),
                         data=EXAMPLE_SCRIPT,
                         headers={'X-Zerovm-Execute': '1.0',
                                  'X-Auth-Token': cluster.token('tester2'),
                                  'Content-Type': 'application/python'})
    assert resp.status_code == 403


@pytest.mark.parametrize('headers,body,status,message', [
    ({}, '[]', 400, 'Must specify Content-Type'),
    ({'Content-Type': 'application/python'}, 'print(1)\n', 400,
     'Unsupported Content-Type'),
    ({'Content-Type': 'application/json'}, '[{"name": ', 422,
     'Could not parse system map'),
    ({'Content-Type': 'application/x-tar'}, 'x' * 2048, 422,
     'Error reading application/x-tar stream'),
    ({'Content-Type': 'application/json'},
     '[{"name": "a", "exec": {"path": "file://python:python"},'
     ' "devices": [{"name": "nosuchdevice"}]}]', 400,
     'Could not resolve channel path "" for device: nosuchdevice'),
    ({'Content-Type': 'application/json'},
     '[{"name": "a", "exec": {"path": "file://nosuchimage:python"},'
     ' "devices": [{"name": "stdout"}]}]', 400,
     'No executable found in request'),
    ({'Content-Type': 'application/json'},
     '[{"name": "a", "exec": {"path": "swift://~/nowhere/exe"},'
     ' "devices": [{"name": "stdout"}]}]', 404,
     'Error 404 Not Found while fetching'),
])
def test_bad_requests_get_clear_4xx(cluster, headers, body, status, message):
    headers = dict(headers, **{'X-Zerovm-Execute': '1.0',
                               'X-Auth-Token': cluster.token('tester')})
    resp = requests.post(cluster.storage_url('tester'), data=body,
                         headers=headers)
    assert resp.status_code == status, resp.text
    assert message in resp.text


def test_oversize_json_is_413(cluster):
    job = json.dumps([{'name': 'x' * 70000}])
    resp = requests.post(cluster.storage_url('tester'), data=job, headers={
        'X-Zerovm-Execute': '1.0', 'Content-Type': 'application/json',
        'X-Auth-Token': cluster.token('tester')})
    assert resp.status_code == 413


def test_plain_requests_pass_through(cluster):
    url = cluster.storage_url('tester') + '/plain-%s' % uuid.uuid4().hex[:6]
    token = {'X-Auth-Token': cluster.token('tester')}
    assert requests.put(url, headers=token).status_code in (201, 202)
    assert requests.put(url + '/o', data=b'abc', headers=dict(
        token, **{'X-Object-Meta-Color': 'red'})).status_code == 201
    assert requests.post(url + '/o', headers=dict(
        token, **{'X-Object-Meta-Shape': 'round'})).status_code == 202
    got = requests.get(url + '/o', headers=token)
    assert got.content == b'abc'
    assert got.headers['X-Object-Meta-Shape'] == 'round'


def test_location_colocates_nodes(cluster, code):
    image = code('hello.tar', 'print("hi")\n')
    node = python_job(image, [{'name': 'stdout'}])[0]
    job = [dict(node, name=name, location='here' if name != 'alone' else None)
           for name in ('a', 'b', 'c', 'alone')]
    for entry in job:
        if entry['location'] is None:
            del entry['location']
    resp = post_job(cluster, job)
    assert resp.status_code == 200, resp.text
    proofs = resp.headers['X-Nexe-Colocated'].split(',')
    assert proofs[0] == proofs[1] == proofs[2] != '0'
    assert proofs[3] == '0'
    assert resp.content == b'hi\n' * 4


def test_script_posted_to_an_object_reads_it_as_stdin(cluster, code):
    url = cluster.storage_url('tester') + '/%s/words.txt' % code.container
    token = {'X-Auth-Token': cluster.token('tester')}
    assert requests.put(url, data=b'to be or not\n',
                        headers=token).status_code == 201
    script = ('#!file://python2.7:python\nimport sys\n'
              'sys.stdout.write(sys.stdin.read().upper())\n')
    resp = requests.post(url, data=script, headers=dict(token, **{
        'X-Zerovm-Execute': '1.0', 'Content-Type': 'application/python'}))
    assert resp.status_code == 200, resp.text
    assert resp.content == b'TO BE OR NOT\n'
    assert requests.get(url, headers=token).content == b'to be or not\n'


def test_gzipped_zapp(seed_env):
    import gzip
    body = gzip.compress(zapp({'boot/system.map': SYSTEM_MAP,
                               'main.py': MAIN_SUM, 'mymath.py': MYMATH}))
    resp = requests.post(seed_env['OS_STORAGE_URL'], data=body, headers={
        'X-Zerovm-Execute': '1.0', 'X-Auth-Token': seed_env['OS_AUTH_TOKEN'],
        'Content-Type': 'application/x-gzip'})
    assert resp.status_code == 200, resp.text
    assert resp.content == b'5 + 6 = 11\n'


def test_jobs_are_accounted_in_objects_of_the_stats_account(
        cluster, seed_env):
    """Each job's line reaches ``AUTH_stats`` shortly after its answer; the
    jobs of one interval share an object (the test cluster stores every
    second) instead of costing a PUT each."""
    account = seed_env['OS_STORAGE_URL'].rsplit('/', 1)[1]
    stats = cluster.storage_url('stats') + '/' + account
    token = {'X-Auth-Token': cluster.token('stats')}

    def logs():
        resp = requests.get(stats, headers=token)
        return set(resp.text.split()) if resp.status_code == 200 else set()
    before = logs()
    expected = []
    for _ in range(5):
        resp = requests.post(seed_env['OS_STORAGE_URL'], data=EXAMPLE_SCRIPT,
                             headers={'X-Zerovm-Execute': '1.0',
                                      'X-Auth-Token':
                                          seed_env['OS_AUTH_TOKEN'],
                                      'Content-Type': 'application/python'})
        assert resp.status_code == 200
        # The record carries this job's own cdr line.
        node_cdr = resp.headers['X-Nexe-Cdr-Line'].split(', ', 1)[1]
        expected.append(' script (%s) [ok]\n' % node_cdr)
    holders = {}
    deadline = time.monotonic() + 15
    while len(holders) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.5)
        for name in logs() - before:
            text = requests.get(stats + '/' + name, headers=token).text
            holders.update((line, name) for line in expected
                           if line in text)
    assert sorted(holders) == sorted(expected)
    names = set(holders.values())
    assert len(names) < len(expected)
    assert all(name.endswith('.log') and name.count('/') == 3
               for name in names)


def test_container_listing_job_runs_on_a_container_snapshot(cluster, code):
    container = 'box-%s' % uuid.uuid4().hex[:8]
    url = cluster.storage_url('tester') + '/' + container
    token = {'X-Auth-Token': cluster.token('tester')}
    assert requests.put(url, headers=token).status_code in (201, 202)
    for name in ('o1', 'o2', 'o3'):
        assert requests.put(url + '/' + name, data=b'x',
                            headers=token).status_code == 201
    image = code('listing.tar', (
        'import json, sqlite3\n'
        'db = sqlite3.connect("file:/dev/input?immutable=1", uri=True)\n'
        'print(json.dumps([r[0] for r in db.execute(\n'
        '    "SELECT name FROM object WHERE deleted = 0 ORDER BY name")]))\n'))
    resp = post_job(cluster, python_job(image, [
        {'name': 'stdout'},
        {'name': 'input', 'path': 'swift://~/%s' % container}]))
    assert resp.status_code == 200, resp.text
    assert resp.json() == ['o1', 'o2', 'o3']
