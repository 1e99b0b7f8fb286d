"""One execution request on a storage server, from its checks to its answer.

:class:`NodeRequest` is made by ``object_query`` (:mod:`zerocloud.object.
filter`) for each execution request that passed the checks made before
anything is opened.  It owns what the request holds until its answer has
been sent: its exit stack, its work directory on the device (outputs) and
in RAM (inputs), and the local object it runs next to.  Whatever way the
request ends (refused, failed, answered, the client gone), closing the
stack releases all of it.  The Swift internals it needs are in
:mod:`zerocloud.object.swiftdisk`.
"""

import functools
import hmac
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from hashlib import md5, sha1
from typing import (
    TYPE_CHECKING, Collection, Dict, Iterator, List, Mapping, Optional,
    Tuple)

import eventlet
from eventlet import tpool
from swift.common.exceptions import (
    DiskFileDeviceUnavailable, DiskFileNotExist, DiskFileQuarantined)
from swift.common.storage_policy import EC_POLICY, BaseStoragePolicy
from swift.common.swob import (
    HTTPBadRequest, HTTPConflict, HTTPException, HTTPInsufficientStorage,
    HTTPNotFound, HTTPOk, HTTPRequestEntityTooLarge, HTTPServiceUnavailable,
    HTTPUnprocessableEntity, Request, Response)
from swift.common.utils import config_true_value, unquote

from zerocloud import cgi, protocol
from zerocloud.cipher import CipherKey, read_unsealed, unsealed_chunks
from zerocloud.headers import header_value
from zerocloud.job.model import JobError, Node, SwiftPath, parse_location
from zerocloud.object import decryption, swiftdisk
from zerocloud.object.config import ObjectConfig
from zerocloud.object.containerdb import decrypt_etags, snapshot_database
from zerocloud.object.edges import (
    EdgeAnswer, EdgeDemux, EdgeInput, EdgeOutputs)
from zerocloud.object.execution import (
    USER_IMAGE, ExecutionError, Limits, LocalObject, Output, Session,
    prepare_session)
from zerocloud.object.hostmemory import node_dir_prefix
from zerocloud.object.members import LiveInput, RequestBody, over_ram_limit
from zerocloud.object.outstream import Frame, OutputStream, StreamedAnswer
from zerocloud.runtime.cache import STATUS_NOT_COMPILED
from zerocloud.runtime.pool import PoolFull, SandboxPool
from zerocloud.runtime.report import Report
from zerocloud.runtime.session import SessionResult
from zerocloud.stages import StageClock, format_stages

if TYPE_CHECKING:
    from zerocloud.object.filter import ObjectQueryMiddleware

#: A device name, optionally under ``in/`` (connections between nodes).
MEMBER_NAME = re.compile(r'^(in/)?(?!\.\.?$)[^/\x00-\x1f]+$')
CGI_TYPES = ('message/http', 'message/cgi')
#: Seconds a client is asked to wait while a program compiles.
COMPILE_RETRY_AFTER = 30
CGI_HEAD = 65536
DIAG_TAIL = 4096
#: ``.data`` metadata of an object stored encrypted (body, etag or user
#: metadata): its local bytes are ciphertext.
CRYPTO_SYSMETA_PREFIXES = ('x-object-sysmeta-crypto-',
                           'x-object-transient-sysmeta-crypto-')
SYMLINK_SYSMETA = 'x-object-sysmeta-symlink-target'
SLO_HEADER = 'x-static-large-object'
#: The local object's hard link in the request's work directory.
HELD_OBJECT = 'local.data'
DLO_HEADER = 'x-object-manifest'


def stream_reason(metadata: Mapping[str, str], erasure_coded: bool
                  ) -> Optional[str]:
    """Why a local object's ``.data`` file is not what a client's GET
    returns (:data:`zerocloud.protocol.STREAM_REASONS`), or ``None``.

    A symlink is named first even when encrypted: the proxy may then run
    the node next to its target instead.
    """
    if erasure_coded:
        return protocol.STREAM_ERASURE_CODED
    names = {name.lower(): value for name, value in metadata.items()}
    if SYMLINK_SYSMETA in names:
        return protocol.STREAM_SYMLINK
    if config_true_value(names.get(SLO_HEADER)):
        return protocol.STREAM_SLO
    if DLO_HEADER in names:
        return protocol.STREAM_DLO
    if any(name.startswith(CRYPTO_SYSMETA_PREFIXES) for name in names):
        return protocol.STREAM_ENCRYPTED
    return None


def stream_refusal(req: Request, reason: str,
                   metadata: Optional[Mapping[str, str]] = None
                   ) -> HTTPException:
    """The answer that makes the proxy stream the input instead (or, for
    an encrypted object, send the key to read it here: see
    :data:`zerocloud.protocol.STREAM_INPUT_HEADER`)."""
    value = reason
    stored_meta = metadata and decryption.body_meta_value(metadata)
    if reason == protocol.STREAM_ENCRYPTED and stored_meta:
        value = protocol.stream_input_value(
            reason, metadata.get('X-Timestamp'), stored_meta)
    return HTTPConflict(
        body='The local object is not plain (%s): stream it' % reason,
        headers={protocol.STREAM_INPUT_HEADER: value}, request=req)


def busy(req: Request) -> HTTPException:
    """The answer of a busy sandbox pool, which the proxy does not count
    as a failure of this server (:mod:`zerocloud.protocol`)."""
    return HTTPServiceUnavailable(body='Slot not available', request=req,
                                  headers={protocol.RETRY_AFTER_HEADER: '1'})


def job_account(req: Request) -> str:
    """The account whose share of the sandboxes a node takes: the one the
    job runs for, else the one in the node's (checked) path."""
    return req.headers.get(protocol.ACCOUNT_HEADER) or \
        req.split_path(3, 5, True)[2]


def request_limits(limits: Limits, req: Request) -> Limits:
    """The node's limits: the server's, with a timeout the request may
    only shorten."""
    timeout = limits.timeout
    try:
        timeout = min(timeout, int(float(
            req.headers.get(protocol.TIMEOUT_HEADER, timeout))))
    except (ValueError, OverflowError):   # not a number, nan, inf
        pass
    return replace(limits, timeout=max(1, timeout))


def nexe_headers(node_name: str, report: Report, elapsed: float,
                 policy_name: str, fuel: Optional[int]) -> Dict[str, str]:
    """The node's ``X-Nexe-*`` headers; text values are encoded
    (:mod:`zerocloud.headers`): a status may quote a user's member name."""
    headers = {
        'X-Nexe-System': header_value(node_name),
        'X-Nexe-Status': header_value(report.status),
        'X-Nexe-Retcode': str(report.retcode),
        'X-Nexe-Validation': str(report.validation),
        # One entry per output channel: bounded by the node, never cut.
        'X-Nexe-Etag': header_value(report.etag_line(), limit=None),
        'X-Nexe-Cdr-Line': '%.3f, %s' % (elapsed, report.accounting_line()),
        'X-Nexe-Policy': header_value(policy_name),
    }
    if fuel is not None:
        headers['X-Nexe-Fuel'] = str(fuel)
    return headers


def deterministic_clock(value: Optional[str]) -> Optional[int]:
    """The guest clock a ``DETERMINISTIC_HEADER`` value pins (seconds), or
    ``None``: not a deterministic run."""
    if value and value.isascii() and value.isdigit():
        return int(value)
    return None


def colocation_proof(value: Optional[str]) -> Optional[str]:
    """``<salt>:<ip>:<port>`` → HMAC-SHA1(salt, "<ip>:<port>") hex.

    Nodes the proxy co-located on one server return the same value, so a
    client can check that they really met.
    """
    if not value or value.count(':') < 2:
        return None
    salt, address = value.split(':', 1)
    return hmac.new(salt.encode(), address.encode(), sha1).hexdigest()


def last_error_line(path: str, key: Optional[CipherKey]) -> str:
    """The last non-empty line a failed program wrote to its stderr (the
    file sealed with ``key``).

    Bytes that are not UTF-8 stay lone surrogates, which the header
    encoding turns back into those bytes.
    """
    try:
        start = max(0, os.path.getsize(path) - DIAG_TAIL)
        tail = _output_bytes(path, key, DIAG_TAIL, start).decode(
            'utf-8', 'surrogateescape')
    except OSError:
        return ''
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:256] if lines else ''


#: Bytes of an output file read at once.
OUTPUT_CHUNK = 1 << 16


def _output_bytes(path: str, key: Optional[CipherKey], size: int,
                  offset: int = 0) -> bytes:
    """At most ``size`` bytes of a node's output file from ``offset``, as
    the program wrote them."""
    if key is not None:
        return read_unsealed(path, key, size, offset)
    with open(path, 'rb') as fp:
        fp.seek(offset)
        return fp.read(size)


def _output_chunks(path: str, key: Optional[CipherKey], offset: int
                   ) -> Iterator[bytes]:
    """A node's output file from ``offset`` on, as the program wrote it."""
    if key is not None:
        yield from unsealed_chunks(path, key, offset)
        return
    with open(path, 'rb') as fp:
        fp.seek(offset)
        yield from iter(lambda: fp.read(OUTPUT_CHUNK), b'')


def meta_pax(meta: Dict[str, str]) -> Dict[str, str]:
    """An output's metadata as member headers."""
    return {protocol.PAX_META_PREFIX + key: value
            for key, value in meta.items()}


def frame_output(output: Output, replaces: bool = False) -> Frame:
    """(wire length, chunks) of one output member, CGI headers parsed;
    with ``replaces``, marked as the whole of a streamed output
    (``protocol.PAX_REPLACES``).

    Raises :class:`cgi.InvalidCgiOutput` for CGI output that breaks a rule.
    """
    size = os.path.getsize(output.host_path)
    pax = {protocol.PAX_CONTENT_TYPE: output.content_type}
    if replaces:
        pax[protocol.PAX_REPLACES] = '1'
    offset = 0
    if output.content_type in CGI_TYPES:
        head = _output_bytes(output.host_path, output.key, CGI_HEAD)
        parsed = cgi.parse_cgi_output(head, output.content_type,
                                      at_eof=size <= len(head))
        if parsed is not None:
            offset = parsed.body_offset
            pax[protocol.PAX_STATUS] = '%d %s' % (parsed.status, parsed.reason)
            if parsed.content_type:
                pax[protocol.PAX_CONTENT_TYPE] = parsed.content_type
            for name, value in parsed.headers:
                pax[protocol.PAX_HEADER_PREFIX + name] = value
            output.meta.update(parsed.meta)
    pax.update(meta_pax(output.meta))
    length = size - offset

    return (protocol.member_length(output.device, length, pax),
            protocol.iter_member(output.device, length, _output_chunks(
                output.host_path, output.key, offset), pax))


def _on_fifo(session: Session, output: Output, limits: Limits
             ) -> OutputStream:
    """``output`` read as the program writes it, through a FIFO in place
    of the file made for it: a FIFO holds no data on disk, nor anything to
    seal."""
    os.unlink(output.host_path)
    del session.ciphers['/dev/' + output.device]
    output.key = None
    return OutputStream(output.host_path, limits.max_output)


def _teed(output: Output, ramdir: str, limits: Limits) -> OutputStream:
    """``output``'s sealed file, also read as the program writes it in
    order, through a FIFO the sandbox copies those writes to."""
    output.tee = os.path.join(ramdir, 'tee.' + output.device)
    return OutputStream(output.tee, limits.max_output)


def teed_whole(output: Output, stream: OutputStream, report: Report
               ) -> bool:
    """Did the teed ``output`` stream whole: exactly the bytes of its file,
    as the run's report hashes them?"""
    return not stream.over_limit and \
        stream.size == os.path.getsize(output.host_path) and \
        stream.digest.hexdigest() == dict(report.etags).get(
            '/dev/' + output.device)


class AnswerBody:
    """The members of a node's answer; closing it (as the WSGI server does
    at the end, also when the client went away before the first byte)
    releases what the request held."""

    def __init__(self, frames: List[Frame], stack: ExitStack):
        self._chunks = self._iterate(frames)
        self._stack = stack

    @staticmethod
    def _iterate(frames: List[Frame]) -> Iterator[bytes]:
        for _, chunks in frames:
            yield from chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        try:
            self._chunks.close()
        finally:
            self._stack.close()


@dataclass(frozen=True)
class Placement:
    """Where an execution request runs: its path, policy and device."""
    device: str
    partition: str
    account: str
    container: Optional[str]
    obj: Optional[str]
    policy: BaseStoragePolicy
    #: The directory holding this server's devices for the policy.
    devices: str


class NodeRequest:
    """One execution request: it holds the local object, receives the
    members, runs the node and answers; everything it holds is released
    when :attr:`stack` closes (by :meth:`answer` on failure, else when the
    answer's body is closed: :class:`AnswerBody`)."""

    def __init__(self, server: 'ObjectQueryMiddleware', req: Request,
                 placement: Placement):
        #: The ``object_query`` middleware: options, logger, sandbox pool.
        self.server = server
        self.config: ObjectConfig = server.config
        self.req = req
        self.placement = placement
        self.stack = ExitStack()
        #: Outputs (the program's own bytes, stored encrypted through the
        #: proxy afterwards) go to the device; everything the node reads
        #: that is not its local .data file stays in RAM.
        self.workdir = ''
        self.ramdir = ''
        self.local: Optional[LocalObject] = None
        #: The proxy's key of an encrypted local object.
        self.body_key: Optional[protocol.BodyKey] = None
        #: The input fed to the program while it runs, if any.
        self.live: Optional[LiveInput] = None
        #: The request body, once its members (all but the in-edges' data)
        #: are read.
        self.body: Optional[RequestBody] = None
        #: The in-edges fed while the node runs (connected nodes running
        #: at once: :mod:`zerocloud.object.edges`).
        self.demux: Optional[EdgeDemux] = None
        #: Inputs spilled to the device, sealed, by member name: their keys.
        self.sealed: Dict[str, CipherKey] = {}
        #: Bytes of members stored in RAM.
        self.members_in_ram = 0
        #: Where the node's time goes, told to the proxy.
        self.clock = StageClock()

    @property
    def pool(self) -> SandboxPool:
        return self.server.pool

    def answer(self) -> Response:
        """The node's answer; the request's resources are released here
        when it fails, else when the answer's body is closed."""
        try:
            self._make_dirs()
            if self.req.headers.get(protocol.ACCESS_HEADER, '').upper() == \
                    'GET' and self.placement.container:
                self.local = self._open_local()
            members = self._receive(self.local.size if self.local and
                                    self.local.ram_copy else 0)
            self.clock.mark('receive')
            node = self._read_sysmap(members)
            return self._run(node, members)
        except BaseException:
            if self.live is not None:
                # Refused before the run: the proxy is still sending.
                self.live.drop()
            if self.demux is not None:
                self.demux.stop()
            self.stack.close()
            raise

    def _make_dirs(self) -> None:
        place = self.placement
        tmp_root = os.path.join(place.devices, place.device, 'tmp')
        os.makedirs(tmp_root, exist_ok=True)
        self.workdir = tempfile.mkdtemp(prefix='zerocloud-', dir=tmp_root)
        self.stack.callback(shutil.rmtree, self.workdir, True)
        self.ramdir = tempfile.mkdtemp(prefix=node_dir_prefix(os.getpid()),
                                       dir=self.config.ram_dir)
        self.stack.callback(shutil.rmtree, self.ramdir, True)

    # -- the local object -------------------------------------------------

    def _local_path(self, path: SwiftPath) -> SwiftPath:
        """The name the node knows its local object by: the request's
        path, or the symlink the proxy resolved to it."""
        alias = self.req.headers.get(protocol.LOCAL_ALIAS_HEADER)
        if alias is None:
            return path
        named = parse_location(unquote(alias))
        if not isinstance(named, SwiftPath) or not named.obj:
            raise HTTPBadRequest(body='Bad %s' % protocol.LOCAL_ALIAS_HEADER,
                                 request=self.req)
        return named

    def _open_local(self) -> LocalObject:
        req, place = self.req, self.placement
        path = SwiftPath(place.account, place.container, place.obj)
        if place.obj is None:
            return self._snapshot_container(path)
        if place.policy.policy_type == EC_POLICY:
            # Each server holds one fragment archive: only the proxy's GET
            # decodes the object.
            raise stream_refusal(req, protocol.STREAM_ERASURE_CODED)
        try:
            # Held from now until the request ends (the work directory is
            # removed): the node reads the object as it is when accepted,
            # whatever a PUT or DELETE does while it waits for a sandbox.
            stored = swiftdisk.hold_object(
                self.server.app, place.device, place.partition,
                place.account, place.container, place.obj, place.policy,
                os.path.join(self.workdir, HELD_OBJECT))
        except DiskFileDeviceUnavailable:
            raise HTTPInsufficientStorage(drive=place.device, request=req)
        except (DiskFileNotExist, DiskFileQuarantined):
            raise HTTPNotFound(request=req)
        except swiftdisk.ObjectChanging:
            raise HTTPServiceUnavailable(
                body='The object is being replaced; retry', request=req,
                headers={protocol.RETRY_AFTER_HEADER: '1'})
        meta = stored.metadata
        if stored.size > self.config.max_input:
            raise HTTPRequestEntityTooLarge(body='Data object too large',
                                            request=req)
        reason = stream_reason(meta, erasure_coded=False)
        if reason == protocol.STREAM_ENCRYPTED and \
                protocol.BODY_KEY_HEADER in req.headers:
            return self._decrypt_local(self._local_path(path), stored)
        if reason is not None:
            raise stream_refusal(req, reason, meta)
        return LocalObject(self._local_path(path), stored.data_file,
                           stored.size, stored.content_type, meta)

    def _decrypt_local(self, path: SwiftPath,
                       stored: swiftdisk.StoredObject) -> LocalObject:
        """The local encrypted object, read in place with the body key the
        proxy sent (:mod:`zerocloud.object.decryption`): the runtime
        decrypts what the program reads.  Refused (to be streamed) unless
        the key matches this ``.data`` file.  Its ``LOCAL_*`` variables
        come with the system map: its metadata here is ciphertext."""
        req, meta = self.req, stored.metadata
        try:
            key = protocol.BodyKey.decode(
                req.headers[protocol.BODY_KEY_HEADER])
        except ValueError:
            raise HTTPBadRequest(body='Bad %s' % protocol.BODY_KEY_HEADER,
                                 request=req)
        if decryption.mismatch(key, meta) is not None:
            raise stream_refusal(req, protocol.STREAM_ENCRYPTED, meta)
        self.body_key = key
        return LocalObject(path, stored.data_file, stored.size,
                           described=False, key=decryption.cipher_key(key))

    def _plain_image(self, node: Node) -> None:
        """A local encrypted object the node mounts as its image is
        unpacked on the host, not read by the program: it is decrypted
        into RAM first (at most ``zerovm_ram_limit`` bytes with the
        members stored there)."""
        local, req = self.local, self.req
        if local is None or local.key is None or not any(
                ch.device == USER_IMAGE and ch.path == local.path
                for ch in node.channels):
            return
        needed = local.size + self.members_in_ram
        if needed > self.config.ram_limit:
            raise over_ram_limit(req, needed, self.config.ram_limit)
        plain = os.path.join(self.ramdir, 'local')
        if not tpool.execute(decryption.decrypt, local.data_file, plain,
                             self.body_key):
            raise HTTPUnprocessableEntity(
                body='The image does not match its etag', request=req)
        self.local = replace(local, data_file=plain, key=None,
                             ram_copy=True)

    def _snapshot_container(self, path: SwiftPath) -> LocalObject:
        """A copy of the container's database for the node.

        The container server keeps writing its database: the node reads a
        consistent snapshot instead (in a real thread so the server's other
        requests go on), scrubbed of what only the container's owners may
        see unless the proxy vouches for one.  With listing keys, the
        etags at-rest encryption stored are decrypted in it, as a listing
        shows them; that copy is kept in RAM.
        """
        req, place = self.req, self.placement
        db_file = swiftdisk.container_database(
            self.server.app, place.device, place.partition, path.account,
            path.container)
        if db_file is None:
            raise HTTPNotFound(request=req)
        size = os.path.getsize(db_file)
        if size > self.config.max_input:
            raise HTTPRequestEntityTooLarge(body='Data object too large',
                                            request=req)
        keys = None
        header = req.headers.get(protocol.LISTING_KEYS_HEADER)
        if header is not None:
            try:
                keys = protocol.parse_listing_keys(header)
            except ValueError:
                raise HTTPBadRequest(body='Bad %s'
                                     % protocol.LISTING_KEYS_HEADER,
                                     request=req)
            if size > self.config.ram_limit:
                raise over_ram_limit(req, size, self.config.ram_limit)
        snapshot = os.path.join(self.ramdir if keys else self.workdir,
                                'container.db')
        owner = req.headers.get(protocol.OWNER_HEADER) == \
            protocol.OWNER_HEADER_VALUE
        tpool.execute(snapshot_database, db_file, snapshot, not owner)
        if keys:
            tpool.execute(decrypt_etags, snapshot, path.account,
                          path.container, keys)
        return LocalObject(path, snapshot, os.path.getsize(snapshot),
                           ram_copy=bool(keys))

    # -- the members ------------------------------------------------------

    def _receive(self, in_ram: int) -> Dict[str, str]:
        """Store the streamed members as files in the RAM directory, which
        holds ``in_ram`` bytes already; the last may be fed live, inputs
        beyond the RAM limit are spilled to the device, sealed
        (:mod:`zerocloud.object.members`)."""
        body = RequestBody(self.req, self.config.max_input,
                           self.config.ram_limit, in_ram,
                           lambda name: bool(MEMBER_NAME.match(name)))
        members, self.live = body.receive(self.ramdir, self.workdir)
        self.body = body
        self.sealed = body.sealed
        self.members_in_ram = body.in_ram - in_ram
        return members

    def _read_sysmap(self, members: Dict[str, str]) -> Node:
        req = self.req
        path = members.pop(protocol.SYSMAP_MEMBER, None)
        if path is None:
            raise HTTPBadRequest(body='No system map found in request',
                                 request=req)
        if os.path.getsize(path) > protocol.MAX_SYSMAP:
            raise HTTPRequestEntityTooLarge(body='System map too large',
                                            request=req)
        try:
            with open(path, 'rb') as fp:
                return Node.from_dict(json.load(fp))
        except (ValueError, KeyError, TypeError, JobError):
            raise HTTPBadRequest(body='Cannot parse system map', request=req)

    # -- the run ----------------------------------------------------------

    def _connected(self) -> bool:
        return self.req.headers.get(protocol.EDGE_STREAM_HEADER) == \
            protocol.EDGE_STREAM_VALUE

    def _edge_inputs(self, node: Node, members: Dict[str, str]) -> None:
        """FIFOs for the node's in-edges, in ``members`` (their data comes
        at the end of the body while the node runs)."""
        inputs: Dict[str, EdgeInput] = {}
        for edge in node.edges:
            if edge.direction == 'in' and edge.device not in members:
                path = os.path.join(self.ramdir, 'edge.%d' % len(inputs))
                inputs[edge.device] = EdgeInput(edge.device, path,
                                                self.workdir)
                members[edge.device] = path
        if inputs:
            self.demux = EdgeDemux(self.body.reader, self.body.edge_start,
                                   inputs)
        elif self.body.edge_start is not None:
            raise HTTPBadRequest(body='Bad member name %r'
                                 % self.body.edge_start.name,
                                 request=self.req)

    def _edge_outputs(self, session: Session, limits: Limits
                      ) -> Optional[EdgeOutputs]:
        """FIFOs in place of the files made for the node's out-edges, read
        as the program writes them."""
        streams = {output.device: _on_fifo(session, output, limits)
                   for output in session.outputs if output.edge}
        if not streams:
            return None
        outputs = EdgeOutputs(streams)
        self.stack.callback(outputs.close)
        return outputs

    def _run(self, node: Node, members: Dict[str, str]) -> Response:
        self._plain_image(node)
        if self._connected():
            self._edge_inputs(node, members)
        req, local = self.req, self.local
        started = time.time()
        limits = request_limits(self.server.limits, req)
        clock = deterministic_clock(
            req.headers.get(protocol.DETERMINISTIC_HEADER))
        chooser = self.server.app_snapshots
        choose_program = None if chooser is None else functools.partial(
            chooser.choose, node=node, members=members,
            bounds=self.config.image_scan,
            plain=limits.fuel == 0 and clock is None)
        try:
            # Taking a program out of a (maybe gzip) image is CPU work: in
            # a real thread, so the server's other requests go on.
            session = tpool.execute(
                prepare_session, node, self.ramdir, members,
                self.config.sysimages, local, limits,
                output_dir=self.workdir, deterministic_clock=clock,
                sealed=self.sealed, choose_program=choose_program,
                seed=int(md5(req.headers[protocol.JOB_ID_HEADER].encode() +
                             node.name.encode()).hexdigest()[:15], 16))
        except ExecutionError as err:
            raise HTTPException(status=err.status, body=err.message,
                                request=req)
        finally:
            if chooser is not None:
                chooser.log_notes()
        self.clock.mark('prepare')
        edges = self._edge_outputs(session, limits) \
            if self._connected() else None
        streaming = self._output_stream(session, limits)
        if self.live is not None:
            self.live.start()
        if self.demux is not None:
            self.demux.start()
        # A bounded wait in the queue, so that this server answers within
        # the time the proxy gives it (protocol.ANSWER_SLACK).
        run = eventlet.spawn(self.pool.run, session.manifest_path,
                             limits.timeout, queue_wait=protocol.QUEUE_WAIT,
                             account=job_account(req),
                             ciphers=session.ciphers,
                             tees={'/dev/' + output.device: output.tee
                                   for output in session.outputs
                                   if output.tee})
        if edges is not None:
            run.link(lambda _: edges.run_ended())
            return self._edge_answer(node, session, edges, run, started,
                                     clock, limits)
        held: List[bytes] = []
        if streaming is not None:
            output, stream = streaming
            run.link(lambda _: stream.run_ended())
            stream_after = self._stream_after()
            while True:
                data = stream.read()
                if not data:
                    break
                held.append(data)
                if stream.size > stream_after:
                    return self._streamed(node, session, output, stream,
                                          held, run, started, clock, limits)
        result = self._result(run, session, clock, limits)
        self.clock.mark('sandbox')
        streams = {}
        if streaming is not None and not output.tee:
            self._keep_output(output, held)
            streams[output.device] = stream
        headers = self._headers(node, session, result, started, streams)
        frames = self._frames(node, session, result, headers)
        body_length = sum(length for length, _ in frames)
        self.clock.mark('frame')
        headers[protocol.STAGES_HEADER] = format_stages(self.clock.stages)
        headers['Content-Type'] = protocol.TAR_CONTENT_TYPE
        resp = HTTPOk(headers=headers, app_iter=AnswerBody(frames, self.stack),
                      request=req)
        resp.content_length = body_length
        return resp

    def _frames(self, node: Node, session: Session, result: SessionResult,
                headers: Dict[str, str], streamed: Collection[str] = (),
                replaced: Collection[str] = ()) -> List[Frame]:
        """The members of the node's outputs to send, but for the
        ``streamed`` devices (sent as written), the ``replaced`` ones
        marked as sent again whole; raises ``422`` when a CGI output breaks
        a rule."""
        succeeded = result.report.ok and result.report.retcode == 0
        frames: List[Frame] = []
        # Stored outputs first, the immediate response last: the proxy
        # writes the objects, then streams the body straight to the client.
        # A sandbox that failed returns none.
        outputs = sorted(session.outputs, key=lambda o: o.immediate) \
            if result.report.ok else []
        for output in outputs:
            if not output.immediate and not succeeded:
                continue   # never store or pass on what a failed program wrote
            if output.device in streamed:
                continue   # sent as written
            if os.path.getsize(output.host_path) < output.min_size:
                continue
            try:
                frames.append(frame_output(
                    output, replaces=output.device in replaced))
            except cgi.InvalidCgiOutput as err:
                # The sandbox ran (its X-Nexe-* headers say how): the node
                # fails for what it printed, and the proxy reports it.
                headers['X-Nexe-Error'] = header_value(str(err))
                raise HTTPUnprocessableEntity(
                    body='Node %s failed: %s' % (node.name, err),
                    headers=headers, request=self.req)
        return frames

    def _stream_after(self) -> int:
        """Bytes of the answer to hold back before it streams, as the
        proxy asks (``protocol.STREAM_AFTER`` if it asks nothing valid)."""
        try:
            return protocol.parse_stream_after(
                self.req.headers.get(protocol.STREAM_AFTER_HEADER))
        except ValueError:
            return protocol.STREAM_AFTER

    def _output_stream(self, session: Session, limits: Limits
                       ) -> Optional[Tuple[Output, OutputStream]]:
        """The output read as the program writes it, and its FIFO, when
        the proxy may take the answer while the node runs
        (:mod:`zerocloud.object.outstream`): the node's only output when
        it is its answer on stdout, else its first output stored as an
        object (stdout, or a named device, teed)."""
        wanted = self.req.headers.get(protocol.ANSWER_STREAM_HEADER)
        if not (wanted == protocol.ANSWER_STREAM_DUPLEX or (
                wanted == protocol.ANSWER_STREAM_AFTER_BODY
                and self.live is None)):
            # With an input fed live, the proxy is still sending the body:
            # unless it said it reads the answer meanwhile, the answer
            # must wait for the body's end.
            return None
        # Never one stored only past a size, nor CGI.  The answer streams
        # only alone (the others would have to wait for it).  A named
        # device is a file the program may seek in: stored, it is teed;
        # the answer it is not (what reached the client cannot be taken
        # back).
        for output in session.outputs:
            if output.edge or output.min_size or \
                    output.content_type in CGI_TYPES or \
                    (output.immediate and len(session.outputs) > 1):
                continue
            if output.device == 'stdout':
                stream = _on_fifo(session, output, limits)
            elif output.swift_path is not None and output.key is not None:
                stream = _teed(output, self.ramdir, limits)
            else:
                continue
            self.stack.callback(stream.close)
            return output, stream
        return None

    def _keep_output(self, output: Output, held: List[bytes]) -> None:
        """A small streamed output, whole once the node ended: a RAM file
        in place of the FIFO, framed like any output."""
        output.host_path = os.path.join(self.ramdir, 'out.' + output.device)
        with open(output.host_path, 'wb') as fp:
            fp.writelines(held)

    def _result(self, run, session: Session, clock: Optional[int],
                limits: Limits) -> SessionResult:
        """The run's result once it ended; a busy pool or a program still
        to compile are the answers that say so."""
        req = self.req
        try:
            result = run.wait()
        except PoolFull:
            raise busy(req)
        finally:
            if self.demux is not None:
                self.demux.stop()
            if self.live is not None:
                self.live.finish()
        if result.report.status == STATUS_NOT_COMPILED:
            self.server.compile_in_background(session, limits.fuel > 0,
                                              clock is not None)
            raise HTTPServiceUnavailable(
                body='Program is being compiled; retry later', request=req,
                headers={protocol.RETRY_AFTER_HEADER:
                         str(COMPILE_RETRY_AFTER)})
        return result

    def _headers(self, node: Node, session: Session, result: SessionResult,
                 started: float, streams: Mapping[str, OutputStream]
                 ) -> Dict[str, str]:
        """The node's ``X-Nexe-*`` headers (and its log line).  What the
        runtime could not see of an output read as written (``streams``,
        by device) comes from its stream: its etag, its size, whether it
        went past its limit.  An in-edge that broke off fails the node."""
        req, report = self.req, result.report
        for device, stream in streams.items():
            alias = '/dev/' + device
            report.etags = [(name, stream.digest.hexdigest()
                             if name == alias else digest)
                            for name, digest in report.etags]
            report.accounting[5] += stream.size
            if stream.over_limit and report.ok:
                report.status = 'channel %s: write limit exceeded (%d > ' \
                    '%d bytes)' % (alias, stream.size, stream.limit)
        broken = self.demux.broken if self.demux is not None else []
        if broken and report.ok:
            report.status = 'channel /dev/%s: %s' % (broken[0],
                                                     self.demux.reason)
        headers = nexe_headers(node.name, report, time.time() - started,
                               self.placement.policy.name, result.fuel)
        headers[protocol.SNAPSHOT_HEADER] = session.snapshot
        colocated = colocation_proof(
            req.headers.get(protocol.COLOCATED_HEADER))
        if colocated:
            headers[protocol.COLOCATED_HEADER] = colocated
        if not report.ok:
            headers['X-Nexe-Error'] = headers['X-Nexe-Status']
        elif report.retcode != 0:
            line = last_error_line(session.stderr_path, session.stderr_key)
            headers['X-Nexe-Error'] = header_value(
                'bad return code: ' + line if line else 'bad return code')
        self.server.logger.info(
            'node: %s, status: %s, retcode: %s, cdr: %s%s%s%s', node.name,
            report.status, report.retcode, headers['X-Nexe-Cdr-Line'],
            ', fed %s: %d of %d bytes' % (self.live.name, self.live.fed,
                                          self.live.size)
            if self.live is not None else '',
            ', in-edges received %d bytes' % sum(
                t.received for t in self.demux.inputs.values())
            if self.demux is not None else '',
            ', streamed %d bytes' % sum(s.size for s in streams.values())
            if streams else '')
        return headers

    def _streamed(self, node: Node, session: Session, output: Output,
                  stream: OutputStream, held: List[bytes], run,
                  started: float, clock: Optional[int], limits: Limits
                  ) -> Response:
        """Answer now, while the node runs (:data:`zerocloud.protocol.
        STREAMED_ANSWER_HEADER`): ``output``'s pieces; its other outputs
        whole and the final headers end the body."""

        def finish() -> Tuple[List[Frame], Dict[str, str]]:
            result = self._result(run, session, clock, limits)
            self.clock.mark('sandbox')
            # A teed output's file is the output: sent again whole unless
            # that is what streamed.
            rewritten = output.tee is not None and \
                not teed_whole(output, stream, result.report)
            headers = self._headers(node, session, result, started,
                                    {} if output.tee else
                                    {output.device: stream})
            frames = self._frames(
                node, session, result, headers,
                streamed=() if rewritten else (output.device,),
                replaced=(output.device,) if rewritten else ())
            headers[protocol.STAGES_HEADER] = format_stages(
                self.clock.stages)
            return frames, headers
        headers = {'X-Nexe-System': header_value(node.name),
                   'X-Nexe-Policy': header_value(self.placement.policy.name),
                   protocol.STREAMED_ANSWER_HEADER: 'yes',
                   'Content-Type': protocol.TAR_CONTENT_TYPE}
        # Each piece goes out as it comes (see _edge_answer).
        self.req.environ['eventlet.minimum_write_chunk_size'] = 0
        return HTTPOk(headers=headers, request=self.req,
                      app_iter=StreamedAnswer(
                          output.device, dict(
                              meta_pax(output.meta), **{
                                  protocol.PAX_CONTENT_TYPE:
                                      output.content_type}),
                          held, stream, finish, self.stack.close))

    def _edge_answer(self, node: Node, session: Session, edges: EdgeOutputs,
                     run, started: float, clock: Optional[int],
                     limits: Limits) -> Response:
        """Answer with the out-edges' pieces as the program writes them
        (:mod:`zerocloud.object.edges`), from its first write to one of
        them, or from the end of its run: a run that could not start (a
        busy pool, a program to compile) is answered as such."""
        edges.first()
        result: Optional[SessionResult] = None
        if run.dead:
            result = self._result(run, session, clock, limits)

        def finish() -> Tuple[List[Frame], Dict[str, str]]:
            nonlocal result
            if result is None:
                result = self._result(run, session, clock, limits)
            self.clock.mark('sandbox')
            headers = self._headers(node, session, result, started,
                                    edges.streams)
            frames = self._frames(node, session, result, headers,
                                  edges.streams)
            self.clock.mark('frame')
            headers[protocol.STAGES_HEADER] = format_stages(
                self.clock.stages)
            return frames, headers
        headers = {'X-Nexe-System': header_value(node.name),
                   'X-Nexe-Policy': header_value(self.placement.policy.name),
                   protocol.STREAMED_ANSWER_HEADER: protocol.STREAMED_EDGES,
                   'Content-Type': protocol.TAR_CONTENT_TYPE}
        # Each piece goes out as it comes: eventlet would hold back writes
        # smaller than 4 KiB until more come.
        self.req.environ['eventlet.minimum_write_chunk_size'] = 0
        return HTTPOk(headers=headers, request=self.req,
                      app_iter=EdgeAnswer(edges, finish, self.stack.close))
