"""A node's input is the object as a client's GET returns it (issue #10).

On the shared cluster, which encrypts at rest like production:

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
  nor in the device's ``tmp/`` while the node runs (it is in RAM, under
  ``zerovm_ram_dir``, during the run, and gone afterwards);
- inputs the caller cannot read as a client: a symlink into an account the
  caller may not read is 403 naming the symlink, an SLO with a missing
  segment is an error naming the object; nothing is stored.
"""

import hashlib
import json
import os
import threading
import time
from typing import Dict, List, Optional

import pytest
import requests

from zerocloud.object.config import DEFAULT_RAM_DIR

from .helpers import (
    REQUEST_TIMEOUT, WORD_COUNT_SYSTEM, Account, assert_all_ok,
    expected_word_count, nexe_list, python_node, unique, upload_books,
    upload_word_count_zapp, word_count_job, zapp)

#: What the program saw of ``/dev/input``, as one JSON line.
PROBE = '''import hashlib, json, os
data = open('/dev/input', 'rb').read()
print(json.dumps({'md5': hashlib.md5(data).hexdigest(), 'size': len(data),
                  'path': os.environ.get('LOCAL_PATH_INFO'),
                  'etag': os.environ.get('LOCAL_HTTP_ETAG')}))
'''
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
        for name, source in (('probe', PROBE), ('linger', LINGERER),
                             ('etags', ETAGS)):
            account.put_object(self.container, name + '.tar',
                               zapp({'main.py': source}))
            self.images[name] = 'swift://~/%s/%s.tar' % (self.container,
                                                          name)

    def put(self, path: str, data: bytes = b'', **headers: str) -> None:
        resp = self.account.put(path, data, **headers)
        assert resp.status_code == 201, resp.text

    def run(self, image: str, path: str,
            outputs: Optional[List[dict]] = None) -> requests.Response:
        """One node reading ``path`` (``container/object``) as
        ``/dev/input``; its stdout is the response."""
        return self.account.post_job([python_node(
            'reader', self.images[image], devices=[
                {'name': 'stdout'},
                {'name': 'input', 'path': 'swift://~/' + path}] +
            (outputs or []))])

    def probe(self, path: str) -> dict:
        resp = self.run('probe', path)
        assert resp.status_code == 200, resp.text
        assert_all_ok(resp, 1)
        return json.loads(resp.text)


@pytest.fixture(scope='module')
def account(cluster):
    return Account(cluster)


@pytest.fixture(scope='module')
def box(account):
    return Box(account)


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

def _files_holding(top: str, marker: bytes, prefix: str = '') -> List[str]:
    """Files under ``top`` (directories named ``prefix*`` only, when
    given) whose bytes contain ``marker``."""
    found = []
    for entry in sorted(os.listdir(top)):
        if prefix and not entry.startswith(prefix):
            continue
        for root, _dirs, files in os.walk(os.path.join(top, entry)):
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, 'rb') as fp:
                        if marker in fp.read():
                            found.append(path)
                except OSError:
                    pass   # gone meanwhile
    return found


def _device_files_holding(cluster, marker: bytes) -> List[str]:
    found = []
    for node in range(1, 5):
        found += _files_holding(cluster.devices_dir(node), marker)
    return found


@pytest.mark.parametrize('ec', [False, True], ids=['replicated', 'ec'])
def test_plaintext_never_reaches_a_device(cluster, box, ec):
    marker = ('plaintext-%s|' % unique('marker')).encode()
    path = '%s/%s' % (box.ec_container if ec else box.container,
                      unique('secret'))
    box.put(path, marker * 500)
    answer: Dict[str, requests.Response] = {}
    runner = threading.Thread(target=lambda: answer.update(
        resp=box.run('linger', path)))
    runner.start()
    try:
        deadline = time.monotonic() + WATCH_TIMEOUT
        in_ram: List[str] = []
        while not in_ram and time.monotonic() < deadline:
            in_ram = _files_holding(DEFAULT_RAM_DIR, marker,
                                    prefix='zerocloud-node-')
        # Looked at while the node holds the plaintext.
        on_devices = _device_files_holding(cluster, marker)
    finally:
        runner.join()
    assert in_ram, 'the input never showed up in %s' % DEFAULT_RAM_DIR
    assert on_devices == []
    resp = answer['resp']
    assert resp.status_code == 200, resp.text
    assert resp.text.strip() == hashlib.md5(marker * 500).hexdigest()
    assert _device_files_holding(cluster, marker) == []
    assert _files_holding(DEFAULT_RAM_DIR, marker,
                          prefix='zerocloud-node-') == []


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
    assert resp.status_code == 409, resp.text
    named = '/%s/%s/%s' % (box.account.name, box.container, name)
    # Swift's GET checks the first segment before answering; a later one
    # is missed only while the body streams.
    assert resp.text == [
        'Error 409 Conflict while fetching %s\n' % named,
        'Could not read %s: got 70000 of its 140000 bytes (a segment '
        'missing?)\n' % named][missing]
    assert box.account.get(output).status_code == 404
