"""Job answers get Swift's CORS behaviour (zerocloud/proxy/cors.py).

A page on another origin runs a job by POSTing it to a container path; the
container's ``X-Container-Meta-Access-Control-Allow-Origin`` decides, as
for Swift's own answers, whether the browser may read the answer and its
``X-Nexe-*`` headers.  The preflight ``OPTIONS`` is answered as Swift
answers it, for ``/v1/`` and ``/open/`` paths alike.
"""

import json

import pytest
import requests

from .helpers import REQUEST_TIMEOUT, Account, python_node, unique, zapp

APP_ORIGIN = 'http://app.example.com'
OTHER_ORIGIN = 'http://evil.example.net'
SCRIPT = 'print("cross-origin hello")\n'
#: A program that tries to open its answer to every origin itself.
CGI_GRANTS_ITSELF = ('print("Content-Type: text/plain")\n'
                     'print("Access-Control-Allow-Origin: *")\n'
                     'print()\nprint("mine")\n')


@pytest.fixture(scope='module')
def site(cluster):
    """A container allowing APP_ORIGIN, holding a small zapp image."""
    account = Account(cluster, 'tester')
    container = unique('cors')
    account.put_container(container, **{
        'X-Container-Meta-Access-Control-Allow-Origin': APP_ORIGIN,
        'X-Container-Meta-Access-Control-Expose-Headers': 'X-Custom-One'})
    account.put_object(container, 'app.tar', zapp({'main.py': SCRIPT}))
    return account, container


def job_for(account, container, script='main.py'):
    return [python_node('hello', 'swift://%s/%s/app.tar' % (
        account.name, container), script, devices=[{'name': 'stdout'}])]


def post(account, path, job, origin):
    return account.post_job(job, path, headers={'Origin': origin})


def exposed(resp):
    return {h.strip() for h in
            resp.headers['Access-Control-Expose-Headers'].split(',')}


def test_allowed_origin_reads_the_answer_and_its_nexe_headers(site):
    account, container = site
    resp = post(account, '/' + container, job_for(account, container),
                APP_ORIGIN)
    assert resp.status_code == 200, resp.text
    assert resp.text == 'cross-origin hello\n'
    assert resp.headers['Access-Control-Allow-Origin'] == APP_ORIGIN
    assert 'Origin' in resp.headers['Vary']
    names = exposed(resp)
    assert {'x-nexe-system', 'x-nexe-status', 'x-nexe-retcode',
            'x-nexe-cdr-line', 'etag', 'x-trans-id',
            'x-custom-one'} <= names


def test_refused_origin_gets_no_cors_headers(site):
    account, container = site
    resp = post(account, '/' + container, job_for(account, container),
                OTHER_ORIGIN)
    assert resp.status_code == 200, resp.text
    assert 'Access-Control-Allow-Origin' not in resp.headers
    assert 'Access-Control-Expose-Headers' not in resp.headers


def test_error_answers_carry_cors_too(site):
    account, container = site
    resp = account.execute(b'[not json', '/' + container, {
        'Content-Type': 'application/json', 'Origin': APP_ORIGIN})
    assert resp.status_code == 422
    assert resp.headers['Access-Control-Allow-Origin'] == APP_ORIGIN


def test_wildcard_container_answers_star(cluster):
    account = Account(cluster, 'tester')
    container = unique('cors-any')
    account.put_container(container, **{
        'X-Container-Meta-Access-Control-Allow-Origin': '*'})
    account.put_object(container, 'app.tar', zapp({'main.py': SCRIPT}))
    resp = post(account, '/' + container, job_for(account, container),
                OTHER_ORIGIN)
    assert resp.status_code == 200, resp.text
    assert resp.headers['Access-Control-Allow-Origin'] == '*'


def test_account_level_jobs_get_no_cors_as_in_swift(site):
    account, container = site
    resp = post(account, '', job_for(account, container), APP_ORIGIN)
    assert resp.status_code == 200, resp.text
    assert 'Access-Control-Allow-Origin' not in resp.headers


def test_a_program_cannot_grant_cors_itself(site):
    account, container = site
    account.put_object(container, 'cgi.tar',
                       zapp({'main.py': CGI_GRANTS_ITSELF}))
    job = [python_node('cgi', 'swift://%s/%s/cgi.tar' % (
        account.name, container), devices=[
            {'name': 'stdout', 'content_type': 'message/cgi'}])]
    resp = post(account, '/' + container, job, OTHER_ORIGIN)
    assert resp.status_code == 200, resp.text
    assert resp.text == 'mine\n'
    assert 'Access-Control-Allow-Origin' not in resp.headers
    resp = post(account, '/' + container, job, APP_ORIGIN)
    assert resp.headers['Access-Control-Allow-Origin'] == APP_ORIGIN


# -------------------------------------------- issue 15 item 8: no CGI grants

EVIL_ORIGIN = 'https://evil.example'
#: A program that grants CORS, with credentials, to the attacker's origin.
CGI_GRANTS_CREDENTIALS = (
    'print("Content-Type: text/plain")\n'
    'print("Access-Control-Allow-Origin: %s")\n'
    'print("Access-Control-Allow-Credentials: true")\n'
    'print("Access-Control-Expose-Headers: X-Auth-Token")\n'
    'print()\nprint("granted")\n' % EVIL_ORIGIN)
#: Prints the job in next.json as the next job of the chain.
CHAIN_NEXT = ('import sys\n'
              'sys.stdout.write("Content-Type: application/json\\n")\n'
              'sys.stdout.write("X-Zerovm-Execute: 1.0\\n\\n")\n'
              'sys.stdout.write(open("/next.json").read())\n')


def assert_no_cors(resp):
    granted = [h for h in resp.headers
               if h.lower().startswith('access-control-')]
    assert granted == [], resp.headers


def cgi_job(image):
    return [python_node('cgi', image, devices=[
        {'name': 'stdout', 'content_type': 'message/cgi'}])]


def test_an_account_level_program_cannot_grant_cors(site):
    account, container = site
    account.put_object(container, 'grants.tar',
                       zapp({'main.py': CGI_GRANTS_CREDENTIALS}))
    job = cgi_job('swift://%s/%s/grants.tar' % (account.name, container))
    resp = post(account, '', job, EVIL_ORIGIN)
    assert (resp.status_code, resp.text) == (200, 'granted\n')
    assert_no_cors(resp)


def test_a_chained_program_cannot_grant_cors_to_an_anonymous_api_call(
        cluster):
    """A public ``/api/`` endpoint whose job chains one that prints CORS
    grants: the anonymous caller's answer carries none."""
    account = Account(cluster, 'tester')
    container = unique('cors-api')
    account.put_container(container)
    image = 'swift://%s/%s/app.tar' % (account.name, container)
    granting = cgi_job(image)
    granting[0]['exec']['args'] = 'grants.py'
    account.put_object(container, 'app.tar', zapp({
        'boot/system.map': json.dumps(cgi_job(image)),
        'main.py': CHAIN_NEXT, 'grants.py': CGI_GRANTS_CREDENTIALS,
        'next.json': json.dumps(granting)}), 'application/x-tar')
    resp = requests.post('%s/%s' % (account.url, container),
                         timeout=REQUEST_TIMEOUT, headers=account.headers(**{
                             'X-Container-Meta-Rest-Endpoint': image,
                             'X-Container-Meta-Zerovm-Suid':
                                 '.r:*,.rlistings'}))
    assert resp.status_code == 204, resp.text
    api = '%s/api/%s/%s/x' % (cluster.proxy_url, account.name, container)
    resp = requests.get(api, headers={'Origin': EVIL_ORIGIN},
                        timeout=REQUEST_TIMEOUT)
    assert (resp.status_code, resp.text) == (200, 'granted\n')
    assert 'X-Chain-Total-Time' in resp.headers
    assert_no_cors(resp)


def preflight(url, origin, method='POST'):
    return requests.options(url, timeout=REQUEST_TIMEOUT, headers={
        'Origin': origin, 'Access-Control-Request-Method': method,
        'Access-Control-Request-Headers':
            'x-auth-token, x-zerovm-execute, content-type'})


@pytest.mark.parametrize('prefix', ['v1', 'open'])
def test_preflight_as_swift_answers_it(cluster, site, prefix):
    account, container = site
    url = '%s/%s/%s/%s/app.tar' % (cluster.proxy_url, prefix, account.name,
                                   container)
    resp = preflight(url, APP_ORIGIN)
    assert resp.status_code == 200, resp.text
    assert resp.headers['Access-Control-Allow-Origin'] == APP_ORIGIN
    assert 'POST' in resp.headers['Access-Control-Allow-Methods']
    assert {h.strip() for h in
            resp.headers['Access-Control-Allow-Headers'].split(',')} == {
        'x-auth-token', 'x-zerovm-execute', 'content-type'}
    refused = preflight(url, OTHER_ORIGIN)
    assert refused.status_code == 401
    assert 'Access-Control-Allow-Origin' not in refused.headers


def test_preflight_runs_nothing(cluster, site):
    """An /open/ preflight is answered by Swift, not by running the app."""
    account, container = site
    url = '%s/open/%s/%s/app.tar' % (cluster.proxy_url, account.name,
                                     container)
    resp = preflight(url, APP_ORIGIN, method='GET')
    assert resp.status_code == 200
    assert 'X-Nexe-System' not in resp.headers
