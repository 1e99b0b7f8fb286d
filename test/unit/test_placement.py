import pytest
from swift.common import utils
from swift.common.ring import Ring, RingBuilder

from zerocloud.proxy import placement
from zerocloud.job.model import SwiftPath


@pytest.fixture
def ring(tmp_path, monkeypatch):
    monkeypatch.setattr(utils, 'HASH_PATH_SUFFIX', b'zerocloud-test')
    monkeypatch.setattr(utils, 'HASH_PATH_PREFIX', b'')
    builder = RingBuilder(6, 3, 1)
    for i in range(4):
        builder.add_dev({'id': i, 'region': 1, 'zone': i, 'weight': 1,
                         'ip': '127.0.0.1', 'port': 6010 + i,
                         'device': 'sdb%d' % (i + 1)})
    builder.rebalance()
    path = str(tmp_path / 'object.ring.gz')
    builder.get_ring().save(path)
    return Ring(path)


def test_object_target_uses_primaries_in_ring_order(ring):
    path = SwiftPath('AUTH_test', 'c', 'o')
    target = placement.object_target(ring, path, 0, 'Policy-0')
    part, nodes = ring.get_nodes('AUTH_test', 'c', 'o')
    assert target.partition == part
    assert [n['id'] for n in target.nodes] == [n['id'] for n in nodes]
    assert (target.access, target.path_info) == ('GET', '/AUTH_test/c/o')
    assert len(target.nodes) == 3


def test_error_limited_servers_go_last(ring):
    path = SwiftPath('AUTH_test', 'c', 'o')
    _, nodes = ring.get_nodes('AUTH_test', 'c', 'o')
    bad = nodes[0]['id']
    target = placement.object_target(ring, path, 0, 'Policy-0',
                                     is_limited=lambda n: n['id'] == bad)
    assert target.nodes[-1]['id'] == bad
    assert len(target.nodes) == 3


def test_free_targets_take_turns_over_all_servers(ring):
    firsts = []
    for turn in range(8):
        target = placement.free_target(ring, 'AUTH_test', 0, 'Policy-0', turn)
        assert (target.access, target.path_info) == ('', '/AUTH_test')
        assert len(target.nodes) == 4
        firsts.append(target.nodes[0]['id'])
    assert firsts == [0, 1, 2, 3, 0, 1, 2, 3]


def test_order_nodes_keeps_everyone():
    nodes = [{'id': i} for i in range(3)]
    ordered = placement.order_nodes(nodes, lambda n: n['id'] == 0)
    assert [n['id'] for n in ordered] == [1, 2, 0]
