"""The data between connected nodes: sealed spills that grow while read,
the in-edges' part of a request body, and its demultiplexing on the
object server into FIFOs the program reads in any order."""

import io
import os
import random

import eventlet
import pytest
from eventlet.hubs import trampoline
from swift.common.swob import HTTPRequestEntityTooLarge

from zerocloud import protocol
from zerocloud.object.edges import EdgeDemux, EdgeInput
from zerocloud.proxy.edges import edge_body
from zerocloud.spill import GrowingSpill, SpillBroken, SpillBudget, SpillFull

A = random.Random(1).randbytes(3 << 20)   # more than a FIFO's buffer
B = random.Random(2).randbytes(70000)


def test_a_spill_is_read_as_it_grows_and_sealed_on_disk(tmp_path):
    spill = GrowingSpill(str(tmp_path), 'edge-')
    reader = eventlet.spawn(lambda: b''.join(spill.chunks()))
    spill.append(B[:1000])
    eventlet.sleep(0)
    assert not reader.dead   # waits for more, not the end
    spill.append(B[1000:])
    spill.end()
    assert reader.wait() == B
    with open(spill.path, 'rb') as fp:
        assert fp.read() != B   # ciphertext: the key is in memory only
    assert spill.read(5, 10) == B[5:15]   # any offset, again
    spill.remove()
    assert not os.path.exists(spill.path)


def test_a_failed_spill_gives_its_data_then_says_so(tmp_path):
    spill = GrowingSpill(str(tmp_path), 'edge-')
    spill.append(b'partial')
    spill.fail('node up failed')
    chunks = spill.chunks()
    assert next(chunks) == b'partial'
    with pytest.raises(SpillBroken, match='node up failed'):
        next(chunks)
    spill.remove()


def test_spills_sharing_a_budget_hold_at_most_its_bytes(tmp_path):
    budget = SpillBudget(1000, 'past %d bytes')
    first = GrowingSpill(str(tmp_path), 'edge-', budget)
    second = GrowingSpill(str(tmp_path), 'edge-', budget)
    first.append(bytes(600))
    second.append(bytes(400))
    with pytest.raises(SpillFull, match='^past 1000 bytes$'):
        first.append(b'x')
    assert (first.size, second.size) == (600, 400)
    first.remove()
    second.remove()


def pieces_of(body: bytes):
    """{device: data} and the devices ended, from an in-edges' body."""
    reader = protocol.MemberReader(io.BytesIO(body).read)
    data, ended = {}, []
    while True:
        member = reader.next_member()
        if member is None:
            return data, ended
        assert protocol.PAX_EDGE in member.pax
        if protocol.PAX_END in member.pax:
            ended.append(member.name)
        else:
            data[member.name] = data.get(member.name, b'') + \
                reader.read(member.size)


def filled(tmp_path, data: bytes, end: bool = True) -> GrowingSpill:
    spill = GrowingSpill(str(tmp_path), 'edge-')
    spill.append(data)
    if end:
        spill.end()
    return spill


def test_edge_body_interleaves_pieces_and_ends_each_edge(tmp_path):
    spills = {'in/a': filled(tmp_path, A), 'in/b': filled(tmp_path, B)}
    data, ended = pieces_of(b''.join(edge_body(spills)))
    assert data == {'in/a': A, 'in/b': B}
    assert sorted(ended) == ['in/a', 'in/b']


def test_edge_body_breaks_off_with_a_failed_edge(tmp_path):
    broken = filled(tmp_path, B, end=False)
    broken.fail('node b failed')
    body = edge_body({'in/a': filled(tmp_path, A), 'in/b': broken})
    with pytest.raises(SpillBroken):
        b''.join(body)


def read_fifo(path: str) -> bytes:
    """What a program reading ``path`` to its end gets."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    parts = []
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                trampoline(fd, read=True)
                continue
            if not chunk:
                return b''.join(parts)
            parts.append(chunk)
    finally:
        os.close(fd)


def demux(tmp_path, body: bytes):
    reader = protocol.MemberReader(io.BytesIO(body).read)
    first = reader.next_member()
    inputs = {device: EdgeInput(device, str(tmp_path / name), str(tmp_path))
              for device, name in (('in/a', 'fifo.a'), ('in/b', 'fifo.b'))}
    return EdgeDemux(reader, first, inputs), inputs


def test_the_program_reads_its_inputs_in_any_order(tmp_path):
    """All of in/a comes first, and more than its FIFO holds; the program
    reads in/b first: in/a waits in a spill meanwhile, then comes whole."""
    body = b''.join(edge_body({'in/a': filled(tmp_path, A)})) + \
        b''.join(edge_body({'in/b': filled(tmp_path, B)}))
    edges, inputs = demux(tmp_path, body)
    edges.start()
    assert read_fifo(inputs['in/b'].path) == B
    assert read_fifo(inputs['in/a'].path) == A
    assert edges.broken == []
    assert inputs['in/a'].received == len(A)
    edges.stop()
    assert [name for name in os.listdir(tmp_path)
            if name.startswith('zerocloud-edge-')] == []


def test_an_input_whose_data_breaks_off_is_named(tmp_path):
    ended_a = b''.join(edge_body({'in/a': filled(tmp_path, B)}))
    cut_b = b''.join(protocol.iter_member('in/b', 5, [b'12345'],
                                          {protocol.PAX_EDGE: '1'}))
    edges, inputs = demux(tmp_path, ended_a + cut_b)
    edges.start()
    assert read_fifo(inputs['in/b'].path) == b'12345'   # then the end
    assert read_fifo(inputs['in/a'].path) == B
    assert edges.broken == ['in/b']
    assert edges.reason == 'its data broke off'
    edges.stop()


def test_inputs_past_the_nodes_limit_are_broken_off_and_said_so(tmp_path):
    body = b''.join(edge_body({'in/a': filled(tmp_path, B)}))
    read = io.BytesIO(body).read

    def limited(size: int) -> bytes:
        if read.__self__.tell() + size > 10000:
            raise HTTPRequestEntityTooLarge()
        return read(size)
    reader = protocol.MemberReader(limited)
    first = reader.next_member()
    edges = EdgeDemux(reader, first, {'in/a': EdgeInput(
        'in/a', str(tmp_path / 'fifo.a'), str(tmp_path))})
    edges.start()
    assert len(read_fifo(str(tmp_path / 'fifo.a'))) < 10000
    assert edges.broken == ['in/a']
    assert edges.reason == "the node's inputs went past zerovm_maxinput"
    edges.stop()
