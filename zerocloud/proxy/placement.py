"""Choosing the storage servers a node may run on.

A node that reads a ``swift://`` object runs on one of that object's primary
object servers (ring order, error-limited servers last), so its input is read
from local disk; the next replica is the fall-back when a server refuses or is
down.  A node that reads a container's listing runs on the container's
servers.  A node without such an input runs on any object server, each next
free node starting on the next server, so a stage spreads over the cluster.
Free nodes need no particular partition: the object
server only checks that the device is there.

An object of an erasure-coded policy is whole on no server: a node reading
it runs anywhere, like a free node, and gets it streamed
(:mod:`zerocloud.proxy.inputs`).
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from swift.common.http import is_success
from swift.common.storage_policy import EC_POLICY, POLICIES

from zerocloud.job.model import Node, SwiftPath
from zerocloud.protocol import BodyKey
from zerocloud.proxy.nodeclient import NodeError


@dataclass
class Target:
    """Where and how to send one node."""
    path_info: str          # /a, /a/c or /a/c/o in the storage request
    partition: int
    nodes: List[dict]       # ring node dicts, in the order to try
    access: str             # 'GET' when co-located with its input, else ''
    policy_index: int
    policy_name: str
    #: The channel path the object in ``path_info`` stands for, when it is
    #: what that path (a symlink) resolves to.
    alias: Optional[SwiftPath] = None
    #: The key to read the (encrypted) object in place, for this request.
    decryption: Optional[BodyKey] = None
    #: ``LOCAL_*`` variables of the object the node is sent with (when the
    #: server's copy is ciphertext).
    local_env: Dict[str, str] = field(default_factory=dict)


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


class Placer:
    """Chooses each node's target; long-lived, one per filter.

    It remembers whose turn the next free node is, so consecutive free
    nodes start on consecutive servers: a stage's nodes spread over the
    cluster instead of meeting by chance.
    """

    def __init__(self, proxy_app):
        self.proxy_app = proxy_app
        self._free_turn = 0

    def _is_limited(self, node: dict) -> bool:
        limited = getattr(self.proxy_app, 'error_limited', None)
        return bool(limited and limited(node))

    def target(self, node: Node, account: str,
               container_info: Callable[[str, str], dict]) -> Target:
        """Where ``node`` runs: next to its input object, else anywhere.

        ``container_info(account, container)`` is Swift's container info.
        """
        channel = node.placement_channel()
        path = channel.path if channel is not None else None
        if isinstance(path, SwiftPath) and path.container:
            if path.obj is None:
                self._container_policy(path, container_info)
                return container_target(self.proxy_app.container_ring, path,
                                        self._is_limited)
            return self.next_to(path, container_info) or \
                self.anywhere(account)
        return self.anywhere(account)

    def _container_policy(self, path: SwiftPath,
                          container_info: Callable[[str, str], dict]):
        """The storage policy of ``path``'s container (which must exist)."""
        info = container_info(path.account, path.container)
        if not is_success(info.get('status') or 0):
            raise NodeError('Error while fetching %s' % path.path_info, 404)
        return POLICIES.get_by_index(int(info.get('storage_policy') or 0))

    def next_to(self, path: SwiftPath,
                container_info: Callable[[str, str], dict],
                alias: Optional[SwiftPath] = None) -> Optional[Target]:
        """Next to a replica of object ``path``; ``None`` when its policy
        is erasure-coded (no server holds the object whole)."""
        policy = self._container_policy(path, container_info)
        if policy.policy_type == EC_POLICY:
            return None
        target = object_target(self.proxy_app.get_object_ring(policy.idx),
                               path, policy.idx, policy.name,
                               self._is_limited)
        target.alias = alias
        return target

    def anywhere(self, account: str) -> Target:
        """Any object server, the next one in turn."""
        policy = POLICIES.default
        self._free_turn += 1
        return free_target(self.proxy_app.get_object_ring(policy.idx),
                           account, policy.idx, policy.name,
                           self._free_turn, self._is_limited)
