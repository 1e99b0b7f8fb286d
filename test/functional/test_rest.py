"""REST endpoints: ``/open/`` and ``/api/`` against the real cluster."""

import json
import uuid

import pytest
import requests
import wasmtime

from .helpers import zapp
from .lab import hello_wat

CGI_APP = '''import os, sys
body = sys.stdin.read()
status = os.environ.get('QUERY_STRING') == 'create' and '201 Created' or \\
    '200 OK'
print('Status: ' + status)
print('Content-Type: text/html')
print('X-Object-Meta-App: zapp')
print()
print('<p>%s %s %s [%s]</p>' % (os.environ['REQUEST_METHOD'],
                                os.environ['PATH_INFO'],
                                os.environ.get('QUERY_STRING', ''), body))
'''

CSV_TEMPLATE = json.dumps([{
    'name': 'summary',
    'exec': {'path': 'file://python:python', 'args': 'sum.py {.column=1}'},
    'devices': [{'name': 'python'},
                {'name': 'stdin', 'path': '{.object_path}'},
                {'name': 'image', 'path': 'swift://~/%s/tools.tar'},
                {'name': 'stdout', 'content_type': 'text/plain'}]}])

SUM_PY = '''import csv, sys
column = int(sys.argv[1])
rows = list(csv.reader(sys.stdin))[1:]
print('total:', sum(int(row[column]) for row in rows))
'''

HELLO_WAT = hello_wat('hello from wasm\n')


def cgi_system_map():
    return json.dumps([{
        'name': 'web',
        'exec': {'path': 'file://python:python', 'args': 'app.py'},
        'devices': [{'name': 'python'}, {'name': 'stdin'},
                    {'name': 'stdout', 'content_type': 'message/cgi'}]}])


@pytest.fixture(scope='module')
def site(cluster):
    """A container with a CGI zapp, a CSV file and a wasm program."""
    container = 'site-%s' % uuid.uuid4().hex[:8]
    base = cluster.storage_url('tester') + '/' + container
    token = {'X-Auth-Token': cluster.token('tester')}
    assert requests.put(base, headers=token).status_code in (201, 202)
    app = zapp({'boot/system.map': cgi_system_map(), 'app.py': CGI_APP})
    for name, data, ctype in (
            ('app.tar', app, 'application/x-tar'),
            ('tools.tar', zapp({'sum.py': SUM_PY}), 'application/x-tar'),
            ('data.csv', b'name,amount\na,3\nb,4\n', 'text/csv'),
            ('hello.wasm', wasmtime.wat2wasm(HELLO_WAT), 'application/wasm')):
        resp = requests.put(base + '/' + name, data=data,
                            headers=dict(token, **{'Content-Type': ctype}))
        assert resp.status_code == 201
    account = cluster.storage_url('tester').rsplit('/', 1)[1]
    site = {'container': container, 'account': account, 'token': token,
            'open': '%s/open/%s/%s' % (cluster.proxy_url, account, container),
            'api': '%s/api/%s/%s' % (cluster.proxy_url, account, container),
            'base': base}
    return site


def test_open_runs_a_zapp_with_cgi_output(site):
    resp = requests.get(site['open'] + '/app.tar?x=1', headers=site['token'])
    assert resp.status_code == 200, resp.text
    assert resp.headers['Content-Type'].startswith('text/html')
    assert resp.headers['X-Object-Meta-App'] == 'zapp'
    assert resp.text == '<p>GET /%s/%s/app.tar x=1 []</p>\n' % (
        site['account'], site['container'])


def test_open_zapp_gets_the_request_body_and_sets_status(site):
    resp = requests.put(site['open'] + '/app.tar?create', data='payload',
                        headers=site['token'])
    assert resp.status_code == 201, resp.text
    assert '[payload]' in resp.text
    assert resp.text.startswith('<p>PUT ')


def test_execute_header_open_on_a_v1_path(site):
    resp = requests.get(site['base'] + '/app.tar', headers=dict(
        site['token'], **{'X-Zerovm-Execute': 'open/1.0'}))
    assert resp.status_code == 200
    assert resp.text.startswith('<p>GET ')


def test_open_with_a_registered_template(cluster, site):
    token = site['token']
    registry = cluster.storage_url('tester') + '/.zvm'
    assert requests.put(registry, headers=token).status_code in (201, 202)
    assert requests.put(registry + '/text/csv/config',
                        data=CSV_TEMPLATE % site['container'],
                        headers=token).status_code == 201
    try:
        resp = requests.get(site['open'] + '/data.csv', headers=token)
        assert resp.status_code == 200, resp.text
        assert resp.text == 'total: 7\n'
        assert resp.headers['Content-Type'].startswith('text/plain')
    finally:
        requests.delete(registry + '/text/csv/config', headers=token)
    resp = requests.get(site['open'] + '/data.csv', headers=token)
    assert resp.status_code == 404
    assert resp.text == 'No application registered for text/csv'


def test_open_runs_a_webassembly_object(site):
    resp = requests.get(site['open'] + '/hello.wasm', headers=site['token'])
    assert resp.status_code == 200, resp.text
    assert resp.text == 'hello from wasm\n'
    assert resp.headers['X-Nexe-System'] == 'executable'


def test_open_of_missing_object_is_404(site):
    resp = requests.get(site['open'] + '/nothing-here', headers=site['token'])
    assert resp.status_code == 404


def test_open_needs_an_object(cluster, site):
    resp = requests.get('%s/open/%s' % (cluster.proxy_url, site['account']),
                        headers=site['token'])
    assert (resp.status_code, resp.text) == (412, 'Bad URL')


def test_api_without_endpoint_is_404(site):
    resp = requests.get(site['api'] + '/anything', headers=site['token'])
    assert resp.status_code == 404
    assert resp.text == 'No API endpoint configured for container %s' % (
        site['container'])


def test_api_runs_the_container_endpoint(site):
    endpoint = 'swift://%s/%s/app.tar' % (site['account'], site['container'])
    assert requests.post(site['base'], headers=dict(
        site['token'], **{'X-Container-Meta-Rest-Endpoint': endpoint})
    ).status_code == 204
    try:
        resp = requests.delete(site['api'] + '/items/7?all=1',
                               headers=site['token'])
        assert resp.status_code == 200, resp.text
        assert resp.text == '<p>DELETE /%s/%s/items/7 all=1 []</p>\n' % (
            site['account'], site['container'])
        # Strangers may not run it ...
        assert requests.get(site['api'] + '/x').status_code == 401
        # ... until the container lends its endpoint a public "setuid" ACL
        # (tempauth lets a referrer ACL reach a container path only with
        # .rlistings).
        assert requests.post(site['base'], headers=dict(
            site['token'],
            **{'X-Container-Meta-Zerovm-Suid': '.r:*,.rlistings'})
        ).status_code == 204
        public = requests.get(site['api'] + '/x')
        assert public.status_code == 200, public.text
        assert public.text.startswith('<p>GET ')
    finally:
        requests.post(site['base'], headers=dict(site['token'], **{
            'X-Remove-Container-Meta-Rest-Endpoint': 'x',
            'X-Remove-Container-Meta-Zerovm-Suid': 'x'}))


def test_plain_requests_under_v1_are_untouched(site):
    resp = requests.get(site['base'] + '/data.csv', headers=site['token'])
    assert resp.status_code == 200
    assert resp.content == b'name,amount\na,3\nb,4\n'


CHAINER = '''import json
job = [{"name": "second",
        "exec": {"path": "file://python:python", "args": "cat.py"},
        "devices": [{"name": "python"},
                    {"name": "image", "path": "%(image)s"},
                    {"name": "stdin", "path": "%(data)s"},
                    {"name": "stdout", "content_type": "text/plain"}]}]
print("Content-Type: application/json")
print("X-Zerovm-Execute: 1.0")
print()
print(json.dumps(job))
'''


def test_setuid_carries_over_to_chained_jobs(site):
    prefix = 'swift://%s/%s/' % (site['account'], site['container'])
    chainer = zapp({
        'boot/system.map': json.dumps([{
            'name': 'first',
            'exec': {'path': 'file://python:python', 'args': 'chain.py'},
            'devices': [{'name': 'python'},
                        {'name': 'stdout', 'content_type': 'message/cgi'}]}]),
        'chain.py': CHAINER % {'image': prefix + 'cat.tar',
                               'data': prefix + 'data.csv'}})
    token = site['token']
    for name, data in (('chainer.tar', chainer),
                       ('cat.tar', zapp({'cat.py': 'import sys\nprint('
                                         'sys.stdin.read(), end="")\n'}))):
        assert requests.put(site['base'] + '/' + name, data=data,
                            headers=dict(token, **{
                                'Content-Type': 'application/x-tar'})
                            ).status_code == 201
    assert requests.post(site['base'], headers=dict(token, **{
        'X-Container-Meta-Rest-Endpoint': prefix + 'chainer.tar',
        'X-Container-Meta-Zerovm-Suid': '.r:*,.rlistings'})
    ).status_code == 204
    try:
        resp = requests.get(site['api'] + '/report')
        assert resp.status_code == 200, resp.text
        assert resp.text == 'name,amount\na,3\nb,4\n'
        assert 'X-Chain-Total-Time' in resp.headers
    finally:
        requests.post(site['base'], headers=dict(token, **{
            'X-Remove-Container-Meta-Rest-Endpoint': 'x',
            'X-Remove-Container-Meta-Zerovm-Suid': 'x'}))
