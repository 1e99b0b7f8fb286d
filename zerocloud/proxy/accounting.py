"""Accounting: one log line per job and, when enabled, one object per job.

With ``zerovm_accounting_enabled``, each job's per-node accounting lines are
stored by the system (never by the user) as
``/v1/<user_stats_account>/<account>/<YYYY>/<MM>/<DD>/<job id>.log``, off the
request's path: the client does not wait for it.
"""

import time
from typing import List, Set

from swift.common.http import is_success
from swift.common.utils import quote
from swift.common.wsgi import make_pre_authed_request

from zerocloud.proxy.nodeclient import NodeResult

SWIFT_SOURCE = 'ZC'
UNRUN_CDR = '0.0 0.0 0 0 0 0 0 0 0 0'
UNRUN_STATUS = 'ZeroVM did not run'


def accounting_lines(results: List[NodeResult], now: str, txn: str
                     ) -> bytes:
    """``<time> <txn> <node> (<cdr>) [<status>]``, one line per node."""
    return ''.join(
        '%s %s %s (%s) [%s]\n' % (
            now, txn, r.node.name,
            r.headers.get('X-Nexe-Cdr-Line', UNRUN_CDR),
            r.headers.get('X-Nexe-Status', UNRUN_STATUS))
        for r in results).encode('utf-8')


class Accounting:
    """Writes accounting objects; long-lived, it remembers the containers
    it already made."""

    def __init__(self, app, stats_account: str, logger):
        self.app = app
        self.stats_account = stats_account
        self.logger = logger
        self._containers: Set[str] = set()

    def record(self, env: dict, account: str, job_id: str,
               lines: bytes) -> None:
        container = '/v1/%s/%s' % (self.stats_account, account)
        if container not in self._containers:
            make_pre_authed_request(env, 'PUT', quote(container),
                                    swift_source=SWIFT_SOURCE
                                    ).get_response(self.app)
            self._containers.add(container)
        path = '%s/%s%s.log' % (container, time.strftime(
            '%Y/%m/%d/', time.gmtime()), job_id)
        resp = make_pre_authed_request(
            env, 'PUT', quote(path), body=lines,
            headers={'Content-Type': 'text/plain'},
            swift_source=SWIFT_SOURCE).get_response(self.app)
        if not is_success(resp.status_int):
            self._containers.discard(container)
            self.logger.error('zerocloud: accounting %s: %s', path,
                              resp.status)
