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
replica without sending it), holds the local ``.data`` file from then
until the request ends (a hard link in the device's ``tmp/``: a PUT or
DELETE of the object while the node waits for a sandbox changes nothing
it reads) and binds it read-only as the node's channel (next to a
container: a snapshot of its database, scrubbed of what only owners may
see unless ``X-Zerocloud-Container-Owner: yes`` says the proxy found the
caller an owner; :mod:`zerocloud.object.containerdb`), runs the node in a
sandbox worker (:mod:`zerocloud.runtime`) and answers ``200`` with
``X-Nexe-*`` headers and a tar of the node's outputs.  Outputs are not
written to Swift here: the proxy stores them through the normal object
path, as the user, once the node succeeded.

The local ``.data`` file is read only when it is the object a client's GET
returns.  A ``.data`` file replaced again and again while it was being
held is answered ``503`` with ``Retry-After``.  An object of an
erasure-coded policy (one fragment archive here), an encrypted one
(ciphertext), an SLO or DLO manifest and a symlink are
refused before the body is sent: ``409`` with ``X-Zerocloud-Stream-Input:
<reason>`` (:func:`zerocloud.object.node.stream_reason`), and the proxy
sends the node again with the object streamed
(:mod:`zerocloud.proxy.inputs`).  An encrypted object is read in place
when the request carries its body key (``X-Zerocloud-Body-Key``) and
the key matches the ``.data`` file: the sandbox decrypts what the program
reads, in the program's memory (:mod:`zerocloud.object.decryption`,
:mod:`zerocloud.runtime.served`).  With
``X-Zerocloud-Local-Alias`` the object in the path is a symlink's target,
bound under the symlink's name.  Next to a container, the proxy may send
the keys of the etags encryption stored in its listing
(``X-Zerocloud-Listing-Keys``): the node's copy then holds them decrypted
(:mod:`zerocloud.object.containerdb`), in RAM.

Where a node's files go: everything the proxy streams (members: the
system map, user image, fetched inputs, data of upstream nodes), the
program taken out of an image, the manifest and the sandbox's run
directory are kept in RAM (``zerovm_ram_dir``, at most ``zerovm_ram_limit``
bytes of inputs per node, beyond which the largest input is fed live and
the others are spilled to the device sealed; a full one is ``503`` with
``Retry-After``), so that plaintext of a decrypted or decoded object never
lands on a device disk.  A node's directory
there is removed when its request ends; those of server processes that
died (killed mid-run) are removed by the next process that starts a
sandbox pool.  A node whose only output is its stdout (the client's
answer, or an object the proxy stores as it comes) writes it into a FIFO
the server reads as it runs (:mod:`zerocloud.object.outstream`): a large
one is streamed to the proxy while the node runs.  Otherwise the node's
outputs (and its stderr) are written under the device's ``tmp/`` during
the run (bounded by ``zerovm_maxoutput`` each), sealed: encrypted by the
sandbox as written, each under a key made for it and held in memory only
(:mod:`zerocloud.cipher`), decrypted as they are sent to the proxy, and
stored, encrypted and in their container's policy, by the proxy
afterwards.

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
``zerovm_account_maxpool`` (half of ``zerovm_maxpool``, rounded up),
``zerovm_account_maxqueue`` (half of ``zerovm_maxqueue``, rounded up)
    of those sandboxes and waiting places, what the nodes of one account
    may hold at once: the account the job runs for (``X-Zerocloud-Account``
    from the proxy, else the one in the node's path).  Its further nodes
    are answered busy (``503`` with ``Retry-After``; the proxy waits and
    sends them again) while other accounts' nodes still find a sandbox, so
    one tenant cannot starve the others.  Per worker process, as the pool.
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
``zerovm_app_snapshots = 4``
    snapshots of Python scripts' heavy imports kept in that cache (each
    about 350 MB with its compiled module), least recently used removed
    first; 0 makes none (:mod:`zerocloud.runtime.appsnap`).
``zerovm_ram_dir = /dev/shm``
    where a node's inputs are kept during its run (see above); must exist.
    A warning is logged at start when it is not a RAM filesystem (tmpfs).
``zerovm_ram_limit = 268435456``
    bytes of inputs one node may keep there.  Beyond it, the largest
    input (sent last by the proxy) is fed to the program while it runs,
    through a FIFO (:mod:`zerocloud.object.members`), and the other
    inputs are spilled to the device, sealed; the system map, an image
    and a program must fit (else ``413``).  Up to ``workers`` ×
    ``zerovm_maxpool`` nodes run at once: size it so that they fit the
    tmpfs (by default half of the machine's RAM).

Read from the server's own settings as well (set them in ``[DEFAULT]``):
``mount_check = true`` (a device that is not mounted answers ``507``) and
``workers`` (for the memory check above).  Every option is checked when the
filter is built: a bad value stops the server at start, named.
"""

import errno
import os
import shutil
from typing import Dict, Optional, Set, Tuple

import eventlet
from eventlet import tpool
from swift.common.constraints import check_drive
from swift.common.request_helpers import get_name_and_placement
from swift.common.swob import (
    HTTPBadRequest, HTTPException, HTTPInsufficientStorage,
    HTTPRequestEntityTooLarge, HTTPServiceUnavailable, Request, Response)
from swift.common.utils import get_logger

from zerocloud import protocol
from zerocloud.headers import guard_headers
from zerocloud.object import swiftdisk
from zerocloud.object.config import ObjectConfig
from zerocloud.object.execution import Limits, Session
from zerocloud.object.hostmemory import (
    not_in_ram_warning, orphaned_node_dirs, overcommit_warning,
    process_alive, server_processes, visible_memory)
from zerocloud.object.node import NodeRequest, job_account, Placement, busy
from zerocloud.object.appsnapshots import PYTHON_IMAGE, AppSnapshotChooser
from zerocloud.runtime.cache import keep_source
from zerocloud.runtime.pool import PoolFull, SandboxPool, SandboxWorkerError


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
        python_image = config.sysimages.get(PYTHON_IMAGE)
        #: Runs Python scripts from snapshots of their imports (None: off).
        self.app_snapshots = AppSnapshotChooser(
            python_image, config.cache_dir, config.app_snapshots,
            config.cache_limits, self.logger) \
            if python_image and config.app_snapshots else None
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
                                     account_size=self.config.account_max_pool,
                                     account_queue=(
                                         self.config.account_max_queue),
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

    def execute(self, req: Request):
        """Check an execution request before anything is opened or read
        (so the proxy can try another server without having sent the
        body), then run its node (:class:`NodeRequest`)."""
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
        ctype = req.headers.get('Content-Type', '').split(';')[0].strip()
        if not ctype:
            raise HTTPBadRequest(body='No content type', request=req)
        if ctype != protocol.TAR_CONTENT_TYPE:
            raise HTTPBadRequest(body='Invalid Content-Type', request=req)
        devices = swiftdisk.devices_root(self.app, policy)
        try:
            check_drive(devices, dev, self.config.mount_check)
        except ValueError:   # not a directory, or not mounted
            raise HTTPInsufficientStorage(drive=dev, request=req)
        if self._pool is not None and self._pool.refuses(job_account(req)):
            # Refuse before the body is sent (eventlet answers 100 Continue
            # only when the body is first read): the proxy tries another
            # server, and does not count this one as failed.
            raise busy(req)
        placement = Placement(dev, part, acct, cont, obj, policy, devices)
        return NodeRequest(self, req, placement).answer()

    def compile_in_background(self, session: Session, fuel: bool,
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


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)
    # Checked here, when the pipeline is loaded: a bad value stops the
    # server at start, named.
    ObjectConfig.from_conf(conf)

    def factory(app):
        return ObjectQueryMiddleware(app, conf)
    return factory
