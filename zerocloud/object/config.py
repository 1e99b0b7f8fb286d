"""``object_query``'s options, read and checked once when it is built.

Each option is documented in :mod:`zerocloud.object.filter`; the defaults are
the named constants below.
"""

import os
from dataclasses import dataclass
from typing import Dict, Optional

from zerocloud import options
from zerocloud.fairshare import half
from zerocloud.options import Conf
from zerocloud.paths import module_cache_dir
from zerocloud.runtime.limits import CacheLimits
from zerocloud.runtime.pool import WARM_TIMEOUT
from zerocloud.tarscan import ScanBounds

DEFAULT_TIMEOUT = 10
DEFAULT_KILL_TIMEOUT = 1.0
DEFAULT_MAXPOOL = 2
DEFAULT_MAXQUEUE = 8
DEFAULT_MAXINPUT = 1 << 30
DEFAULT_MAXOUTPUT = 1 << 30
DEFAULT_MAXIOPS = 1 << 30
#: A small storage node (2 CPUs, 4 GiB, ``workers = auto``) runs 2 × 2
#: sandboxes per server: 1 GiB each keeps them within its RAM.
DEFAULT_MAXNEXEMEM = 1 << 30
DEFAULT_SCRATCH = 64 << 20
DEFAULT_FUEL = 0
#: Where a node's inputs are kept during its run: RAM (tmpfs), so that
#: plaintext the proxy decrypted never lands on a device disk.
DEFAULT_RAM_DIR = '/dev/shm'
#: Bytes of inputs one node may keep there: 256 MiB.  A server holds up to
#: ``workers`` × ``zerovm_maxpool`` nodes at once; size it so that their sum
#: fits the tmpfs (half the machine's RAM by default).
DEFAULT_RAM_LIMIT = 256 << 20
#: Compiling and caching user programs: ``CacheLimits``'s defaults.
DEFAULT_CACHE_LIMITS = CacheLimits()
#: App snapshots kept per machine (``zerovm_app_snapshots``).
DEFAULT_APP_SNAPSHOTS = 4


@dataclass(frozen=True)
class ObjectConfig:
    sysimages: Dict[str, str]
    timeout: int
    kill_timeout: float
    max_pool: int
    max_queue: int
    #: Of those, what one account may hold and have waiting.
    account_max_pool: int
    account_max_queue: int
    max_input: int
    max_output: int
    max_iops: int
    max_memory: int
    scratch: int
    fuel: int
    image_scan: ScanBounds
    mount_check: bool
    cache_dir: str
    ram_dir: str
    ram_limit: int
    cache_limits: CacheLimits
    #: App snapshots kept (0: none made; :mod:`zerocloud.runtime.appsnap`).
    app_snapshots: int
    #: The server's ``workers`` setting, for the memory check at start.
    workers: Optional[str]

    @classmethod
    def from_conf(cls, conf: Conf) -> 'ObjectConfig':
        """Every option, checked; :class:`~zerocloud.options.ConfigError`
        names the first bad one."""
        max_pool = options.integer(conf, 'zerovm_maxpool', DEFAULT_MAXPOOL,
                                   minimum=1)
        max_queue = options.integer(conf, 'zerovm_maxqueue',
                                    DEFAULT_MAXQUEUE)
        return cls(
            sysimages=options.sysimage_devices(conf),
            timeout=options.integer(conf, 'zerovm_timeout', DEFAULT_TIMEOUT,
                                    minimum=1),
            kill_timeout=options.number(conf, 'zerovm_kill_timeout',
                                        DEFAULT_KILL_TIMEOUT),
            max_pool=max_pool,
            max_queue=max_queue,
            account_max_pool=options.integer(
                conf, 'zerovm_account_maxpool', half(max_pool), minimum=1),
            account_max_queue=options.integer(
                conf, 'zerovm_account_maxqueue', half(max_queue)),
            max_input=options.integer(conf, 'zerovm_maxinput',
                                      DEFAULT_MAXINPUT, minimum=1),
            max_output=options.integer(conf, 'zerovm_maxoutput',
                                       DEFAULT_MAXOUTPUT, minimum=1),
            max_iops=options.integer(conf, 'zerovm_maxiops', DEFAULT_MAXIOPS,
                                     minimum=1),
            max_memory=options.integer(conf, 'zerovm_maxnexemem',
                                       DEFAULT_MAXNEXEMEM, minimum=1 << 16),
            scratch=options.integer(conf, 'zerovm_scratch_size',
                                    DEFAULT_SCRATCH),
            fuel=options.integer(conf, 'zerovm_fuel', DEFAULT_FUEL),
            image_scan=options.scan_bounds(conf),
            mount_check=options.flag(conf, 'mount_check', True),
            cache_dir=os.path.expanduser(options.text(
                conf, 'zerovm_module_cache', None) or module_cache_dir()),
            workers=conf.get('workers'),
            ram_dir=options.directory(conf, 'zerovm_ram_dir',
                                      DEFAULT_RAM_DIR),
            ram_limit=options.integer(conf, 'zerovm_ram_limit',
                                      DEFAULT_RAM_LIMIT, minimum=1),
            cache_limits=cache_limits(conf),
            app_snapshots=options.integer(conf, 'zerovm_app_snapshots',
                                          DEFAULT_APP_SNAPSHOTS),
        )


def cache_limits(conf: Conf) -> CacheLimits:
    """The ``zerovm_compile_*``, ``zerovm_module_cache_*`` and
    ``zerovm_worker_module*`` options."""
    default = DEFAULT_CACHE_LIMITS
    seconds = options.number(conf, 'zerovm_compile_timeout',
                             default.compile_seconds, minimum=1)
    if seconds > WARM_TIMEOUT - 10:
        raise options.ConfigError(
            'zerovm_compile_timeout must be at most %d, not %g'
            % (WARM_TIMEOUT - 10, seconds))
    return CacheLimits(
        compile_memory=options.integer(conf, 'zerovm_compile_memory',
                                       default.compile_memory,
                                       minimum=128 << 20),
        compile_seconds=seconds,
        in_run_compile_bytes=options.integer(
            conf, 'zerovm_compile_in_run', default.in_run_compile_bytes,
            minimum=1),
        disk_bytes=options.integer(conf, 'zerovm_module_cache_bytes',
                                   default.disk_bytes, minimum=1),
        disk_files=options.integer(conf, 'zerovm_module_cache_files',
                                   default.disk_files, minimum=1),
        worker_modules=options.integer(conf, 'zerovm_worker_modules',
                                       default.worker_modules, minimum=1),
        worker_bytes=options.integer(conf, 'zerovm_worker_module_bytes',
                                     default.worker_bytes, minimum=1))
