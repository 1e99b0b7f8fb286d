"""The proxy filters' options, read and checked once when each is built.

``proxy_query``'s options are documented in :mod:`zerocloud.proxy.filter`,
``job_chain``'s in :mod:`zerocloud.proxy.chain`; the defaults are the named
constants below.
"""

from dataclasses import dataclass
from typing import FrozenSet, Optional

from zerocloud import options
from zerocloud.job.model import MAX_CONNECTIONS
from zerocloud.options import Conf
from zerocloud.tarscan import ScanBounds

DEFAULT_TIMEOUT = 10
DEFAULT_MAXCONFIG = 65536
DEFAULT_MAXINPUT = 1 << 30
DEFAULT_CONTENT_TYPE = 'application/octet-stream'
#: Swift's own defaults for its proxy's connections to storage servers.
DEFAULT_CONN_TIMEOUT = 0.5
DEFAULT_NODE_TIMEOUT = 10.0
#: Swift's own default for its proxy's reads of a client's request body.
DEFAULT_CLIENT_TIMEOUT = 60.0
DEFAULT_STATS_ACCOUNT = 'userstats'
DEFAULT_ACCOUNTING_SPOOL_DIR = '/var/cache/swift/zerocloud-accounting'
#: Seconds between two stores of a proxy worker's accounting spool.
DEFAULT_ACCOUNTING_INTERVAL = 10.0
DEFAULT_CHAIN_TIMEOUT = 20.0
#: Seconds from a job's start within which its nodes may wait for busy
#: storage servers.
DEFAULT_JOB_DEADLINE = 60.0
#: Nodes of one proxy worker process that may wait for busy servers at once.
DEFAULT_MAX_WAITING_NODES = 64
#: Nodes of one job in progress at once.
DEFAULT_JOB_CONCURRENCY = 16
#: Deferred jobs of one account running at once in one proxy worker process.
DEFAULT_ACCOUNT_DEFERRED = 4
DEFAULT_MAX_CONNECTIONS = MAX_CONNECTIONS
#: Bytes of data between one job's connected nodes the proxy keeps.
DEFAULT_JOB_SPOOL_LIMIT = 16 << 30


@dataclass(frozen=True)
class ProxyConfig:
    sysimages: FrozenSet[str]
    timeout: int
    max_config: int
    max_input: int
    default_content_type: str
    conn_timeout: float
    node_timeout: float
    client_timeout: float
    spool_dir: Optional[str]
    accounting: bool
    stats_account: str
    accounting_spool_dir: Optional[str]
    accounting_interval: float
    image_scan: ScanBounds
    job_deadline: float
    max_waiting_nodes: int
    job_concurrency: int
    account_deferred: int
    max_connections: int
    job_spool_limit: int

    @classmethod
    def from_conf(cls, conf: Conf) -> 'ProxyConfig':
        """Every option, checked; :class:`~zerocloud.options.ConfigError`
        names the first bad one."""
        accounting = options.flag(conf, 'zerovm_accounting_enabled', False)
        return cls(
            sysimages=frozenset(options.sysimage_devices(conf)),
            timeout=options.integer(conf, 'zerovm_timeout', DEFAULT_TIMEOUT,
                                    minimum=1),
            max_config=options.integer(conf, 'zerovm_maxconfig',
                                       DEFAULT_MAXCONFIG, minimum=1),
            max_input=options.integer(conf, 'zerovm_maxinput',
                                      DEFAULT_MAXINPUT, minimum=1),
            default_content_type=options.text(
                conf, 'zerovm_default_content_type', DEFAULT_CONTENT_TYPE),
            conn_timeout=options.number(conf, 'conn_timeout',
                                        DEFAULT_CONN_TIMEOUT, minimum=0.001),
            node_timeout=options.number(conf, 'node_timeout',
                                        DEFAULT_NODE_TIMEOUT, minimum=0.001),
            client_timeout=options.number(conf, 'client_timeout',
                                          DEFAULT_CLIENT_TIMEOUT,
                                          minimum=0.001),
            spool_dir=options.directory(conf, 'zerovm_spool_dir'),
            accounting=accounting,
            stats_account=options.text(conf, 'user_stats_account',
                                       DEFAULT_STATS_ACCOUNT),
            # Made and checked only where accounting is stored.
            accounting_spool_dir=options.directory(
                conf, 'zerovm_accounting_spool_dir',
                DEFAULT_ACCOUNTING_SPOOL_DIR, create=True)
            if accounting else None,
            accounting_interval=options.number(
                conf, 'zerovm_accounting_interval',
                DEFAULT_ACCOUNTING_INTERVAL, minimum=0.1),
            image_scan=options.scan_bounds(conf),
            job_deadline=options.number(conf, 'zerovm_job_deadline',
                                        DEFAULT_JOB_DEADLINE),
            max_waiting_nodes=options.integer(
                conf, 'zerovm_max_waiting_nodes', DEFAULT_MAX_WAITING_NODES),
            job_concurrency=options.integer(
                conf, 'zerovm_job_concurrency', DEFAULT_JOB_CONCURRENCY,
                minimum=1),
            account_deferred=options.integer(
                conf, 'zerovm_account_deferred', DEFAULT_ACCOUNT_DEFERRED,
                minimum=1),
            max_connections=options.integer(
                conf, 'zerovm_max_connections', DEFAULT_MAX_CONNECTIONS),
            job_spool_limit=options.integer(
                conf, 'zerovm_job_spool_limit', DEFAULT_JOB_SPOOL_LIMIT,
                minimum=1),
        )


@dataclass(frozen=True)
class ChainConfig:
    """``job_chain``'s options."""
    chain_timeout: float
    max_config: int

    @classmethod
    def from_conf(cls, conf: Conf) -> 'ChainConfig':
        return cls(
            chain_timeout=options.number(conf, 'chain_timeout',
                                         DEFAULT_CHAIN_TIMEOUT,
                                         minimum=0.001),
            max_config=options.integer(conf, 'zerovm_maxconfig',
                                       DEFAULT_MAXCONFIG, minimum=1),
        )
