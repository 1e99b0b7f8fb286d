"""
object_query: run ZeroCloud nodes on a storage server
=====================================================

``object_query`` sits in front of the object server (and the container
server) and answers the execution requests that the proxy's ``proxy_query``
filter sends.  Every other request passes through untouched; in particular a
normal metadata ``POST`` never reaches this code because it carries no
``X-Zerovm-Execute`` header.

An execution request is ``POST /<dev>/<part>/<a>[/<c>[/<o>]]`` with
``X-Zerovm-Execute``, ``X-Zerocloud-Id``, ``X-Zerovm-Access`` (``GET`` when the
node runs next to that object or container) and a tar body
(:mod:`zerocloud.protocol`).  The filter checks the request and the local
object *before* reading the body (so the proxy can fail over to another
replica without sending it), binds the local ``.data`` file read-only as the
node's channel (next to a container: a snapshot of its database, scrubbed
of what only owners may see unless ``X-Zerocloud-Container-Owner: yes``
says the proxy found the caller an owner; :mod:`zerocloud.object.containerdb`),
runs the node in a sandbox worker (:mod:`zerocloud.runtime`) and answers
``200`` with ``X-Nexe-*`` headers and a tar of the node's outputs.  Outputs
are not written to Swift here: the proxy stores them through the
normal object path, as the user, once the node succeeded.

The local ``.data`` file is read only when it is the object a client's GET
returns.  An object of an erasure-coded policy (one fragment archive here),
an encrypted one (ciphertext), an SLO or DLO manifest and a symlink are
refused before the body is sent: ``409`` with ``X-Zerocloud-Stream-Input:
<reason>`` (:func:`stream_reason`), and the proxy sends the node again with
the object streamed (:mod:`zerocloud.proxy.inputs`).  An encrypted object
is read in place when the request carries its body key
(``X-Zerocloud-Body-Key``) and the key matches the ``.data`` file: it is
decrypted into RAM (:mod:`zerocloud.object.decryption`).  With
``X-Zerocloud-Local-Alias`` the object in the path is a symlink's target,
bound under the symlink's name.  Next to a container, the proxy may send
the keys of the etags encryption stored in its listing
(``X-Zerocloud-Listing-Keys``): the node's copy then holds them decrypted
(:mod:`zerocloud.object.containerdb`), in RAM.

Where a node's files go: everything the proxy streams (members: the
system map, user image, fetched inputs, data of upstream nodes), a
decrypted local object, the program taken out of an image, the manifest
and the sandbox's run directory are kept in RAM (``zerovm_ram_dir``, at
most ``zerovm_ram_limit`` bytes of inputs per node; a full one is ``503``
with ``Retry-After``), so that plaintext of a decrypted or decoded object
never lands on a device disk.  A node's directory there is removed when
its request ends; those of server processes that died (killed mid-run)
are removed by the next process that starts a sandbox pool.  The node's
outputs are the program's own bytes: they are written under the device's
``tmp/`` during the run (bounded by ``zerovm_maxoutput`` each) and stored,
encrypted and in their container's policy, by the proxy afterwards.

Pipelines::

    [pipeline:main]
    pipeline = object_query object-server       # container server likewise

    [filter:object_query]
    use = egg:zerocloud#object_query

Options (``[filter:object_query]``), with defaults:

``zerovm_sysimage_devices``  (empty)
    ``name path [name path ...]``: system images (tar files) offered to
    jobs as devices and as ``file://<name>:<member>`` programs.
``zerovm_timeout = 10``
    wall-clock seconds a node may run (the proxy's ``X-Zerovm-Timeout``
    request header, when present and smaller, wins).
``zerovm_kill_timeout = 1``
    extra seconds before a sandbox worker that does not answer is killed.
``zerovm_maxpool = 2``, ``zerovm_maxqueue = 8``
    sandbox workers per object-server worker process, and requests that
    may wait for one (each at most ``zerocloud.protocol.QUEUE_WAIT``
    seconds); beyond that the answer is ``503`` with ``Retry-After``, which
    the proxy takes as "busy", not as a failed server.  A program too large
    to compile within a run (the Python image, when ``zerocloud-sysimage``
    did not compile it for these settings) is compiled by a worker in the
    background meanwhile, and the run is answered busy with ``Retry-After:
    30``.
``zerovm_compile_memory = 1073741824``, ``zerovm_compile_timeout = 60``
    a user program is compiled in a process of its own with at most this
    much address space and these CPU and wall-clock seconds (at most 590).
    One that is invalid or needs more is answered ``422`` (``program
    cannot be compiled within the server's limits``), and that answer is
    remembered by the module's sha256 and given at once from then on.
``zerovm_compile_in_run = 67108864``
    a user program up to this size is compiled within its first run (in at
    most the run's timeout); a larger one, or one that needs longer, is
    compiled in the background from a copy in ``zerovm_module_cache`` and
    its runs are answered busy as above until it is ready.
``zerovm_module_cache_bytes = 536870912``, ``zerovm_module_cache_files = 4096``
    compiled user programs (and remembered failures) kept on disk, least
    recently used removed first.  System images are never removed for
    them.
``zerovm_worker_modules = 16``, ``zerovm_worker_module_bytes = 268435456``
    compiled user programs each sandbox worker keeps loaded, least recently
    used dropped first (system images stay loaded).
``zerovm_maxinput = 1073741824``, ``zerovm_maxoutput = 1073741824``
    bytes a node may read (request body, local object) and write per
    output channel.
``zerovm_maxiops = 1073741824``
    read/write call quotas written into the manifest.
``zerovm_image_scan_bytes = 67108864``, ``zerovm_image_scan_members = 10000``
    the program taken out of a user image must lie within its first so many
    bytes (uncompressed) and members; no more of a gzip image is expanded
    looking for it (:mod:`zerocloud.tarscan`).  The program itself may be
    up to ``zerovm_maxinput`` bytes.
``zerovm_maxnexemem = 1073741824``
    guest memory cap in bytes: the one linear memory a program may have
    (multi-memory is off), beside one table of at most 1 048 576 entries
    (8 MiB).  A server runs ``workers`` processes of
    ``zerovm_maxpool`` sandboxes each, and every sandbox may grow to this
    cap: on a small storage node (2 CPUs, 4 GiB of RAM, ``workers =
    auto``) that is 2 × 2 × 1 GiB = 4 GiB, the node's RAM (the former
    4 GiB cap allowed 16 GiB).  Size it so that the sum over the node's
    servers fits; at start the filter logs a warning when its own server's
    product exceeds the memory it can see (its cgroup's limit, else the
    machine's RAM; :mod:`zerocloud.object.hostmemory`).
``zerovm_scratch_size = 67108864``
    size cap of the guest's writable ``/tmp``.
``zerovm_fuel = 0``
    CPU cap in wasm fuel units (0: unmetered, the fast default).
``zerovm_module_cache`` (``~/.cache/zerocloud/modules``)
    where compiled WebAssembly modules are cached.
``zerovm_ram_dir = /dev/shm``
    where a node's inputs are kept during its run (see above); must exist.
    A warning is logged at start when it is not a RAM filesystem (tmpfs).
``zerovm_ram_limit = 268435456``
    bytes of inputs one node may keep there; a larger request is refused
    with ``413`` before its body is sent.  Up to ``workers`` ×
    ``zerovm_maxpool`` nodes run at once: size it so that they fit the
    tmpfs (by default half of the machine's RAM).

Read from the server's own settings as well (set them in ``[DEFAULT]``):
``mount_check = true`` (a device that is not mounted answers ``507``) and
``workers`` (for the memory check above).  Every option is checked when the
filter is built: a bad value stops the server at start, named.
"""

import errno
import hmac
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from hashlib import md5, sha1
from typing import Dict, Iterator, Mapping, Optional, Set, Tuple

import eventlet
from eventlet import tpool
from swift.common.constraints import check_drive
from swift.common.exceptions import (
    DiskFileDeviceUnavailable, DiskFileNotExist, DiskFileQuarantined)
from swift.common.request_helpers import get_name_and_placement
from swift.common.storage_policy import EC_POLICY
from swift.common.swob import (
    HTTPBadRequest, HTTPClientDisconnect, HTTPConflict, HTTPException,
    HTTPInsufficientStorage,
    HTTPNotFound, HTTPOk, HTTPRequestEntityTooLarge, HTTPServiceUnavailable,
    HTTPUnprocessableEntity, Request, Response)
from swift.common.utils import config_true_value, get_logger, unquote

from zerocloud import cgi, protocol
from zerocloud.object import decryption
from zerocloud.object.config import ObjectConfig
from zerocloud.object.containerdb import (
    decrypt_etags, snapshot_database)
from zerocloud.object.execution import (
    ExecutionError, Limits, LocalObject, Output, Session, prepare_session)
from zerocloud.headers import guard_headers, header_value
from zerocloud.object.hostmemory import (
    node_dir_prefix, not_in_ram_warning, orphaned_node_dirs,
    overcommit_warning, process_alive, server_processes, visible_memory)
from zerocloud.job.model import JobError, Node, SwiftPath, parse_location
from zerocloud.runtime.cache import STATUS_NOT_COMPILED, keep_source
from zerocloud.runtime.pool import PoolFull, SandboxPool, SandboxWorkerError
from zerocloud.runtime.report import Report

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


def busy(req: Request) -> HTTPException:
    """The answer of a busy sandbox pool, which the proxy does not count
    as a failure of this server (:mod:`zerocloud.protocol`)."""
    return HTTPServiceUnavailable(body='Slot not available', request=req,
                                  headers={protocol.RETRY_AFTER_HEADER: '1'})


def colocation_proof(value: Optional[str]) -> Optional[str]:
    """``<salt>:<ip>:<port>`` → HMAC-SHA1(salt, "<ip>:<port>") hex.

    Nodes the proxy co-located on one server return the same value, so a
    client can check that they really met.
    """
    if not value or value.count(':') < 2:
        return None
    salt, address = value.split(':', 1)
    return hmac.new(salt.encode(), address.encode(), sha1).hexdigest()


def last_error_line(path: str) -> str:
    """The last non-empty line a failed program wrote to its stderr.

    Bytes that are not UTF-8 stay lone surrogates, which the header
    encoding turns back into those bytes.
    """
    try:
        with open(path, 'rb') as fp:
            fp.seek(0, os.SEEK_END)
            fp.seek(max(0, fp.tell() - DIAG_TAIL))
            tail = fp.read().decode('utf-8', 'surrogateescape')
    except OSError:
        return ''
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:256] if lines else ''


def frame_output(output: Output) -> Tuple[int, Iterator[bytes]]:
    """(wire length, chunks) of one output member, CGI headers parsed.

    Raises :class:`cgi.InvalidCgiOutput` for CGI output that breaks a rule.
    """
    size = os.path.getsize(output.host_path)
    pax = {protocol.PAX_CONTENT_TYPE: output.content_type}
    offset = 0
    if output.content_type in CGI_TYPES:
        with open(output.host_path, 'rb') as fp:
            head = fp.read(CGI_HEAD)
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
    for key, value in output.meta.items():
        pax[protocol.PAX_META_PREFIX + key] = value
    length = size - offset

    def chunks() -> Iterator[bytes]:
        with open(output.host_path, 'rb') as fp:
            fp.seek(offset)
            while True:
                chunk = fp.read(65536)
                if not chunk:
                    return
                yield chunk
    return (protocol.member_length(output.device, length, pax),
            protocol.iter_member(output.device, length, chunks(), pax))


class ObjectQueryMiddleware:
    def __init__(self, app, conf: Dict[str, str], logger=None):
        self.app = app
        self.logger = logger or get_logger(conf, log_route='object_query')
        self.config = ObjectConfig.from_conf(conf)
        config = self.config
        #: A node's limits; a request may only shorten its timeout.
        self.limits = Limits(
            timeout=config.timeout, memory=config.max_memory,
            max_input=config.max_input, max_output=config.max_output,
            max_iops=config.max_iops, scratch=config.scratch,
            fuel=config.fuel, image_scan=config.image_scan)
        self._pool: Optional[SandboxPool] = None
        #: (program digest or image path, member, fuel, deterministic)
        self._compiling: Set[Tuple[str, Optional[str], bool, bool]] = set()
        overcommit = overcommit_warning(
            self.config.max_pool,
            server_processes(self.config.workers, os.cpu_count() or 1),
            self.config.max_memory, visible_memory())
        if overcommit:
            self.logger.warning(overcommit)
        disk_backed = not_in_ram_warning(self.config.ram_dir)
        if disk_backed:
            self.logger.warning(disk_backed)

    @property
    def pool(self) -> SandboxPool:
        # Started lazily: Swift builds filters in the parent before forking.
        if self._pool is None:
            self._remove_orphans()
            self._pool = SandboxPool(self.config.max_pool,
                                     self.config.max_queue,
                                     self.config.kill_timeout,
                                     cache_dir=self.config.cache_dir,
                                     logger=self.logger,
                                     cache_limits=self.config.cache_limits)
        return self._pool

    def _remove_orphans(self) -> None:
        """Remove what nodes of dead server processes left in RAM."""
        try:
            names = os.listdir(self.config.ram_dir)
        except OSError:
            return
        for name in orphaned_node_dirs(names, process_alive):
            shutil.rmtree(os.path.join(self.config.ram_dir, name), True)

    def __call__(self, env, start_response):
        req = Request(env)
        if req.method != 'POST' or protocol.EXECUTE_HEADER not in req.headers:
            return self.app(env, start_response)

        def start_sendable_response(status, headers, exc_info=None):
            # eventlet drops the connection, unanswered, on a header value
            # it cannot write as Latin-1; the proxy would retry and Swift
            # error-limit this server.
            return start_response(status, guard_headers(headers), exc_info)

        try:
            resp = self.execute(req)
        except HTTPException as err:
            resp = err
        except Exception as err:
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                # zerovm_ram_dir (or the device) is full for now.
                resp = HTTPServiceUnavailable(
                    body='No room for the node\'s files on this server now',
                    headers={protocol.RETRY_AFTER_HEADER: '1'}, request=req)
            else:
                self.logger.exception('zerocloud: node failed on %s',
                                      req.path)
                resp = Response(status=500,
                                body='Internal error running the node',
                                content_type='text/plain')
        return resp(env, start_sendable_response)

    # -- the request ------------------------------------------------------

    def _final_app(self):
        return getattr(self.app, '_pipeline_final_app', self.app)

    def _devices_root(self, policy) -> str:
        final = self._final_app()
        router = getattr(final, '_diskfile_router', None)
        if router is not None:
            return router[policy].devices
        return final.root

    def execute(self, req: Request):
        if not req.headers.get(protocol.JOB_ID_HEADER):
            raise HTTPBadRequest(body='%s header is missing'
                                 % protocol.JOB_ID_HEADER,
                                 request=req)
        try:
            dev, part, acct, cont, obj, policy = get_name_and_placement(
                req, 3, 5, True)
        except UnicodeDecodeError:
            raise HTTPBadRequest(body='Invalid UTF8', request=req)
        if req.content_length is not None and \
                req.content_length > self.config.max_input:
            raise HTTPRequestEntityTooLarge(body='RPC request too large',
                                            request=req)
        if req.content_length is not None and \
                req.content_length > self.config.ram_limit:
            raise self._over_ram_limit(req, req.content_length)
        ctype = req.headers.get('Content-Type', '').split(';')[0].strip()
        if not ctype:
            raise HTTPBadRequest(body='No content type', request=req)
        if ctype != protocol.TAR_CONTENT_TYPE:
            raise HTTPBadRequest(body='Invalid Content-Type', request=req)
        devices = self._devices_root(policy)
        try:
            check_drive(devices, dev, self.config.mount_check)
        except ValueError:   # not a directory, or not mounted
            raise HTTPInsufficientStorage(drive=dev, request=req)
        access = req.headers.get(protocol.ACCESS_HEADER, '').upper()
        if self._pool is not None and self._pool.full:
            # Refuse before the body is sent (eventlet answers 100 Continue
            # only when the body is first read, below): the proxy tries
            # another server, and does not count this one as failed.
            raise busy(req)
        stack = ExitStack()
        try:
            # Outputs (the program's own bytes, stored encrypted through the
            # proxy afterwards) go to the device; everything the node reads
            # that is not its local .data file stays in RAM.
            tmp_root = os.path.join(devices, dev, 'tmp')
            os.makedirs(tmp_root, exist_ok=True)
            workdir = tempfile.mkdtemp(prefix='zerocloud-', dir=tmp_root)
            stack.callback(shutil.rmtree, workdir, True)
            ramdir = tempfile.mkdtemp(prefix=node_dir_prefix(os.getpid()),
                                      dir=self.config.ram_dir)
            stack.callback(shutil.rmtree, ramdir, True)
            local = None
            if access == 'GET' and cont:
                local = self._open_local(stack, req, dev, part, acct, cont,
                                         obj, policy, workdir, ramdir)
            members = self._receive(
                req, ramdir, local.size if local and local.ram_copy else 0)
            node = self._read_sysmap(req, members)
            return self._run(req, stack, node, ramdir, workdir, members,
                             local, policy.name)
        except BaseException:
            stack.close()
            raise

    def _over_ram_limit(self, req: Request, size: int) -> HTTPException:
        return HTTPRequestEntityTooLarge(
            body='The node needs %d bytes of inputs in memory; this server '
                 'keeps at most %d per node (zerovm_ram_limit)'
                 % (size, self.config.ram_limit), request=req)

    def _local_path(self, req: Request, path: SwiftPath) -> SwiftPath:
        """The name the node knows its local object by: the request's
        path, or the symlink the proxy resolved to it."""
        alias = req.headers.get(protocol.LOCAL_ALIAS_HEADER)
        if alias is None:
            return path
        named = parse_location(unquote(alias))
        if not isinstance(named, SwiftPath) or not named.obj:
            raise HTTPBadRequest(body='Bad %s' % protocol.LOCAL_ALIAS_HEADER,
                                 request=req)
        return named

    def _open_local(self, stack: ExitStack, req: Request, dev, part, acct,
                    cont, obj, policy, workdir: str,
                    ramdir: str) -> LocalObject:
        final = self._final_app()
        path = SwiftPath(acct, cont, obj)
        if obj is None:
            return self._snapshot_container(req, final, dev, part, path,
                                            workdir, ramdir)
        if policy.policy_type == EC_POLICY:
            # Each server holds one fragment archive: only the proxy's GET
            # decodes the object.
            raise stream_refusal(req, protocol.STREAM_ERASURE_CODED)
        try:
            df = final.get_diskfile(dev, part, acct, cont, obj, policy=policy)
            df.open()
        except DiskFileDeviceUnavailable:
            raise HTTPInsufficientStorage(drive=dev, request=req)
        except (DiskFileNotExist, DiskFileQuarantined):
            raise HTTPNotFound(request=req)
        # Keep the .data open for the whole run: a concurrent PUT or DELETE
        # may unlink the path, but our descriptor keeps the bytes alive.
        stack.callback(df.__exit__, None, None, None)
        meta = df.get_metadata()
        if df.content_length > self.config.max_input:
            raise HTTPRequestEntityTooLarge(body='Data object too large',
                                            request=req)
        reason = stream_reason(meta, erasure_coded=False)
        if reason == protocol.STREAM_ENCRYPTED and \
                protocol.BODY_KEY_HEADER in req.headers:
            return self._decrypt_local(req, self._local_path(req, path),
                                       df, meta, ramdir)
        if reason is not None:
            raise stream_refusal(req, reason, meta)
        return LocalObject(self._local_path(req, path), df._data_file,
                           df.content_length, df.content_type, meta)

    def _decrypt_local(self, req: Request, path: SwiftPath, df, meta,
                       ramdir: str) -> LocalObject:
        """The local encrypted object, decrypted into RAM with the body key
        the proxy sent (:mod:`zerocloud.object.decryption`); refused (to be
        streamed) unless the key matches this ``.data`` file and opens it.
        Its ``LOCAL_*`` variables come with the system map: its metadata
        here is ciphertext."""
        try:
            key = protocol.BodyKey.decode(
                req.headers[protocol.BODY_KEY_HEADER])
        except ValueError:
            raise HTTPBadRequest(body='Bad %s' % protocol.BODY_KEY_HEADER,
                                 request=req)
        if decryption.mismatch(key, meta) is not None:
            raise stream_refusal(req, protocol.STREAM_ENCRYPTED, meta)
        needed = df.content_length + (req.content_length or 0)
        if needed > self.config.ram_limit:
            raise self._over_ram_limit(req, needed)
        plain = os.path.join(ramdir, 'local')
        if not tpool.execute(decryption.decrypt, df._data_file, plain, key):
            raise stream_refusal(req, protocol.STREAM_ENCRYPTED, meta)
        return LocalObject(path, plain, df.content_length, ram_copy=True,
                           described=False)

    def _snapshot_container(self, req: Request, final, dev, part,
                            path: SwiftPath, workdir: str,
                            ramdir: str) -> LocalObject:
        """A copy of the container's database for the node.

        The container server keeps writing its database: the node reads a
        consistent snapshot instead (in a real thread so the server's other
        requests go on), scrubbed of what only the container's owners may
        see unless the proxy vouches for one.  With listing keys, the
        etags at-rest encryption stored are decrypted in it, as a listing
        shows them; that copy is kept in RAM.
        """
        broker = final._get_container_broker(dev, part, path.account,
                                             path.container)
        if not os.path.exists(broker.db_file) or broker.is_deleted():
            raise HTTPNotFound(request=req)
        size = os.path.getsize(broker.db_file)
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
            needed = size + (req.content_length or 0)
            if needed > self.config.ram_limit:
                raise self._over_ram_limit(req, needed)
        snapshot = os.path.join(ramdir if keys else workdir, 'container.db')
        owner = req.headers.get(protocol.OWNER_HEADER) == \
            protocol.OWNER_HEADER_VALUE
        tpool.execute(snapshot_database, broker.db_file, snapshot,
                      not owner)
        if keys:
            tpool.execute(decrypt_etags, snapshot, path.account,
                          path.container, keys)
        return LocalObject(path, snapshot, os.path.getsize(snapshot),
                           ram_copy=bool(keys))

    def _receive(self, req: Request, ramdir: str,
                 in_ram: int) -> Dict[str, str]:
        """Store the streamed members as files in ``ramdir``, which holds
        ``in_ram`` bytes already."""
        wsgi_input = req.environ['wsgi.input']
        total = [0]
        expected = req.content_length

        def read(size: int) -> bytes:
            chunk = wsgi_input.read(size)
            total[0] += len(chunk)
            if total[0] > self.config.max_input:
                raise HTTPRequestEntityTooLarge(body='RPC request too large',
                                                request=req)
            if in_ram + total[0] > self.config.ram_limit:
                raise self._over_ram_limit(req, in_ram + total[0])
            if expected is not None and total[0] > expected:
                raise HTTPBadRequest(
                    body="Actual content length is greater than the "
                         "'Content-Length' header", request=req)
            return chunk

        reader = protocol.MemberReader(read)
        members: Dict[str, str] = {}
        try:
            while True:
                member = reader.next_member()
                if member is None:
                    break
                name = member.name
                if not MEMBER_NAME.match(name) or name in members:
                    raise HTTPBadRequest(body='Bad member name %r' % name,
                                         request=req)
                dest = os.path.join(ramdir, 'in.%d' % len(members))
                with open(dest, 'wb') as fp:
                    reader.copy_to(fp)
                members[name] = dest
        except protocol.FramingError as err:
            if expected is not None and total[0] < expected:
                raise HTTPClientDisconnect(request=req)
            raise HTTPBadRequest(body='Bad request body: %s' % err,
                                 request=req)
        if expected is not None and total[0] < expected:
            raise HTTPClientDisconnect(request=req)
        return members

    def _read_sysmap(self, req: Request, members: Dict[str, str]) -> Node:
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

    def _compile_in_background(self, session: Session, fuel: bool,
                               deterministic: bool) -> None:
        """Have a pool worker compile a large program for these settings,
        once at a time per program and settings: a system image's member,
        or a user program from a copy that outlives the request, both
        known by their module's digest."""
        program = session.program
        if session.member is None:
            try:
                digest, program = tpool.execute(
                    keep_source, self.config.cache_dir, session.program)
            except OSError as err:
                self.logger.warning('cannot keep a program to compile: %s',
                                    err)
                return
            key = (digest, None, fuel, deterministic)
        else:
            key = (session.program, session.member, fuel, deterministic)
        if key in self._compiling:
            if program != session.program:
                os.unlink(program)
            return
        self._compiling.add(key)

        def compile_program() -> None:
            try:
                self.pool.warm(program, session.member, fuel=fuel,
                               deterministic=deterministic)
            except (PoolFull, SandboxWorkerError) as err:
                self.logger.warning('background compile failed: %s', err)
            finally:
                self._compiling.discard(key)
                if program != session.program:
                    os.unlink(program)
        eventlet.spawn_n(compile_program)

    def _limits(self, req: Request) -> Limits:
        timeout = self.config.timeout
        try:
            timeout = min(timeout, int(float(
                req.headers.get(protocol.TIMEOUT_HEADER, timeout))))
        except (ValueError, OverflowError):   # not a number, nan, inf
            pass
        return replace(self.limits, timeout=max(1, timeout))

    def _run(self, req: Request, stack: ExitStack, node: Node, ramdir: str,
             workdir: str, members: Dict[str, str],
             local: Optional[LocalObject], policy_name: str):
        started = time.time()
        limits = self._limits(req)
        clock = deterministic_clock(
            req.headers.get(protocol.DETERMINISTIC_HEADER))
        try:
            # Taking a program out of a (maybe gzip) image is CPU work: in
            # a real thread, so the server's other requests go on.
            session = tpool.execute(
                prepare_session, node, ramdir, members, self.config.sysimages,
                local, limits, output_dir=workdir, deterministic_clock=clock,
                seed=int(md5(req.headers[protocol.JOB_ID_HEADER].encode() +
                             node.name.encode()).hexdigest()[:15], 16))
        except ExecutionError as err:
            raise HTTPException(status=err.status, body=err.message,
                                request=req)
        try:
            # A bounded wait in the queue, so that this server answers
            # within the time the proxy gives it (protocol.ANSWER_SLACK).
            result = self.pool.run(session.manifest_path, limits.timeout,
                                   queue_wait=protocol.QUEUE_WAIT)
        except PoolFull:
            raise busy(req)
        if result.report.status == STATUS_NOT_COMPILED:
            self._compile_in_background(session, limits.fuel > 0,
                                        clock is not None)
            raise HTTPServiceUnavailable(
                body='Program is being compiled; retry later', request=req,
                headers={protocol.RETRY_AFTER_HEADER:
                         str(COMPILE_RETRY_AFTER)})
        elapsed = time.time() - started
        report = result.report
        headers = nexe_headers(node.name, report, elapsed, policy_name,
                               result.fuel)
        colocated = colocation_proof(
            req.headers.get(protocol.COLOCATED_HEADER))
        if colocated:
            headers[protocol.COLOCATED_HEADER] = colocated
        succeeded = report.ok and report.retcode == 0
        if not report.ok:
            headers['X-Nexe-Error'] = headers['X-Nexe-Status']
        elif report.retcode != 0:
            line = last_error_line(session.stderr_path)
            headers['X-Nexe-Error'] = header_value(
                'bad return code: ' + line if line else 'bad return code')
        self.logger.info('node: %s, status: %s, retcode: %s, cdr: %s',
                         node.name, report.status, report.retcode,
                         headers['X-Nexe-Cdr-Line'])
        frames = []
        # Stored outputs first, the immediate response last: the proxy
        # writes the objects, then streams the body straight to the client.
        # A sandbox that failed returns none.
        outputs = sorted(session.outputs, key=lambda o: o.immediate) \
            if report.ok else []
        for output in outputs:
            if not output.immediate and not succeeded:
                continue   # never store or pass on what a failed program wrote
            if os.path.getsize(output.host_path) < output.min_size:
                continue
            try:
                frames.append(frame_output(output))
            except cgi.InvalidCgiOutput as err:
                # The sandbox ran (its X-Nexe-* headers say how): the node
                # fails for what it printed, and the proxy reports it.
                headers['X-Nexe-Error'] = header_value(str(err))
                raise HTTPUnprocessableEntity(
                    body='Node %s failed: %s' % (node.name, err),
                    headers=headers, request=req)
        body_length = sum(length for length, _ in frames)

        def body() -> Iterator[bytes]:
            with stack:
                for _, chunks in frames:
                    yield from chunks
        headers['Content-Type'] = protocol.TAR_CONTENT_TYPE
        resp = HTTPOk(headers=headers, app_iter=body(), request=req)
        resp.content_length = body_length
        return resp


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)
    # Checked here, when the pipeline is loaded: a bad value stops the
    # server at start, named.
    ObjectConfig.from_conf(conf)

    def factory(app):
        return ObjectQueryMiddleware(app, conf)
    return factory
