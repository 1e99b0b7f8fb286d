"""Helpers shared by the functional tests: accounts, zapps, the word count.

Every request has a timeout (``REQUEST_TIMEOUT``) so a hung job fails a test
instead of hanging the suite.
"""

import collections
import configparser
import contextlib
import io
import json
import os
import random
import re
import shutil
import signal
import stat
import tarfile
import tempfile
import time
import uuid
from typing import (
    Callable, Dict, Iterable, Iterator, List, Optional, Tuple)

import pytest
import requests
from swift.common.ring import Ring
from swift.common.utils import quote, set_swift_dir

from zerocloud.devices import holds_swift_metadata
from zerocloud.object.config import DEFAULT_RAM_DIR
from zerocloud.object.hostmemory import NODE_DIR_PREFIX
from zerocloud.saio import OBJECT_SERVER_COUNT, Cluster, LaunchError

#: tmpfs first: Swift keeps object metadata in user xattrs, which tmpfs
#: holds without ext4's one-block limit, and it is fast.
PREFERRED_TMP = '/dev/shm'


def fast_tmp_dir() -> str:
    """A directory for throwaway clusters: tmpfs when usable."""
    if os.path.isdir(PREFERRED_TMP) and os.access(PREFERRED_TMP, os.W_OK) \
            and holds_swift_metadata(PREFERRED_TMP):
        return PREFERRED_TMP
    return tempfile.gettempdir()


@contextlib.contextmanager
def started_cluster(prefix: str,
                    configure_before_start: Optional[Callable] = None,
                    app_snapshots: bool = False,
                    **options) -> Iterator[Cluster]:
    """A cluster of its own, on free ports in a fresh directory, stopped
    and removed afterwards.  ``configure_before_start(cluster)`` may edit
    its prepared configuration.  App snapshots are off unless asked for
    (a build takes the CPU for minutes: test_app_snapshots.py).  A cluster
    that does not start fails the test loudly with the launcher's message;
    its work directory is kept for the logs."""
    workdir = tempfile.mkdtemp(prefix=prefix, dir=fast_tmp_dir())
    cluster = Cluster(workdir, port=0, **options)
    try:
        cluster.prepare()
        if not app_snapshots:
            configure_object_query(cluster, zerovm_app_snapshots='0')
        if configure_before_start is not None:
            configure_before_start(cluster)
        cluster.start()
    except LaunchError as err:
        pytest.fail('the cluster did not start: %s (work directory kept: '
                    '%s)' % (err, workdir), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


#: Seconds any single request may take; a hung job fails instead of hanging.
REQUEST_TIMEOUT = 120
#: Seconds a deferred job's result may take to appear.
DEFERRED_WAIT = 30
#: Seconds a killed server's processes may take to disappear.
KILL_WAIT = 10
PYTHON_EXEC = {'path': 'file://python:python'}

#: Prints what a program saw of ``/dev/input`` as one JSON line: md5, size
#: and its ``LOCAL_PATH_INFO`` and ``LOCAL_HTTP_ETAG``.
INPUT_PROBE = '''import hashlib, json, os
data = open('/dev/input', 'rb').read()
print(json.dumps({'md5': hashlib.md5(data).hexdigest(), 'size': len(data),
                  'path': os.environ.get('LOCAL_PATH_INFO'),
                  'etag': os.environ.get('LOCAL_HTTP_ETAG')}))
'''

# ------------------------------------------------------------------ helpers


class Account:
    """One user's storage account as the tests use it (plain ``requests``)."""

    def __init__(self, cluster, user: str = 'tester'):
        self.url = cluster.storage_url(user)
        self.token = cluster.token(user)
        self.name = self.url.rsplit('/', 1)[1]

    def headers(self, **extra: str) -> Dict[str, str]:
        return dict({'X-Auth-Token': self.token}, **extra)

    def put_container(self, name: str, **headers: str) -> None:
        resp = requests.put('%s/%s' % (self.url, name),
                            headers=self.headers(**headers),
                            timeout=REQUEST_TIMEOUT)
        assert resp.status_code in (201, 202), resp.text

    def put_object(self, container: str, name: str, data: bytes,
                   content_type: str = 'application/octet-stream') -> None:
        resp = requests.put('%s/%s/%s' % (self.url, container, name),
                            data=data, timeout=REQUEST_TIMEOUT,
                            headers=self.headers(**{
                                'Content-Type': content_type}))
        assert resp.status_code == 201, resp.text

    def put(self, path: str, data: bytes = b'',
            **headers: str) -> requests.Response:
        """PUT ``path`` (``container/object[?query]``) with any headers."""
        return requests.put('%s/%s' % (self.url, path), data=data,
                            headers=self.headers(**headers),
                            timeout=REQUEST_TIMEOUT)

    def get(self, path: str) -> requests.Response:
        return requests.get('%s/%s' % (self.url, path),
                            headers=self.headers(), timeout=REQUEST_TIMEOUT)

    def listing(self, container: str) -> List[str]:
        resp = self.get(container)
        assert resp.status_code in (200, 204), resp.text
        return resp.text.split()

    def post_job(self, job, path: str = '',
                 headers: Optional[Dict[str, str]] = None
                 ) -> requests.Response:
        """POST a JSON job description to the account (or ``path`` in it)."""
        return self.execute(json.dumps(job).encode(), path,
                            dict(headers or {},
                                 **{'Content-Type': 'application/json'}))

    def execute(self, body: bytes, path: str = '',
                headers: Optional[Dict[str, str]] = None
                ) -> requests.Response:
        """POST with ``X-Zerovm-Execute``; ``headers`` say what ``body`` is."""
        return requests.post(self.url + path, data=body,
                             timeout=REQUEST_TIMEOUT,
                             headers=self.headers(**dict(
                                 headers or {},
                                 **{'X-Zerovm-Execute': '1.0'})))


def unique(prefix: str) -> str:
    """A container name no other test (or earlier run) uses."""
    return '%s-%s' % (prefix, uuid.uuid4().hex[:8])


def zapp(files: Dict[str, str]) -> bytes:
    """A tar of ``{member: source}``: a user image or a whole zapp."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def python_node(name: str, image: str, script: str = 'main.py',
                devices: Optional[list] = None, **extra) -> dict:
    """A node running ``script`` of the zapp ``image`` with WASI Python."""
    node = {'name': name, 'exec': dict(PYTHON_EXEC, args=script),
            'devices': [{'name': 'python'},
                        {'name': 'image', 'path': image}] + (devices or [])}
    node.update(extra)
    return node


def store_zapp(account: Account, container: str, files: Dict[str, str],
               name: Optional[str] = None) -> str:
    """Store a zapp of ``{member: source}`` (a fresh name unless ``name``);
    its ``swift://`` URL for an image device."""
    name = name or unique('zapp') + '.tar'
    account.put_object(container, name, zapp(files), 'application/x-tar')
    return 'swift://~/%s/%s' % (container, name)


def with_stdout(devices: Iterable[dict]) -> List[dict]:
    """``devices``, with a path-less stdout (the response) unless given."""
    devices = list(devices)
    if not any(device['name'] == 'stdout' for device in devices):
        devices.insert(0, {'name': 'stdout'})
    return devices


def run_python(account: Account, container: str, source: str,
               devices: Iterable[dict] = (), name: str = 'main',
               headers: Optional[Dict[str, str]] = None,
               **node) -> requests.Response:
    """Run ``source`` as main.py of a zapp stored in ``container``, as one
    node (``node``: more of its keys); its stdout answers unless
    ``devices`` bind stdout."""
    image = store_zapp(account, container, {'main.py': source})
    return account.post_job([python_node(name, image,
                                         devices=with_stdout(devices),
                                         **node)], headers=headers)


def read_input(account: Account, image: str, path: str,
               outputs: Iterable[dict] = ()) -> requests.Response:
    """One node ``reader`` of ``image`` reading ``path``
    (``container/object``) as ``/dev/input``; its stdout answers."""
    return account.post_job([python_node('reader', image, devices=[
        {'name': 'stdout'},
        {'name': 'input', 'path': 'swift://~/' + path}] + list(outputs))])


def probe_input(account: Account, image: str, path: str) -> dict:
    """What :data:`INPUT_PROBE`, stored as ``image``, saw of ``path``."""
    resp = read_input(account, image, path)
    assert resp.status_code == 200, resp.text
    assert_all_ok(resp, 1)
    return json.loads(resp.text)


def probe_in_place(cluster, account: Account, image: str, path: str,
                   stored_at: Tuple[str, str, str]) -> dict:
    """Probe ``path`` (see :func:`probe_input`), checking that the node ran
    on a server holding ``stored_at`` (account, container, object) and that
    the proxy never GET ``path`` for the job; what the probe saw."""
    watch = LogWatch(cluster)
    proxy_log = ProxyLog(cluster)
    seen = probe_input(account, image, path)
    assert watch.servers_that_ran()['reader'][0] in primary_servers(
        cluster, *stored_at)
    assert proxy_log.job_gets(account, path) == []
    return seen


def nexe_list(resp: requests.Response, header: str) -> List[str]:
    return resp.headers[header].split(',')


def assert_all_ok(resp: requests.Response, count: int) -> None:
    statuses = nexe_list(resp, 'X-Nexe-Status')
    assert statuses == ['ok'] * count, resp.headers
    assert nexe_list(resp, 'X-Nexe-Retcode') == ['0'] * count


def object_server_logs(cluster) -> Dict[str, str]:
    return {name: cluster.log_path(name) for name in cluster.ports
            if name.startswith('object-server')}


class LogWatch:
    """What the object servers log from now on (``node: <name>, ...``)."""

    def __init__(self, cluster):
        self.paths = object_server_logs(cluster)
        self.offsets = {name: os.path.getsize(path)
                        for name, path in self.paths.items()}

    def new_text(self, name: str) -> str:
        with open(self.paths[name], 'rb') as log:
            log.seek(self.offsets[name])
            return log.read().decode('utf-8', 'replace')

    def servers_that_ran(self) -> Dict[str, List[str]]:
        """Instance name -> object servers that logged running it."""
        ran = collections.defaultdict(list)
        for name in sorted(self.paths):
            for instance in re.findall(r'node: ([\w.-]+),',
                                       self.new_text(name)):
                ran[instance].append(name)
        return ran


class ProxyLog:
    """What the proxy logs from now on."""

    def __init__(self, cluster):
        self.path = cluster.log_path('proxy-server')
        self.offset = os.path.getsize(self.path)

    def new_text(self) -> str:
        with open(self.path, 'rb') as log:
            log.seek(self.offset)
            return log.read().decode('utf-8', 'replace')

    def job_gets(self, account: Account, path: str) -> List[str]:
        """Lines of GETs of ``path`` the proxy made for a job."""
        request = ' GET %s ' % quote('/v1/%s/%s' % (account.name, path))
        return [line for line in self.new_text().splitlines()
                if request in line and ' ZC ' in line]


def configure(cluster, server: str, section: str, **options: str) -> None:
    """Set options in one section of a prepared (not yet started) cluster's
    server configuration, e.g. ``configure(c, 'proxy-server', 'DEFAULT',
    client_timeout='2')``."""
    path = os.path.join(cluster.etc_dir, '%s.conf' % server)
    conf = configparser.RawConfigParser()
    conf.optionxform = str
    conf.read(path)
    for name, value in options.items():
        conf.set(section, name, value)
    with open(path, 'w') as fp:
        conf.write(fp)


def configure_object_query(cluster, **options: str) -> None:
    """Set ``object_query`` options on every server that runs the filter
    (object and container servers) of a prepared cluster."""
    for name in sorted(os.listdir(cluster.etc_dir)):
        if not name.endswith('.conf'):
            continue
        conf = configparser.RawConfigParser()
        conf.read(os.path.join(cluster.etc_dir, name))
        if conf.has_section('filter:object_query'):
            configure(cluster, name[:-len('.conf')], 'filter:object_query',
                      **options)


def server_pids(cluster, server: str) -> List[int]:
    """Processes of one server of ``cluster``, found by its config path."""
    conf = os.path.join(cluster.etc_dir, '%s.conf' % server).encode()
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as cmdline:
                argv = cmdline.read().split(b'\0')
        except OSError:
            continue
        if conf in argv:
            pids.append(int(entry))
    return pids


def is_zombie(pid: int) -> bool:
    try:
        with open('/proc/%d/stat' % pid) as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


def signal_server(cluster, server: str, signum: int) -> None:
    """Signal a server's process group: the server, its workers and
    their sandbox workers."""
    pids = server_pids(cluster, server)
    assert pids, '%s is not running' % server
    for pgid in {os.getpgid(pid) for pid in pids}:
        os.killpg(pgid, signum)


def cluster_ring(etc_dir: str, name: str = 'object') -> Ring:
    """A ring of the cluster configured in ``etc_dir``, hashing with that
    cluster's prefix and suffix (Swift keeps them per process: set them
    before every use, another cluster's may be in place)."""
    set_swift_dir(etc_dir)
    return Ring(os.path.join(etc_dir, name + '.ring.gz'))


def primary_servers(cluster, account: str, container: str,
                    obj: str, ring_name: str = 'object') -> List[str]:
    """Object servers holding an object (its fragments, for ring
    ``object-1`` of the ``ec`` policy), in ring order."""
    ring = cluster_ring(cluster.etc_dir, ring_name)
    by_address = {address: name for name, address in cluster.addresses.items()
                  if name.startswith('object-server')}
    return [by_address[node['ip'], node['port']]
            for node in ring.get_nodes(account, container, obj)[1]]


def node_running() -> bool:
    """Is a sandbox running on this machine (its run directory exists, in
    a node's directory under the RAM dir)?"""
    for entry in os.scandir(DEFAULT_RAM_DIR):
        if entry.name.startswith(NODE_DIR_PREFIX) and entry.is_dir():
            try:
                if any(name.startswith('.zvm-run-')
                       for name in os.listdir(entry.path)):
                    return True
            except OSError:
                pass   # gone meanwhile
    return False


def files_holding(top: str, marker: bytes, prefix: str = '') -> List[str]:
    """Regular files under ``top`` (only in its entries named ``prefix*``,
    when given) whose bytes contain ``marker``.  (A FIFO a node writes
    its answer into holds nothing at rest; reading it would take bytes
    from the server.)"""
    found = []
    for root, dirs, files in os.walk(top):
        if root == top and prefix:
            dirs[:] = [d for d in dirs if d.startswith(prefix)]
            files = [f for f in files if f.startswith(prefix)]
        for name in files:
            path = os.path.join(root, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                with open(path, 'rb') as fp:
                    if marker in fp.read():
                        found.append(path)
            except OSError:
                pass   # gone meanwhile
    return found


def device_files_holding(cluster, marker: bytes) -> List[str]:
    """Files on the object servers' devices whose bytes contain
    ``marker``."""
    found = []
    for node in range(1, OBJECT_SERVER_COUNT + 1):
        found += files_holding(cluster.devices_dir(node), marker)
    return found


def wait_for_object(account: Account, path: str) -> requests.Response:
    """GET ``path`` until it exists (bounded by :data:`DEFERRED_WAIT`)."""
    deadline = time.monotonic() + DEFERRED_WAIT
    while True:
        resp = account.get(path)
        if resp.status_code == 200 or time.monotonic() > deadline:
            return resp
        time.sleep(0.2)


def kill_server(cluster, server: str) -> None:
    """SIGKILL a server's process group and wait until it is gone."""
    signal_server(cluster, server, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT
    while any(not is_zombie(pid) for pid in server_pids(cluster, server)):
        assert time.monotonic() < deadline, '%s survived SIGKILL' % server
        time.sleep(0.05)


# ------------------------------------------------------------- word count

BOOK_COUNT = 12
BOOK_WORDS = 700
VOCABULARY = ('the of and to in is was he for it with as his on be at by '
              'had not are but from or have an they which one you were all '
              'her she there would their we him been has when who will more '
              'no if out so said what up its about into than them can only '
              'cloud swift object proxy sandbox zerovm').split()
#: Objects in the books container that ``*.txt`` must not match.
BOOK_DECOYS = {'notes.txt.bak': 'decoy decoy decoy\n',
               'readme.md': 'decoy readme\n'}

MAPPER = '''import collections, json, os, sys
counts = collections.Counter(sys.stdin.read().split())
print(sum(counts.values()))
reducers = sorted(os.listdir('/dev/out'))
parts = [{} for _ in reducers]
for word, count in counts.items():
    parts[sum(word.encode()) % len(reducers)][word] = count
for reducer, part in zip(reducers, parts):
    with open('/dev/out/' + reducer, 'w') as out:
        json.dump(part, out)
'''

REDUCER = '''import collections, json, os
total = collections.Counter()
for mapper in sorted(os.listdir('/dev/in')):
    with open('/dev/in/' + mapper) as part:
        total.update(json.load(part))
with open('/dev/out/merge', 'w') as out:
    json.dump(total, out)
'''

MERGER = '''import collections, json, os
total = collections.Counter()
for reducer in sorted(os.listdir('/dev/in')):
    with open('/dev/in/' + reducer) as part:
        total.update(json.load(part))
for word in sorted(total):
    print(word, total[word])
'''


def book_texts() -> Dict[str, str]:
    """Twelve deterministic books of a few KB over a small vocabulary."""
    rng = random.Random(20240605)
    weights = [1.0 / (rank + 1) for rank in range(len(VOCABULARY))]
    books = {}
    for number in range(1, BOOK_COUNT + 1):
        words = rng.choices(VOCABULARY, weights, k=BOOK_WORDS)
        lines = [' '.join(words[i:i + 12]) for i in range(0, len(words), 12)]
        books['book%02d.txt' % number] = '\n'.join(lines) + '\n'
    return books


def expected_word_count(books: Dict[str, str]) -> bytes:
    total = collections.Counter()
    for text in books.values():
        total.update(text.split())
    return ''.join('%s %d\n' % (word, total[word])
                   for word in sorted(total)).encode()


def upload_books(account: Account, container: str) -> Dict[str, str]:
    """The books (and decoys) in a new container; returns the books."""
    account.put_container(container)
    books = book_texts()
    for name, text in dict(books, **BOOK_DECOYS).items():
        account.put_object(container, name, text.encode(), 'text/plain')
    return books


def upload_word_count_zapp(account: Account, container: str) -> str:
    account.put_object(container, 'wordcount.tar', zapp({
        'map.py': MAPPER, 'reduce.py': REDUCER, 'merge.py': MERGER}))
    return 'swift://~/%s/wordcount.tar' % container


def word_count_job(image: str, books: str,
                   results: Optional[str] = None) -> list:
    """map over every ``*.txt`` of ``books`` → reduce ×3 → merge.

    Without ``results`` merge's stdout is the response; with it, each mapper
    stores its word total as ``<results>/<book>.words`` and merge stores the
    counts as ``<results>/total``.
    """
    map_devices = [{'name': 'stdin', 'path': 'swift://~/%s/*.txt' % books}]
    merge_out = {'name': 'stdout'}
    if results:
        map_devices.append({'name': 'stdout',
                            'path': 'swift://~/%s/*.words' % results})
        merge_out['path'] = 'swift://~/%s/total' % results
    return [
        python_node('map', image, 'map.py', map_devices, connect=['reduce']),
        python_node('reduce', image, 'reduce.py', count=3,
                    connect=['merge']),
        python_node('merge', image, 'merge.py', [merge_out]),
    ]


WORD_COUNT_SYSTEM = (['map-%d' % i for i in range(1, BOOK_COUNT + 1)] +
                     ['reduce-1', 'reduce-2', 'reduce-3', 'merge'])
