"""Attacks on who may run what, on which account, with whose rights.

Each test reproduces one attack of issue #8 against the real cluster, as an
attacker would send it, and checks what the victim would lose:

* item 1: a client-supplied ``X-Zerovm-Source`` naming the attacker's own
  setuid container runs a job on the victim's account;
* item 2: a job reading a container (its database) as a non-owner sees the
  owner-only secrets Swift hides from it;
* item 7: a read-only setuid ACL (``.r:*,.rlistings``) lends writing;
* item 8: a symlink in a setuid container reads another account's object;
* item 9: a published app opened by a victim copies the victim's private
  object into the author's world-writable container;
* item 10: deferred ``/api/`` results promised and never written.

Users: ``tester`` owns ``AUTH_test`` (the victim in most tests),
``tester2`` owns ``AUTH_test2`` (the attacker), ``tester3`` is a non-admin
user of ``AUTH_test``; anonymous requests carry no token.
"""

import json
import uuid
from typing import Callable, Union

import pytest
import requests

from .helpers import (
    REQUEST_TIMEOUT, Account, python_node, unique, wait_for_object, zapp)

#: A CGI app that reports what it ran as: its PATH_INFO.
WHOAMI = '''import os
print('Content-Type: text/plain')
print()
print('ran as', os.environ['PATH_INFO'])
'''
#: Copies its input to stdout (and so to whatever stdout is bound to).
CAT = 'import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read())\n'
SECRET = b'victim-private-%s' % uuid.uuid4().hex.encode()


def cgi_node(name: str, script: str, devices=()) -> dict:
    return {'name': name,
            'exec': {'path': 'file://python:python', 'args': script},
            'devices': [{'name': 'python'}] + list(devices) + [
                {'name': 'stdout', 'content_type': 'message/cgi'}]}


@pytest.fixture(scope='module')
def victim(cluster) -> Account:
    return Account(cluster, 'tester')


@pytest.fixture(scope='module')
def attacker(cluster) -> Account:
    return Account(cluster, 'tester2')


@pytest.fixture(scope='module')
def private(victim) -> str:
    """A private object of the victim's: ``<container>/secret``."""
    container = unique('private')
    victim.put_container(container)
    victim.put_object(container, 'secret', SECRET, 'text/plain')
    return container


def set_meta(account: Account, container: str, **meta: str) -> None:
    headers = {'X-Container-Meta-' + k.replace('_', '-'): v
               for k, v in meta.items()}
    resp = requests.post('%s/%s' % (account.url, container),
                         headers=account.headers(**headers),
                         timeout=REQUEST_TIMEOUT)
    assert resp.status_code == 204, resp.text


def setuid_app(account: Account, files: dict, suid: str,
               job: Union[list, Callable[[str], list]]) -> dict:
    """A container whose Rest-Endpoint is a zapp and which lends ``suid``.

    ``job`` is the zapp's job, or makes it from the container's name.
    """
    container = unique('suid')
    account.put_container(container)
    endpoint = 'swift://%s/%s/app.tar' % (account.name, container)
    if callable(job):
        job = job(container)
    account.put_object(container, 'app.tar', zapp(dict(
        files, **{'boot/system.map': json.dumps(job)})), 'application/x-tar')
    set_meta(account, container, rest_endpoint=endpoint, zerovm_suid=suid)
    return {'container': container, 'endpoint': endpoint,
            'api': account.url.replace('/v1/', '/api/') + '/' + container}


# ---------------------------------------------------------------- item 1

def test_client_source_never_runs_on_another_account(cluster, victim,
                                                     attacker):
    """The attacker's setuid job, named by ``X-Zerovm-Source``, is not run
    on the victim's account — neither anonymously nor with a token."""
    app = setuid_app(attacker, {'whoami.py': WHOAMI}, '.r:*,.rlistings',
                     [cgi_node('who', 'whoami.py')])
    headers = {'X-Zerovm-Execute': '1.0', 'X-Zerovm-Source': app['endpoint'],
               'Content-Type': 'text/plain'}
    anonymous = requests.post(victim.url, headers=headers,
                              timeout=REQUEST_TIMEOUT)
    with_token = requests.post(victim.url,
                               headers=attacker.headers(**headers),
                               timeout=REQUEST_TIMEOUT)
    for resp, denial in ((anonymous, 401), (with_token, 403)):
        assert resp.status_code == denial, resp.text
        assert 'ran as' not in resp.text
        assert 'X-Nexe-System' not in resp.headers
    # On its own account it runs for its owner only: setuid never lends an
    # account path to a client-supplied source.
    own = requests.post(attacker.url, headers=headers,
                        timeout=REQUEST_TIMEOUT)
    assert own.status_code == 401, own.text
    mine = requests.post(attacker.url, headers=attacker.headers(**headers),
                         timeout=REQUEST_TIMEOUT)
    assert mine.status_code == 200, mine.text
    assert mine.text == 'ran as /%s\n' % attacker.name


# ---------------------------------------------------------------- item 2

DUMP = 'import sys\nsys.stdout.buffer.write(open("/dev/input", "rb").read())\n'


def test_container_database_hides_owner_secrets(cluster, victim, attacker):
    """A listing-ACL reader gets the container database without temp-url or
    sync keys, ACLs or deleted rows; the owner gets them all."""
    container = unique('listed')
    tempurl_key = 'tk-%s' % uuid.uuid4().hex
    sync_key = 'sk-%s' % uuid.uuid4().hex
    victim.put_container(container, **{
        'X-Container-Read': '.r:*,.rlistings',
        'X-Container-Meta-Temp-Url-Key': tempurl_key,
        'X-Container-Sync-Key': sync_key,
        'X-Container-Meta-Colour': 'visible-colour'})
    victim.put_object(container, 'visible-object', b'x')
    victim.put_object(container, 'deleted-object-name', b'y')
    assert requests.delete('%s/%s/deleted-object-name' % (
        victim.url, container), headers=victim.headers(),
        timeout=REQUEST_TIMEOUT).status_code == 204
    tools = unique('tools')
    attacker.put_container(tools)
    attacker.put_object(tools, 'dump.tar', zapp({'dump.py': DUMP}))
    image = 'swift://%s/%s/dump.tar' % (attacker.name, tools)
    devices = [{'name': 'input',
                'path': 'swift://%s/%s' % (victim.name, container)},
               {'name': 'stdout'}]
    resp = attacker.post_job([python_node('dump', image, 'dump.py',
                                          devices)])
    assert resp.status_code == 200, resp.text
    database = resp.content
    assert database.startswith(b'SQLite format 3')
    assert b'visible-object' in database
    assert b'visible-colour' in database
    for secret in (tempurl_key, sync_key, '.rlistings',
                   'deleted-object-name'):
        assert secret.encode() not in database, secret
    # The owner's own job sees everything (it could read it all anyway).
    victim_image = unique('vtools')
    victim.put_container(victim_image)
    victim.put_object(victim_image, 'dump.tar', zapp({'dump.py': DUMP}))
    resp = victim.post_job([python_node(
        'dump', 'swift://~/%s/dump.tar' % victim_image, 'dump.py', devices)])
    assert resp.status_code == 200, resp.text
    assert tempurl_key.encode() in resp.content
    assert sync_key.encode() in resp.content


# ---------------------------------------------------------------- item 7

WRITER = 'print("written by the endpoint")\n'


def writer_job(container: str) -> list:
    """Runs WRITER with its stdout stored in the endpoint's container."""
    return [{'name': 'writer',
             'exec': {'path': 'file://python:python', 'args': 'write.py'},
             'devices': [{'name': 'python'},
                         {'name': 'stdout', 'path': 'swift://~/%s/written'
                          % container}]}]


def test_read_setuid_does_not_lend_writing(cluster, victim):
    """``.r:*,.rlistings`` lets anyone run the endpoint, not write with it.
    """
    app = setuid_app(victim, {'write.py': WRITER}, '.r:*,.rlistings',
                     writer_job)
    resp = requests.get(app['api'] + '/go', timeout=REQUEST_TIMEOUT)
    # Refused by ZeroCloud's rule for foreign jobs, before any auth check.
    assert resp.status_code == 403, resp.text
    assert 'wants to write' in resp.text
    assert victim.get(app['container'] + '/written').status_code == 404


def test_setuid_write_needs_an_explicit_entry(cluster, victim, attacker):
    """A user named in the suid ACL may write through the endpoint; an
    anonymous caller still may not."""
    app = setuid_app(victim, {'write.py': WRITER},
                     '.r:*,.rlistings,test2:tester2', writer_job)
    anonymous = requests.get(app['api'] + '/go', timeout=REQUEST_TIMEOUT)
    assert anonymous.status_code == 401, anonymous.text
    assert victim.get(app['container'] + '/written').status_code == 404
    named = requests.get(app['api'] + '/go', headers=attacker.headers(),
                         timeout=REQUEST_TIMEOUT)
    assert named.status_code == 200, named.text
    stored = victim.get(app['container'] + '/written')
    assert stored.status_code == 200
    assert stored.text == 'written by the endpoint\n'


# ---------------------------------------------------------------- item 8

def test_setuid_does_not_follow_symlinks_out_of_its_container(
        cluster, victim, attacker, private):
    """A symlink in the attacker's setuid container to the victim's private
    object is followed with the caller's rights, not the setuid's."""
    container = unique('suidlink')
    # The victim may read the link (to show it resolves), not the attacker
    # the target.
    attacker.put_container(container, **{'X-Container-Read': 'test:tester'})
    resp = requests.put('%s/%s/link' % (attacker.url, container),
                        headers=attacker.headers(**{
                            'X-Symlink-Target': '%s/secret' % private,
                            'X-Symlink-Target-Account': victim.name}),
                        timeout=REQUEST_TIMEOUT)
    assert resp.status_code == 201, resp.text
    attacker.put_object(container, 'seed.txt', b'seed\n', 'text/plain')
    prefix = 'swift://%s/%s/' % (attacker.name, container)
    job = [{'name': 'leak',
            'exec': {'path': 'file://python:python', 'args': 'cat.py'},
            'devices': [{'name': 'python'},
                        {'name': 'input', 'path': prefix + 'seed.txt'},
                        {'name': 'stdin', 'path': prefix + 'link'},
                        {'name': 'stdout'}]}]
    attacker.put_object(container, 'app.tar', zapp({
        'cat.py': CAT, 'boot/system.map': json.dumps(job)}),
        'application/x-tar')
    set_meta(attacker, container, rest_endpoint=prefix + 'app.tar',
             zerovm_suid='.r:*,.rlistings')
    api = attacker.url.replace('/v1/', '/api/') + '/' + container
    for headers, denial in (({}, 401), (attacker.headers(), 403)):
        resp = requests.get(api + '/x', headers=headers,
                            timeout=REQUEST_TIMEOUT)
        assert SECRET not in resp.content
        assert resp.status_code == denial, resp.text
    # The link does resolve for whoever may read its target.
    owner_view = requests.get('%s/%s/link' % (attacker.url, container),
                              headers=victim.headers(),
                              timeout=REQUEST_TIMEOUT)
    assert owner_view.content == SECRET


# ---------------------------------------------------------------- item 9

def published_copier(attacker: Account, victim: Account,
                     private: str) -> dict:
    """The attacker's public app that copies the victim's secret into the
    attacker's drop box, which the victim may write to."""
    pub, drop = unique('pub'), unique('drop')
    attacker.put_container(pub, **{'X-Container-Read': '.r:*'})
    attacker.put_container(drop, **{'X-Container-Write': 'test:tester'})
    job = [{'name': 'copier',
            'exec': {'path': 'file://python:python', 'args': 'cat.py'},
            'devices': [{'name': 'python'},
                        {'name': 'stdin', 'path': 'swift://%s/%s/secret'
                         % (victim.name, private)},
                        {'name': 'stdout', 'path': 'swift://%s/%s/loot'
                         % (attacker.name, drop)}]}]
    attacker.put_object(pub, 'app.tar', zapp({
        'cat.py': CAT, 'boot/system.map': json.dumps(job)}),
        'application/x-tar')
    source = 'swift://%s/%s/app.tar' % (attacker.name, pub)
    # Published: anyone may run it, through /open/ or /api/.
    set_meta(attacker, pub, rest_endpoint=source,
             zerovm_suid='.r:*,.rlistings')
    proxy = attacker.url.split('/v1/')[0]
    return {'open': '%s/open/%s/%s/app.tar' % (proxy, attacker.name, pub),
            'api': '%s/api/%s/%s' % (proxy, attacker.name, pub),
            'drop': drop, 'source': source}


def loot(attacker: Account, app: dict) -> requests.Response:
    return requests.get('%s/%s/loot' % (attacker.url, app['drop']),
                        headers=attacker.headers(), timeout=REQUEST_TIMEOUT)


def test_foreign_app_cannot_carry_the_callers_data_away(
        cluster, victim, attacker, private):
    """Opened by the victim (``/open/``, ``/api/``, or ``X-Zerovm-Source``
    on the victim's own account), the app may not write outside what the
    victim names."""
    app = published_copier(attacker, victim, private)
    runs = {
        'open': requests.get(app['open'], headers=victim.headers(),
                             timeout=REQUEST_TIMEOUT),
        'api': requests.get(app['api'] + '/x', headers=victim.headers(),
                            timeout=REQUEST_TIMEOUT),
        'source': victim.execute(b'', headers={
            'X-Zerovm-Source': app['source'], 'Content-Type': 'text/plain'}),
    }
    for how, resp in runs.items():
        assert resp.status_code == 403, (how, resp.text)
        assert 'X-Zerovm-Allow-Write' in resp.text, how
        assert 'swift://%s/%s/loot' % (attacker.name, app['drop']) \
            in resp.text, how
    assert loot(attacker, app).status_code == 404


def test_foreign_app_writes_where_the_caller_allows(cluster, victim,
                                                    attacker, private):
    app = published_copier(attacker, victim, private)
    allowed = 'swift://%s/%s/' % (attacker.name, app['drop'])
    resp = requests.get(app['open'], timeout=REQUEST_TIMEOUT,
                        headers=victim.headers(**{
                            'X-Zerovm-Allow-Write': allowed}))
    assert resp.status_code == 200, resp.text
    assert loot(attacker, app).content == SECRET


EMIT = '''import sys
sys.stdout.write('Content-Type: application/json\\n')
sys.stdout.write('X-Zerovm-Execute: 1.0\\n\\n')
sys.stdout.write(open('/next.json').read())
'''


def test_jobs_a_foreign_app_chains_stay_foreign(cluster, victim, attacker,
                                                private):
    """The published app prints the copying job instead of running it: the
    chained job is still the author's, not the caller's."""
    app = published_copier(attacker, victim, private)
    copier = [{'name': 'copier',
               'exec': {'path': 'file://python:python', 'args': 'cat.py'},
               'devices': [{'name': 'python'},
                           {'name': 'image', 'path': app['source']},
                           {'name': 'stdin', 'path': 'swift://%s/%s/secret'
                            % (victim.name, private)},
                           {'name': 'stdout', 'path': 'swift://%s/%s/loot'
                            % (attacker.name, app['drop'])}]}]
    pub = app['source'].split('/')[3]
    emitter = zapp({'emit.py': EMIT, 'cat.py': CAT,
                    'next.json': json.dumps(copier),
                    'boot/system.map': json.dumps(
                        [cgi_node('emit', 'emit.py')])})
    attacker.put_object(pub, 'app.tar', emitter, 'application/x-tar')
    resp = requests.get(app['api'] + '/x', headers=victim.headers(),
                        timeout=REQUEST_TIMEOUT)
    assert resp.status_code == 403, resp.text
    assert 'X-Zerovm-Allow-Write' in resp.text
    assert 'X-Chain-Total-Time' in resp.headers
    assert loot(attacker, app).status_code == 404


# ------------------------------------------------------ issue 15 item 10

#: A copier that runs from the python system image alone (no foreign code
#: of its own): ``exec.args`` words decode ``\\x20``.
COPY_STDIN = 'import\\x20sys;sys.stdout.buffer.write(sys.stdin.buffer.read())'


def test_a_users_own_job_running_foreign_code_is_foreign(
        cluster, victim, attacker, private):
    """The victim posts a job of their own whose image is the author's
    public zapp; its CGI output chains a job that copies the victim's
    secret into the author's drop box (which lets the victim write): what
    runs is the author's code, so the copy is refused."""
    pub, drop = unique('pub'), unique('drop')
    attacker.put_container(pub, **{'X-Container-Read': '.r:*'})
    attacker.put_container(drop, **{'X-Container-Write': 'test:tester'})
    loot_url = 'swift://%s/%s/loot' % (attacker.name, drop)
    copier = [{'name': 'copier',
               'exec': {'path': 'file://python:python',
                        'args': '-c ' + COPY_STDIN},
               'devices': [{'name': 'python'},
                           {'name': 'stdin', 'path': 'swift://%s/%s/secret'
                            % (victim.name, private)},
                           {'name': 'stdout', 'path': loot_url}]}]
    attacker.put_object(pub, 'lib.tar', zapp({
        'emit.py': EMIT, 'next.json': json.dumps(copier)}),
        'application/x-tar')
    image = 'swift://%s/%s/lib.tar' % (attacker.name, pub)
    own_job = [cgi_node('emit', 'emit.py',
                        [{'name': 'image', 'path': image}])]
    resp = victim.post_job(own_job)
    assert resp.status_code == 403, resp.text
    assert loot_url in resp.text
    assert 'X-Zerovm-Allow-Write' in resp.text
    assert 'X-Chain-Total-Time' in resp.headers
    # Run directly, not chained: the same rule.
    direct = victim.post_job([python_node(
        'cat', image, 'emit.py', devices=[
            {'name': 'stdin', 'path': 'swift://%s/%s/secret'
             % (victim.name, private)},
            {'name': 'stdout', 'path': loot_url}])])
    assert direct.status_code == 403, direct.text
    assert loot_url in direct.text
    assert attacker.listing(drop) == []


# --------------------------------------------------------------- item 10

def test_anonymous_deferred_api_call_is_refused(cluster, victim):
    app = setuid_app(victim, {'whoami.py': WHOAMI}, '.r:*,.rlistings',
                     [cgi_node('who', 'whoami.py')])
    resp = requests.get(app['api'] + '/x', timeout=REQUEST_TIMEOUT,
                        headers={'X-Zerovm-Deferred': 'always'})
    assert resp.status_code == 400, resp.text
    assert 'deferred' in resp.text.lower()
    # Without deferral the same public call runs.
    resp = requests.get(app['api'] + '/x', timeout=REQUEST_TIMEOUT)
    assert resp.status_code == 200, resp.text


def test_a_forged_identity_header_changes_nothing(cluster, victim):
    """Issue 15 item 11: ``X-Identity-Status: Confirmed`` from an anonymous
    client (tempauth passes it on) is not an identity: the answer is
    exactly the anonymous one."""
    app = setuid_app(victim, {'whoami.py': WHOAMI}, '.r:*,.rlistings',
                     [cgi_node('who', 'whoami.py')])
    answers = [requests.get(app['api'] + '/x', timeout=REQUEST_TIMEOUT,
                            headers=dict(forged, **{
                                'X-Zerovm-Deferred': 'always'}))
               for forged in ({}, {'X-Identity-Status': 'Confirmed',
                                   'X-Roles': 'admin'})]
    plain, forged = [(r.status_code, r.text) for r in answers]
    assert plain[0] == 400, plain
    assert forged == plain


def test_deferred_api_result_lands_where_the_caller_reads_it(
        cluster, victim, attacker):
    app = setuid_app(victim, {'whoami.py': WHOAMI}, '.r:*,.rlistings',
                     [cgi_node('who', 'whoami.py')])
    resp = requests.get(app['api'] + '/x', timeout=REQUEST_TIMEOUT,
                        headers=attacker.headers(**{
                            'X-Zerovm-Deferred': 'always'}))
    assert resp.status_code == 200, resp.text
    url = resp.text.strip()
    assert url.startswith('swift://%s/.zvm/' % attacker.name), url
    result = wait_for_object(attacker, url[len('swift://%s/' %
                                               attacker.name):])
    assert result.status_code == 200
    assert result.text == 'ran as /%s/%s/x\n' % (victim.name,
                                                  app['container'])
