"""A node's input is the object as a client's GET returns it (issue #10).

On the shared cluster, which encrypts at rest like production:

- an encrypted object (also behind a symlink, or as a versioned object's
  current version) is read in place: the node runs on a server holding it,
  which decrypts it with the body key the proxy sends for that request,
  and the proxy never GETs it; the sandbox decrypts what the program reads;
- the object server reads in place only with a key made for its ``.data``
  file (its timestamp, key id and IV; the key's value itself can only be
  checked by reading the object, which the program does); any other
  answer is the refusal that makes the proxy stream the object instead;
  the key never shows up in the servers' logs, spools or files;
- for each kind of object (encrypted replicated, erasure-coded, SLO, DLO,
  symlink, a versioned object's current version, a symlink into an
  erasure-coded container) the md5 and size of what the program read from
  ``/dev/input`` equal those of a client's GET, and its ``LOCAL_*``
  variables name the object and its client-visible etag;
- a wildcard over an erasure-coded container (the word count) counts right,
  and outputs written into an erasure-coded container read back intact;
- a job over a container's database sees the etags a listing shows, not the
  ciphertext Swift stores there;
- plaintext of an input never reaches a device: not in any ``.data`` file,
  nor in the device's ``tmp/`` while the node runs; an encrypted object
  read in place is not in any file at all (the sandbox decrypts what the
  program reads), a streamed (erasure-coded) one is in RAM, under
  ``zerovm_ram_dir``, during the run, and gone afterwards;
- inputs the caller cannot read as a client: a symlink into an account the
  caller may not read is 403 naming the symlink, an SLO with a missing
  segment is an error naming the object; nothing is stored.
"""

import base64
import configparser
import hashlib
import hmac
import json
import os
import threading
import time
from dataclasses import replace
from typing import (
    Callable, Dict, Iterable, List, Optional, Set, Tuple, TypeVar)

import pytest
import requests
from swift.common.middleware.crypto.crypto_utils import (
    Crypto, load_crypto_meta)
from swift.common.middleware.versioned_writes.object_versioning import (
    build_versions_container_name, build_versions_object_name)
from swift.common.utils import quote
from swift.obj.diskfile import read_metadata

from zerocloud import protocol
from zerocloud.object.config import DEFAULT_RAM_DIR
from zerocloud.object.hostmemory import NODE_DIR_PREFIX
from zerocloud.saio import OBJECT_SERVER_COUNT

from .helpers import (
    INPUT_PROBE, REQUEST_TIMEOUT, WORD_COUNT_SYSTEM, Account, assert_all_ok,
    cluster_ring, device_files_holding, expected_word_count, files_holding,
    nexe_list, node_running, probe_in_place, probe_input, python_node,
    read_input, store_zapp, unique, upload_books, upload_word_count_zapp,
    word_count_job, zapp)

#: Reads ``/dev/input``, then spins for ``LINGER`` seconds (WASI Python
#: cannot sleep) so that a test can look at the disks meanwhile.
LINGER = 3
LINGERER = '''import hashlib, time
data = open('/dev/input', 'rb').read()
start = time.time()
while time.time() - start < %d:
    pass
print(hashlib.md5(data).hexdigest())
''' % LINGER
#: Copies its input to an output object, its answer and stderr, then
#: lingers as LINGERER does, with all three written.
COPIER = '''import sys, time
data = open('/dev/input', 'rb').read()
with open('/dev/output', 'wb') as out:
    out.write(data)
sys.stdout.buffer.write(data)
sys.stdout.flush()
sys.stderr.buffer.write(data)
sys.stderr.flush()
start = time.time()
while time.time() - start < %d:
    pass
''' % LINGER
#: The etags of a container's database copy, by name.
ETAGS = '''import json, sqlite3
db = sqlite3.connect('file:/dev/input?immutable=1', uri=True)
print(json.dumps(dict(db.execute(
    'SELECT name, etag FROM object WHERE deleted = 0'))))
'''
EC_POLICY = {'X-Storage-Policy': 'ec'}
#: Seconds the disks are watched for a node's input to show up in RAM.
WATCH_TIMEOUT = 8


class Box:
    """A replicated and an erasure-coded container, and the probe zapps."""

    def __init__(self, account: Account):
        self.account = account
        self.container = unique('inputs')
        self.ec_container = unique('inputs-ec')
        account.put_container(self.container)
        account.put_container(self.ec_container, **EC_POLICY)
        self.images = {}
        for name, source in (('probe', INPUT_PROBE), ('linger', LINGERER),
                             ('copy', COPIER), ('etags', ETAGS)):
            account.put_object(self.container, name + '.tar',
                               zapp({'main.py': source}))
            self.images[name] = 'swift://~/%s/%s.tar' % (self.container,
                                                          name)

    def put(self, path: str, data: bytes = b'', **headers: str) -> None:
        resp = self.account.put(path, data, **headers)
        assert resp.status_code == 201, resp.text

    def run(self, image: str, path: str,
            outputs: Iterable[dict] = ()) -> requests.Response:
        """One node reading ``path`` (``container/object``) as
        ``/dev/input``; its stdout is the response."""
        return read_input(self.account, self.images[image], path, outputs)

    def probe(self, path: str) -> dict:
        return probe_input(self.account, self.images['probe'], path)


@pytest.fixture(scope='module')
def account(cluster):
    return Account(cluster)


@pytest.fixture(scope='module')
def box(account):
    return Box(account)


# --------------------------------------------- encrypted, read in place

def _stored_at(box: Box, kind: str, path: str) -> Tuple[str, str, str]:
    """(account, container, object) where ``path``'s bytes are stored."""
    container, name = path.split('/', 1)
    if kind == 'symlink':
        return (box.account.name,) + tuple(
            box.account.get(path).headers['Content-Location'].split(
                '/', 3)[3].split('/', 1))
    if kind == 'versioned':
        version = box.account.get(path).headers['X-Object-Version-Id']
        return (box.account.name, build_versions_container_name(container),
                build_versions_object_name(name, version))
    return box.account.name, container, name


@pytest.mark.parametrize('kind', ['encrypted', 'symlink', 'versioned'])
def test_encrypted_object_is_read_in_place(cluster, box, kind):
    path = KINDS[kind](box, unique(kind))
    seen = probe_in_place(cluster, box.account, box.images['probe'], path,
                          _stored_at(box, kind, path))
    got = box.account.get(path)
    assert (seen['md5'], seen['etag']) == (
        hashlib.md5(got.content).hexdigest(), got.headers['Etag'].strip('"'))


def _replica(cluster, account: str, path: str) -> Tuple[str, dict]:
    """One ``.data`` file of object ``account/path`` and its metadata."""
    name = '/%s/%s' % (account, path)
    for node in range(1, OBJECT_SERVER_COUNT + 1):
        for root, _dirs, files in os.walk(cluster.devices_dir(node)):
            for data in (f for f in files if f.endswith('.data')):
                with open(os.path.join(root, data), 'rb') as fp:
                    metadata = read_metadata(fp)
                if metadata['name'] == name:
                    return os.path.join(root, data), metadata
    raise AssertionError('no replica of %s' % name)


def _body_key(cluster, metadata: dict) -> protocol.BodyKey:
    """The body key of a stored object, derived as the keymaster does from
    the cluster's root secret, and what it must match."""
    conf = configparser.ConfigParser()
    conf.read(cluster.keymaster_conf_path)
    root = base64.b64decode(conf['keymaster']['encryption_root_secret'])
    meta = load_crypto_meta(metadata['X-Object-Sysmeta-Crypto-Body-Meta'])
    object_key = hmac.new(root, meta['key_id']['path'].encode(),
                          hashlib.sha256).digest()
    return protocol.BodyKey(
        Crypto().unwrap_key(object_key, meta['body_key']), meta['iv'],
        metadata['X-Timestamp'], meta['key_id'], '')


def _post_to_replica(cluster, account: str, path: str,
                     key: Optional[protocol.BodyKey]) -> requests.Response:
    """A node request (no body) straight to the first object server that
    holds ``account/path``, as the proxy sends it."""
    container, name = path.split('/', 1)
    ring = cluster_ring(cluster.etc_dir)
    part, nodes = ring.get_nodes(account, container, name)
    headers = {protocol.EXECUTE_HEADER: '1.0',
               protocol.JOB_ID_HEADER: unique('job'),
               protocol.ACCESS_HEADER: 'GET',
               'X-Backend-Storage-Policy-Index': '0',
               'Content-Type': protocol.TAR_CONTENT_TYPE}
    if key is not None:
        headers[protocol.BODY_KEY_HEADER] = key.encode()
    return requests.post('http://%s:%d/%s/%d%s' % (
        nodes[0]['ip'], nodes[0]['port'], nodes[0]['device'], part,
        quote('/%s/%s' % (account, path))), headers=headers, data=b'',
        timeout=REQUEST_TIMEOUT)


def test_object_server_reads_in_place_only_with_the_matching_key(cluster,
                                                                box):
    data = b'only the right key opens this\n' * 100
    path = '%s/%s' % (box.container, unique('locked'))
    box.put(path, data)
    account = box.account.name
    data_file, metadata = _replica(cluster, account, path)
    key = _body_key(cluster, metadata)
    right = protocol.BodyKey(key.key, key.iv, key.timestamp, key.key_id,
                             hashlib.md5(data).hexdigest())
    decryptor = Crypto().create_decryption_ctxt(right.key, right.iv, 0)
    with open(data_file, 'rb') as fp:
        assert decryptor.update(fp.read()) == data
    # The right key passes the checks: the server goes on to read the
    # request body, which holds no node.
    resp = _post_to_replica(cluster, account, path, right)
    assert (resp.status_code, resp.text) == (
        400, 'No system map found in request')
    stale = '%.5f' % (float(right.timestamp) - 1)
    for wrong in (None, replace(right, timestamp=stale),
                  replace(right, key_id=dict(right.key_id, path='/x/y/z')),
                  replace(right, iv=bytes(16)),
                  replace(right, key=right.key[:16])):
        resp = _post_to_replica(cluster, account, path, wrong)
        assert resp.status_code == 409, resp.text
        reason, _, details = resp.headers[
            protocol.STREAM_INPUT_HEADER].partition(';')
        assert reason == protocol.STREAM_ENCRYPTED
        assert 'timestamp=%s' % right.timestamp in details


Found = TypeVar('Found')


def _while_lingering(box: Box, path: str, look: Callable[[], Found],
                     image: str = 'linger', outputs: Iterable[dict] = ()
                     ) -> Tuple[bool, Found, Optional[requests.Response]]:
    """Run the lingerer (or ``image``, with ``outputs``) on ``path``; once
    its sandbox runs (or after WATCH_TIMEOUT), ``look()`` while the node
    still holds its input.

    Returns (whether the sandbox was seen running, what ``look`` found,
    the job's answer).
    """
    answer: Dict[str, requests.Response] = {}
    runner = threading.Thread(target=lambda: answer.update(
        resp=box.run(image, path, outputs)))
    runner.start()
    try:
        deadline = time.monotonic() + WATCH_TIMEOUT
        running = False
        while not running and time.monotonic() < deadline:
            running = node_running()
            time.sleep(0.02)   # the lingerer spins on the same cores
        found = look()
    finally:
        runner.join()
    return running, found, answer.get('resp')


def _key_forms(key: protocol.BodyKey) -> List[bytes]:
    """How a body key could show up in a file: raw, base64, hex, and the
    header the proxy sends."""
    return [key.key, base64.b64encode(key.key), key.key.hex().encode(),
            key.encode().encode()]


def test_body_key_never_reaches_logs_spools_or_files(cluster, box):
    marker = ('keyed-%s|' % unique('marker')).encode() * 300
    path = '%s/%s' % (box.container, unique('keyed'))
    box.put(path, marker)
    _data_file, metadata = _replica(cluster, box.account.name, path)
    key = _body_key(cluster, metadata)
    key = protocol.BodyKey(key.key, key.iv, key.timestamp, key.key_id,
                           hashlib.md5(marker).hexdigest())
    running, during, resp = _while_lingering(box, path, lambda: [
        found for form in _key_forms(key)
        for found in device_files_holding(cluster, form) +
        files_holding(DEFAULT_RAM_DIR, form, prefix=NODE_DIR_PREFIX)])
    assert running, 'the node was never seen running'
    assert during == []
    assert resp.status_code == 200, resp.text
    assert resp.text.strip() == hashlib.md5(marker).hexdigest()
    for form in _key_forms(key):
        assert files_holding(cluster.workdir, form) == []


# ------------------------------------------------------------ each kind

def _encrypted(box: Box, name: str) -> str:
    path = '%s/%s' % (box.container, name)
    box.put(path, b'an encrypted replicated object\n' * 50)
    return path


def _erasure_coded(box: Box, name: str) -> str:
    path = '%s/%s' % (box.ec_container, name)
    box.put(path, os.urandom(3 * 65536 + 17))
    return path


def _slo(box: Box, name: str) -> str:
    segments = []
    for number in range(3):
        segment = '%s/%s-seg%d' % (box.container, name, number)
        box.put(segment, (b'segment %d ' % number) * 1000)
        segments.append({'path': segment})
    box.put('%s/%s?multipart-manifest=put' % (box.container, name),
            json.dumps(segments).encode())
    return '%s/%s' % (box.container, name)


def _dlo(box: Box, name: str) -> str:
    for number in range(3):
        box.put('%s/%s-part/%02d' % (box.container, name, number),
                b'part %d\n' % number * 300)
    box.put('%s/%s' % (box.container, name), **{
        'X-Object-Manifest': '%s/%s-part/' % (box.container, name)})
    return '%s/%s' % (box.container, name)


def _symlink(box: Box, name: str) -> str:
    target = _encrypted(box, name + '-target')
    box.put('%s/%s' % (box.container, name),
            **{'X-Symlink-Target': target})
    return '%s/%s' % (box.container, name)


def _symlink_into_ec(box: Box, name: str) -> str:
    target = _erasure_coded(box, name + '-target')
    box.put('%s/%s' % (box.container, name),
            **{'X-Symlink-Target': target})
    return '%s/%s' % (box.container, name)


def _versioned(box: Box, name: str) -> str:
    container = unique('versioned')
    box.account.put_container(container, **{'X-Versions-Enabled': 'true'})
    path = '%s/%s' % (container, name)
    box.put(path, b'the first version\n')
    box.put(path, b'the current version\n' * 20)
    return path


KINDS = {'encrypted': _encrypted, 'erasure-coded': _erasure_coded,
         'slo': _slo, 'dlo': _dlo, 'symlink': _symlink,
         'symlink-into-ec': _symlink_into_ec, 'versioned': _versioned}


@pytest.mark.parametrize('kind', sorted(KINDS))
def test_program_reads_what_a_client_gets(box, kind):
    path = KINDS[kind](box, unique(kind))
    got = box.account.get(path)
    assert got.status_code == 200, got.text
    seen = box.probe(path)
    assert (seen['md5'], seen['size']) == (
        hashlib.md5(got.content).hexdigest(), len(got.content))
    assert seen['path'] == '/%s/%s' % (box.account.name, path)
    assert seen['etag'] == got.headers['Etag'].strip('"')


def test_word_count_over_an_erasure_coded_container(box):
    """A wildcard over ``ec`` books; outputs stored in ``ec`` too."""
    books = unique('books-ec')
    results = unique('results-ec')
    box.account.put_container(books, **EC_POLICY)
    box.account.put_container(results, **EC_POLICY)
    texts = upload_books(box.account, books)
    image = upload_word_count_zapp(box.account, books)
    resp = box.account.post_job(word_count_job(image, books, results))
    assert resp.status_code == 200, resp.text
    assert nexe_list(resp, 'X-Nexe-System') == WORD_COUNT_SYSTEM
    assert_all_ok(resp, len(WORD_COUNT_SYSTEM))
    assert box.account.get('%s/total' % results).content == \
        expected_word_count(texts)
    for name, text in texts.items():
        stored = box.account.get('%s/%s' % (results, name.replace(
            '.txt', '.words')))
        assert stored.text == '%d\n' % len(text.split())
    info = requests.head('%s/%s' % (box.account.url, results),
                         headers=box.account.headers(),
                         timeout=REQUEST_TIMEOUT)
    assert info.headers['X-Storage-Policy'] == 'ec'


def test_output_into_an_erasure_coded_container_reads_back(box):
    data = os.urandom(200000)
    source = '%s/%s' % (box.container, unique('source'))
    box.put(source, data)
    copier = 'swift://~/%s/copier.tar' % box.container
    box.account.put_object(box.container, 'copier.tar', zapp({
        'main.py': "open('/dev/output', 'wb').write("
                   "open('/dev/input', 'rb').read())\n"}))
    target = '%s/%s' % (box.ec_container, unique('copy'))
    resp = box.account.post_job([python_node('copier', copier, devices=[
        {'name': 'input', 'path': 'swift://~/' + source},
        {'name': 'output', 'path': 'swift://~/' + target}])])
    assert resp.status_code == 200, resp.text
    assert box.account.get(target).content == data


def test_container_database_holds_the_etags_a_listing_shows(box):
    container = unique('listed')
    box.account.put_container(container)
    for name in ('a', 'b'):
        box.put('%s/%s' % (container, name), name.encode() * 100)
    listing = requests.get('%s/%s?format=json' % (box.account.url,
                                                  container),
                           headers=box.account.headers(),
                           timeout=REQUEST_TIMEOUT).json()
    resp = box.run('etags', container)
    assert resp.status_code == 200, resp.text
    assert json.loads(resp.text) == {item['name']: item['hash']
                                     for item in listing}
    assert json.loads(resp.text)['a'] == hashlib.md5(b'a' * 100).hexdigest()


# ----------------------------------------------------- plaintext on disk

@pytest.mark.parametrize('ec', [False, True], ids=['replicated', 'ec'])
def test_plaintext_never_reaches_a_device(cluster, box, ec):
    marker = ('plaintext-%s|' % unique('marker')).encode()
    path = '%s/%s' % (box.ec_container if ec else box.container,
                      unique('secret'))
    box.put(path, marker * 500)
    # Looked at while the node reads the object.  An encrypted object read
    # in place is decrypted in the sandbox's memory only; a streamed one
    # (erasure-coded) is held in RAM.
    running, during, resp = _while_lingering(box, path, lambda: (
        device_files_holding(cluster, marker),
        files_holding(DEFAULT_RAM_DIR, marker, prefix=NODE_DIR_PREFIX)))
    assert running, 'the node was never seen running'
    on_devices, in_ram = during
    assert on_devices == []
    assert bool(in_ram) == ec, in_ram
    assert resp.status_code == 200, resp.text
    assert resp.text.strip() == hashlib.md5(marker * 500).hexdigest()
    assert device_files_holding(cluster, marker) == []
    assert files_holding(DEFAULT_RAM_DIR, marker,
                         prefix=NODE_DIR_PREFIX) == []


def _files_of_size(top: str, size: int) -> Set[str]:
    """Names of the files of ``size`` bytes under ``top``."""
    names = set()
    for root, _, files in os.walk(top):
        for name in files:
            try:
                if os.path.getsize(os.path.join(root, name)) == size:
                    names.add(name)
            except OSError:
                pass   # gone meanwhile
    return names


def _device_files_of_size(cluster, size: int) -> Set[str]:
    """Names of the files of ``size`` bytes on the object servers' devices
    (the node's files are in a directory under a device's ``tmp/``)."""
    names = set()
    for node in range(1, OBJECT_SERVER_COUNT + 1):
        names |= _files_of_size(cluster.devices_dir(node), size)
    return names


def test_outputs_are_sealed_on_devices_while_the_node_runs(cluster, box):
    """What a node writes to files on a device (an output object, its
    answer, its undeclared stderr) is ciphertext there: the devices are
    scanned again and again while the node runs, and seen holding all
    three written in full."""
    marker = ('written-%s|' % unique('marker')).encode()
    data = marker * 500
    path = '%s/%s' % (box.container, unique('secret'))
    output = '%s/%s' % (box.container, unique('copy'))
    box.put(path, data)

    three = {'out.output', 'out.stdout', 'diag.stderr'}

    def look() -> Tuple[Set[str], Set[str]]:
        # Sizes are cheap to watch; contents are read once all three are
        # written in full, while the node lingers (a scan reads every file
        # on the devices: under load it may outlast the linger).
        written: Set[str] = set()
        while node_running() and not three <= written:
            written.update(_device_files_of_size(cluster, len(data)))
        return set(device_files_holding(cluster, marker)), written
    running, (holding, written), resp = _while_lingering(
        box, path, look, image='copy',
        outputs=[{'name': 'output', 'path': 'swift://~/' + output}])
    assert running, 'the node was never seen running'
    assert three <= written
    assert holding == set()
    assert resp.status_code == 200, resp.text
    assert resp.content == data
    assert box.account.get(output).content == data
    assert device_files_holding(cluster, marker) == []


def test_what_nodes_answered_is_sealed_in_the_proxy_spool(cluster, box):
    """A node's output waits in the proxy's spool until every node of the
    job has ended: ciphertext there, looked at while a node downstream of
    it still runs, and stored as written once that one ends."""
    marker = ('spooled-%s|' % unique('marker')).encode()
    data = marker * 500
    path = '%s/%s' % (box.container, unique('secret'))
    output = '%s/%s' % (box.container, unique('copy'))
    box.put(path, data)
    sleeper = store_zapp(box.account, box.container, {
        'main.py': 'import time\nstart = time.time()\n'
                   'while time.time() - start < %d:\n    pass\n'
                   % (3 * LINGER)})
    answer: Dict[str, requests.Response] = {}
    job = threading.Thread(target=lambda: answer.update(
        resp=box.account.post_job([
            python_node('copier', box.images['copy'], devices=[
                {'name': 'input', 'path': 'swift://~/' + path},
                {'name': 'output', 'path': 'swift://~/' + output}],
                connect=['sleeper']),
            python_node('sleeper', sleeper)])))
    job.start()
    holding, spooled = set(), set()
    try:
        while job.is_alive():
            holding.update(files_holding(cluster.spool_dir, marker))
            spooled.update(_files_of_size(cluster.spool_dir, len(data)))
            time.sleep(0.05)
    finally:
        job.join()
    assert any(name.startswith('zerocloud-out-') for name in spooled), \
        'the output was never seen spooled'
    assert holding == set()
    assert answer['resp'].status_code == 200, answer['resp'].text
    assert box.account.get(output).content == data
    assert os.listdir(cluster.spool_dir) == []


# ------------------------------------------------- inputs a client cannot read

def test_symlink_the_caller_cannot_follow_is_403_naming_it(cluster, box):
    other = Account(cluster, 'tester2')
    private = unique('private')
    other.put_container(private)
    other.put_object(private, 'secret', b'not for tester\n')
    link = '%s/%s' % (box.container, unique('link'))
    box.put(link, **{'X-Symlink-Target': '%s/secret' % private,
                     'X-Symlink-Target-Account': other.name})
    assert box.account.get(link).status_code == 403
    output = '%s/%s' % (box.container, unique('never'))
    resp = box.run('probe', link, [
        {'name': 'output', 'path': 'swift://~/' + output}])
    assert resp.status_code == 403, resp.text
    assert resp.text == 'Error 403 Forbidden while fetching /%s/%s\n' % (
        box.account.name, link)
    assert box.account.get(output).status_code == 404


@pytest.mark.parametrize('missing', [0, 1], ids=['first', 'second'])
def test_slo_with_a_missing_segment_fails_naming_it(box, missing):
    name = unique('broken')
    segments = ['%s/%s-seg%d' % (box.container, name, number)
                for number in range(2)]
    for number, segment in enumerate(segments):
        box.put(segment, b'%d' % number * 70000)
    box.put('%s/%s?multipart-manifest=put' % (box.container, name),
            json.dumps([{'path': s} for s in segments]).encode())
    resp = requests.delete('%s/%s' % (box.account.url, segments[missing]),
                           headers=box.account.headers(),
                           timeout=REQUEST_TIMEOUT)
    assert resp.status_code == 204
    output = '%s/%s' % (box.container, unique('never'))
    resp = box.run('probe', '%s/%s' % (box.container, name), [
        {'name': 'output', 'path': 'swift://~/' + output}])
    # Swift's GET checks the first segment before answering (409); a later
    # one is missed only while the body streams to the node.
    named = '%s/%s/%s' % (box.account.name, box.container, name)
    assert (resp.status_code, resp.text) == [
        (409, 'Error 409 Conflict while fetching /%s\n' % named),
        (503, 'Node reader: reading swift://%s failed while it was being '
              'sent to the storage server\n' % named)][missing]
    assert box.account.get(output).status_code == 404
