"""zerocloud-saio: a complete Swift cluster with ZeroCloud on one machine.

Usage::

    zerocloud-saio [--port 8080] [--bind-ip 127.0.0.1] [--workdir DIR]
                   [--encryption | --no-encryption] [--quiet]

Starts memcached, one proxy server, one account server and one container
server (``object_query``) on 127.0.0.1, and four object servers
(``object_query``) on 127.0.0.2 to 127.0.0.5, each its own host in the rings,
so placement, replica uniqueness, failover and error limiting see four hosts
as in a real cluster.  Two storage policies: ``Policy-0`` (default, 3
replicas on the 4 devices, like Swift's SAIO) and ``ec`` (erasure coded,
``liberasurecode_rs_vand``, 2 data + 1 parity fragments on the same devices,
ring ``object-1``; a container uses it when created with
``X-Storage-Policy: ec``).  The proxy pipeline follows Swift's
``proxy-server.conf-sample`` (``staticweb`` where Swift's SAIO has it,
``s3api`` right before auth as Swift's S3 documentation has it)::

    catch_errors gatekeeper healthcheck proxy-logging cache listing_formats
    account_hosts bulk tempurl ratelimit s3api tempauth staticweb job_chain
    proxy_query copy container-quotas account-quotas slo dlo
    versioned_writes symlink keymaster encryption proxy-logging proxy-server

``job_chain`` and ``proxy_query`` sit right after auth, so every request a
job makes through the proxy passes through copy, the quotas, SLO, DLO,
versioning, symlinks and encryption as a client's request would.  At-rest
encryption is on unless ``--no-encryption`` is given (then
``disable_encryption = true``: new objects are stored in the clear, objects
stored encrypted earlier still read back); the keymaster's root secret is
made once per work directory, in ``etc/keymaster.conf`` (mode 0600).

The launcher waits until every server answers and a test user can
authenticate, then prints lines to paste into a shell::

    export PATH=/path/to/venv/bin:$PATH
    export ST_AUTH=<proxy>/auth/v1.0 ST_USER=test:tester ST_KEY=testing
    export OS_AUTH_TOKEN=AUTH_tk...
    export OS_STORAGE_URL=<proxy>/v1/AUTH_test

(``<proxy>`` is ``http://127.0.0.1:8080`` by default; the swift CLI uses
``ST_*``, curl examples use ``OS_*``) and keeps running in the foreground.
Ctrl-C (SIGINT), SIGTERM or SIGHUP stop every server and exit 0.  If a
server dies while running, the launcher stops the others and exits 1 naming
the server and its log file.  Start-up faults (port in use, memcached
missing, unusable work directory, a server dying at start) give one line on
stderr (plus the end of the server's log) and exit 1, with nothing left
running.  Without ``--quiet`` the launcher also prints a few ``#`` comment
lines (progress, users); the output stays paste-able.

Users (tempauth, tokens valid for a day): ``test:tester``/``testing`` (admin
of ``AUTH_test``), ``test:tester3``/``testing3`` (``AUTH_test``, not admin),
``test2:tester2``/``testing2`` (admin of ``AUTH_test2``),
``stats:reader``/``reading``, owner of ``AUTH_stats`` where each proxy worker
stores the jobs' accounting lines every 10 seconds, one object per account
(``AUTH_stats/<account>/<YYYY>/<MM>/<DD>/<spool>.log``), and as in Swift's
SAIO ``test5:tester5``/``testing5`` (group ``service``: with
``reseller_prefix = AUTH, SERVICE`` a ``SERVICE_`` account needs its token
besides the user's) and ``admin:admin``/``admin`` (``.reseller_admin``).

Work directory (default: a new temporary directory; ``make run`` uses
``var/saio``)::

    etc/   swift.conf, rings and builders, one config per server,
           keymaster.conf (the encryption root secret, mode 0600)
    srv/   srv/<n>/node/sdb<n>: the devices (object server n uses sdb<n>;
           account and container servers use sdb1)
    srv.xfs  the XFS image mounted on srv/, where the work directory's
           filesystem cannot hold Swift's metadata (e.g. ext4)
    log/   one file per server (plus memcached.log)
    run/   memcached.pid and the lock that keeps a second launcher out

A reused work directory keeps its hash prefix/suffix, rings, root secret
and data; only addresses that changed (ports no longer free, or the single
127.0.0.1 of older launchers) are updated in the rings, in place (partitions
stay); a missing ``ec`` policy, ``object-1`` ring or secret is added.
Backend ports are free ports chosen at start, distinct over the whole
cluster; ``--port 0`` picks a free proxy port too.  Swift keeps metadata in
user extended attributes of up to 64 KiB, which tmpfs and XFS hold and ext4
does not: where ``srv/`` cannot, the launcher (as root) loop-mounts an XFS
image file ``srv.xfs`` on it for as long as it runs, or says why it cannot
(:mod:`zerocloud.devices`).

Every server runs with ``swift_dir = <workdir>/etc`` and logs to its file
through :mod:`zerocloud.logfile`.  Nothing is written outside the work
directory.  Swift parses its storage policies once, at import, from
``/etc/swift/swift.conf`` (``swift_dir`` does not reload them), so each
server is started through this module (``python -m zerocloud.saio --serve
swift-object-server <conf>``), which loads the work directory's policies
before running Swift's own entry point; the launcher checks at start that
the proxy serves exactly the policies it configured.

Before the servers start, the Python system images are fetched (and the
numpy+pandas snapshot made) if missing and compiled into the cache (as
``zerocloud-sysimage`` does), so the first job does not pay for it.

The same code is importable: :class:`Cluster` is what the functional tests
use (``Cluster(workdir, port=0).start()``).
"""

import argparse
import base64
import configparser
import errno
import fcntl
import http.client
import importlib.metadata
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from zerocloud import warnfilter

# Before Swift (eventlet, dnspython) is imported: this module is the
# launcher and, through --serve, every server it starts.
warnfilter.hide_third_party_deprecations()

from swift.common.ring import RingBuilder  # noqa: E402
from swift.common.storage_policy import reload_storage_policies  # noqa: E402
from swift.common.utils import set_swift_dir  # noqa: E402

from zerocloud import devices, paths  # noqa: E402

PROG = 'zerocloud-saio'
DEFAULT_PORT = 8080
DEFAULT_BIND_IP = '127.0.0.1'
#: memcached, the account and the container server listen here.
BACKEND_IP = '127.0.0.1'
OBJECT_SERVER_COUNT = 4
OBJECT_REPLICAS = 3
EC_POLICY_NAME = 'ec'
EC_TYPE = 'liberasurecode_rs_vand'
EC_DATA_FRAGMENTS = 2
EC_PARITY_FRAGMENTS = 1
#: At-rest encryption when neither --encryption nor --no-encryption is given:
#: on, as in production (nodes get encrypted inputs decrypted by the proxy).
DEFAULT_ENCRYPTION = True
#: 256 partitions: plenty for a test cluster and a ring build in milliseconds.
PART_POWER = 8
TOKEN_LIFE = 86400
POLICY_NAME = 'Policy-0'
MEMCACHED_BINARY = '/usr/bin/memcached'
MEMCACHED_PACKAGE = 'memcached'
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 10
#: Starts the line the launcher writes to a server's log before each start.
RUN_MARKER = '--- %s: starting' % PROG
#: Hidden first argument: run one Swift server (see :func:`serve`).
SERVE_FLAG = '--serve'
KEYMASTER_CONF = 'keymaster.conf'
#: Bytes of the keymaster's root secret (Swift wants at least 32).
ROOT_SECRET_BYTES = 32
ZEROVM_TIMEOUT = 30
ZEROVM_MAXPOOL = 2
ZEROVM_MAXQUEUE = 8

#: Storage policy index -> its swift.conf section (ring ``object[-<index>]``).
STORAGE_POLICIES = {
    0: {'name': POLICY_NAME, 'default': 'yes'},
    1: {'name': EC_POLICY_NAME, 'policy_type': 'erasure_coding',
        'ec_type': EC_TYPE, 'ec_num_data_fragments': EC_DATA_FRAGMENTS,
        'ec_num_parity_fragments': EC_PARITY_FRAGMENTS,
        'ec_object_segment_size': 1 << 20},
}
_OBJECT_DEVICES = [('object-server-%d' % n, n)
                   for n in range(1, OBJECT_SERVER_COUNT + 1)]
#: Ring name -> (replicas, [(server, storage node)] in device id order).
#: Like Swift's SAIO, storage node n holds device sdb<n>; the account and
#: container servers share node 1 with object-server-1, and both policies
#: use the four object devices.
RING_LAYOUT = {
    'account': (1, [('account-server', 1)]),
    'container': (1, [('container-server', 1)]),
    'object': (OBJECT_REPLICAS, _OBJECT_DEVICES),
    'object-1': (EC_DATA_FRAGMENTS + EC_PARITY_FRAGMENTS, _OBJECT_DEVICES),
}
#: Backend server name -> its storage node.
BACKEND_NODES = {server: node for _replicas, devices in RING_LAYOUT.values()
                 for server, node in devices}
#: Object server n listens on 127.0.0.<n+1>: a host of its own.
OBJECT_SERVER_IPS = {server: '127.0.0.%d' % (node + 1)
                     for server, node in _OBJECT_DEVICES}
#: Swift's proxy-server.conf-sample order, with ZeroCloud's filters right
#: after auth: every request a job makes through the proxy then goes through
#: copy, SLO, DLO, versioning, symlinks and encryption with the caller's
#: rights, as a client's would.  keymaster and encryption must be the last
#: filters before proxy-logging, as Swift requires.
PROXY_PIPELINE = (
    'catch_errors gatekeeper healthcheck proxy-logging cache listing_formats '
    'account_hosts bulk tempurl ratelimit s3api tempauth staticweb '
    'job_chain proxy_query copy container-quotas account-quotas slo dlo '
    'versioned_writes symlink keymaster encryption proxy-logging '
    'proxy-server')
#: Server kind -> pipeline; object_query also serves container jobs.
BACKEND_PIPELINES = {
    'account': 'account-server',
    'container': 'object_query container-server',
    'object': 'object_query object-server',
}


def device_name(node: int) -> str:
    return 'sdb%d' % node


def backend_ip(server: str) -> str:
    """The address a backend server (or memcached) listens on."""
    return OBJECT_SERVER_IPS.get(server, BACKEND_IP)


class LaunchError(Exception):
    """A fault that stops the cluster.

    The first line of the message names the cause for the user; a server
    that died at start adds the last lines of its log, indented.
    """


class Interrupted(Exception):
    """:meth:`Cluster.interrupt` was called while the cluster was starting."""


@dataclass(frozen=True)
class AuthUser:
    """A tempauth user of the test cluster."""
    account: str
    user: str
    key: str
    admin: bool
    #: Further tempauth groups (``service``, ``.reseller_admin``).
    groups: tuple[str, ...] = ()

    @property
    def login(self) -> str:
        return '%s:%s' % (self.account, self.user)


#: The users of Swift's own SAIO, by short name.
AUTH_USERS = {
    'tester': AuthUser('test', 'tester', 'testing', admin=True),
    'tester3': AuthUser('test', 'tester3', 'testing3', admin=False),
    'tester2': AuthUser('test2', 'tester2', 'testing2', admin=True),
    # Owner of the account that receives ZeroCloud's accounting objects.
    'stats': AuthUser('stats', 'reader', 'reading', admin=True),
    # What Swift's functional tests use for service tokens (a SERVICE_
    # account needs a token of the service group as well) and for the
    # reseller admin, who may act on every account.
    'tester5': AuthUser('test5', 'tester5', 'testing5', admin=False,
                        groups=('service',)),
    'admin': AuthUser('admin', 'admin', 'admin', admin=True,
                      groups=('.reseller_admin',)),
}
#: tempauth's account prefixes: AUTH_ for users, SERVICE_ for service data.
RESELLER_PREFIXES = 'AUTH, SERVICE'
SERVICE_GROUP = 'service'
STATS_ACCOUNT = 'AUTH_stats'
#: Zapp pages' own origins: http://auth-test.localhost:PORT/v1/AUTH_test/...
#: (browsers resolve *.localhost to this machine).
ACCOUNT_HOST_DOMAIN = 'localhost'
DEFAULT_USER = 'tester'


@dataclass
class _Child:
    """One process of the cluster, started in its own session.

    Swift servers call setsid anyway; starting them as session leaders makes
    their process group id equal their pid from the first instant, so
    signalling the group reaches the server and all its workers.
    """
    name: str
    argv: list[str]
    log_path: str
    host: str
    port: int
    popen: Optional[subprocess.Popen] = None

    def start(self, cwd: str) -> None:
        with open(self.log_path, 'ab') as log:
            # Logs are appended across runs; mark where this run begins.
            log.write(('%s %s %s\n' % (
                RUN_MARKER, time.strftime('%Y-%m-%d %H:%M:%S'),
                ' '.join(self.argv))).encode())
            log.flush()
            try:
                self.popen = subprocess.Popen(
                    self.argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as err:
                raise LaunchError('cannot start %s (%s): %s' % (
                    self.name, self.argv[0], err.strerror or err)) from None

    def exit_status(self) -> Optional[int]:
        """The exit status if the main process has ended, else None."""
        return None if self.popen is None else self.popen.poll()

    def signal_group(self, signum: int) -> None:
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def group_alive(self) -> bool:
        """True while the server or any process of its group still runs."""
        if self.popen is None:
            return False
        if self.popen.poll() is None:
            return True
        return _group_has_live_member(self.popen.pid)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The last lines this run wrote to the log (after our marker)."""
        try:
            with open(self.log_path, 'rb') as log:
                text = log.read()[-65536:].decode('utf-8', 'replace')
        except OSError:
            return []
        run = text.rsplit(RUN_MARKER, 1)[-1].split('\n', 1)[1:]
        return [line for line in ''.join(run).splitlines()
                if line.strip()][-lines:]


def _group_has_live_member(pgid: int) -> bool:
    """Whether a process group has a member that is not a zombie.

    A reaped leader's workers are reparented and may linger as zombies of a
    reaper we do not control; those must not count as running.
    """
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != 'Z':
            return True
    return False


def free_ports(count: int, ip: str = BACKEND_IP,
               exclude: frozenset = frozenset()) -> list[int]:
    """Ports nobody listens on now; held together so they are distinct."""
    held = []
    family = socket.AF_INET6 if ':' in ip else socket.AF_INET
    try:
        while len(held) < count:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.bind((ip, 0))
            if sock.getsockname()[1] in exclude:
                sock.close()
                continue
            held.append(sock)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def port_is_free(ip: str, port: int) -> bool:
    """Whether a server could listen on ip:port (Swift sets SO_REUSEADDR)."""
    try:
        _probe_listen(ip, port)
    except OSError:
        return False
    return True


def _probe_listen(ip: str, port: int) -> None:
    family = socket.AF_INET6 if ':' in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(1)


def _user_name() -> str:
    """Our user name: Swift workers drop privileges to ``user`` by name."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        raise LaunchError('user id %d has no user name (passwd entry); Swift '
                          'servers need one' % os.getuid()) from None


def _server_kind(name: str) -> str:
    """``object-server-2`` -> ``object``."""
    return name.split('-', 1)[0]


def _ini(value: object) -> str:
    """Escape a value for paste.deploy's interpolating config parser."""
    return str(value).replace('%', '%%')


def _render_conf(sections: list[tuple[str, dict]]) -> str:
    out = []
    for section, options in sections:
        out.append('[%s]' % section)
        out.extend('%s = %s' % (key, _ini(value))
                   for key, value in options.items())
        out.append('')
    return '\n'.join(out)


def _connect_host(bind_ip: str) -> str:
    """The address that reaches a server bound to ``bind_ip``."""
    return {'0.0.0.0': '127.0.0.1', '::': '::1', '': '127.0.0.1'}.get(
        bind_ip, bind_ip)


class Cluster:
    """A running (or startable) all-in-one Swift cluster with ZeroCloud.

    ``port=0`` lets the cluster pick a free proxy port; ``encryption``
    turns at-rest encryption of new objects on (``disable_encryption`` of
    the proxy's ``encryption`` filter).  ``prepare()`` and ``start()`` raise
    :class:`LaunchError` and leave nothing running when they fail;
    ``stop()`` is idempotent.  Usable as a context manager.
    """

    def __init__(self, workdir: str, port: int = DEFAULT_PORT,
                 bind_ip: str = DEFAULT_BIND_IP,
                 ready_timeout: float = READY_TIMEOUT,
                 zerovm_timeout: int = ZEROVM_TIMEOUT,
                 encryption: bool = DEFAULT_ENCRYPTION) -> None:
        self.workdir = os.path.abspath(workdir)
        self.zerovm_timeout = zerovm_timeout
        self.encryption = encryption
        self.bind_ip = bind_ip
        self.ready_timeout = ready_timeout
        self.bin_dir = os.path.dirname(sys.executable)
        self._requested_port = port
        self._proxy_port: Optional[int] = None
        self._prepared: Optional[list[_Child]] = None
        self._children: list[_Child] = []
        self._auth_cache: dict[str, tuple[str, str]] = {}
        self._interrupted = False
        self._lock_file = None
        self._image_mounted = False

    # -- layout ------------------------------------------------------------

    @property
    def etc_dir(self) -> str:
        return os.path.join(self.workdir, 'etc')

    @property
    def log_dir(self) -> str:
        return os.path.join(self.workdir, 'log')

    @property
    def run_dir(self) -> str:
        return os.path.join(self.workdir, 'run')

    @property
    def spool_dir(self) -> str:
        """Where the proxy spools images and what nodes answered."""
        return os.path.join(self.workdir, 'spool')

    @property
    def accounting_dir(self) -> str:
        """The proxy's accounting spool (kept across restarts)."""
        return os.path.join(self.workdir, 'accounting')

    @property
    def devices_root(self) -> str:
        """Every storage node's devices, on storage that holds Swift's
        metadata (see :mod:`zerocloud.devices`)."""
        return os.path.join(self.workdir, 'srv')

    def devices_dir(self, node: int) -> str:
        """The ``devices`` directory of storage node ``node`` (1-based)."""
        return os.path.join(self.devices_root, str(node), 'node')

    def device_path(self, node: int) -> str:
        return os.path.join(self.devices_dir(node), device_name(node))

    def log_path(self, name: str) -> str:
        """Log file of a server, e.g. ``log_path('object-server-2')``."""
        return os.path.join(self.log_dir, '%s.log' % name)

    @property
    def keymaster_conf_path(self) -> str:
        """The file holding the encryption root secret (mode 0600)."""
        return os.path.join(self.etc_dir, KEYMASTER_CONF)

    # -- addresses and users -----------------------------------------------

    @property
    def proxy_port(self) -> int:
        if self._proxy_port is None:
            raise LaunchError('the cluster has not been started')
        return self._proxy_port

    @property
    def proxy_host(self) -> str:
        """Address clients on this machine use to reach the proxy."""
        return _connect_host(self.bind_ip)

    @property
    def proxy_url(self) -> str:
        host = self.proxy_host
        return 'http://%s:%d' % ('[%s]' % host if ':' in host else host,
                                 self.proxy_port)

    @property
    def auth_url(self) -> str:
        return self.proxy_url + '/auth/v1.0'

    @property
    def ports(self) -> dict[str, int]:
        """Listening port of every process, by name (``proxy-server``...).

        Ports are distinct over the cluster, so a port names one server.
        """
        return {child.name: child.port for child in self._children}

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        """(host, port) every process listens on, by name."""
        return {child.name: (child.host, child.port)
                for child in self._children}

    @property
    def users(self) -> dict[str, tuple[str, str]]:
        """Short user name -> (``account:user`` login, key)."""
        return {name: (user.login, user.key)
                for name, user in AUTH_USERS.items()}

    def authenticate(self, user: str = DEFAULT_USER) -> tuple[str, str]:
        """(token, storage URL) of a user; cached, tokens live a day."""
        if user not in self._auth_cache:
            self._auth_cache[user] = self._fetch_token(AUTH_USERS[user])
        return self._auth_cache[user]

    def token(self, user: str = DEFAULT_USER) -> str:
        return self.authenticate(user)[0]

    def storage_url(self, user: str = DEFAULT_USER) -> str:
        return self.authenticate(user)[1]

    def env_for(self, user: str = DEFAULT_USER) -> dict[str, str]:
        """A complete environment for running the ``swift`` CLI as ``user``.

        Inherited ``ST_*``/``OS_*`` variables are dropped: swiftclient would
        prefer an inherited OS_STORAGE_URL/OS_AUTH_TOKEN over ST_AUTH.
        """
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(('ST_', 'OS_'))}
        login, key = self.users[user]
        env.update(ST_AUTH=self.auth_url, ST_USER=login, ST_KEY=key,
                   PATH=self.bin_dir + os.pathsep + env.get('PATH', ''))
        return env

    def export_lines(self, user: str = DEFAULT_USER) -> list[str]:
        """Shell lines giving the CLI (ST_*) and curl (OS_*) access."""
        login, key = self.users[user]
        token, storage_url = self.authenticate(user)
        return [
            'export PATH=%s:$PATH' % self.bin_dir,
            'export ST_AUTH=%s ST_USER=%s ST_KEY=%s'
            % (self.auth_url, login, key),
            'export OS_AUTH_TOKEN=%s' % token,
            'export OS_STORAGE_URL=%s' % storage_url,
        ]

    # -- lifecycle ----------------------------------------------------------

    def __enter__(self) -> 'Cluster':
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def prepare(self) -> None:
        """Check the environment and write configs and rings; start nothing.

        Separate from :meth:`start` so a caller can report on the prepared
        cluster (e.g. warn about a missing system image) before servers run.
        """
        if self._prepared is not None:
            return
        try:
            self._prepare_workdir()
            memcached = self._find_memcached()
            _check_server_entry_points()
            self._proxy_port = self._choose_proxy_port()
            ports = self._choose_backend_ports()
            self._prepare_devices()
            try:
                self._write_swift_conf()
                self._write_keymaster_conf()
                self._write_rings(ports)
                self._write_server_confs(ports)
            except OSError as err:
                raise LaunchError('cannot write the configuration in %s: %s'
                                  % (self.etc_dir, err)) from None
        except BaseException:
            self.stop()
            raise
        self._prepared = self._plan_children(memcached, ports)

    def start(self) -> None:
        """Prepare if needed, start every process, wait until ready."""
        self.prepare()
        _ensure_sysimage()
        self._children, self._prepared = self._prepared, None
        try:
            for child in self._children:
                self._raise_if_interrupted()
                child.start(self.workdir)
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process group: SIGTERM, wait, SIGKILL stragglers."""
        for child in self._children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while (any(child.group_alive() for child in self._children)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        for child in self._children:
            if child.group_alive():
                child.signal_group(signal.SIGKILL)
            if child.popen is not None:
                child.popen.wait()
        self._children = []
        self._prepared = None
        self._auth_cache.clear()
        if self._image_mounted:
            devices.detach(self.devices_root)
            self._image_mounted = False
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def interrupt(self) -> None:
        """Ask a running :meth:`start` to give up; safe in signal handlers.

        Signal handlers must not raise into start/stop: an exception between
        fork and bookkeeping would leak a server.
        """
        self._interrupted = True

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def _raise_if_interrupted(self) -> None:
        if self._interrupted:
            raise Interrupted()

    def dead_child(self) -> Optional[str]:
        """One line naming a process that exited, or None if all run."""
        for child in self._children:
            status = child.exit_status()
            if status is not None:
                return '%s exited unexpectedly (status %d); see %s' % (
                    child.name, status, child.log_path)
        return None

    # -- preparation ---------------------------------------------------------

    def _prepare_workdir(self) -> None:
        try:
            for directory in (self.etc_dir, self.log_dir, self.run_dir,
                              self.spool_dir):
                os.makedirs(directory, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.workdir):
                pass
        except OSError as err:
            raise LaunchError('cannot use work directory %s: %s'
                              % (self.workdir, err.strerror or err)) from None
        self._lock_workdir()

    def _prepare_devices(self) -> None:
        """Devices on storage that holds an object with the most metadata
        Swift allows (a loop-mounted XFS image where the work directory's
        filesystem cannot), after the cheap checks: a busy port costs no
        mkfs."""
        try:
            self._image_mounted = devices.attach(self.devices_root)
            for node in range(1, OBJECT_SERVER_COUNT + 1):
                os.makedirs(self.device_path(node), exist_ok=True)
        except devices.StorageError as err:
            raise LaunchError(str(err)) from None
        except OSError as err:
            raise LaunchError('cannot prepare the devices in %s: %s'
                              % (self.devices_root, err.strerror or err)
                              ) from None

    def _lock_workdir(self) -> None:
        lock_path = os.path.join(self.run_dir, 'saio.lock')
        lock_file = open(lock_path, 'a+')
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            owner = lock_file.read().strip() or 'unknown'
            lock_file.close()
            raise LaunchError('work directory %s is in use by another %s '
                              '(pid %s)' % (self.workdir, PROG, owner)
                              ) from None
        lock_file.truncate(0)
        lock_file.write('%d\n' % os.getpid())
        lock_file.flush()
        self._lock_file = lock_file

    def _find_memcached(self) -> str:
        _user_name()  # fail early: servers and memcached need a user name
        binary = shutil.which('memcached') or MEMCACHED_BINARY
        if not os.access(binary, os.X_OK):
            raise LaunchError('memcached not found: install the Debian '
                              'package %s (apt-get install %s)'
                              % (MEMCACHED_PACKAGE, MEMCACHED_PACKAGE))
        return binary

    def _choose_proxy_port(self) -> int:
        port = self._requested_port
        if port == 0:
            return free_ports(1, self.bind_ip)[0]
        try:
            _probe_listen(self.bind_ip, port)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise LaunchError('port %d on %s is already in use'
                                  % (port, self.bind_ip)) from None
            raise LaunchError('cannot listen on %s port %d: %s'
                              % (self.bind_ip, port, err.strerror or err)
                              ) from None
        return port

    def _choose_backend_ports(self) -> dict[str, int]:
        """Ports for memcached and the backends: the rings' ones if free.

        Each is free on the server's own address and distinct from every
        other port of the cluster.
        """
        previous = self._ring_ports()
        taken = {self.proxy_port}
        ports = {}
        for name in BACKEND_NODES:
            port = previous.get(name)
            if port and port not in taken and port_is_free(backend_ip(name),
                                                           port):
                ports[name] = port
                taken.add(port)
        missing = [name for name in BACKEND_NODES if name not in ports]
        for name in missing + ['memcached']:
            ports[name] = free_ports(1, backend_ip(name),
                                     exclude=frozenset(taken))[0]
            taken.add(ports[name])
        return ports

    def _builder_path(self, ring: str) -> str:
        return os.path.join(self.etc_dir, '%s.builder' % ring)

    def _load_builder(self, ring: str) -> Optional[RingBuilder]:
        """The saved builder of a reused workdir, if it has our layout."""
        replicas, devices = RING_LAYOUT[ring]
        try:
            builder = RingBuilder.load(self._builder_path(ring))
        except Exception:
            # Missing or unreadable: the ring is rebuilt from scratch.
            return None
        devs = sorted((dev['id'], dev['device'])
                      for dev in builder.devs if dev is not None)
        expected = [(dev_id, device_name(node))
                    for dev_id, (_server, node) in enumerate(devices)]
        if (builder.replicas != replicas or builder.part_power != PART_POWER
                or devs != expected):
            return None
        return builder

    def _ring_ports(self) -> dict[str, int]:
        """Server name -> port, read from the builders of a reused workdir."""
        ports = {}
        for ring, (_replicas, ring_devices) in RING_LAYOUT.items():
            builder = self._load_builder(ring)
            if builder is not None:
                for dev in builder.devs:
                    ports[ring_devices[dev['id']][0]] = dev['port']
        return ports

    def _write_swift_conf(self) -> None:
        """swift.conf: our policies, and a hash prefix/suffix kept on reuse.

        A work directory of an older launcher gains the ``ec`` policy; its
        hash settings must stay, or no object would be found again.
        """
        path = os.path.join(self.etc_dir, 'swift.conf')
        try:
            with open(path) as conf:
                old_text: Optional[str] = conf.read()
        except FileNotFoundError:
            old_text = None
        previous = configparser.RawConfigParser()
        previous.read_string(old_text or '')
        hash_settings = {
            key: previous.get('swift-hash', key, fallback=None)
            or secrets.token_hex(8)
            for key in ('swift_hash_path_suffix', 'swift_hash_path_prefix')}
        text = _render_conf(
            [('swift-hash', hash_settings)]
            + [('storage-policy:%d' % index, options)
               for index, options in STORAGE_POLICIES.items()])
        if text != old_text:
            with open(path, 'w') as conf:
                conf.write(text)

    def _write_keymaster_conf(self) -> None:
        """The keymaster's root secret: made once, readable by us only.

        Kept on reuse whether or not encryption is on now: objects stored
        encrypted earlier need it to be read back.
        """
        try:
            descriptor = os.open(self.keymaster_conf_path,
                                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            os.chmod(self.keymaster_conf_path, 0o600)
            return
        secret = base64.b64encode(os.urandom(ROOT_SECRET_BYTES)).decode()
        with os.fdopen(descriptor, 'w') as conf:
            conf.write(_render_conf([
                ('keymaster', {'encryption_root_secret': secret})]))

    def _write_rings(self, ports: dict[str, int]) -> None:
        """Build missing rings; on reuse only move devices to new addresses.

        Keeping device ids and partitions keeps existing data reachable
        (what ``swift-ring-builder set_info`` does, without a rebalance).
        """
        for ring, (replicas, ring_devices) in RING_LAYOUT.items():
            ring_path = os.path.join(self.etc_dir, '%s.ring.gz' % ring)
            builder = self._load_builder(ring)
            changed = builder is None
            if builder is None:
                builder = RingBuilder(PART_POWER, replicas, 1)
                for dev_id, (server, node) in enumerate(ring_devices):
                    builder.add_dev({'id': dev_id, 'region': 1,
                                     'zone': dev_id + 1,
                                     'ip': backend_ip(server),
                                     'port': ports[server],
                                     'device': device_name(node),
                                     'weight': 1.0, 'meta': ''})
                builder.rebalance(seed=1)
            else:
                for dev in builder.devs:
                    server = ring_devices[dev['id']][0]
                    ip, port = backend_ip(server), ports[server]
                    if (dev['ip'], dev['port']) != (ip, port):
                        dev.update(ip=ip, port=port, replication_ip=ip,
                                   replication_port=port)
                        changed = True
            if changed or not os.path.exists(ring_path):
                builder.get_ring().save(ring_path)
                builder.save(self._builder_path(ring))

    def _common_options(self, name: str, bind_ip: str, port: int) -> dict:
        return {
            'bind_ip': bind_ip,
            'bind_port': port,
            'workers': 1,
            'user': _user_name(),
            'swift_dir': self.etc_dir,
            'log_level': 'INFO',
            'log_custom_handlers': 'zerocloud.logfile.add_file_handler',
            'log_file_path': self.log_path(name),
        }

    def _storage_options(self, name: str, node: int, port: int) -> dict:
        options = self._common_options(name, backend_ip(name), port)
        options.update(devices=self.devices_dir(node), mount_check='false',
                       disable_fallocate='true')
        return options

    def _object_query_filter(self) -> dict:
        return {'use': 'egg:zerocloud#object_query',
                'zerovm_sysimage_devices': paths.default_sysimage_devices(),
                'zerovm_timeout': self.zerovm_timeout,
                'zerovm_maxpool': ZEROVM_MAXPOOL,
                'zerovm_maxqueue': ZEROVM_MAXQUEUE,
                'zerovm_module_cache': paths.module_cache_dir()}

    def _write_server_confs(self, ports: dict[str, int]) -> None:
        confs = {'proxy-server': self._proxy_conf(ports['memcached'])}
        for name, node in BACKEND_NODES.items():
            kind = _server_kind(name)
            sections = [
                ('DEFAULT', self._storage_options(name, node, ports[name])),
                ('pipeline:main', {'pipeline': BACKEND_PIPELINES[kind]}),
                ('app:%s-server' % kind, {'use': 'egg:swift#%s' % kind}),
            ]
            if 'object_query' in BACKEND_PIPELINES[kind]:
                sections.append(('filter:object_query',
                                 self._object_query_filter()))
            confs[name] = sections
        for name, sections in confs.items():
            with open(self._conf_path(name), 'w') as conf:
                conf.write(_render_conf(sections))

    def _conf_path(self, name: str) -> str:
        return os.path.join(self.etc_dir, '%s.conf' % name)

    def _proxy_conf(self, memcached_port: int) -> list[tuple[str, dict]]:
        options = self._common_options('proxy-server', self.bind_ip,
                                       self.proxy_port)
        options['log_file_extra_routes'] = 'proxy-access'
        tempauth = {'use': 'egg:swift#tempauth', 'token_life': TOKEN_LIFE,
                    'allow_overrides': 'true',
                    'reseller_prefix': RESELLER_PREFIXES,
                    'SERVICE_require_group': SERVICE_GROUP}
        # On a wildcard address tempauth derives the URL from the Host header.
        explicit_url = self.proxy_host == self.bind_ip
        for user in AUTH_USERS.values():
            value = ' '.join([user.key] + (['.admin'] if user.admin else [])
                             + list(user.groups))
            if explicit_url:
                value += ' %s/v1/AUTH_%s' % (self.proxy_url, user.account)
            tempauth['user_%s_%s' % (user.account, user.user)] = value
        return [
            ('DEFAULT', options),
            ('pipeline:main', {'pipeline': PROXY_PIPELINE}),
            ('app:proxy-server', {'use': 'egg:swift#proxy',
                                  'account_autocreate': 'true',
                                  'allow_account_management': 'true'}),
            ('filter:tempauth', tempauth),
            # S3 clients sign with a tempauth user as the access key and
            # its password as the secret (test:tester / testing); only
            # S3-signed requests reach s3api (zerocloud.proxy.s3gate).
            ('filter:s3api', {
                'paste.filter_factory':
                    'zerocloud.proxy.s3gate:filter_factory'}),
            ('filter:job_chain', {'use': 'egg:zerocloud#job_chain'}),
            # By module: an editable install that predates the filter's
            # entry point loads it too.
            ('filter:account_hosts', {
                'paste.filter_factory':
                    'zerocloud.proxy.account_hosts:filter_factory',
                'account_host_domain': ACCOUNT_HOST_DOMAIN}),
            ('filter:proxy_query', {
                'use': 'egg:zerocloud#proxy_query',
                'zerovm_sysimage_devices': paths.default_sysimage_devices(),
                'zerovm_timeout': self.zerovm_timeout,
                'zerovm_accounting_enabled': 'true',
                'zerovm_accounting_spool_dir': self.accounting_dir,
                'zerovm_spool_dir': self.spool_dir,
                'user_stats_account': STATS_ACCOUNT}),
            ('filter:cache', {'use': 'egg:swift#memcache',
                              'memcache_servers': '%s:%d' % (
                                  BACKEND_IP, memcached_port)}),
            ('filter:catch_errors', {'use': 'egg:swift#catch_errors'}),
            ('filter:gatekeeper', {'use': 'egg:swift#gatekeeper'}),
            ('filter:healthcheck', {'use': 'egg:swift#healthcheck'}),
            ('filter:proxy-logging', {'use': 'egg:swift#proxy_logging'}),
            ('filter:listing_formats', {'use': 'egg:swift#listing_formats'}),
            ('filter:bulk', {'use': 'egg:swift#bulk'}),
            ('filter:tempurl', {'use': 'egg:swift#tempurl'}),
            ('filter:ratelimit', {'use': 'egg:swift#ratelimit'}),
            ('filter:staticweb', {'use': 'egg:swift#staticweb'}),
            ('filter:container-quotas', {
                'use': 'egg:swift#container_quotas'}),
            ('filter:account-quotas', {'use': 'egg:swift#account_quotas'}),
            ('filter:copy', {'use': 'egg:swift#copy'}),
            ('filter:slo', {'use': 'egg:swift#slo'}),
            ('filter:dlo', {'use': 'egg:swift#dlo'}),
            ('filter:versioned_writes', {
                'use': 'egg:swift#versioned_writes',
                'allow_versioned_writes': 'true',
                'allow_object_versioning': 'true'}),
            ('filter:symlink', {'use': 'egg:swift#symlink'}),
            ('filter:keymaster', {
                'use': 'egg:swift#keymaster',
                'keymaster_config_path': self.keymaster_conf_path}),
            # Off only stops encrypting new writes: what was stored
            # encrypted is still decrypted on the way out.
            ('filter:encryption', {
                'use': 'egg:swift#encryption',
                'disable_encryption': 'false' if self.encryption else 'true'}),
        ]

    def _plan_children(self, memcached: str,
                       ports: dict[str, int]) -> list[_Child]:
        memcached_argv = [memcached, '-l', BACKEND_IP,
                          '-p', str(ports['memcached']), '-U', '0', '-m', '64',
                          '-P', os.path.join(self.run_dir, 'memcached.pid')]
        if os.getuid() == 0:
            # memcached refuses to run as root unless told which user to be.
            memcached_argv += ['-u', _user_name()]
        children = [_Child('memcached', memcached_argv,
                           self.log_path('memcached'), BACKEND_IP,
                           ports['memcached'])]
        for name in BACKEND_NODES:
            children.append(_Child(
                name, _serve_argv(_server_kind(name), self._conf_path(name)),
                self.log_path(name), backend_ip(name), ports[name]))
        children.append(_Child(
            'proxy-server',
            _serve_argv('proxy', self._conf_path('proxy-server')),
            self.log_path('proxy-server'), self.proxy_host, self.proxy_port))
        return children

    # -- readiness -----------------------------------------------------------

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = list(self._children)
        while pending:
            self._raise_if_interrupted()
            self._raise_if_died()
            pending = [child for child in pending if not self._answers(child)]
            if pending and time.monotonic() > deadline:
                raise LaunchError('timed out after %.0f s waiting for %s; see '
                                  '%s' % (self.ready_timeout,
                                          ', '.join(c.name for c in pending),
                                          self.log_dir))
            if pending:
                time.sleep(0.1)
        last_error = ''
        while True:
            self._raise_if_interrupted()
            self._raise_if_died()
            try:
                self.authenticate(DEFAULT_USER)
                self._check_storage_url()
                break
            except LaunchError as err:
                last_error = str(err)
            if time.monotonic() > deadline:
                raise LaunchError('timed out after %.0f s waiting for auth: '
                                  '%s' % (self.ready_timeout, last_error))
            time.sleep(0.2)
        self._check_policies()

    def _raise_if_died(self) -> None:
        for child in self._children:
            status = child.exit_status()
            if status is None:
                continue
            tail = child.log_tail()
            if not tail:
                raise LaunchError('%s exited at start (status %d) without '
                                  'writing to its log %s' % (
                                      child.name, status, child.log_path))
            raise LaunchError('%s exited at start (status %d); last lines of '
                              '%s:\n  %s' % (child.name, status,
                                             child.log_path,
                                             '\n  '.join(tail)))

    def _answers(self, child: _Child) -> bool:
        """Whether the child's port answers its protocol."""
        if child.name == 'memcached':
            try:
                with socket.create_connection((child.host, child.port),
                                              timeout=1) as sock:
                    sock.sendall(b'version\r\n')
                    return sock.recv(64).startswith(b'VERSION')
            except OSError:
                return False
        if child.name == 'proxy-server':
            method, path = 'GET', '/healthcheck'
        else:
            # Storage servers answer OPTIONS without touching a device.
            method, path = 'OPTIONS', '/'
        try:
            return _http(child.host, child.port, method, path)[0] == 200
        except OSError:
            return False

    def _fetch_token(self, user: AuthUser) -> tuple[str, str]:
        try:
            status, headers, _body = _http(
                self.proxy_host, self.proxy_port, 'GET', '/auth/v1.0',
                {'X-Auth-User': user.login, 'X-Auth-Key': user.key})
        except OSError as err:
            raise LaunchError('auth request failed: %s' % err) from None
        token = headers.get('x-auth-token')
        storage_url = headers.get('x-storage-url')
        if status // 100 != 2 or not token or not storage_url:
            raise LaunchError('auth as %s answered %d' % (user.login, status))
        return token, storage_url

    def _check_storage_url(self) -> None:
        """The default user's storage URL answers 2xx to HEAD."""
        token, storage_url = self.authenticate(DEFAULT_USER)
        url = urlsplit(storage_url)
        try:
            status, _headers, _body = _http(
                url.hostname, url.port or 80, 'HEAD', url.path,
                {'X-Auth-Token': token})
        except OSError as err:
            raise LaunchError('HEAD %s failed: %s' % (storage_url, err)
                              ) from None
        if status // 100 != 2:
            raise LaunchError('HEAD %s as %s answered %d' % (
                storage_url, AUTH_USERS[DEFAULT_USER].login, status))

    def _check_policies(self) -> None:
        """Fail if the proxy serves other policies than our swift.conf's."""
        try:
            status, _headers, body = _http(
                self.proxy_host, self.proxy_port, 'GET', '/info')
            policies = [policy.get('name') for policy in
                        json.loads(body)['swift']['policies']]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise LaunchError('GET /info failed: %s' % err) from None
        expected = [options['name'] for options in STORAGE_POLICIES.values()]
        if status != 200 or policies != expected:
            raise LaunchError(
                'the proxy serves storage policies %s instead of %s from %s'
                % (policies, expected, os.path.join(self.etc_dir,
                                                    'swift.conf')))


def _swift_program(kind: str) -> str:
    """``object`` -> ``swift-object-server``: the console script's name."""
    return 'swift-%s-server' % kind


def _serve_argv(kind: str, conf_path: str) -> list[str]:
    """How the launcher starts one Swift server (see :func:`serve`)."""
    return [sys.executable, '-m', 'zerocloud.saio', SERVE_FLAG,
            _swift_program(kind), conf_path]


def _server_entry_point(program: str
                        ) -> Optional[importlib.metadata.EntryPoint]:
    found = importlib.metadata.entry_points(group='console_scripts',
                                            name=program)
    return next(iter(found), None)


def _check_server_entry_points() -> None:
    """Swift's servers are installed where this Python finds them."""
    for kind in ('proxy', 'account', 'container', 'object'):
        if _server_entry_point(_swift_program(kind)) is None:
            raise LaunchError('%s not found: install swift into the Python '
                              'environment of %s' % (_swift_program(kind),
                                                     sys.executable))


def serve(program: str, conf_path: str) -> int:
    """Run a Swift server with the storage policies of its work directory.

    Swift parses ``/etc/swift/swift.conf`` once, at import, and
    ``swift_dir`` does not reload the policies; so point Swift at the
    swift.conf beside ``conf_path`` and reload them before the server's own
    entry point runs.  Its workers are forked from this process and inherit
    them.
    """
    entry_point = _server_entry_point(program)
    if entry_point is None:
        print('%s: unknown Swift server %s' % (PROG, program),
              file=sys.stderr)
        return 2
    set_swift_dir(os.path.dirname(os.path.abspath(conf_path)))
    reload_storage_policies()
    sys.argv = [program, conf_path]
    return entry_point.load()()


def _http(host: str, port: int, method: str, path: str,
          headers: Optional[dict] = None,
          timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; returns (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    except http.client.HTTPException as err:
        raise OSError('bad HTTP answer from %s:%d: %r' % (host, port, err))
    finally:
        conn.close()


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description='Run a Swift cluster with ZeroCloud on this '
        'machine, in the foreground; Ctrl-C stops it.')
    parser.add_argument('--port', type=int, default=DEFAULT_PORT,
                        help='proxy port (default %(default)s; 0 = any free)')
    parser.add_argument('--bind-ip', default=DEFAULT_BIND_IP,
                        help='proxy address (default %(default)s)')
    parser.add_argument('--workdir', help='directory for configs, data and '
                        'logs; reused if it exists (default: a new '
                        'temporary directory)')
    parser.add_argument('--encryption', action=argparse.BooleanOptionalAction,
                        default=DEFAULT_ENCRYPTION,
                        help='encrypt new objects at rest (default: %s); '
                        'objects stored encrypted earlier always read back'
                        % ('on' if DEFAULT_ENCRYPTION else 'off'))
    parser.add_argument('--quiet', action='store_true',
                        help='print only the export lines')
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error('--port must be between 0 and 65535, not %d' % args.port)
    return args


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    args = _parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix='zerocloud-saio-')
    status = _run(Cluster(workdir, port=args.port, bind_ip=args.bind_ip,
                          encryption=args.encryption), args.quiet)
    if args.workdir is None and status == 0:
        # Nobody can find a temporary cluster again; keep it only for the
        # logs of a failure.
        shutil.rmtree(workdir, ignore_errors=True)
    return status


def _ensure_sysimage() -> None:
    """The Python images present and compiled, before any job."""
    # Imported here: every Swift server runs this module (--serve) and must
    # not load the sandbox runtime for it.
    from zerocloud.runtime import sysimage
    try:
        sysimage.install_all(announce=False)
    except sysimage.SysimageError as err:
        raise LaunchError('Python system image: %s' % err) from None


def _run(cluster: Cluster, quiet: bool) -> int:
    """Start, report, supervise and stop the cluster; the exit status."""
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(
        signum, lambda _signum, _frame: cluster.interrupt())
        for signum in handled}
    try:
        cluster.prepare()
        _say('# starting Swift + ZeroCloud in %s ...' % cluster.workdir, quiet)
        started = time.monotonic()
        cluster.start()
        _say('# ready in %.1f s: proxy %s, logs in %s; Ctrl-C stops it'
             % (time.monotonic() - started, cluster.proxy_url,
                cluster.log_dir), quiet)
        for login, key in cluster.users.values():
            _say('#   user %s key %s' % (login, key), quiet)
        print('\n'.join(cluster.export_lines()), flush=True)
        while not cluster.interrupted:
            failure = cluster.dead_child()
            if failure:
                print('%s: %s' % (PROG, failure), file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
        _say('# stopping', quiet)
        return 0
    except Interrupted:
        return 0
    except LaunchError as err:
        print('%s: %s' % (PROG, err), file=sys.stderr, flush=True)
        return 1
    finally:
        cluster.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == '__main__':
    if sys.argv[1:2] == [SERVE_FLAG] and len(sys.argv) == 4:
        sys.exit(serve(*sys.argv[2:]))
    sys.exit(main())
