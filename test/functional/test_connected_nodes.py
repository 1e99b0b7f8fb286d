"""Connected nodes run at the same time, their data flowing as written.

- In a chain a → b → c, c reads the first line a wrote (through b) while
  a still runs: a writes its end time last, after a pause, and c's clock
  at its first line is earlier.  Guest clocks are the host's.
- A downstream node that fails stops its upstream node, which would
  otherwise write forever: it is reported ``stopped: node <name>
  failed``, and the job's error is the downstream node's.
- An upstream node that fails half-way through its data fails the job
  with its own error; its downstream node, which got the data cut short,
  does not end ``ok`` and stores nothing.
- An upstream node whose program exits with 1 ends its data short: its
  downstream node fails, naming it and its exit code.
"""

import json

import pytest

from .helpers import (
    Account, assert_all_ok, nexe_list, python_node, store_zapp, unique)

#: Seconds the first node waits between its first line and its last.
PAUSE = 4
FIRST = '''import os, sys, time
with open('/dev/out/b', 'w') as out:
    out.write('first\\n')
    out.flush()
    time.sleep(%d)
    out.write('end %%r\\n' %% time.time())
''' % PAUSE
MIDDLE = '''with open('/dev/in/a') as data, open('/dev/out/c', 'w') as out:
    for line in data:
        out.write(line.upper())
        out.flush()
'''
LAST = '''import json, time
with open('/dev/in/b') as data:
    first = data.readline()
    seen = time.time()
    rest = data.read()
print(json.dumps({'first': first, 'seen': seen, 'rest': rest}))
'''
ENDLESS = '''chunk = b'x' * 65536
with open('/dev/out/down', 'wb') as out:
    while True:
        out.write(chunk)
'''
ABORT_AFTER_READ = '''import os
with open('/dev/in/up', 'rb') as data:
    data.read(1 << 20)
os.abort()
'''
ABORT_AFTER_WRITE = '''import os
with open('/dev/out/down', 'wb') as out:
    out.write(b'y' * (2 << 20))
    out.flush()
os.abort()
'''
EXIT_ONE = '''import sys
with open('/dev/out/down', 'wb') as out:
    out.write(b'z' * 1000)
sys.exit(1)
'''
COUNT = '''import sys
with open('/dev/in/up', 'rb') as data:
    print(len(data.read()))
'''


@pytest.fixture(scope='module')
def account(cluster):
    return Account(cluster)


@pytest.fixture(scope='module')
def image(account):
    container = unique('connected')
    account.put_container(container)
    url = store_zapp(account, container, {
        'first.py': FIRST, 'middle.py': MIDDLE, 'last.py': LAST,
        'endless.py': ENDLESS, 'abort_read.py': ABORT_AFTER_READ,
        'abort_write.py': ABORT_AFTER_WRITE, 'exit_one.py': EXIT_ONE,
        'count.py': COUNT})
    return container, url


def test_a_chain_streams_while_every_node_runs(account, image):
    _container, url = image
    resp = account.post_job([
        python_node('a', url, 'first.py', connect=['b']),
        python_node('b', url, 'middle.py', connect=['c']),
        python_node('c', url, 'last.py', devices=[{'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 3)
    seen = json.loads(resp.text)
    assert seen['first'] == 'FIRST\n'
    ended = float(seen['rest'].split()[1])
    assert seen['rest'] == 'END %r\n' % ended
    # c had a's first line before a wrote its last (PAUSE seconds later).
    assert seen['seen'] < ended


def test_a_failing_downstream_node_stops_its_upstream(account, image):
    _container, url = image
    resp = account.post_job([
        python_node('up', url, 'endless.py', connect=['down']),
        python_node('down', url, 'abort_read.py')])
    assert resp.status_code == 422, resp.text
    assert resp.text.startswith('Node down failed'), resp.text
    statuses = nexe_list(resp, 'X-Nexe-Status')
    # Without the stop, "up" would write until its timeout.
    assert statuses[0] == 'stopped: node down failed'
    assert statuses[1] != 'ok'


def test_a_failing_upstream_node_fails_the_job_and_stores_nothing(
        account, image):
    container, url = image
    output = unique('count')
    resp = account.post_job([
        python_node('up', url, 'abort_write.py', connect=['down']),
        python_node('down', url, 'count.py', devices=[
            {'name': 'stdout',
             'path': 'swift://~/%s/%s' % (container, output)}])])
    assert resp.status_code == 422, resp.text
    assert resp.text.startswith('Node up failed'), resp.text
    assert nexe_list(resp, 'X-Nexe-Status')[1] != 'ok'
    assert account.get('%s/%s' % (container, output)).status_code == 404


def test_an_upstream_exit_code_breaks_its_data_off(account, image):
    container, url = image
    output = unique('count')
    resp = account.post_job([
        python_node('up', url, 'exit_one.py', connect=['down']),
        python_node('down', url, 'count.py', devices=[
            {'name': 'stdout',
             'path': 'swift://~/%s/%s' % (container, output)}])])
    assert resp.status_code == 422, resp.text
    assert nexe_list(resp, 'X-Nexe-Retcode')[0] == '1'
    assert nexe_list(resp, 'X-Nexe-Status')[0] == 'ok'
    # "down" reads to the end, which comes only as its input breaks off.
    assert resp.text.startswith('Node down failed: its input broke off: '
                                'node up ended with exit code 1'), resp.text
    assert account.get('%s/%s' % (container, output)).status_code == 404
