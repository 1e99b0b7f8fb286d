"""Cluster jobs on the real cluster: fan-out, DAGs, stored and deferred jobs.

What a user of issue #5 relies on, end to end:

- a wildcard input (``swift://~/books/*.txt``) makes one instance per match,
  ``count`` makes N instances, and ``*`` in an output path is filled from
  what the input's ``*`` matched (the group transform);
- ``connect`` and ``zvm://`` wire instances into a DAG whose downstream nodes
  read exactly what upstream nodes wrote; the word count over twelve stored
  books (map → reduce ×3 → merge) is the acceptance test;
- ``X-Zerovm-Source`` runs a stored job or zapp, the request body feeding
  path-less ``stdin`` devices;
- ``X-Zerovm-Deferred: always`` answers at once with the URL of an object
  that later holds the response.

The shared pieces (accounts, zapps, the word count) are in ``helpers``.
"""

import hashlib
import json
import re
import subprocess
import tarfile
import time
import uuid
from typing import Dict

import pytest
import wasmtime

from .helpers import (
    BOOK_COUNT, DEFERRED_WAIT, PYTHON_EXEC, WORD_COUNT_SYSTEM, Account,
    LogWatch, assert_all_ok, expected_word_count, nexe_list, primary_servers,
    python_node, unique, upload_books, upload_word_count_zapp,
    wait_for_object, word_count_job, zapp)
from .lab import hello_wat

# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope='module')
def account(cluster):
    return Account(cluster)


@pytest.fixture(scope='module')
def code(account):
    """Stores small Python zapps: ``code(name, {member: source})`` → URL."""
    container = unique('jobs-code')
    account.put_container(container)

    def store(name: str, files: Dict[str, str]) -> str:
        account.put_object(container, name, zapp(files))
        return 'swift://~/%s/%s' % (container, name)
    store.container = container
    return store


ECHO_STDIN = '''import os, sys
sys.stdout.write('%s:%s|' % (os.environ['SCRIPT_NAME'], sys.stdin.read()))
'''
UPPER_STDIN = 'import sys\nsys.stdout.write(sys.stdin.read().upper())\n'

# ------------------------------------------------------ wildcards and count


def test_wildcard_makes_one_instance_per_object(account, code):
    image = code('echo.tar', {'main.py': ECHO_STDIN})
    data = unique('wild')
    account.put_container(data)
    objects = {'b.txt': 'bee', 'a.txt': 'ay', 'c.txt': 'cee',
               'a.txt.bak': 'backup', 'notes.md': 'md',
               'sub/d.txt': 'nested'}
    for name, text in objects.items():
        account.put_object(data, name, text.encode())
    resp = account.post_job([python_node('cat', image, devices=[
        {'name': 'stdin', 'path': 'swift://~/%s/*.txt' % data},
        {'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-System'] == 'cat-1,cat-2,cat-3'
    assert_all_ok(resp, 3)
    assert resp.content == b'cat-1:ay|cat-2:bee|cat-3:cee|'


def test_wildcard_matches_the_whole_name(account, code):
    image = code('echo.tar', {'main.py': ECHO_STDIN})
    data = unique('prefix')
    account.put_container(data)
    for name in ('in1', 'in2', 'xin1', 'in'):
        account.put_object(data, name, name.encode())
    resp = account.post_job([python_node('cat', image, devices=[
        {'name': 'stdin', 'path': 'swift://~/%s/in*' % data},
        {'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-System'] == 'cat-1,cat-2,cat-3'
    assert resp.content == b'cat-1:in|cat-2:in1|cat-3:in2|'


def test_wildcard_without_matches_is_400(account, code):
    image = code('echo.tar', {'main.py': ECHO_STDIN})
    data = unique('empty')
    account.put_container(data)
    account.put_object(data, 'a.txt', b'a')
    resp = account.post_job([python_node('cat', image, devices=[
        {'name': 'stdin', 'path': 'swift://~/%s/*.csv' % data},
        {'name': 'stdout'}])])
    assert resp.status_code == 400, resp.text
    assert 'No objects found in path swift://' in resp.text
    assert '%s/*.csv' % data in resp.text


def test_group_transform_names_outputs_after_inputs(account, code):
    image = code('upper.tar', {'main.py': UPPER_STDIN})
    prefix = 'gt%s' % uuid.uuid4().hex[:6]
    inputs = {}
    for group in (1, 2):
        account.put_container('%s_in%d' % (prefix, group))
        account.put_container('%s_out%d' % (prefix, group))
        for number in (1, 2):
            text = 'group %d input %d\n' % (group, number)
            inputs[(group, number)] = text
            account.put_object('%s_in%d' % (prefix, group),
                               'input%d' % number, text.encode())
        account.put_object('%s_in%d' % (prefix, group), 'other',
                           b'not an input\n')
    resp = account.post_job([python_node('sort', image, devices=[
        {'name': 'stdin', 'path': 'swift://~/%s_in*/in*' % prefix},
        {'name': 'stdout', 'path': 'swift://~/%s_out*/out*' % prefix}])])
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-System'] == 'sort-1,sort-2,sort-3,sort-4'
    assert_all_ok(resp, 4)
    assert resp.content == b''
    for group in (1, 2):
        out = '%s_out%d' % (prefix, group)
        assert account.listing(out) == ['output1', 'output2']
        for number in (1, 2):
            stored = account.get('%s/output%d' % (out, number))
            assert stored.status_code == 200
            assert stored.text == inputs[(group, number)].upper()


def test_count_makes_numbered_instances(account, code):
    image = code('name.tar', {
        'main.py': 'import os\nprint(os.environ["SCRIPT_NAME"])\n'})
    resp = account.post_job([python_node('rep', image, count=3, devices=[
        {'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-System'] == 'rep-1,rep-2,rep-3'
    assert_all_ok(resp, 3)
    assert resp.content == b'rep-1\nrep-2\nrep-3\n'

# ------------------------------------------------------------ connect / DAG


SOURCE = '''import os
me = os.environ['SCRIPT_NAME'].encode()
for peer in sorted(os.listdir('/dev/out')):
    with open('/dev/out/' + peer, 'wb') as out:
        out.write(me + b'>' + peer.encode() + b'|' + bytes(range(256)) * 300)
'''
SINK = '''import hashlib, os
me = os.environ['SCRIPT_NAME']
for peer in sorted(os.listdir('/dev/in')):
    with open('/dev/in/' + peer, 'rb') as part:
        data = part.read()
    print(me, peer, len(data), hashlib.sha256(data).hexdigest())
'''


def test_connect_delivers_every_byte_to_every_downstream(account, code):
    image = code('dag.tar', {'source.py': SOURCE, 'sink.py': SINK})
    resp = account.post_job([
        python_node('src', image, 'source.py', count=2, connect=['sink']),
        python_node('sink', image, 'sink.py', count=2,
                    devices=[{'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-System'] == 'src-1,src-2,sink-1,sink-2'
    assert_all_ok(resp, 4)
    expected = ''
    for sink in ('sink-1', 'sink-2'):
        for src in ('src-1', 'src-2'):
            data = ('%s>%s|' % (src, sink)).encode() + bytes(range(256)) * 300
            expected += '%s %s %d %s\n' % (sink, src, len(data),
                                           hashlib.sha256(data).hexdigest())
    assert resp.text == expected


def test_zvm_path_feeds_stdout_into_stdin(account, code):
    image = code('pipe.tar', {
        'hello.py': 'print("hello from map")\nprint("second line")\n',
        'main.py': UPPER_STDIN})
    resp = account.post_job([
        python_node('map', image, 'hello.py', [
            {'name': 'stdout', 'path': 'zvm://merge:/dev/stdin'}]),
        python_node('merge', image, 'main.py', [
            {'name': 'stdin'}, {'name': 'stdout'}])])
    assert resp.status_code == 200, resp.text
    assert resp.headers['X-Nexe-System'] == 'map,merge'
    assert_all_ok(resp, 2)
    assert resp.content == b'HELLO FROM MAP\nSECOND LINE\n'


def test_connect_cycle_is_400(account, code):
    image = code('name.tar', {'main.py': 'print(1)\n'})
    resp = account.post_job([
        python_node('a', image, connect=['b']),
        python_node('b', image, connect=['a'])])
    assert resp.status_code == 400, resp.text
    assert resp.text.startswith('Cycle in connect'), resp.text


def test_word_count_over_twelve_books(cluster, account):
    books_container = unique('books')
    books = upload_books(account, books_container)
    image = upload_word_count_zapp(account, books_container)
    watch = LogWatch(cluster)
    started = time.monotonic()
    resp = account.post_job(word_count_job(image, books_container))
    elapsed = time.monotonic() - started
    print('word count: %d nodes in %.1f s' % (len(WORD_COUNT_SYSTEM),
                                              elapsed))
    assert resp.status_code == 200, resp.text
    assert nexe_list(resp, 'X-Nexe-System') == WORD_COUNT_SYSTEM
    assert_all_ok(resp, len(WORD_COUNT_SYSTEM))
    assert resp.content == expected_word_count(books)
    # Each mapper ran once, next to its book; together they used the cluster.
    ran = watch.servers_that_ran()
    map_servers = set()
    for number in range(1, BOOK_COUNT + 1):
        servers = ran.get('map-%d' % number)
        assert servers and len(servers) == 1, ran
        assert servers[0] in primary_servers(
            cluster, account.name, books_container,
            'book%02d.txt' % number)
        map_servers.add(servers[0])
    assert len(map_servers) >= 2, ran

# ----------------------------------------------------- X-Zerovm-Source


def test_source_runs_a_stored_json_job(account, code):
    image = code('hello.tar', {'main.py': 'print("stored job ran")\n'})
    apps = unique('apps')
    account.put_container(apps)
    account.put_object(apps, 'job.json', json.dumps([python_node(
        'hello', image, devices=[{'name': 'stdout'}])]).encode(),
        'application/json')
    resp = account.execute(b'', headers={
        'X-Zerovm-Source': 'swift://~/%s/job.json' % apps})
    assert resp.status_code == 200, resp.text
    assert resp.content == b'stored job ran\n'
    assert resp.headers['X-Nexe-System'] == 'hello'


def test_source_request_body_becomes_stdin(account, code):
    image = code('upper.tar', {'main.py': UPPER_STDIN})
    apps = unique('apps')
    account.put_container(apps)
    account.put_object(apps, 'job.json', json.dumps([
        python_node('up', image, devices=[{'name': 'stdin'},
                                          {'name': 'stdout'}]),
        python_node('fixed', image, devices=[
            {'name': 'stdin', 'path': 'swift://~/%s/job.json' % apps},
            {'name': 'stdout', 'path': 'swift://~/%s/fixed.out' % apps}]),
    ]).encode(), 'application/json')
    resp = account.execute(b'text from the request\n', headers={
        'X-Zerovm-Source': 'swift://~/%s/job.json' % apps,
        'Content-Type': 'text/plain'})
    assert resp.status_code == 200, resp.text
    assert resp.content == b'TEXT FROM THE REQUEST\n'
    # A stdin with a path keeps its object.
    stored = account.get('%s/fixed.out' % apps)
    assert stored.status_code == 200
    assert stored.text.startswith('[{"NAME": "UP"')


def test_source_runs_a_stored_zapp(account):
    apps = unique('apps')
    account.put_container(apps)
    system_map = json.dumps([{
        'name': 'zapp', 'exec': dict(PYTHON_EXEC, args='main.py'),
        'devices': [{'name': 'python'}, {'name': 'stdin'},
                    {'name': 'stdout'}]}])
    account.put_object(apps, 'app.tar', zapp({
        'boot/system.map': system_map,
        'main.py': 'import sys\nprint("zapp got", sys.stdin.read())\n'}),
        'application/x-tar')
    resp = account.execute(b'body', headers={
        'X-Zerovm-Source': 'swift://~/%s/app.tar' % apps,
        'Content-Type': 'text/plain'})
    assert resp.status_code == 200, resp.text
    assert resp.content == b'zapp got body\n'
    assert resp.headers['X-Nexe-System'] == 'zapp'


def test_zapp_tarred_from_its_directory_runs(account, tmp_path):
    """``tar -C app -cf app.tar .`` names every member ``./…``: the proxy
    finds ``./boot/system.map`` and the object server the program
    ``./.local/bin/hello.wasm`` (a dot directory: stripping the characters
    ``./`` instead of the prefix made it ``local/bin/hello.wasm``)."""
    app = tmp_path / 'app'
    (app / 'boot').mkdir(parents=True)
    (app / '.local' / 'bin').mkdir(parents=True)
    (app / '.local' / 'bin' / 'hello.wasm').write_bytes(
        wasmtime.wat2wasm(hello_wat('hello from a dot directory\n')))
    (app / 'boot' / 'system.map').write_text(json.dumps([{
        'name': 'hello',
        'exec': {'path': 'file://image:.local/bin/hello.wasm'},
        'devices': [{'name': 'stdout'}]}]))
    subprocess.run(['tar', '-C', str(app), '-cf', str(tmp_path / 'app.tar'),
                    '.'], check=True)
    with tarfile.open(tmp_path / 'app.tar') as tar:
        assert './boot/system.map' in tar.getnames()
    resp = account.execute((tmp_path / 'app.tar').read_bytes(), headers={
        'Content-Type': 'application/x-tar'})
    assert resp.status_code == 200, resp.text
    assert resp.content == b'hello from a dot directory\n'
    assert_all_ok(resp, 1)


def test_source_must_be_a_swift_url(account):
    resp = account.execute(b'', headers={
        'X-Zerovm-Source': 'http://example.com/apps/job.json'})
    assert resp.status_code == 412, resp.text
    assert 'X-Zerovm-Source format is swift://account/container/object' \
        in resp.text


def test_missing_source_is_404(account):
    apps = unique('apps')
    account.put_container(apps)
    resp = account.execute(b'', headers={
        'X-Zerovm-Source': 'swift://~/%s/no-such-job.json' % apps})
    assert resp.status_code == 404, resp.text


def test_source_in_other_account_needs_read_acl(cluster, account, code):
    image = code('hello.tar', {'main.py': 'print("stored job ran")\n'})
    other = Account(cluster, 'tester2')
    apps = unique('shared-apps')
    other.put_container(apps)
    other.put_object(apps, 'job.json', json.dumps([python_node(
        'hello', image, devices=[{'name': 'stdout'}])]).encode(),
        'application/json')
    source = {'X-Zerovm-Source': 'swift://%s/%s/job.json' % (other.name,
                                                             apps)}
    denied = account.execute(b'', headers=source)
    assert denied.status_code == 403, denied.text
    other.put_container(apps, **{'X-Container-Read': '.r:*'})
    allowed = account.execute(b'', headers=source)
    assert allowed.status_code == 200, allowed.text
    assert allowed.content == b'stored job ran\n'

# ----------------------------------------------------------- deferred


def lower_keys(headers: dict) -> Dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def slow_job(image: str) -> list:
    return [python_node('defer', image, devices=[{'name': 'stdout'}])]


#: Seconds the deferred tests' program runs: a deferred answer given while
#: its result does not exist yet did not wait for the job.
SLOW_SECONDS = 4
#: WASI Python has no time.sleep (OSError "Not supported"): spin instead.
SLOW_PROGRAM = '''import time
end = time.monotonic() + %d
while time.monotonic() < end:
    pass
print("deferred result")
''' % SLOW_SECONDS


def test_deferred_job_answers_at_once_and_stores_the_result(account, code):
    image = code('slow.tar', {'main.py': SLOW_PROGRAM})
    resp = account.post_job(slow_job(image),
                            headers={'X-Zerovm-Deferred': 'always'})
    assert resp.status_code == 200, resp.text
    match = re.fullmatch(r'swift://%s/\.zvm/(job-[\w-]+)' % account.name,
                         resp.text.strip())
    assert match, resp.text
    result_path = '.zvm/' + match.group(1)
    # Answered while the job still runs: its result is not there yet.
    assert account.get(result_path).status_code == 404
    stored = wait_for_object(account, result_path)
    assert stored.status_code == 200, 'no result after %d s' % DEFERRED_WAIT
    assert stored.content == b'deferred result\n'
    headers = wait_for_object(account, result_path + '.headers')
    assert headers.status_code == 200
    recorded = headers.json()
    assert isinstance(recorded, dict)
    recorded = lower_keys(recorded)
    assert recorded['x-nexe-system'] == 'defer'
    assert recorded['x-nexe-status'] == 'ok'
    assert recorded['x-nexe-retcode'] == '0'


def test_deferred_job_posted_to_an_object_stores_it_there(account, code):
    image = code('slow.tar', {'main.py': SLOW_PROGRAM})
    results = unique('deferred')
    account.put_container(results)
    resp = account.post_job(slow_job(image), path='/%s/answer' % results,
                            headers={'X-Zerovm-Deferred': 'always'})
    assert resp.status_code == 200, resp.text
    assert resp.text.strip() == 'swift://%s/%s/answer' % (account.name,
                                                          results)
    stored = wait_for_object(account, '%s/answer' % results)
    assert stored.status_code == 200, 'no result after %d s' % DEFERRED_WAIT
    assert stored.content == b'deferred result\n'
    headers = wait_for_object(account, '%s/answer.headers' % results)
    assert headers.status_code == 200
    assert lower_keys(headers.json())['x-nexe-system'] == 'defer'


def test_deferred_auto_answers_normally_when_the_job_is_quick(account, code):
    image = code('quick.tar', {'main.py': 'print("quick")\n'})
    resp = account.post_job(slow_job(image),
                            headers={'X-Zerovm-Deferred': 'auto'})
    assert resp.status_code == 200, resp.text
    assert resp.content == b'quick\n'
    assert resp.headers['X-Nexe-Status'] == 'ok'
