"""Choosing the storage servers a node may run on.

A node that reads a ``swift://`` object runs on one of that object's primary
object servers (ring order, error-limited servers last), so its input is read
from local disk; the next replica is the fall-back when a server refuses or is
down.  A node that reads a container's listing runs on the container's
servers.  A node without such an input runs on any object server, each next
free node starting on the next server, so a stage spreads over the cluster.
Free nodes need no particular partition: the object
server only checks that the device is there.
"""

from dataclasses import dataclass
from typing import List

from zerocloud.job.model import SwiftPath


@dataclass
class Target:
    """Where and how to send one node."""
    path_info: str          # /a, /a/c or /a/c/o in the storage request
    partition: int
    nodes: List[dict]       # ring node dicts, in the order to try
    access: str             # 'GET' when co-located with its input, else ''
    policy_index: int
    policy_name: str


def order_nodes(nodes: List[dict], is_limited) -> List[dict]:
    """Healthy servers first, error-limited ones last (still worth a try)."""
    return ([n for n in nodes if not is_limited(n)] +
            [n for n in nodes if is_limited(n)])


def object_target(ring, path: SwiftPath, policy_index: int, policy_name: str,
                  is_limited=lambda n: False) -> Target:
    part, nodes = ring.get_nodes(path.account, path.container, path.obj)
    return Target(path.path_info, part, order_nodes(list(nodes), is_limited),
                  'GET', policy_index, policy_name)


def container_target(ring, path: SwiftPath,
                     is_limited=lambda n: False) -> Target:
    part, nodes = ring.get_nodes(path.account, path.container)
    return Target(path.path_info, part, order_nodes(list(nodes), is_limited),
                  'GET', 0, '')


def free_target(ring, account: str, policy_index: int, policy_name: str,
                turn: int, is_limited=lambda n: False) -> Target:
    """Any object server, starting with the ``turn``-th one (round robin)."""
    servers = {}
    for dev in ring.devs:
        if dev and dev.get('weight', 1) > 0:
            servers.setdefault((dev['ip'], dev['port']), dev)
    nodes = sorted(servers.values(), key=lambda d: d['id'])
    start = turn % len(nodes) if nodes else 0
    nodes = nodes[start:] + nodes[:start]
    return Target('/' + account, 0, order_nodes(nodes, is_limited), '',
                  policy_index, policy_name)
