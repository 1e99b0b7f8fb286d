"""Running a job's nodes on storage servers.

Nodes that are not connected run in parallel.  A job whose nodes are
connected (``connect``, ``zvm://`` paths) runs them at the same time, the
data flowing while they run (:mod:`zerocloud.proxy.edges`): what A writes
to ``/dev/out/B`` reaches B's ``/dev/in/A`` as A writes it, through this
proxy, each connection a sequential stream for both programs.  A node is
sent once every node it reads from has written to it (or ended), so that
a node waiting for its inputs never holds a sandbox its upstream nodes
wait for.  The first node that fails stops the job: the nodes not sent yet
are not run, and the others are stopped (their connections are closed, so
their programs' next reads and writes there fail), reported ``stopped:
node <name> failed``.  A node is not sent again once data flowed from it.
A connected job with a replicated node (``replicate``) runs stage by stage
instead, its data materialised between stages, so that the copies'
outputs can be compared before anything reads them.

Each node goes to the first of its candidate servers (placement) that takes
it.  A node whose server fails while running it is retried once on the next
candidate.  Nodes sharing a ``location`` share a server.  A node with
``replicate: n`` runs as n copies on different servers in deterministic
mode; their output etags must agree, else the node fails with
``replica outputs differ``.  A node whose server will not read its input
object raw (encrypted, a manifest, a symlink) goes where
:mod:`zerocloud.proxy.inputs` says.

At most ``zerovm_job_concurrency`` nodes (copies) of a job are in progress
at once: connecting, running, or waiting for busy servers.  When every
candidate's sandbox pool is full (``503`` with ``Retry-After``; the object
servers queue up to ``zerovm_maxqueue`` nodes before they say so, and give
one account at most its share: ``zerovm_account_maxpool``), the node waits
and is sent again, with a jittered backoff that starts at what the servers
asked (:func:`busy_backoff`), as long as the job's deadline
(``zerovm_job_deadline`` seconds from its start) allows and fewer than
``zerovm_max_waiting_nodes`` nodes of this proxy process wait, half as many
(rounded up) of the job's account; otherwise the node fails at once with
``503``, which the client gets with ``Retry-After``.  Every node request
names the job's account (``X-Zerocloud-Account``) for those shares.
Once a node of the job failed, its other nodes stop waiting (they are
reported as not run): the job's answer is known.
"""

import json
import random
import time
import uuid
from dataclasses import replace
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from eventlet import GreenPile
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from swift.common.swob import HTTPException
from swift.common.utils import parse_header, quote

from zerocloud import protocol
from zerocloud.job.model import Channel, Job, Node, SwiftPath
from zerocloud.job.source import Spooled
from zerocloud.proxy import inputs
from zerocloud.proxy.edges import Connections, edge_body, upstreams
from zerocloud.proxy.nodeclient import (
    NODE_FAILED, Answer, Attempts, FetchingUpload, InputFailed, Member,
    NodeClient, NodeError, NodeResult, Upload, nexe_reported, read_answer)
from zerocloud.proxy.placement import Placer, Target
from zerocloud.proxy.request import JobRequest
from zerocloud.proxy.swiftaccess import SwiftAccess
from zerocloud.spill import SpillBroken
from zerocloud.stages import StageClock

#: Times a node is retried after its server failed while running it.
RETRIES = 1
#: Seconds of the first wait for busy servers that asked for less.
BACKOFF_FLOOR = 0.1
#: Longest wait between two tries, unless the servers ask for more.
BACKOFF_CAP = 10.0


def busy_backoff(tries: int, retry_after: float, jitter: float) -> float:
    """Seconds to wait before sending a node again to servers that were
    busy ``tries`` times in a row (0 the first time).

    Doubles from what they asked (``Retry-After``), up to ``BACKOFF_CAP``
    unless they asked for more, then stretched by up to half again
    (``jitter`` in [0, 1)), so that nodes refused together do not all
    come back together.
    """
    grown = max(retry_after, BACKOFF_FLOOR) * 2 ** min(tries, 16)
    return max(retry_after, min(BACKOFF_CAP, grown)) * (1 + jitter / 2)


def _collect(pile: GreenPile, done: Dict[str, NodeResult]) -> None:
    """Every result of a stage into ``done``; a node that raised is raised
    again once the others ended, so that none is left running unseen."""
    raised: Optional[BaseException] = None
    while True:
        try:
            result = next(pile)
        except StopIteration:
            break
        except Exception as err:
            raised = raised or err
            continue
        done[result.node.name] = result
    if raised is not None:
        raise raised


class Scheduler:
    """Runs one job (made per request)."""

    def __init__(self, request: JobRequest, swift: SwiftAccess,
                 placer: Placer, client: NodeClient, job_id: str,
                 started: float, logger):
        self.request = request
        self.swift = swift
        self.placer = placer
        self.client = client
        self.config = request.config
        self.job_id = job_id
        self.started = started
        self.logger = logger
        #: ``<location>-<copy>`` → (the server it claimed, its proof salt).
        self.locations: Dict[str, Tuple[dict, str]] = {}
        #: Nodes (copies) of the job in progress at once.
        self.in_progress = Semaphore(self.config.job_concurrency)
        #: No node waits for busy servers beyond this (monotonic clock);
        #: set when the job starts running.
        self.deadline = 0.0
        #: Sent when a node failed: the others stop waiting for servers.
        self.failed = Event()
        #: The first node that failed.
        self.cause = ''
        #: A connected job's connections (:mod:`zerocloud.proxy.edges`).
        self.connections: Optional[Connections] = None
        #: Of a connected job: its nodes' events sent once each has been
        #: answered (is running) or will not run, and how to stop those
        #: whose answers are being read.
        self.running: Dict[str, Event] = {}
        self.stops: Dict[str, Callable[[], None]] = {}

    def run(self, job: Job, stream: bool) -> List[NodeResult]:
        """Run every stage; ``stream``: leave the single node's immediate
        output on its connection for the response to stream."""
        self.deadline = time.monotonic() + self.config.job_deadline
        if any(node.edges for node in job.nodes) and not any(
                node.edges and node.replicate > 1 for node in job.nodes):
            return self._run_connected(job)
        done: Dict[str, NodeResult] = {}
        try:
            for stage in job.stages():
                if any(r.failed for r in done.values()):
                    break
                pile = GreenPile(min(len(stage), self.config.job_concurrency))
                for node in stage:
                    pile.spawn(self._run_replicated if node.replicate > 1
                               else self._run_node, node, stream, done)
                _collect(pile, done)
        except BaseException:
            # Nobody will answer with these: remove what they spooled.
            for result in done.values():
                result.discard()
            raise
        finally:
            self.request.remove_inputs()
        return [done.get(node.name) or NodeResult(node) for node in job.nodes]

    def _run_connected(self, job: Job) -> List[NodeResult]:
        """Every node at once, connected as they run (see the module
        docstring)."""
        self.connections = Connections(job, self.config.spool_dir,
                                       self.config.job_spool_limit)
        self.running = {node.name: Event() for node in job.nodes}
        done: Dict[str, NodeResult] = {}
        pile = GreenPile(len(job.nodes))
        try:
            for stage in job.stages():
                for node in stage:
                    pile.spawn(self._run_connected_node, node, done)
            _collect(pile, done)
        except BaseException:
            self.connections.fail('the job stopped')
            for stop in list(self.stops.values()):
                stop()
            for result in done.values():
                result.discard()
            raise
        finally:
            self.connections.remove()
            self.request.remove_inputs()
        return [done.get(node.name) or NodeResult(node) for node in job.nodes]

    def _run_connected_node(self, node: Node, done: Dict[str, NodeResult]
                            ) -> NodeResult:
        try:
            for peer in upstreams(node):
                self.running[peer].wait()
            if self.failed.ready():
                return self._stopped(NodeResult(node), ran=False)
            result = self._run_node(node, False, done)
        except BaseException:
            self._stop_all(node.name)   # its peers must not wait for it
            raise
        finally:
            self._now_running(node)
        outgoing = self.connections.outgoing(node)
        retcode = result.headers.get('X-Nexe-Retcode')
        if result.failed or retcode != '0':
            if result.failed and self.cause and self.cause != node.name:
                result = self._stopped(result, ran=True)
            why = 'node %s failed' % node.name if result.failed else \
                'node %s did not run' % node.name if retcode is None else \
                'node %s ended with exit code %s' % (node.name, retcode)
            for spool in outgoing.values():
                spool.fail(why)
            if result.failed:
                self._stop_all(node.name)
        else:
            for spool in outgoing.values():
                spool.end()
        return result

    def _now_running(self, node: Node) -> None:
        """``node`` runs (or never will): its downstream nodes may go."""
        if not self.running[node.name].ready():
            self.running[node.name].send()

    def _stopped(self, result: NodeResult, ran: bool) -> NodeResult:
        """A node the job stopped (or did not run), the first failure
        being another node's: reported as such, with no error of its own."""
        result.discard()
        stopped = NodeResult(result.node, status=NODE_FAILED if ran else 200,
                             stages=result.stages)
        if ran:
            # What it used is still accounted for.
            stopped.headers = {name: value for name, value
                               in result.headers.items()
                               if name != 'X-Nexe-Error'}
            stopped.headers['X-Nexe-Status'] = 'stopped: node %s failed' \
                % self.cause
        return stopped

    def _stop_all(self, failed: str) -> None:
        """Stop the connected job after node ``failed`` failed."""
        self.cause = self.cause or failed
        if not self.failed.ready():
            self.failed.send()
        self.connections.fail('node %s failed' % failed)
        for name, stop in list(self.stops.items()):
            if name != failed:
                stop()

    # -- what a node's server gets -------------------------------------------

    def _uploads(self, node: Node, placed, done: Dict[str, NodeResult],
                 local_env: Dict[str, str]) -> List[Member]:
        """The members of the node's request stream, in protocol order.

        An input the node was to read in place but gets streamed brings its
        ``LOCAL_*`` variables along, as does one its server decrypts
        (``local_env``; :mod:`zerocloud.proxy.inputs`).  A stored program
        or image of a node that streams no input is still being fetched
        when the node is sent (:class:`~zerocloud.proxy.nodeclient.
        FetchingUpload`): its GET and the connection to the server overlap.
        """
        description = node.to_dict()
        description['env'].update(local_env)
        streamed_anchor = node.placement_channel() if placed is None else None
        remote = [ch for ch in node.channels
                  if isinstance(ch.path, SwiftPath) and not ch.writable
                  and ch is not placed]
        overlap = not (
            any(ch.device != protocol.IMAGE_MEMBER for ch in remote) or
            (node.wants_stream and self.request.stream is not None) or
            any(edge.direction == 'in' for edge in node.edges))
        uploads: List[Member] = []
        grants = self.request.grants

        def fetched(path: SwiftPath, member: str) -> Member:
            if overlap:
                return FetchingUpload(path.url, lambda: self.swift.fetch(
                    path, member, grants))
            return self.swift.fetch(path, member, grants)
        try:
            has_image_path = any(
                ch.device == protocol.IMAGE_MEMBER and
                isinstance(ch.path, SwiftPath) for ch in node.channels)
            image = self.request.image
            if image is not None and not has_image_path:
                uploads.append(Upload(protocol.IMAGE_MEMBER, image.size,
                                      image.chunks(), "the job's image"))
            if isinstance(node.exe, SwiftPath):
                uploads.append(fetched(node.exe,
                                       protocol.EXECUTABLE_MEMBER))
            for ch in remote:
                if ch.path.obj is None:
                    raise NodeError('Cannot use container %s as a remote '
                                    'object reference' % ch.path.url)
                if ch.device == protocol.IMAGE_MEMBER and \
                        ch is not streamed_anchor:
                    uploads.append(fetched(ch.path, ch.device))
                    continue
                upload, got = self.swift.fetch_input(ch.path, ch.device,
                                                     grants)
                upload.streamable = ch.device != protocol.IMAGE_MEMBER
                uploads.append(upload)
                if ch is streamed_anchor:
                    description['env'].update(
                        inputs.local_environ(ch, got))
            stream = self.request.stream
            if node.wants_stream and stream is not None:
                uploads.append(Upload('stdin', stream.size, stream.chunks(),
                                      'the request body', streamable=True))
            for edge in node.edges:
                if edge.direction == 'in' and self.connections is None:
                    data = self._edge_data(done[edge.peer], node.name)
                    uploads.append(Upload(edge.device, data.size,
                                          data.chunks(),
                                          'the output of %s' % edge.peer,
                                          streamable=True))
        except BaseException:
            for upload in uploads:
                upload.close()
            raise
        sysmap = json.dumps(description).encode('utf-8')
        return [Upload(protocol.SYSMAP_MEMBER, len(sysmap), [sysmap])] + \
            uploads

    @staticmethod
    def _edge_data(upstream: NodeResult, downstream: str) -> Spooled:
        for edge in upstream.node.edges:
            if edge.direction == 'out' and edge.peer == downstream:
                return upstream.edges[edge.device]
        raise NodeError('No data from %s for %s'
                        % (upstream.node.name, downstream), 500)

    def _headers(self, target: Target) -> Dict[str, str]:
        req = self.request.req
        headers = {
            protocol.EXECUTE_HEADER: req.headers.get(protocol.EXECUTE_HEADER,
                                                     '1.0'),
            protocol.JOB_ID_HEADER: self.job_id,
            protocol.TIMEOUT_HEADER: str(self.config.timeout),
            protocol.ACCESS_HEADER: target.access,
            protocol.ACCOUNT_HEADER: self.request.account,
            'X-Backend-Storage-Policy-Index': str(target.policy_index),
            'Content-Type': protocol.TAR_CONTENT_TYPE,
            'X-Trans-Id': req.environ.get('swift.trans_id', ''),
            'User-Agent': 'zerocloud-proxy',
        }
        if target.alias is not None:
            headers[protocol.LOCAL_ALIAS_HEADER] = quote(target.alias.url)
        if target.decryption is not None:
            headers[protocol.BODY_KEY_HEADER] = target.decryption.encode()
        if self.connections is not None:
            headers[protocol.EDGE_STREAM_HEADER] = protocol.EDGE_STREAM_VALUE
        return headers

    def _listing_keys(self, placed: Optional[Channel]) -> Dict[str, str]:
        """Next to a container: the keys of its encrypted listing etags."""
        if placed is None or not isinstance(placed.path, SwiftPath) or \
                not placed.path.is_container:
            return {}
        keys = self.swift.listing_keys(placed.path, self.request.grants)
        return {protocol.LISTING_KEYS_HEADER: keys} if keys else {}

    def _decrypting(self, placed: Channel, target: Target,
                    refusal: Dict[str, str]) -> Optional[Target]:
        """``target`` with the key to read its encrypted object in place
        (``refusal``: what its server said); ``None``: stream it."""
        headers, fetch_keys = self.swift.head_with_keys(
            placed.path, self.request.grants)
        key = fetch_keys and inputs.body_key(refusal, headers, fetch_keys)
        if not key:
            return None
        return replace(target, decryption=key,
                       local_env=inputs.local_environ(placed, headers))

    def _instead_of_local(self, placed: Channel, target: Target,
                          refusal: str) -> Target:
        """Where a node goes whose server will not read its input ``placed``
        in place (``refusal``: :data:`zerocloud.protocol.STREAM_INPUT_HEADER`).

        An encrypted object: the same server, given the key to decrypt it;
        if that was refused, the object's servers with the object streamed.
        A symlink: next to its target when the caller may read it there (it
        may be plain).  Else anywhere, the input streamed.  Raises the
        refusal of a symlink the caller cannot follow (naming it).
        """
        reason, params = parse_header(refusal)
        if reason == protocol.STREAM_ENCRYPTED:
            decrypting = target.decryption is None and \
                self._decrypting(placed, target, params)
            return decrypting or replace(target, access='', alias=None,
                                         decryption=None, local_env={})
        if reason == protocol.STREAM_SYMLINK and target.alias is None:
            location = self.swift.resolve_link(placed.path,
                                               self.request.grants)
            resolved = inputs.link_target(
                location, placed.path, lambda account, container:
                self.swift.container_info(account, container).get(
                    'sysmeta') or {})
            if resolved is not None:
                path, own_version = resolved
                try:
                    if not own_version:
                        self.request.authorize('GET', path, 'read_acl')
                    elsewhere = self.placer.next_to(
                        path, self.swift.container_info, alias=placed.path)
                except (HTTPException, NodeError):
                    elsewhere = None
                if elsewhere is not None:
                    return elsewhere
        return self.placer.anywhere(self.request.account)

    def _colocate(self, location: str, copy: int, candidates: List[dict],
                  headers: Dict[str, str], free: bool) -> List[dict]:
        """Nodes sharing a ``location`` (copy by copy) share a server.

        The first node to claim a location keeps its own first choice; the
        others try that server first when they may run there (they run
        anywhere, or it holds their input).  ``X-Nexe-Colocated`` lets each
        server prove which location server it was.
        """
        key = '%s-%d' % (location, copy)
        if key not in self.locations:
            self.locations[key] = (candidates[0], uuid.uuid4().hex)
        server, salt = self.locations[key]
        same = [c for c in candidates if (c['ip'], c['port']) == (
            server['ip'], server['port'])]
        if same or free:
            first = same[0] if same else server
            candidates = [first] + [c for c in candidates if c is not first]
            headers[protocol.COLOCATED_HEADER] = '%s:%s:%s' % (
                salt, server['ip'], server['port'])
        return candidates

    # -- running ---------------------------------------------------------------

    def _run_replicated(self, node: Node, stream: bool,
                        done: Dict[str, NodeResult]) -> NodeResult:
        """``replicate: n``: n deterministic copies; their outputs agree.

        The node is placed once, so that each copy starts on its own
        server of the same list."""
        try:
            target = self._target(node)
        except NodeError as err:
            return NodeResult(node).fail(err)
        pile = GreenPile(node.replicate)
        for copy in range(node.replicate):
            pile.spawn(self._run_node, node, False, done, copy, target)
        first, *others = list(pile)
        etags = {r.headers.get('X-Nexe-Etag') for r in [first] + others}
        failed = [r for r in [first] + others if r.failed]
        for other in others:
            other.discard()
        if failed:
            if failed[0] is not first:
                first.discard()
            return failed[0]
        if len(etags) > 1:
            first.discard()
            first.status = NODE_FAILED
            first.headers['X-Nexe-Status'] = 'replica outputs differ'
            first.error = 'Node %s failed: its %d copies wrote different ' \
                'outputs (%s)' % (node.name, node.replicate,
                                  ' | '.join(sorted(map(str, etags))))
        return first

    def _target(self, node: Node) -> Target:
        return self.placer.target(node, self.request.account,
                                  self.swift.container_info)

    def _run_node(self, node: Node, stream: bool,
                  done: Dict[str, NodeResult], copy: int = 0,
                  target: Optional[Target] = None) -> NodeResult:
        with self.in_progress:
            clock = StageClock()
            try:
                target = target or self._target(node)
                placed, candidates, headers = self._route(node, copy, target)
            except NodeError as err:
                return NodeResult(node).fail(err)
            clock.mark('place')
            result = self._send(node, stream, done, copy, target, placed,
                                candidates, headers, clock)
            if result.failed and not self.failed.ready():
                self.failed.send()
            return result

    def _route(self, node: Node, copy: int, target: Target
               ) -> Tuple[Optional[Channel], List[dict], Dict[str, str]]:
        """The channel the node runs next to (if any), the servers to try
        in order, and the request's headers."""
        placed = node.placement_channel() if target.access else None
        # Copies of a replicated node start on different servers.
        shift = copy % max(1, len(target.nodes))
        candidates = target.nodes[shift:] + target.nodes[:shift]
        headers = self._headers(target)
        headers.update(self._listing_keys(placed))
        if placed is not None and isinstance(placed.path, SwiftPath) and \
                placed.path.is_container and self.request.owns(placed.path):
            # Only an owner's node gets the container database unscrubbed.
            headers[protocol.OWNER_HEADER] = protocol.OWNER_HEADER_VALUE
        if node.location:
            candidates = self._colocate(node.location, copy, candidates,
                                        headers, free=not target.access)
        if node.replicate > 1:
            headers[protocol.DETERMINISTIC_HEADER] = '%d' % self.started
        return placed, candidates, headers

    def _may_stream(self, node: Node) -> bool:
        """May ``node``'s server answer while it runs?  An output stored as
        it comes is written into a PUT, which Swift abandons when no byte
        came for ``client_timeout`` seconds: only when the node may not
        run that long."""
        if any(channel.writable and isinstance(channel.path, SwiftPath)
               for channel in node.channels):
            return self.config.timeout < self.config.client_timeout
        return True

    def _send(self, node: Node, stream: bool, done: Dict[str, NodeResult],
              copy: int, target: Target, placed: Optional[Channel],
              candidates: List[dict], headers: Dict[str, str],
              clock: StageClock) -> NodeResult:
        """Send ``node`` until a server has run it (see the module
        docstring: retry after a lost server, wait for busy ones, go
        elsewhere when a server will not read the input in place); its
        stages go to ``clock``."""
        retries = RETRIES
        busy_tries = 0
        while True:
            if stream and self._may_stream(node):
                # The node's answer goes straight to the client (or its
                # stdout into its object): its server may send it while
                # the node runs.
                headers = dict(headers, **{
                    protocol.ANSWER_STREAM_HEADER:
                        protocol.ANSWER_STREAM_DUPLEX,
                    protocol.STREAM_AFTER_HEADER:
                        str(self.request.stream_after)})
            result = NodeResult(node)
            try:
                uploads = self._uploads(node, placed, done, target.local_env)
                clock.mark('uploads')
                outcome = self.client.send(candidates, target.partition,
                                           target.path_info, headers,
                                           uploads, clock,
                                           self._edge_body(node))
            except InputFailed as err:
                if isinstance(err.cause, SpillBroken):
                    # An upstream node's data ended short: its own failure
                    # (or exit code) is the cause, not a busy cluster.
                    return result.fail(NodeError(
                        'Node %s failed: its input broke off: %s'
                        % (node.name, err.cause), NODE_FAILED))
                self.logger.warning('zerocloud: node %s: %s (%r)',
                                    node.name, err.message, err.cause)
                return result.fail(NodeError(
                    'Node %s: %s' % (node.name, err.message), err.status))
            except NodeError as err:
                return result.fail(err)
            refused = outcome.stream_refusal \
                if isinstance(outcome, Attempts) else None
            if refused is not None and placed is not None:
                try:
                    elsewhere = self._instead_of_local(
                        placed, target, refused.stream_input)
                    placed, candidates, headers = self._route(
                        node, copy, elsewhere)
                except NodeError as err:
                    return result.fail(err)
                if elsewhere.nodes == target.nodes and \
                        refused.server in candidates:
                    # Same servers: the one that refused answered; those
                    # tried before it did not.
                    candidates = candidates[
                        candidates.index(refused.server):]
                target = elsewhere
                continue
            lost = self._take(result, outcome, target, stream)
            clock.mark('read')
            result.stages = clock.stages + result.stages
            if lost is not None and retries > 0 and \
                    lost in candidates[:-1] and not self._flowed(node):
                retries -= 1
                self.logger.warning(
                    'zerocloud: retrying node %s after %s:%s failed',
                    node.name, lost['ip'], lost['port'])
                result.discard()
                candidates = candidates[candidates.index(lost) + 1:]
                continue
            if lost is None and isinstance(outcome, Attempts) and \
                    outcome.busy_for is not None and not outcome.decided:
                ended = self._wait_for_busy(node, outcome.busy_for,
                                            busy_tries)
                if ended is None:
                    busy_tries += 1
                    continue
                return ended
            return result

    def _edge_body(self, node: Node
                   ) -> Optional[Callable[[], Iterator[bytes]]]:
        """What sends a connected node's in-edges' data, if it has any."""
        if self.connections is None:
            return None
        incoming = self.connections.incoming(node)
        return (lambda: edge_body(incoming)) if incoming else None

    def _flowed(self, node: Node) -> bool:
        """Has ``node`` sent data to a node connected to it?  Then it is
        not sent again."""
        return self.connections is not None and any(
            spool.size for spool in
            self.connections.outgoing(node).values())

    def _take(self, result: NodeResult, outcome: 'Answer | Attempts',
              target: Target, stream: bool) -> Optional[dict]:
        """Fill ``result`` from what the servers said; the server that
        failed while it had the node, if one did."""
        if isinstance(outcome, Attempts):
            refusal = outcome.final(target.path_info)
            result.status, result.error = refusal.status, refusal.message
            return outcome.lost
        if outcome.status >= 300:
            # A node that ran and then failed (invalid CGI output) still
            # reports how the sandbox ran.
            result.headers = nexe_reported(outcome.headers)
            result.status = outcome.status
            result.error = outcome.body_error or \
                'Error %d while running %s' % (outcome.status,
                                               result.node.name)
            return None
        if self.connections is None:
            read_answer(result, outcome, stream, self.config.spool_dir,
                        self.logger)
            return outcome.server if result.server_failed else None
        node = result.node
        self.stops[node.name] = outcome.stop
        try:
            if self.failed.ready():
                outcome.stop()   # stopped while its server took it
            read_answer(result, outcome, stream, self.config.spool_dir,
                        self.logger, self.connections.outgoing(node),
                        lambda: self._now_running(node))
        finally:
            del self.stops[node.name]
        return outcome.server if result.server_failed else None

    def _wait_for_busy(self, node: Node, retry_after: float,
                       tries: int) -> Optional[NodeResult]:
        """Wait before sending ``node`` again to busy servers (None); what
        the node ends with instead when it must not wait: not run, once
        another node of the job failed, else a ``503``."""
        if self.failed.ready():
            return NodeResult(node)
        delay = busy_backoff(tries, retry_after, random.random())
        if time.monotonic() + delay > self.deadline:
            return NodeResult(node, status=503, error=(
                'Node %s: every storage server that can run it is busy and '
                'the job\'s deadline (%g s) is near; try again later'
                % (node.name, self.config.job_deadline)))
        self.logger.info('zerocloud: node %s waits %.1f s for busy servers',
                         node.name, delay)
        if not self.client.wait_for_busy(delay, self.failed,
                                         self.request.account):
            return NodeResult(node, status=503, error=(
                'Node %s: every storage server that can run it is busy and '
                'too many nodes wait already; try again later' % node.name))
        return NodeResult(node) if self.failed.ready() else None
