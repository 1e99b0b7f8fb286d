"""The node client against real sockets: each wait on a storage server is
bounded, and only the target server's own failures are blamed on it
(``error_occurred``), never a busy pool or a broken input."""

import json
import logging
import socket
from typing import Iterator, List

import eventlet
import pytest
from eventlet.event import Event

from zerocloud import protocol
from zerocloud.job.model import Node, parse_job
from zerocloud.proxy.nodeclient import (
    Answer, Attempts, FetchingUpload, InputFailed, NodeError, NodeResult,
    Upload, busy_seconds, dispatch, read_answer)

from test.unit.storage_server import TIMEOUTS, StorageServer, busy, runs

LOGGER = logging.getLogger('test')
pytestmark = pytest.mark.usefixtures('no_hang')


def cat_node() -> Node:
    return parse_job([{'name': 'cat', 'exec': {'path': 'file://python:python'},
                       'devices': [{'name': 'stdout'}]}],
                     account='a', sysimages={'python'}).nodes[0]


@pytest.fixture
def servers():
    """``servers(behave, ...)``: started storage servers, stopped after."""
    started: List[StorageServer] = []

    def start(*behaviours) -> List[StorageServer]:
        new = [StorageServer(behave) for behave in behaviours]
        started.extend(new)
        return new
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def unreachable():
    """A server whose listen queue is full: connecting times out."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(('127.0.0.1', port))
    yield {'ip': '127.0.0.1', 'port': port, 'device': 'sdb1'}
    filler.close()
    listener.close()


class Blame:
    """What the proxy's error limiter was told, server by server."""

    def __init__(self):
        self.servers: List[int] = []
        self.messages: List[str] = []

    def __call__(self, server: dict, message: str) -> None:
        self.servers.append(server['port'])
        self.messages.append(message)


def sysmap() -> Upload:
    data = json.dumps(cat_node().to_dict()).encode()
    return Upload(protocol.SYSMAP_MEMBER, len(data), [data])


def send(targets, blame, uploads=None):
    nodes = [t if isinstance(t, dict) else
             {'ip': '127.0.0.1', 'port': t.port, 'device': 'sdb1'}
             for t in targets]
    return dispatch(nodes, 0, '/a', {'Content-Type': 'application/x-tar'},
                    uploads if uploads is not None else [sysmap()],
                    TIMEOUTS, blame)


def output_of(answer: Answer) -> bytes:
    result = NodeResult(cat_node())
    read_answer(result, answer, False, None, LOGGER)
    assert not result.failed, result.error
    try:
        return b''.join(result.body.chunks)
    finally:
        result.discard()


def test_a_healthy_server_runs_the_node(servers):
    [server] = servers(runs)
    blame = Blame()
    answer = send([server], blame)
    assert isinstance(answer, Answer)
    assert output_of(answer) == b'cat ran on %d' % server.port
    assert server.requests[0]['Expect'] == '100-continue'
    assert blame.servers == []


def test_a_server_that_cannot_be_reached_is_blamed_and_the_next_runs(
        servers, unreachable):
    [healthy] = servers(runs)
    blame = Blame()
    answer = send([unreachable, healthy], blame)
    assert output_of(answer) == b'cat ran on %d' % healthy.port
    assert blame.servers == [unreachable['port']]
    assert 'ConnectionTimeout' in blame.messages[0]


def test_no_100_continue_is_blamed_and_the_next_runs(servers):
    frozen, healthy = servers(lambda ex: ex.hang(), runs)
    blame = Blame()
    answer = send([frozen, healthy], blame)
    assert output_of(answer) == b'cat ran on %d' % healthy.port
    assert blame.servers == [frozen.port]
    assert 'ResponseTimeout' in blame.messages[0]


def zeros(size: int, chunk: int = 65536) -> Iterator[bytes]:
    for offset in range(0, size, chunk):
        yield b'\0' * min(chunk, size - offset)


def test_a_server_that_stops_reading_the_body_is_lost(servers):
    """More than the sockets' buffers hold, to a server that said
    ``100 Continue`` and then reads nothing: each chunk sent is bounded."""
    stalled, healthy = servers(lambda ex: (ex.continue_(), ex.hang()), runs)
    size = 64 << 20
    blame = Blame()
    outcome = send([stalled, healthy], blame,
                   [sysmap(), Upload('input', size, zeros(size))])
    assert isinstance(outcome, Attempts)
    assert outcome.lost['port'] == stalled.port
    assert blame.servers == [stalled.port]
    assert 'ChunkWriteTimeout' in blame.messages[0]
    assert healthy.requests == []   # the body is spent: the caller retries


def test_no_answer_after_the_body_is_lost(servers):
    frozen, healthy = servers(lambda ex: (ex.read_node(), ex.hang()), runs)
    blame = Blame()
    outcome = send([frozen, healthy], blame)
    assert isinstance(outcome, Attempts)
    assert outcome.lost['port'] == frozen.port
    assert blame.servers == [frozen.port]
    assert 'ResponseTimeout' in blame.messages[0]
    assert outcome.final('/a').status == 503


def answer_then(fault):
    """Answers the node's headers and the first 600 bytes, then ``fault``."""
    def behave(ex):
        ex.answer_node(ex.read_node(), b'x' * 5000, send=600)
        fault(ex)
    return behave


@pytest.mark.parametrize('fault, why', [
    (lambda ex: ex.hang(), 'ChunkReadTimeout'),
    (lambda ex: None, 'bytes short'),   # the connection closes
], ids=['stalls', 'breaks off'])
def test_an_answer_that_stalls_or_breaks_is_blamed(servers, fault, why):
    [server] = servers(answer_then(fault))
    blame = Blame()
    answer = send([server], blame)
    assert isinstance(answer, Answer) and answer.status == 200
    result = NodeResult(cat_node())
    read_answer(result, answer, False, None, LOGGER)
    assert result.status == 503 and result.server_failed
    assert result.error == 'Storage server failed while answering for node cat'
    assert blame.servers == [server.port]
    assert why in blame.messages[0]


def test_a_busy_server_is_not_blamed_and_the_next_runs(servers):
    full, healthy = servers(busy, runs)
    blame = Blame()
    answer = send([full, healthy], blame)
    assert output_of(answer) == b'cat ran on %d' % healthy.port
    assert blame.servers == []


def test_every_server_busy_says_how_long_to_wait(servers):
    first, second = servers(lambda ex: busy(ex, '1'), lambda ex: busy(ex, '2'))
    blame = Blame()
    outcome = send([first, second], blame)
    assert isinstance(outcome, Attempts)
    assert outcome.busy_for == 2.0
    assert outcome.lost is None and not outcome.decided
    assert blame.servers == []


def test_a_queued_node_answered_busy_after_its_body_is_not_blamed(servers):
    """The object server's queue wait ran out: busy, after the body."""
    queued, healthy = servers(
        lambda ex: (ex.read_node(), busy(ex, '1')), runs)
    blame = Blame()
    outcome = send([queued, healthy], blame)
    assert isinstance(outcome, Attempts)
    assert outcome.busy_for == 1.0 and outcome.lost is None
    assert blame.servers == []
    assert healthy.requests == []   # the body is spent: the caller resends


def test_a_503_without_retry_after_is_a_failure(servers):
    broken, healthy = servers(lambda ex: ex.refuse(503), runs)
    blame = Blame()
    answer = send([broken, healthy], blame)
    assert output_of(answer) == b'cat ran on %d' % healthy.port
    assert blame.servers == [broken.port]


def test_a_refusal_every_server_would_repeat_ends_the_tries(servers):
    refusing, healthy = servers(
        lambda ex: ex.refuse(400, text=b'Bad member name'), runs)
    blame = Blame()
    outcome = send([refusing, healthy], blame)
    assert isinstance(outcome, Attempts) and outcome.decided
    assert outcome.final('/a').message == 'Bad member name'
    assert healthy.requests == []
    assert blame.servers == []


def broken_input(size: int, sent: int) -> Iterator[bytes]:
    """An input fetched from elsewhere that breaks after ``sent`` bytes."""
    yield b'y' * sent
    raise OSError('backend GET broke off')


def test_a_broken_input_is_not_blamed_on_the_server(servers):
    [server] = servers(runs)
    blame = Blame()
    upload = Upload('input', 100000, broken_input(100000, 1000),
                    'swift://a/c/big')
    with pytest.raises(InputFailed) as failure:
        send([server], blame, [sysmap(), upload])
    assert failure.value.message == ('reading swift://a/c/big failed while '
                                     'it was being sent to the storage '
                                     'server')
    assert failure.value.status == 503
    assert blame.servers == []
    assert server.ran == []


def test_an_input_shorter_than_announced_is_the_inputs_failure(servers):
    [server] = servers(runs)
    blame = Blame()
    short = Upload('input', 100, [b'z' * 10], 'swift://a/c/short')
    with pytest.raises(InputFailed) as failure:
        send([server], blame, [sysmap(), short])
    assert 'swift://a/c/short' in failure.value.message
    assert blame.servers == []


def test_a_member_still_being_fetched_overlaps_the_servers_answer(servers):
    """A stored program's GET goes on while the server is reached (here
    it cannot end before the server saw the request); the body is then
    chunked, the member sent once fetched."""
    arrived = Event()
    got = {}

    def behave(ex) -> None:
        arrived.send()
        ex.continue_()
        got.update(ex.read_body())
        ex.answer_node(json.loads(got[protocol.SYSMAP_MEMBER]))
    [server] = servers(behave)

    def fetch() -> Upload:
        arrived.wait()
        return Upload(protocol.EXECUTABLE_MEMBER, 5, [b'wasm!'])
    blame = Blame()
    answer = send([server], blame, [
        sysmap(), FetchingUpload('swift://a/c/prog', fetch)])
    assert output_of(answer) == b'cat ran on %d' % server.port
    assert server.requests[0]['Transfer-Encoding'] == 'chunked'
    assert 'Content-Length' not in server.requests[0]
    assert got[protocol.EXECUTABLE_MEMBER] == b'wasm!'
    assert blame.servers == []


def refused_fetch() -> Upload:
    raise NodeError('Error 404 Not Found while fetching /a/c/prog', 404)


def test_a_refused_fetch_fails_the_node_and_blames_no_server(servers):
    """Refused after the server said ``100 Continue``: the fetch's own
    error, the body cut short (the node never runs)."""
    [server] = servers(runs)
    blame = Blame()

    def late_refusal() -> Upload:
        while not server.requests:
            eventlet.sleep(0.01)
        refused_fetch()
    with pytest.raises(NodeError) as failure:
        send([server], blame, [
            sysmap(), FetchingUpload('swift://a/c/prog', late_refusal)])
    assert (failure.value.status, failure.value.message) == (
        404, 'Error 404 Not Found while fetching /a/c/prog')
    assert not isinstance(failure.value, InputFailed)
    assert blame.servers == [] and server.ran == []


def test_a_refused_fetch_stops_the_tries_of_other_servers(servers):
    first, second = servers(busy, runs)
    blame = Blame()
    with pytest.raises(NodeError) as failure:
        send([first, second], blame, [
            sysmap(), FetchingUpload('swift://a/c/prog', refused_fetch)])
    assert failure.value.status == 404
    assert len(first.requests) == 1 and second.requests == []


def test_a_fetch_that_breaks_is_the_inputs_failure(servers):
    [server] = servers(runs)
    blame = Blame()

    def broken() -> Upload:
        raise OSError('backend GET broke off')
    with pytest.raises(InputFailed) as failure:
        send([server], blame, [
            sysmap(), FetchingUpload('swift://a/c/prog', broken)])
    assert 'swift://a/c/prog' in failure.value.message
    assert blame.servers == [] and server.ran == []


LIVE_SIZE = 8 << 20


def answers_first(log: dict, go_on: Event):
    """A server that answers once it has read the system map, and reads
    the rest of the body (the live input) only once ``go_on`` is sent: a
    node whose answer streams while its input is still being fed."""
    def behave(exchange) -> None:
        exchange.continue_()
        reader = protocol.MemberReader(exchange._read)
        reader.next_member()
        node = json.loads(b''.join(iter(reader.read, b'')))
        live = reader.next_member()
        exchange.answer_node(node, b'answered before the input ended')
        go_on.wait()
        log['input'] = (live.name, b''.join(iter(reader.read, b'')))
    return behave


def live_input() -> Upload:
    return Upload('input', LIVE_SIZE, zeros(LIVE_SIZE), 'swift://a/c/big',
                  streamable=True)


def test_duplex_reads_the_answer_while_the_live_input_is_sent(servers):
    log, go_on = {}, Event()
    [server] = servers(answers_first(log, go_on))
    answer = dispatch(
        [server.ring_device(1)], 0, '/a',
        {'Content-Type': 'application/x-tar',
         protocol.ANSWER_STREAM_HEADER: protocol.ANSWER_STREAM_DUPLEX},
        [sysmap(), live_input()], TIMEOUTS, Blame())
    # Far more than the sockets hold is still to send: the answer came
    # while the server reads none of it.
    reader = protocol.MemberReader(answer.read)
    assert reader.next_member().name == 'stdout'
    assert b''.join(iter(reader.read, b'')) == \
        b'answered before the input ended'
    go_on.send()
    with eventlet.Timeout(10):
        while 'input' not in log:
            eventlet.sleep(0.01)
    assert log['input'] == ('input', bytes(LIVE_SIZE))
    answer.release()


def test_without_duplex_the_answer_waits_for_the_body(servers):
    """An older object server (no duplex asked): the body first, so a
    server that will not read it before it is answered read is lost."""
    log, go_on = {}, Event()
    [server] = servers(answers_first(log, go_on))
    blame = Blame()
    outcome = send([server], blame, [sysmap(), live_input()])
    go_on.send()
    assert isinstance(outcome, Attempts)
    assert blame.servers == [server.port]
    assert 'ChunkWriteTimeout' in blame.messages[0]


def test_duplex_with_an_input_broken_before_the_answer_blames_the_input(
        servers):
    """The body is ended where the input broke: the server's answer (here:
    none, it drops the connection) does not wait for its timeout, and the
    failure is the input's."""
    [server] = servers(runs)
    blame = Blame()
    upload = Upload('input', 100000, broken_input(100000, 1000),
                    'swift://a/c/big', streamable=True)
    with pytest.raises(InputFailed) as failure:
        dispatch([server.ring_device(1)], 0, '/a',
                 {'Content-Type': 'application/x-tar',
                  protocol.ANSWER_STREAM_HEADER:
                      protocol.ANSWER_STREAM_DUPLEX},
                 [sysmap(), upload], TIMEOUTS, blame)
    assert 'swift://a/c/big' in failure.value.message
    assert blame.servers == []
    assert server.ran == []


@pytest.mark.parametrize('status, retry_after, seconds', [
    (503, '1', 1.0),
    (503, '2.5', 2.5),
    (503, 'Wed, 21 Oct 2015 07:28:00 GMT', 1.0),   # a date: a second
    (503, '-3', 1.0),
    (503, None, None),     # a 503 alone is a failure, not "busy"
    (500, '1', None),
])
def test_busy_seconds(status, retry_after, seconds):
    assert busy_seconds(status, retry_after) == seconds
