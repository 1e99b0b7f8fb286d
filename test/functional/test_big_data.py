"""Inputs many times a node's RAM (issue 16), on the shared cluster, whose
object servers keep at most ``SHARED_RAM_LIMIT`` (8 MiB) of a node's
inputs in RAM and encrypt at rest.

- An encrypted object six times that limit is read in place as
  ``/dev/input``, sequentially and at random offsets (``seek`` and
  ``pread``), and as ``stdin``: the md5 of every byte, and of each range,
  is that of a client's GET.  Nothing is decrypted into a file: the
  sandbox decrypts what the program reads, in its own memory.
- Inputs the proxy streams, beyond that limit: an SLO of six 8 MiB
  segments as ``/dev/input`` and an erasure-coded object as ``stdin``
  reach the program whole, fed as it reads; a program that reads only
  their first bytes ends well (the rest is dropped); a seek on one is a
  clear error (Python: not seekable; ``ESPIPE``), while a small streamed
  input, which fits in RAM, can still be read at random.  A node that
  fails half-way through such an input stores nothing, and its server
  logs how much of the input it fed.
- Data between nodes beyond that limit: four mappers send 12 MiB each
  to one reducer, which reads them whole one after another while they
  all run: each is a stream (a seek fails), and what waits for the
  reducer waits on the device sealed (ciphertext there, looked at while
  the reducer runs).
- A large answer streams while its node runs (also while its input is
  still being fed): the client reads the first
  MiBs while the program still runs (its server has not logged its end),
  ``X-Nexe-Status: streaming``, the whole body right; a node that fails
  after its answer started cuts the body short (the client's read fails),
  and the proxy's log line of the job says how it ended; a client that
  sends ``TE: trailers`` (curl) gets a clean end either way, with the
  final status in trailer fields.
- A large output stored as an object (stdout with a path, or a named
  device written in order) goes into its PUT while its node runs; a
  named device written out of order is stored as the program left it;
  a node that fails stores nothing.
"""

import hashlib
import json
import os
import random
import re
import subprocess
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest
import requests

from zerocloud.saio import OBJECT_SERVER_COUNT

from .conftest import SHARED_RAM_LIMIT
from .helpers import (
    REQUEST_TIMEOUT, Account, LogWatch, ProxyLog, assert_all_ok,
    device_files_holding, nexe_list, node_running, python_node, server_pids,
    store_zapp, unique)

#: stdin to stdout, in C (``make examples`` builds it).
PASSTHROUGH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'examples', 'passthrough.wasm')
BIG = 6 * SHARED_RAM_LIMIT
CHUNK = 1 << 20
#: (offset, size) of the ranges read at random (one across the end).
RANGES = [(BIG - 100, 1000), (12345, 3 * CHUNK), (BIG // 2 + 7, 70000),
          (0, 1), (CHUNK - 1, 2)]
#: Hashes its input (``/dev/input``, or ``stdin`` with argument ``stdin``)
#: a MiB at a time, then (unless given ``whole``) the ``RANGES`` of
#: ``/dev/input``; one JSON line.
READER = '''import hashlib, json, os, sys
ranges = %r
def whole(f):
    digest = hashlib.md5()
    for chunk in iter(lambda: f.read(%d), b''):
        digest.update(chunk)
    return digest.hexdigest()
if sys.argv[1:] == ['stdin']:
    print(json.dumps({'md5': whole(sys.stdin.buffer)}))
elif sys.argv[1:] == ['whole']:
    print(json.dumps({'md5': whole(open('/dev/input', 'rb'))}))
else:
    with open('/dev/input', 'rb') as f:
        seen = {'md5': whole(f), 'ranges': []}
        for offset, size in ranges:
            f.seek(offset)
            seen['ranges'].append(hashlib.md5(f.read(size)).hexdigest())
        seen['pread'] = hashlib.md5(
            os.pread(f.fileno(), size, BIG // 3)).hexdigest()
    print(json.dumps(seen))
'''.replace('BIG', str(BIG)) % (RANGES, CHUNK)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope='module')
def big(cluster):
    """(account, container, the object's bytes, the reader zapp)."""
    account = Account(cluster)
    container = unique('big')
    account.put_container(container)
    data = random.Random(16).randbytes(BIG)
    account.put_object(container, 'object', data)
    with open(PASSTHROUGH, 'rb') as program:
        account.put_object(container, 'passthrough.wasm', program.read(),
                           'application/wasm')
    image = store_zapp(account, container, {'main.py': READER,
                                            'head.py': HEAD,
                                            'seek.py': SEEKER,
                                            'fail.py': FAILER,
                                            'talk.py': TALKER,
                                            'save.py': SAVER,
                                            'tick.py': TICKER,
                                            'say.py': SAYER})
    return account, container, data, image


#: Prints the md5 of the first MiB of ``/dev/input`` and stops there.
HEAD = '''import hashlib
print(hashlib.md5(open('/dev/input', 'rb').read(%d)).hexdigest())
''' % CHUNK
#: Reads ``/dev/input`` from byte 10 (a seek first).
SEEKER = '''import hashlib
with open('/dev/input', 'rb') as f:
    f.seek(10)
    print(hashlib.md5(f.read()).hexdigest())
'''

#: Copies 2 MiB of ``/dev/input`` to ``/dev/output``, then fails.
FAILER = '''import sys
data = open('/dev/input', 'rb').read(%d)
open('/dev/output', 'wb').write(data)
sys.exit(3)
''' % (2 * CHUNK)

#: Writes 4 MiB to stdout, spins ``TALK_PAUSE`` seconds, writes 4 MiB
#: more, then exits with argv[1].
TALK_PAUSE = 4
TALKER = '''import sys, time
out = sys.stdout.buffer
out.write(b'a' * %d)
out.flush()
start = time.time()
while time.time() - start < %d:
    pass
out.write(b'b' * %d)
out.flush()
sys.exit(int(sys.argv[1]))
''' % (4 * CHUNK, TALK_PAUSE, 4 * CHUNK)

#: Writes 4 MiB of ``SAVED`` to ``/dev/output``, spins ``TALK_PAUSE``
#: seconds, writes 4 MiB more; with an argument ``rewrite``, then its first
#: bytes again (``HEAD``); with ``answer``, prints a line; exits with
#: argv[1].
SAVED = b'saved as it goes|'
SAVER = '''import sys, time
piece = %r * (%d // %d)
with open('/dev/output', 'wb') as out:
    out.write(piece)
    out.flush()
    start = time.time()
    while time.time() - start < %d:
        pass
    out.write(piece)
    if 'rewrite' in sys.argv[2:]:
        out.seek(0)
        out.write(b'HEAD')
if 'answer' in sys.argv[2:]:
    print('saved', 2 * len(piece))
sys.exit(int(sys.argv[1]))
''' % (SAVED, 4 * CHUNK, len(SAVED), TALK_PAUSE)

#: Writes one line, spins ``TALK_PAUSE`` seconds, writes another.
TICKER = '''import sys, time
print('tick', flush=True)
start = time.time()
while time.time() - start < %d:
    pass
print('tock')
''' % TALK_PAUSE

#: Prints ``tick``, spins a second, prints ``tock``, exits with its
#: argument.
SAYER = '''import sys, time
print('tick', flush=True)
start = time.time()
while time.time() - start < 1:
    pass
print('tock')
sys.exit(int(sys.argv[1]))
'''


@pytest.fixture(scope='module')
def slo(big):
    """The object's bytes again, as an SLO of ``SHARED_RAM_LIMIT``
    segments; its path."""
    account, container, data, _image = big
    segments = []
    for number in range(BIG // SHARED_RAM_LIMIT):
        name = 'segment-%02d' % number
        account.put_object(container, name, data[
            number * SHARED_RAM_LIMIT:(number + 1) * SHARED_RAM_LIMIT])
        segments.append({'path': '%s/%s' % (container, name)})
    resp = account.put('%s/slo?multipart-manifest=put' % container,
                       json.dumps(segments).encode())
    assert resp.status_code == 201, resp.text
    return '%s/slo' % container


def run_on(account: Account, image: str, path: str, device: str = 'input',
           script: str = 'main.py'):
    return account.post_job([python_node(
        'reader', image, script=script, devices=[
            {'name': 'stdout'},
            {'name': device, 'path': 'swift://~/' + path}])])


def test_an_encrypted_object_larger_than_ram_is_read_at_random(big):
    account, container, data, image = big
    resp = account.post_job([python_node('reader', image, devices=[
        {'name': 'stdout'},
        {'name': 'input', 'path': 'swift://~/%s/object' % container}])])
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    last = RANGES[-1][1]
    assert json.loads(resp.text) == {
        'md5': md5(data),
        'ranges': [md5(data[offset:offset + size])
                   for offset, size in RANGES],
        'pread': md5(data[BIG // 3:BIG // 3 + last])}


def test_an_encrypted_object_larger_than_ram_is_stdin(big):
    account, container, data, image = big
    resp = account.post_job([python_node(
        'reader', image, script='main.py stdin', devices=[
            {'name': 'stdout'},
            {'name': 'stdin', 'path': 'swift://~/%s/object' % container}])])
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    assert json.loads(resp.text) == {'md5': md5(data)}


def test_an_slo_larger_than_ram_is_fed_as_it_is_read(big, slo):
    account, _container, data, image = big
    for device, script in (('input', 'main.py whole'),
                           ('stdin', 'main.py stdin')):
        resp = run_on(account, image, slo, device, script)
        assert resp.status_code == 200, resp.text
        assert nexe_list(resp, 'X-Nexe-Retcode') == ['0'], (
            resp.headers.get('X-Nexe-Error'), device)
        assert_all_ok(resp, 1)
        assert json.loads(resp.text) == {'md5': md5(data)}, device
    resp = run_on(account, image, slo, script='head.py')
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    assert resp.text.strip() == md5(data[:CHUNK])


def test_an_erasure_coded_object_larger_than_ram_is_stdin(big):
    account, _container, data, image = big
    container = unique('big-ec')
    account.put_container(container, **{'X-Storage-Policy': 'ec'})
    account.put_object(container, 'object', data[:4 * SHARED_RAM_LIMIT])
    resp = run_on(account, image, '%s/object' % container, device='stdin',
                  script='main.py stdin')
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    assert json.loads(resp.text) == {'md5': md5(data[:4 * SHARED_RAM_LIMIT])}


def test_a_seek_on_a_streamed_input_is_a_clear_error(big, slo):
    account, container, data, image = big
    resp = run_on(account, image, slo, script='seek.py')
    assert nexe_list(resp, 'X-Nexe-Retcode') == ['1'], resp.text
    assert resp.headers['X-Nexe-Error'] == 'bad return code: ' \
        'io.UnsupportedOperation: File or stream is not seekable.'
    # A streamed input that fits in RAM is a file: seeks work.
    small = '%s/small-slo' % container
    account.put_object(container, 'small-0', data[:CHUNK])
    account.put_object(container, 'small-1', data[CHUNK:CHUNK + 99])
    assert account.put(small + '?multipart-manifest=put', json.dumps([
        {'path': '%s/small-%d' % (container, number)}
        for number in range(2)]).encode()).status_code == 201
    resp = run_on(account, image, small, script='seek.py')
    assert resp.status_code == 200, resp.text
    assert nexe_list(resp, 'X-Nexe-Status') == ['ok']
    assert resp.text.strip() == md5(data[10:CHUNK + 99])


def test_a_node_failing_inside_a_streamed_input_stores_nothing(
        cluster, big, slo):
    account, container, _data, image = big
    watch = LogWatch(cluster)
    resp = account.post_job([python_node(
        'failer', image, script='fail.py', devices=[
            {'name': 'stdout'},
            {'name': 'input', 'path': 'swift://~/' + slo},
            {'name': 'output',
             'path': 'swift://~/%s/failed-output' % container}])])
    assert nexe_list(resp, 'X-Nexe-Retcode') == ['3'], resp.text
    assert account.get('%s/failed-output' % container).status_code == 404
    logged = ''.join(watch.new_text(name) for name in watch.paths)
    [line] = [line for line in logged.splitlines() if 'node: failer' in line]
    fed, size = re.search(r'fed input: (\d+) of (\d+) bytes', line).groups()
    assert int(size) == BIG
    assert 2 * CHUNK <= int(fed) < BIG


#: Mapper ``map-<k>``: ``MAPPED + k`` pseudo-random bytes (seeded by its
#: name) to each peer.  Reducer: per peer in turn, the md5 of its data and
#: what a seek back says, then spins ``REDUCE_PAUSE`` seconds.
MAPPED = 12 << 20
REDUCE_PAUSE = 3
MAPPER = '''import os, random
me = os.environ['SCRIPT_NAME']
data = random.Random(me).randbytes(%d + int(me.split('-')[1]))
for peer in os.listdir('/dev/out'):
    with open('/dev/out/' + peer, 'wb') as out:
        out.write(data)
''' % MAPPED
REDUCER = '''import hashlib, json, os, time
seen = {}
for peer in sorted(os.listdir('/dev/in')):
    with open('/dev/in/' + peer, 'rb') as part:
        digest = hashlib.md5()
        for chunk in iter(lambda: part.read(1 << 20), b''):
            digest.update(chunk)
        try:
            part.seek(0)
            seen[peer] = [digest.hexdigest(), 'seekable']
        except OSError as err:
            seen[peer] = [digest.hexdigest(), str(err)]
start = time.time()
while time.time() - start < %d:
    pass
print(json.dumps(seen))
''' % REDUCE_PAUSE


def test_data_between_nodes_beyond_ram_streams_and_waits_sealed(cluster,
                                                                big):
    account, container, _data, _image = big
    image = store_zapp(account, container, {'map.py': MAPPER,
                                            'reduce.py': REDUCER})
    marker = random.Random('map-1').randbytes(MAPPED + 1)[:4096]
    found = []
    answer = {}
    job = threading.Thread(target=lambda: answer.update(resp=post_job(
        account, [python_node('map', image, 'map.py', count=4,
                              connect=['reduce']),
                  python_node('reduce', image, 'reduce.py',
                              devices=[{'name': 'stdout'}])])))
    job.start()
    try:
        while job.is_alive():
            found += device_files_holding(cluster, marker)
            time.sleep(0.2)
    finally:
        job.join()
    resp = answer['resp']
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 5)
    expected = {}
    for number in range(1, 5):
        data = random.Random('map-%d' % number).randbytes(MAPPED + number)
        expected['map-%d' % number] = [md5(data),
                                       'File or stream is not seekable.']
    assert json.loads(resp.text) == expected
    assert found == []


def post_job(account: Account, nodes: list,
             **headers: str) -> requests.Response:
    """POST a JSON job; the answer read as it arrives."""
    return requests.post(
        account.url, stream=True, timeout=REQUEST_TIMEOUT,
        data=json.dumps(nodes),
        headers=account.headers(**{'X-Zerovm-Execute': '1.0',
                                   'Content-Type': 'application/json'},
                                **headers))


def test_a_large_answer_streams_while_its_node_runs(cluster, big, slo):
    account, container, data, image = big
    watch = LogWatch(cluster)
    resp = post_job(account, [python_node('talker', image,
                                          script='talk.py 0',
                                          devices=[{'name': 'stdout'}])])
    assert resp.status_code == 200
    assert resp.headers['X-Nexe-Status'] == 'streaming'
    assert resp.headers['Transfer-Encoding'] == 'chunked'
    chunks = resp.iter_content(CHUNK)
    first = b''
    while len(first) < 4 * CHUNK:
        first += next(chunks)
    # The program is still spinning: its server logs a node at its end.
    running = ''.join(watch.new_text(name) for name in watch.paths)
    assert 'node: talker' not in running
    rest = b''.join(chunks)
    assert first + rest == b'a' * (4 * CHUNK) + b'b' * (4 * CHUNK)
    # The whole answer of a C passthrough, from an encrypted object read
    # in place, and from an SLO fed as it is read: both streamed (the
    # proxy reads the answer while it still sends the SLO).
    for source, status in (('%s/object' % container, 'streaming'),
                           (slo, 'streaming')):
        passthrough = post_job(account, [{
            'name': 'passthrough',
            'exec': {'path': 'swift://~/%s/passthrough.wasm' % container},
            'devices': [{'name': 'stdin', 'path': 'swift://~/' + source},
                        {'name': 'stdout'}]}])
        assert passthrough.status_code == 200
        assert passthrough.headers['X-Nexe-Status'] == status
        assert md5(passthrough.content) == md5(data), source


def test_a_small_answer_streams_from_its_first_byte_when_asked(cluster,
                                                                 big):
    account, _container, _data, image = big
    ticker = [python_node('ticker', image, script='tick.py',
                          devices=[{'name': 'stdout'}])]
    watch = LogWatch(cluster)
    resp = post_job(account, ticker, **{'X-Zerocloud-Stream-After': '0'})
    assert resp.status_code == 200
    assert resp.headers['X-Nexe-Status'] == 'streaming'
    assert resp.raw.read(5) == b'tick\n'
    # The program still spins: its server logs a node at its end.
    running = ''.join(watch.new_text(name) for name in watch.paths)
    assert 'node: ticker' not in running
    assert resp.raw.read() == b'tock\n'
    # Without the header, five bytes come whole, headers first.
    whole = post_job(account, ticker)
    assert whole.headers['X-Nexe-Status'] == 'ok'
    assert whole.content == b'tick\ntock\n'
    bad = post_job(account, ticker, **{'X-Zerocloud-Stream-After': '-1'})
    assert bad.status_code == 400
    assert 'X-Zerocloud-Stream-After must be a whole number' in bad.text


def test_a_node_failing_after_its_answer_started_cuts_it_short(
        cluster, big):
    account, _container, _data, image = big
    log = ProxyLog(cluster)
    resp = post_job(account, [python_node('quitter', image,
                                          script='talk.py 5',
                                          devices=[{'name': 'stdout'}])])
    assert resp.headers['X-Nexe-Status'] == 'streaming'
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for _ in resp.iter_content(CHUNK):
            pass
    [line] = [line for line in log.new_text().splitlines()
              if 'zerocloud job' in line and 'nodes quitter' in line]
    assert 'status 422' in line and 'node-status ok' in line


def _header_fields(block: str) -> Dict[str, str]:
    return dict(line.split(': ', 1) for line in block.split('\r\n') if line)


@pytest.mark.parametrize('code, status', [(0, 200), (5, 422)])
def test_a_streamed_answer_ends_with_its_final_status_when_asked(
        cluster, big, tmp_path, code, status):
    """``TE: trailers``: curl gets the final status after the body, as
    trailer fields (``-D`` writes them after the headers), and the body
    ends cleanly whether the node succeeded or not."""
    account, _container, _data, image = big
    job = tmp_path / 'job.json'
    job.write_text(json.dumps([python_node(
        'sayer', image, script='say.py %d' % code,
        devices=[{'name': 'stdout'}])]))
    head, body = tmp_path / 'head', tmp_path / 'body'
    curl = subprocess.run(
        ['curl', '-sS', '-D', str(head), '-o', str(body),
         '-H', 'TE: trailers', '-H', 'X-Auth-Token: ' + account.token,
         '-H', 'X-Zerovm-Execute: 1.0', '-H', 'X-Zerocloud-Stream-After: 0',
         '-H', 'Content-Type: application/json',
         '--data-binary', '@%s' % job, account.url],
        capture_output=True, text=True, timeout=REQUEST_TIMEOUT)
    assert curl.returncode == 0, curl.stderr
    assert body.read_bytes() == b'tick\ntock\n'
    status_line, rest = head.read_bytes().decode().split('\r\n', 1)
    header_block, trailer_block = rest.split('\r\n\r\n', 1)
    assert status_line.endswith(' 200 OK')
    headers = _header_fields(header_block)
    assert headers['X-Nexe-Status'] == 'streaming'
    assert headers['Trailer'].startswith('X-Zerocloud-Status, ')
    trailers = _header_fields(trailer_block)
    assert trailers['X-Zerocloud-Status'] == str(status)
    assert trailers['X-Nexe-System'] == 'sayer'
    assert trailers['X-Nexe-Status'] == 'ok'
    assert trailers['X-Nexe-Retcode'] == str(code)
    assert ('X-Nexe-Error' in trailers) is (code != 0)
    assert set(trailers) <= {
        name.strip() for name in headers['Trailer'].split(',')}


def _largest_swift_upload(cluster) -> int:
    """The size of the largest object upload in progress on the cluster:
    the unnamed files (``O_TMPFILE``, ``#<n> (deleted)`` until the upload
    is committed) Swift's object servers hold open in an object's
    directory."""
    largest = 0
    for number in range(1, OBJECT_SERVER_COUNT + 1):
        for pid in server_pids(cluster, 'object-server-%d' % number):
            fds = '/proc/%d/fd' % pid
            try:
                names = os.listdir(fds)
            except OSError:
                continue   # gone meanwhile
            for name in names:
                path = os.path.join(fds, name)
                try:
                    target = os.readlink(path)
                    if '/objects' in target and '/#' in target:
                        largest = max(largest, os.stat(path).st_size)
                except OSError:
                    pass   # closed meanwhile
    return largest


def _watch_uploads(cluster, job: threading.Thread,
                   marker: Optional[bytes] = None) -> Tuple[int, List[str]]:
    """While ``job`` runs, until its node's sandbox has run and ended: the
    largest object upload in progress seen, and (given ``marker``) the
    device files holding it, looked at once that upload is past 2 MiB."""
    uploading, ran, holding = 0, False, []
    try:
        while job.is_alive():
            running = node_running()
            ran = ran or running
            if ran and not running:
                break
            uploading = max(uploading, _largest_swift_upload(cluster))
            if marker and running and uploading > 2 * CHUNK and not holding:
                holding = device_files_holding(cluster, marker) or ['none']
            time.sleep(0.1)
    finally:
        job.join()
    assert ran, 'the node was never seen running'
    return uploading, [path for path in holding if path != 'none']


def test_a_large_stdout_to_store_goes_into_its_put_while_it_runs(
        cluster, big):
    """stdout with a path, more than the answer holds back: the object's
    PUT is under way while the program still spins between its two halves
    (a file an object server is uploading grows past the held-back MiB
    while the sandbox runs), and the object is what the program wrote.  A
    node that fails after its output started leaves no object."""
    account, container, _data, image = big
    target = '%s/%s' % (container, unique('streamed'))
    answer = {}
    job = threading.Thread(target=lambda: answer.update(
        resp=account.post_job([python_node(
            'talker', image, script='talk.py 0', devices=[
                {'name': 'stdout', 'path': 'swift://~/' + target}])])))
    job.start()
    uploading, _holding = _watch_uploads(cluster, job)
    resp = answer['resp']
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    # While the program spun: more than the held-back first MiB was on
    # its way into Swift.
    assert uploading > 2 * CHUNK
    stored = account.get(target)
    assert stored.content == b'a' * (4 * CHUNK) + b'b' * (4 * CHUNK)
    _failing_stores_nothing(big, 'talk.py 5', 'stdout')


def _failing_stores_nothing(big, script: str, device: str) -> None:
    """A node whose ``script`` exits 5 after writing ``device`` (a path)
    leaves no object."""
    account, container, _data, image = big
    failed = '%s/%s' % (container, unique('failed'))
    resp = account.post_job([python_node(
        'quitter', image, script=script, devices=[
            {'name': device, 'path': 'swift://~/' + failed}])])
    assert nexe_list(resp, 'X-Nexe-Retcode') == ['5'], resp.text
    assert account.get(failed).status_code == 404


@pytest.mark.parametrize('flags', ['', 'rewrite', 'answer'])
def test_a_named_output_goes_into_its_put_while_it_runs(cluster, big,
                                                        flags):
    """``/dev/output``, a file the program may seek in, stored as an
    object: written in order, its PUT is under way while the program
    spins between its two halves, and no device holds its plaintext
    meanwhile (its file is sealed).  A program that goes back and writes
    its first bytes again gets exactly what it left in the file stored
    (sent again whole, the PUT in progress abandoned).  Beside an answer
    on stdout too, which comes whole once the object is stored.  A node
    that fails leaves no object."""
    account, container, _data, image = big
    target = '%s/%s' % (container, unique('saved'))
    answer = {}
    job = threading.Thread(target=lambda: answer.update(
        resp=account.post_job([python_node(
            'saver', image, script=('save.py 0 ' + flags).strip(),
            devices=[{'name': 'output', 'path': 'swift://~/' + target}] +
            ([{'name': 'stdout'}] if flags == 'answer' else []))])))
    job.start()
    uploading, holding = _watch_uploads(cluster, job, SAVED * 4)
    resp = answer['resp']
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    assert uploading > 2 * CHUNK
    assert holding == []
    piece = SAVED * (4 * CHUNK // len(SAVED))
    stored = account.get(target)
    assert stored.status_code == 200
    assert stored.content == (b'HEAD' + piece[4:] + piece
                              if flags == 'rewrite' else piece + piece)
    assert stored.headers['Etag'] == md5(stored.content)
    assert resp.text == ('saved %d\n' % (2 * len(piece))
                         if flags == 'answer' else '')
    if not flags:
        _failing_stores_nothing(big, 'save.py 5', 'output')
