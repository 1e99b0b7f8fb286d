"""Decompression bombs and oversized system maps in zapps (issue #8, 3 and 4).

Each test posts a crafted zapp to the real cluster, as an attacker would:

* ``test_gzip_bomb_zapp_is_refused``: ~255 KB of gzip whose first member
  expands to 256 MiB, ``boot/system.map`` behind it.  The proxy used to
  expand all of it on its event loop looking for the map (10+ s of a
  stalled proxy per request); now the map must lie within the first
  ``zerovm_image_scan_bytes`` and the answer is a 400 naming that bound.
* ``test_healthcheck_answers_while_a_bomb_is_posted``: the proxy's other
  clients are served while a bomb is being handled (the scan runs in a
  thread, off the event loop).
* ``test_oversized_system_map_is_413``: a valid job padded to 10 MiB as
  ``boot/system.map`` (10 KB of gzip) used to be read whole and run
  (a 256 MiB one raised the proxy to 588 MB); now it gets the 413 a JSON
  body over ``zerovm_maxconfig`` gets, from the tar header, unread.
* ``test_program_behind_a_bomb_is_refused_by_the_object_server``: the map
  comes first (so the proxy accepts the zapp), then 256 MiB of zeros, then
  the program.  The object server used to expand it all to copy the program
  out; now the program must lie within its own scan bound: 400 naming it.

The zeros go through the compressor a MiB at a time: the test never holds
a bomb expanded.
"""

import json
import tarfile
import threading
import zlib
from typing import Tuple, Union

import pytest
import requests
import wasmtime

from .helpers import REQUEST_TIMEOUT, Account

MIB = 1 << 20
BOMB_SIZE = 256 * MIB
#: The filters' defaults (the test cluster does not change them).
SCAN_BYTES = 64 * MIB
MAX_CONFIG = 65536
NOOP_WAT = '(module (memory (export "memory") 1) (func (export "_start")))'
PROGRAM = 'bin/noop.wasm'
PROGRAM_MAP = json.dumps([{
    'name': 'noop', 'exec': {'path': 'file://image:' + PROGRAM},
    'devices': [{'name': 'stdout'}]}])
PYTHON_MAP = json.dumps([{
    'name': 'hello', 'exec': {'path': 'file://python:python',
                              'args': '-c print(1)'},
    'devices': [{'name': 'python'}, {'name': 'stdout'}]}])

Member = Tuple[str, Union[str, bytes, int]]


def gzip_zapp(*members: Member) -> bytes:
    """A gzipped tar, one gzip stream, of (name, data) members; an ``int``
    is that many zero bytes (whole MiBs), streamed through the compressor a
    MiB at a time, never held expanded."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    parts = []
    for name, data in members:
        info = tarfile.TarInfo(name)
        if isinstance(data, int):
            info.size = data
            parts.append(compressor.compress(info.tobuf()))
            parts += [compressor.compress(zeros) for _ in range(data // MIB)]
            continue
        raw = data.encode() if isinstance(data, str) else data
        info.size = len(raw)
        parts.append(compressor.compress(
            info.tobuf() + raw + bytes(-len(raw) % tarfile.BLOCKSIZE)))
    parts.append(compressor.compress(bytes(2 * tarfile.BLOCKSIZE)))
    parts.append(compressor.flush())
    return b''.join(parts)


@pytest.fixture(scope='module')
def bomb() -> bytes:
    """256 MiB of zeros, then the map: ~255 KB of gzip."""
    data = gzip_zapp(('filler', BOMB_SIZE), ('boot/system.map', PYTHON_MAP))
    assert len(data) < 300000
    return data


def post_zapp(account: Account, data: bytes) -> requests.Response:
    return account.execute(data, headers={
        'Content-Type': 'application/x-gzip'})


def test_gzip_bomb_zapp_is_refused(cluster, bomb):
    resp = post_zapp(Account(cluster), bomb)
    assert resp.status_code == 400, resp.text
    assert resp.text == ('System boot map was not found within the first %d '
                         'bytes (uncompressed) of the tar' % SCAN_BYTES)


def test_healthcheck_answers_while_a_bomb_is_posted(cluster, bomb):
    account = Account(cluster)
    answers = []
    poster = threading.Thread(
        target=lambda: answers.append(post_zapp(account, bomb)))
    poster.start()
    try:
        health = requests.get(cluster.proxy_url + '/healthcheck',
                              timeout=REQUEST_TIMEOUT)
    finally:
        poster.join(REQUEST_TIMEOUT)
    assert (health.status_code, health.text) == (200, 'OK')
    [bombed] = answers
    assert bombed.status_code == 400, bombed.text


def test_oversized_system_map_is_413(cluster):
    padded = PYTHON_MAP + ' ' * (10 * MIB - len(PYTHON_MAP))
    zapp = gzip_zapp(('boot/system.map', padded))
    assert len(zapp) < 100000
    resp = post_zapp(Account(cluster), zapp)
    assert resp.status_code == 413, resp.text
    assert resp.text == 'Job description is larger than %d bytes' % MAX_CONFIG


def test_program_behind_a_bomb_is_refused_by_the_object_server(cluster):
    zapp = gzip_zapp(('boot/system.map', PROGRAM_MAP),
                     ('filler', BOMB_SIZE),
                     (PROGRAM, wasmtime.wat2wasm(NOOP_WAT)))
    resp = post_zapp(Account(cluster), zapp)
    assert resp.status_code == 400, resp.text
    assert resp.text == ('Program %s was not found within the first %d '
                         'bytes (uncompressed) of the image\n'
                         % (PROGRAM, SCAN_BYTES))
