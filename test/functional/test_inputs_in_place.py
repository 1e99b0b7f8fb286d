"""Which inputs are read in place, and an erasure-coded input with a server
down, on a private cluster that stores new objects unencrypted
(``--no-encryption``; tmpfs when usable), started once for the module.

- A plain object, a symlink to one and a versioned object's current version
  (a symlink into the hidden versions container) are read from the object
  server's own file: the node runs on a server holding the object (for the
  symlinks: their target) and the proxy never GETs it for the job; the
  program sees the object's bytes under the name the job gave it.
- An SLO manifest on the same cluster is streamed instead (the proxy GETs
  it), and the program reads the whole object, not the manifest.
- A node waiting in its server's queue reads its local object as it was
  when the server accepted the node, though the object is overwritten and
  then deleted meanwhile.
- With one of the three servers holding an ``ec`` object's fragments
  killed, a node reading it still sees the object (the proxy decodes it
  from the other two).  This test kills a server: it runs last.
"""

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

import pytest
import requests
import wasmtime
from swift.common.middleware.versioned_writes.object_versioning import (
    build_versions_container_name, build_versions_object_name)

from zerocloud.saio import ZEROVM_MAXPOOL

from .helpers import (
    INPUT_PROBE, REQUEST_TIMEOUT, Account, ProxyLog, assert_all_ok,
    kill_server, primary_servers, probe_in_place, probe_input,
    started_cluster, store_zapp, unique)
from .lab import CAT_WAT, sleeper_wat

#: Seconds each node holding the sandboxes sleeps: far more than an
#: overwrite and a delete take, far less than the node timeout (30 s).
HOLD_SECONDS = 10
#: Seconds a node may take to reach its object server.
ACCEPT_WAIT = 60


@pytest.fixture(scope='module')
def plain_cluster():
    with started_cluster('zerocloud-inputs-', encryption=False) as cluster:
        yield cluster


@pytest.fixture(scope='module')
def account(plain_cluster):
    return Account(plain_cluster)


@pytest.fixture(scope='module')
def container(account):
    name = unique('in-place')
    account.put_container(name)
    store_zapp(account, name, {'main.py': INPUT_PROBE}, 'probe.tar')
    return name


def probe(account: Account, container: str, path: str) -> dict:
    return probe_input(account, 'swift://~/%s/probe.tar' % container, path)


def assert_saw(account: Account, path: str, seen: dict) -> None:
    got = account.get(path)
    assert got.status_code == 200
    assert (seen['md5'], seen['size']) == (
        hashlib.md5(got.content).hexdigest(), len(got.content))
    assert seen['path'] == '/%s/%s' % (account.name, path)


def assert_read_in_place(cluster, account: Account, container: str,
                         path: str, stored_at: tuple) -> None:
    """A node reading ``path`` runs where ``stored_at`` (account,
    container, object) is stored and the proxy does not GET ``path``."""
    assert_saw(account, path, probe_in_place(
        cluster, account, 'swift://~/%s/probe.tar' % container, path,
        stored_at))


def test_plain_object_is_read_in_place(plain_cluster, account, container):
    name = unique('plain')
    account.put_object(container, name, b'stored in the clear\n' * 40)
    assert_read_in_place(plain_cluster, account, container,
                         '%s/%s' % (container, name),
                         (account.name, container, name))


def test_symlink_is_read_next_to_its_target(plain_cluster, account,
                                            container):
    target, link = unique('target'), unique('link')
    account.put_object(container, target, b'the target\n' * 40)
    resp = account.put('%s/%s' % (container, link), **{
        'X-Symlink-Target': '%s/%s' % (container, target)})
    assert resp.status_code == 201, resp.text
    assert_read_in_place(plain_cluster, account, container,
                         '%s/%s' % (container, link),
                         (account.name, container, target))


def test_versioned_object_is_read_where_its_version_is(plain_cluster,
                                                       account, container):
    versioned = unique('versioned')
    account.put_container(versioned, **{'X-Versions-Enabled': 'true'})
    account.put_object(versioned, 'doc', b'first\n')
    account.put_object(versioned, 'doc', b'current\n' * 30)
    version = account.get('%s/doc' % versioned).headers['X-Object-Version-Id']
    assert_read_in_place(
        plain_cluster, account, container, '%s/doc' % versioned,
        (account.name, build_versions_container_name(versioned),
         build_versions_object_name('doc', version)))


def test_slo_manifest_is_streamed(plain_cluster, account, container):
    name = unique('slo')
    segments = []
    for number in range(2):
        segment = '%s-seg%d' % (name, number)
        account.put_object(container, segment, b'%d' % number * 5000)
        segments.append({'path': '%s/%s' % (container, segment)})
    resp = account.put('%s/%s?multipart-manifest=put' % (container, name),
                       json.dumps(segments).encode())
    assert resp.status_code == 201, resp.text
    path = '%s/%s' % (container, name)
    proxy_log = ProxyLog(plain_cluster)
    assert_saw(account, path, probe(account, container, path))
    assert len(proxy_log.job_gets(account, path)) == 1


def prepared_nodes(tmp_dir: str) -> List[str]:
    """Work directories of the nodes an object server accepted and
    prepared (holding their input, outputs made) on this device."""
    try:
        names = os.listdir(tmp_dir)
    except FileNotFoundError:
        return []
    return [name for name in names if name.startswith('zerocloud-') and
            os.path.exists(os.path.join(tmp_dir, name, 'out.stdout'))]


def wait_for_prepared(tmp_dir: str, count: int) -> None:
    deadline = time.monotonic() + ACCEPT_WAIT
    while len(prepared_nodes(tmp_dir)) < count:
        assert time.monotonic() < deadline, \
            'fewer than %d nodes reached %s' % (count, tmp_dir)
        time.sleep(0.05)


def test_queued_node_reads_its_input_as_accepted(plain_cluster, account,
                                                 container):
    """Sleeping nodes next to the object take every sandbox of its first
    server; a node reading the object is accepted there and queued; the
    object is overwritten, then deleted; the node runs once a sandbox is
    free and reads the original bytes."""
    name = unique('held')
    path = '%s/%s' % (container, name)
    original = b'the bytes when the node was accepted\n' * 50
    account.put_object(container, name, original)
    first = primary_servers(plain_cluster, account.name, container, name)[0]
    tmp_dir = os.path.join(
        plain_cluster.device_path(int(first.rsplit('-', 1)[1])), 'tmp')
    for program, wat in (('sleeper.wasm', sleeper_wat(HOLD_SECONDS)),
                         ('cat.wasm', CAT_WAT)):
        account.put_object(container, program, wasmtime.wat2wasm(wat),
                           'application/wasm')
    sleepers = [{'name': 'sleeper%d' % number,
                 'exec': {'path': 'swift://~/%s/sleeper.wasm' % container},
                 'devices': [{'name': 'stdout'},
                             {'name': 'input', 'path': 'swift://~/' + path}]}
                for number in range(ZEROVM_MAXPOOL)]
    reader = [{'name': 'reader',
               'exec': {'path': 'swift://~/%s/cat.wasm' % container},
               'devices': [{'name': 'stdin', 'path': 'swift://~/' + path},
                           {'name': 'stdout'}]}]
    with ThreadPoolExecutor(2) as threads:
        asleep = threads.submit(account.post_job, sleepers)
        wait_for_prepared(tmp_dir, ZEROVM_MAXPOOL)
        reading = threads.submit(account.post_job, reader)
        wait_for_prepared(tmp_dir, ZEROVM_MAXPOOL + 1)
        account.put_object(container, name, b'overwritten\n')
        deleted = requests.delete('%s/%s' % (account.url, path),
                                  headers=account.headers(),
                                  timeout=REQUEST_TIMEOUT)
        assert deleted.status_code == 204, deleted.text
        # Every sandbox still sleeps: the reader has not opened its input.
        assert not asleep.done() and not reading.done()
        resp = reading.result()
        slept = asleep.result()
        assert slept.status_code == 200, slept.text
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    assert resp.content == original
    assert account.get(path).status_code == 404
    # The hold ends with the request: its work directory goes.
    deadline = time.monotonic() + ACCEPT_WAIT
    while prepared_nodes(tmp_dir):
        assert time.monotonic() < deadline, 'work directories left behind'
        time.sleep(0.05)


def test_erasure_coded_input_with_a_fragment_server_down(plain_cluster,
                                                         account, container):
    coded = unique('coded')
    account.put_container(coded, **{'X-Storage-Policy': 'ec'})
    data = bytes(range(256)) * 3000
    account.put_object(coded, 'data', data)
    holders = primary_servers(plain_cluster, account.name, coded, 'data',
                              ring_name='object-1')
    assert len(holders) == 3
    kill_server(plain_cluster, holders[0])
    seen = probe(account, container, '%s/data' % coded)
    assert (seen['md5'], seen['size']) == (hashlib.md5(data).hexdigest(),
                                           len(data))
