"""The scheduler against storage servers on real sockets: retry after a
lost server, replicas, co-location, the per-job concurrency cap, and
waiting for busy servers within the job's deadline and the process's
waiting cap — without ever blaming a busy server."""

import logging
import time
from typing import Callable, List

import eventlet
import pytest
from eventlet.event import Event
from swift.common import utils
from swift.common.ring import Ring, RingBuilder
from swift.common.swob import Request

from zerocloud import protocol
from zerocloud.job.model import parse_job
from zerocloud.job.source import Spooled
from zerocloud.options import ConfigError
from zerocloud.proxy.config import (
    DEFAULT_JOB_CONCURRENCY, DEFAULT_JOB_DEADLINE, DEFAULT_MAX_WAITING_NODES,
    ProxyConfig)
from zerocloud.proxy.nodeclient import NodeClient, NodeResult
from zerocloud.proxy.placement import Placer
from zerocloud.proxy.request import JobRequest
from zerocloud.proxy.scheduler import BACKOFF_CAP, Scheduler, busy_backoff
from zerocloud.proxy.swiftaccess import SwiftAccess

from test.unit.storage_server import (
    TIMEOUTS, Exchange, StorageServer, busy, runs)

LOGGER = logging.getLogger('test')
PYTHON = {'path': 'file://python:python'}
pytestmark = pytest.mark.usefixtures('no_hang')


def swift_app(env, start_response):
    """The rest of the proxy pipeline, as the job's fetches see it: one
    object, ``/v1/a/c/prog``, whose body breaks off after 1000 of its
    100000 bytes."""
    if env['PATH_INFO'] != '/v1/a/c/prog':
        start_response('404 Not Found', [('Content-Length', '0')])
        return [b'']

    def breaking():
        yield b'\0' * 1000
        raise OSError('object server went away')
    start_response('200 OK', [('Content-Length', '100000')])
    return breaking()


class Cluster:
    """Storage servers, their ring, and what Swift's proxy app gives the
    scheduler (rings, error limiting)."""

    def __init__(self, tmp_path, behaviours: List[Callable[[Exchange], None]]):
        self.tmp_path = tmp_path
        self.servers = [StorageServer(behave, 'sdb%d' % number)
                        for number, behave in enumerate(behaviours, 1)]
        builder = RingBuilder(4, min(3, len(self.servers)), 1)
        for dev_id, server in enumerate(self.servers):
            builder.add_dev(server.ring_device(dev_id))
        builder.rebalance()
        path = str(tmp_path / 'object.ring.gz')
        builder.get_ring().save(path)
        self.ring = Ring(path)
        #: Ports of the servers reported to the error limiter.
        self.blamed: List[int] = []
        self.client = None

    # -- Swift's proxy app, as Placer and NodeClient use it
    def get_object_ring(self, policy_index: int) -> Ring:
        return self.ring

    def error_limited(self, node: dict) -> bool:
        return False

    def error_occurred(self, node: dict, message: str) -> None:
        self.blamed.append(node['port'])

    # -- running jobs
    def run(self, doc: list, **conf: str) -> List[NodeResult]:
        config = ProxyConfig.from_conf(dict(
            conf, zerovm_sysimage_devices='python /python.tar',
            zerovm_spool_dir=str(self.tmp_path)))
        req = Request.blank('/v1/a', environ={'REQUEST_METHOD': 'POST'})
        swift = SwiftAccess(swift_app, req, LOGGER)
        request = JobRequest(swift, config, req, 'a', None, None)
        self.client = NodeClient(TIMEOUTS, config.max_waiting_nodes,
                                 self.error_occurred)
        job = parse_job(doc, account='a', sysimages=config.sysimages)
        scheduler = Scheduler(request, swift, Placer(self), self.client,
                              'job-1', time.time(), LOGGER)
        results = scheduler.run(job, stream=False)
        self.outputs = [b''.join(r.body.chunks) if r.body else None
                        for r in results]
        for result in results:
            result.discard()
        return results

    def ran(self, name: str) -> List[int]:
        """Ports of the servers that ran node ``name``."""
        return [s.port for s in self.servers for ran in s.ran if ran == name]

    def requests(self) -> int:
        return sum(len(s.requests) for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    # Rings hash paths with the cluster's secret; no /etc/swift here.
    monkeypatch.setattr(utils, 'HASH_PATH_SUFFIX', b'zerocloud-test')
    monkeypatch.setattr(utils, 'HASH_PATH_PREFIX', b'')
    made: List[Cluster] = []

    def start(*behaviours) -> Cluster:
        made.append(Cluster(tmp_path, list(behaviours)))
        return made[-1]
    yield start
    for each in made:
        each.stop()


def free_node(name: str, **extra) -> dict:
    return dict({'name': name, 'exec': PYTHON,
                 'devices': [{'name': 'stdout'}]}, **extra)


def first_requests(count: int, fault: Callable[[Exchange], None]):
    """A behaviour shared by servers: the first ``count`` requests to any
    of them meet ``fault``, later ones run."""
    seen = [0]

    def behave(ex: Exchange) -> None:
        seen[0] += 1
        (fault if seen[0] <= count else runs)(ex)
    return behave


def dies_after_body(ex: Exchange) -> None:
    """Takes the node, then the connection breaks (the server crashed)."""
    ex.read_node()


def test_a_node_whose_server_died_runs_on_the_next(cluster):
    shared = first_requests(1, dies_after_body)
    servers = cluster(shared, shared, shared)
    [result] = servers.run([free_node('solo')])
    assert not result.failed, result.error
    [dead] = servers.blamed
    [ran_on] = servers.ran('solo')
    assert ran_on != dead
    assert servers.outputs == [b'solo ran on %d' % ran_on]


def test_a_node_lost_twice_fails_cleanly(cluster):
    shared = first_requests(2, dies_after_body)
    servers = cluster(shared, shared, shared)
    [result] = servers.run([free_node('solo')])
    assert result.status == 503
    assert result.error == 'Storage server failed while running the node'
    assert len(set(servers.blamed)) == 2
    assert servers.ran('solo') == []


def test_a_server_that_breaks_off_its_answer_is_left_for_the_next(cluster):
    breaks = first_requests(1, lambda ex: ex.answer_node(
        ex.read_node(), b'x' * 5000, send=100))
    servers = cluster(breaks, breaks, breaks)
    [result] = servers.run([free_node('solo')])
    assert not result.failed, result.error
    [broke] = servers.blamed
    assert servers.outputs == [b'solo ran on %d' % servers.ran('solo')[-1]]
    assert servers.ran('solo')[-1] != broke


def test_replicas_run_on_different_servers_in_deterministic_mode(cluster):
    servers = cluster(runs, runs, runs, runs)
    [result] = servers.run([free_node('triple', replicate=3)])
    assert not result.failed, result.error
    assert len(set(servers.ran('triple'))) == 3
    sent = [h for s in servers.servers for h in s.requests]
    assert len(sent) == 3
    assert all(protocol.DETERMINISTIC_HEADER.title() in h for h in sent)


def test_replicas_that_disagree_fail_the_node(cluster):
    def own_etag(ex: Exchange) -> None:
        ex.answer_node(ex.read_node(), etag='etag-%d' % ex.server.port)
    servers = cluster(own_etag, own_etag, own_etag)
    [result] = servers.run([free_node('triple', replicate=3)])
    assert result.status == 422
    assert result.headers['X-Nexe-Status'] == 'replica outputs differ'
    assert servers.blamed == []


def test_nodes_sharing_a_location_share_a_server(cluster):
    servers = cluster(runs, runs, runs, runs)
    results = servers.run([free_node('left', location='here'),
                           free_node('right', location='here'),
                           free_node('elsewhere')])
    assert not any(r.failed for r in results)
    assert servers.ran('left') == servers.ran('right')
    proofs = {h[protocol.COLOCATED_HEADER.title()]
              for s in servers.servers for h in s.requests
              if protocol.COLOCATED_HEADER.title() in h}
    assert len(proofs) == 1


def test_a_wide_job_keeps_to_its_concurrency_cap(cluster):
    """Servers hold every node until the test lets them go, so all the
    nodes the scheduler allows are open at once."""
    gate = Event()

    def held(ex: Exchange) -> None:
        node = ex.read_node()
        gate.wait()
        ex.answer_node(node)
    servers = cluster(held, held, held, held)
    run = eventlet.spawn(servers.run, [free_node('wide', count=40)])
    while sum(s.open for s in servers.servers) < DEFAULT_JOB_CONCURRENCY:
        eventlet.sleep(0.01)
    eventlet.sleep(0.2)   # room for any node beyond the cap to arrive
    open_now = sum(s.open for s in servers.servers)
    gate.send()
    results = run.wait()
    assert open_now == DEFAULT_JOB_CONCURRENCY
    assert len(results) == 40 and not any(r.failed for r in results)
    assert servers.requests() == 40


def test_busy_servers_are_waited_for_and_never_blamed(cluster):
    """Every server busy for the first rounds: the node waits and runs."""
    shared = first_requests(9, busy)
    servers = cluster(shared, shared, shared)
    [result] = servers.run([free_node('patient')])
    assert not result.failed, result.error
    assert servers.requests() == 10   # three rounds of three, then it ran
    assert servers.blamed == []
    assert servers.client.waiting == 0


def test_busy_servers_past_the_deadline_answer_503(cluster):
    servers = cluster(busy, busy, busy)
    [result] = servers.run([free_node('late')], zerovm_job_deadline='0.3')
    assert result.status == 503
    assert result.error == ("Node late: every storage server that can run "
                            "it is busy and the job's deadline (0.3 s) is "
                            "near; try again later")
    assert servers.requests() > 3   # it did wait and try again
    assert servers.blamed == []


def test_beyond_the_waiting_cap_a_busy_node_fails_at_once(cluster):
    servers = cluster(busy, busy, busy)
    [result] = servers.run([free_node('crowded')],
                           zerovm_max_waiting_nodes='0')
    assert result.status == 503
    assert result.error == ('Node crowded: every storage server that can run '
                            'it is busy and too many nodes wait already; '
                            'try again later')
    assert servers.requests() == 3   # one round, no waiting
    assert servers.blamed == []


def test_once_a_node_failed_the_others_stop_waiting(cluster):
    """``missing`` fails at once (its program is not there: its fetch,
    which overlaps the first server's answer, stops it from trying
    another); ``patient`` meets busy servers that ask for seconds: it
    gives up instead of coming back, and is reported as not run."""
    long_wait = [lambda ex: busy(ex, '5')] * 3
    servers = cluster(*long_wait)
    missing, patient = servers.run([
        {'name': 'missing', 'exec': {'path': 'swift://a/c/none'},
         'devices': [{'name': 'stdout'}]},
        free_node('patient')])
    assert missing.status == 404
    assert (patient.status, patient.error, patient.headers) == (200, '', {})
    # missing: one server; patient: one round, never again.
    assert servers.requests() == 1 + 3
    assert servers.client.waiting == 0


def test_an_input_that_breaks_is_named_and_not_blamed(cluster):
    servers = cluster(runs, runs, runs)
    [result] = servers.run([{'name': 'reader', 'exec': {
        'path': 'swift://a/c/prog'}, 'devices': [{'name': 'stdout'}]}])
    assert result.status == 503
    assert result.error == ('Node reader: reading swift://a/c/prog failed '
                            'while it was being sent to the storage server')
    assert servers.blamed == []
    assert servers.ran('reader') == []


@pytest.mark.parametrize('tries, retry_after, jitter, expected', [
    (0, 1.0, 0.0, 1.0),          # what the server asked
    (1, 1.0, 0.0, 2.0),          # doubling
    (3, 1.0, 0.0, 8.0),
    (10, 1.0, 0.0, BACKOFF_CAP),  # capped
    (0, 0.0, 0.0, 0.1),          # a floor for servers that ask for nothing
    (0, 30.0, 0.0, 30.0),        # never before the server asked
    (0, 1.0, 0.5, 1.25),         # jitter stretches, never shortens
])
def test_busy_backoff(tries, retry_after, jitter, expected):
    assert busy_backoff(tries, retry_after, jitter) == pytest.approx(expected)


def test_scheduling_options_default_and_are_checked_at_start():
    config = ProxyConfig.from_conf({})
    assert (config.job_concurrency, config.job_deadline,
            config.max_waiting_nodes) == (
        DEFAULT_JOB_CONCURRENCY, DEFAULT_JOB_DEADLINE,
        DEFAULT_MAX_WAITING_NODES) == (16, 60.0, 64)
    waitless = ProxyConfig.from_conf({'zerovm_job_deadline': '0',
                                      'zerovm_max_waiting_nodes': '0'})
    assert (waitless.job_deadline, waitless.max_waiting_nodes) == (0.0, 0)


@pytest.mark.parametrize('name, raw', [
    ('zerovm_job_concurrency', '0'), ('zerovm_job_concurrency', 'many'),
    ('zerovm_job_deadline', '-1'), ('zerovm_job_deadline', 'soon'),
    ('zerovm_max_waiting_nodes', '-1'), ('zerovm_max_waiting_nodes', '2.5')])
def test_bad_scheduling_options_are_named(name, raw):
    with pytest.raises(ConfigError) as err:
        ProxyConfig.from_conf({name: raw})
    assert str(err.value).startswith(name + ' must be')


def test_a_node_that_raises_leaves_no_spooled_file_of_the_others(
        cluster, tmp_path, monkeypatch):
    """The stage's other nodes end and their files are removed before
    the error goes on (it answers 500)."""
    servers = cluster(runs)
    spooled = tmp_path / 'edge-of-good'

    def run_node(scheduler, node, stream, done, copy=0, target=None):
        if node.name == 'bad':
            raise OSError('too many open files')
        eventlet.sleep(0.05)   # ends after the bad one raised
        spooled.write_bytes(b'for a downstream node')
        return NodeResult(node, edges={'out/x': Spooled(str(spooled), 21)})
    monkeypatch.setattr(Scheduler, '_run_node', run_node)
    with pytest.raises(OSError):
        servers.run([free_node('bad'), free_node('good')])
    eventlet.sleep(0.2)   # a node left running would have written by now
    assert not spooled.exists()
