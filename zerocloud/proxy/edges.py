"""The data between a job's connected nodes, while they all run.

Each connection A → B (``connect``, or a ``zvm://`` path) is one
:class:`~zerocloud.spill.GrowingSpill` here, in ``zerovm_spool_dir``:
A's answer appends the pieces A writes to ``/dev/out/B`` (or its named
device) as they come, and B's request body reads them back, as they come,
as the last part of its body (:func:`edge_body`, framed as
:data:`zerocloud.protocol.EDGE_STREAM_HEADER` says).  A connection
ends when A succeeded, and fails when A failed or the job stopped: B's body
then breaks off, and its server fails it.  The whole of a connection is
kept until the job ends, sealed, so that B sent again (its servers were
busy) reads it again from the start.
"""

from typing import Dict, Iterator, List, Optional, Tuple

import eventlet
from eventlet.queue import LightQueue

from zerocloud import protocol
from zerocloud.job.model import Job, Node
from zerocloud.spill import GrowingSpill, SpillBroken, SpillBudget

#: Bytes of one piece sent to a downstream node.
PIECE = 1 << 20
#: Pieces read ahead of the body being sent.
AHEAD = 4
LIMIT_TEXT = 'the data between the job\'s nodes went past %d bytes ' \
    '(zerovm_job_spool_limit)'


class Connections:
    """The connections of one job (see the module docstring), by
    (upstream, downstream) node names."""

    def __init__(self, job: Job, spool_dir: Optional[str], limit: int):
        """``limit``: bytes all of them may hold (an upstream node whose
        data goes past it fails)."""
        budget = SpillBudget(limit, LIMIT_TEXT)
        self._spools: Dict[Tuple[str, str], GrowingSpill] = {}
        for node in job.nodes:
            for edge in node.edges:
                if edge.direction == 'out':
                    self._spools[node.name, edge.peer] = GrowingSpill(
                        spool_dir, 'zerocloud-edge-', budget)

    def outgoing(self, node: Node) -> Dict[str, GrowingSpill]:
        """What ``node`` writes, by its out-edge device."""
        return {edge.device: self._spools[node.name, edge.peer]
                for edge in node.edges if edge.direction == 'out'}

    def incoming(self, node: Node) -> Dict[str, GrowingSpill]:
        """What ``node`` reads, by its in-edge device."""
        return {edge.device: self._spools[edge.peer, node.name]
                for edge in node.edges if edge.direction == 'in'}

    def fail(self, why: str) -> None:
        """Every connection not ended yet breaks off."""
        for spool in self._spools.values():
            spool.fail(why)

    def remove(self) -> None:
        for spool in self._spools.values():
            spool.remove()


def upstreams(node: Node) -> List[str]:
    return [edge.peer for edge in node.edges if edge.direction == 'in']


def _pump(device: str, spool: GrowingSpill, queue: LightQueue) -> None:
    """Every piece of ``spool`` into ``queue``, then its end (``b''``) or
    why it broke off (a :class:`SpillBroken`)."""
    offset = 0
    try:
        while True:
            data = spool.read(offset, PIECE)
            if not data:
                break
            offset += len(data)
            queue.put((device, data))
    except SpillBroken as err:
        queue.put((device, err))
        return
    queue.put((device, b''))


def edge_body(incoming: Dict[str, GrowingSpill]) -> Iterator[bytes]:
    """The in-edges' part of a node's request body: their pieces as they
    come, interleaved, each edge closed by its end marker.  Raises
    :class:`SpillBroken` when one broke off."""
    queue: LightQueue = LightQueue(AHEAD)
    pumps = [eventlet.spawn(_pump, device, spool, queue)
             for device, spool in incoming.items()]
    edge = {protocol.PAX_EDGE: '1'}
    try:
        open_edges = len(pumps)
        while open_edges:
            device, data = queue.get()
            if isinstance(data, SpillBroken):
                raise data
            if data:
                yield from protocol.iter_member(device, len(data), [data],
                                                edge)
                continue
            open_edges -= 1
            yield from protocol.iter_member(
                device, 0, [], dict(edge, **{protocol.PAX_END: '1'}))
    finally:
        for pump in pumps:
            pump.kill()
