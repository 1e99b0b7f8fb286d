"""How proxy_query tells what a request is, and whose fault a refusal is.

Issue 15, from the outside:

* item 16: a body is a JSON job only when its media type is exactly
  ``application/json`` (parameters aside): ``Content-Type: application``,
  ``/`` or ``json`` are no part-matches of it;
* item 18: a job sent with another method than ``POST`` is the client's
  mistake (``405`` with ``Allow: POST``), and a listing behind a wildcard
  that Swift refused keeps the caller's ``4xx`` instead of becoming ``400``.
"""

import json

import pytest
import requests

from .helpers import PYTHON_EXEC, REQUEST_TIMEOUT, Account, unique

HELLO_JOB = json.dumps([{
    'name': 'hello', 'exec': dict(PYTHON_EXEC, args='-c print("hello_json")'),
    'devices': [{'name': 'python'}, {'name': 'stdout'}]}]).encode()


@pytest.fixture(scope='module')
def account(cluster) -> Account:
    return Account(cluster)


def test_json_job_runs_under_its_own_media_type(account):
    resp = account.execute(HELLO_JOB, headers={
        'Content-Type': 'Application/JSON; charset=utf-8'})
    assert (resp.status_code, resp.text) == (200, 'hello_json\n')


@pytest.mark.parametrize('ctype', ['application', '/', 'json', 'n'])
def test_part_of_the_json_media_type_is_not_json(account, ctype):
    resp = account.execute(HELLO_JOB, headers={'Content-Type': ctype})
    # Neither JSON nor tar: a script, which needs a shebang.
    assert (resp.status_code, resp.text) == (400, 'Unsupported Content-Type')
    assert 'X-Nexe-System' not in resp.headers


@pytest.mark.parametrize('method', ['GET', 'PUT', 'DELETE'])
def test_a_job_sent_without_post_is_405(account, method):
    resp = requests.request(method, account.url, data=HELLO_JOB,
                            timeout=REQUEST_TIMEOUT, headers=account.headers(
                                **{'X-Zerovm-Execute': '1.0',
                                   'Content-Type': 'application/json'}))
    assert resp.status_code == 405, resp.text
    assert resp.headers['Allow'] == 'POST'
    assert resp.text == 'Jobs are run with POST, not %s' % method


def wildcard_job(path: str) -> bytes:
    return json.dumps([{
        'name': 'each', 'exec': dict(PYTHON_EXEC, args='-c print(1)'),
        'devices': [{'name': 'python'}, {'name': 'stdin', 'path': path},
                    {'name': 'stdout'}]}]).encode()


def test_a_listing_the_caller_may_not_read_is_403(cluster, account):
    other = Account(cluster, 'tester2')
    container = unique('unlisted')
    other.put_container(container)
    url = 'swift://%s/%s' % (other.name, container)
    resp = account.execute(wildcard_job(url + '/in*'),
                           headers={'Content-Type': 'application/json'})
    assert resp.status_code == 403, resp.text
    assert resp.text == 'Error 403 Forbidden listing %s' % url


def test_a_listing_of_no_container_is_404(account):
    url = 'swift://%s/%s' % (account.name, unique('nowhere'))
    resp = account.execute(wildcard_job(url + '/in*'),
                           headers={'Content-Type': 'application/json'})
    assert resp.status_code == 404, resp.text
    assert resp.text == 'Error 404 Not Found listing %s' % url
