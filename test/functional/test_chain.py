"""Chained jobs (``job_chain``) on the real cluster.

A job whose path-less ``stdout`` is ``message/cgi`` prints
``Content-Type: application/json`` and ``X-Zerovm-Execute: 1.0``, a blank
line and the next job; the client gets the answer of the last job of the
chain, with ``X-Chain-Total-Time``.  What the first job left unread of the
request body feeds the path-less ``stdin`` of later jobs.
"""

import json
from typing import Dict

import pytest

from .helpers import Account, python_node, unique, zapp

#: Prints the chained-job headers, then the job stored in the image file
#: named by its argument.
EMIT_JOB = '''import sys
with open(sys.argv[1]) as fp:
    job = fp.read()
sys.stdout.write('Content-Type: application/json\\n')
sys.stdout.write('X-Zerovm-Execute: 1.0\\n\\n')
sys.stdout.write(job)
'''
SAY = "import sys\nprint('chained: ' + ' '.join(sys.argv[1:]))\n"
UPPER_STDIN = 'import sys\nsys.stdout.write(sys.stdin.read().upper())\n'
CGI_STDOUT = {'name': 'stdout', 'content_type': 'message/cgi'}


@pytest.fixture(scope='module')
def account(cluster):
    return Account(cluster)


@pytest.fixture(scope='module')
def apps(account):
    container = unique('chain')
    account.put_container(container)
    return container


def store_image(account: Account, container: str, name: str,
                files: Dict[str, str]) -> str:
    """Store a zapp of ``files``; its ``swift://`` URL."""
    account.put_object(container, name, zapp(files))
    return 'swift://~/%s/%s' % (container, name)


def emitter(name: str, image: str, job_file: str) -> dict:
    """A node answering with the job in ``job_file`` of its image."""
    return python_node(name, image, script='emit.py %s' % job_file,
                       devices=[CGI_STDOUT])


def assert_chain_time(resp) -> None:
    assert float(resp.headers['X-Chain-Total-Time']) > 0, resp.headers


def test_printed_job_runs_and_its_output_is_the_answer(account, apps):
    image = 'swift://~/%s/two.tar' % apps
    second = [python_node('second', image, script='say.py from two steps',
                          devices=[{'name': 'stdout'}])]
    store_image(account, apps, 'two.tar', {
        'emit.py': EMIT_JOB, 'say.py': SAY, 'next.json': json.dumps(second)})
    resp = account.post_job([emitter('first', image, 'next.json')])
    assert resp.status_code == 200, resp.text
    assert resp.content == b'chained: from two steps\n'
    assert resp.headers['X-Nexe-System'] == 'second'
    # The second job's own answer, not the first one's job description.
    assert not resp.headers['Content-Type'].startswith('application/json')
    assert 'X-Zerovm-Execute' not in resp.headers
    assert_chain_time(resp)


def test_chain_of_three_jobs(account, apps):
    image = 'swift://~/%s/three.tar' % apps
    step2 = [emitter('middle', image, 'step3.json')]
    step3 = [python_node('last', image, script='say.py third job',
                         devices=[{'name': 'stdout'}])]
    store_image(account, apps, 'three.tar', {
        'emit.py': EMIT_JOB, 'say.py': SAY,
        'step2.json': json.dumps(step2), 'step3.json': json.dumps(step3)})
    resp = account.post_job([emitter('first', image, 'step2.json')])
    assert resp.status_code == 200, resp.text
    assert resp.content == b'chained: third job\n'
    assert resp.headers['X-Nexe-System'] == 'last'
    assert_chain_time(resp)


def test_request_body_left_by_the_first_job_feeds_the_next(account, apps):
    image = 'swift://~/%s/input.tar' % apps
    second = [python_node('upper', image, script='upper.py',
                          devices=[{'name': 'stdin'}, {'name': 'stdout'}])]
    store_image(account, apps, 'input.tar', {
        'emit.py': EMIT_JOB, 'upper.py': UPPER_STDIN,
        'next.json': json.dumps(second)})
    # The first job does not read stdin, so the body is left to the chain.
    account.put_object(apps, 'first.json', json.dumps(
        [emitter('first', image, 'next.json')]).encode(), 'application/json')
    resp = account.execute(b'text from the request\n', headers={
        'X-Zerovm-Source': 'swift://~/%s/first.json' % apps,
        'Content-Type': 'text/plain'})
    assert resp.status_code == 200, resp.text
    assert resp.content == b'TEXT FROM THE REQUEST\n'
    assert resp.headers['X-Nexe-System'] == 'upper'
    assert_chain_time(resp)


def test_invalid_chained_job_gets_the_proxy_4xx(account, apps):
    image = 'swift://~/%s/bad.tar' % apps
    store_image(account, apps, 'bad.tar', {
        'emit.py': EMIT_JOB, 'next.json': '[{"name": "no-exec"}]'})
    resp = account.post_job([emitter('first', image, 'next.json')])
    assert resp.status_code == 400, resp.text
    assert 'exec' in resp.text
    assert 'Traceback' not in resp.text
    assert_chain_time(resp)


def test_answer_without_a_job_is_left_alone(account, apps):
    image = store_image(account, apps, 'plain.tar', {'say.py': SAY})
    resp = account.post_job([python_node('only', image,
                                         script='say.py once',
                                         devices=[{'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert resp.content == b'chained: once\n'
    assert_chain_time(resp)
