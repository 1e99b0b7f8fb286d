"""Fixtures for tests against a real Swift cluster with ZeroCloud.

The session-scoped ``cluster`` fixture runs the all-in-one launcher's own code
(:class:`zerocloud.saio.Cluster`) once per test session, on free ports, in a
temporary directory, and stops every process at the end: storage policies
``Policy-0`` (default, 3 replicas) and ``ec`` (2 data + 1 parity), the full
proxy pipeline, at-rest encryption on (as in production), and a small
``zerovm_ram_limit`` (:data:`SHARED_RAM_LIMIT`), so that inputs a few
times that size show what streams and what would need RAM.  It yields the
``Cluster``; what tests use:

- ``proxy_url``, ``auth_url``, ``proxy_port``, ``ports`` (name -> port,
  distinct over the cluster), ``addresses`` (name -> (host, port); object
  server n listens on 127.0.0.<n+1>)
- ``users``: short name (``tester``, ``tester3``, ``tester2``) ->
  (``account:user``, key)
- ``token(user)``, ``storage_url(user)`` (cached per session)
- ``env_for(user)``: a complete environment for the ``swift`` CLI
- ``workdir``, ``log_dir``, ``etc_dir``, ``log_path(name)``,
  ``devices_dir(n)``, ``device_path(n)``

A cluster that does not start fails the session loudly with the launcher's
message (its work directory is kept for the logs); it is never skipped.

``scratch_dir`` is a fresh per-test directory on tmpfs when usable (for
further clusters, which need user xattrs).  ``private_cluster`` is a cluster
of the test module's own, for tests that kill or freeze its servers.
"""

import shutil
import tempfile

import pytest

from .helpers import (
    configure, configure_object_query, fast_tmp_dir, started_cluster)

#: Seconds a node may run in the shared test cluster: short, so the test of
#: a runaway program is quick, and ample for every other job.
FUNCTIONAL_NODE_TIMEOUT = 10
#: Bytes of a node's inputs its server may hold in RAM, in the shared
#: cluster (the default is 256 MiB).
SHARED_RAM_LIMIT = 8 << 20


@pytest.fixture
def scratch_dir():
    """A fresh directory on tmpfs when usable, removed afterwards."""
    path = tempfile.mkdtemp(prefix='zerocloud-test-', dir=fast_tmp_dir())
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='module')
def private_cluster():
    """A cluster started for one test module and stopped at its end: the
    session cluster other tests share is never touched."""
    with started_cluster('zerocloud-private-') as private:
        yield private


@pytest.fixture(scope='session')
def cluster():
    def small_ram(shared):
        configure_object_query(shared, zerovm_ram_limit=str(SHARED_RAM_LIMIT))
        # Accounting objects are stored soon after their jobs.
        configure(shared, 'proxy-server', 'filter:proxy_query',
                  zerovm_accounting_interval='1')
    with started_cluster('zerocloud-functest-', small_ram,
                         zerovm_timeout=FUNCTIONAL_NODE_TIMEOUT) as shared:
        yield shared
