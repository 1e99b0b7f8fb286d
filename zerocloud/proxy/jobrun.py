"""One execution request from start to answer.

1. :class:`~zerocloud.proxy.request.JobRequest` turns the request into a
   validated job and authorizes every object it touches, before anything
   runs;
2. :class:`~zerocloud.proxy.scheduler.Scheduler` runs its nodes on storage
   servers;
3. :class:`~zerocloud.proxy.response.JobResponse` stores the outputs and
   answers — or, for ``X-Zerovm-Deferred``, answers at once with the
   ``swift://`` URL where the response will be written.

One account runs at most ``zerovm_account_deferred`` deferred jobs at once
in a proxy worker process; the next is refused before anything is read or
run (``503`` with ``Retry-After``), so one tenant's backlog never delays
another's work.
"""

import time
import uuid
from typing import List, Optional

from swift.common.swob import Response

from zerocloud.fairshare import AccountShare
from zerocloud.job.model import Job
from zerocloud.protocol import RETRY_AFTER_HEADER
from zerocloud.proxy.accounting import AccountingSpool
from zerocloud.proxy.nodeclient import NodeClient, NodeResult
from zerocloud.proxy.placement import Placer
from zerocloud.proxy.request import JobRequest
from zerocloud.proxy.response import DEFERRED_HEADER, JobResponse
from zerocloud.proxy.scheduler import Scheduler
from zerocloud.proxy.swiftaccess import SwiftAccess
from zerocloud.stages import StageClock


def new_job_id(now: float) -> str:
    """Sortable by time, unique enough to name files and objects."""
    return '%010x%s' % (int(now * 1000), uuid.uuid4().hex[:6])


class JobRun:
    """One execution request (see the module docstring)."""

    def __init__(self, request: JobRequest, swift: SwiftAccess,
                 placer: Placer, client: NodeClient,
                 accounting: Optional[AccountingSpool], logger,
                 deferred_jobs: AccountShare):
        self.request = request
        self.started = time.time()
        #: The job's own stages (its nodes keep theirs).
        self.clock = StageClock()
        self.job_id = new_job_id(self.started)
        self.scheduler = Scheduler(request, swift, placer, client,
                                   self.job_id, self.started, logger)
        self.response = JobResponse(swift, request.grants, accounting,
                                    logger, self.job_id, request.account,
                                    self.started, self.clock)
        #: The deferred jobs each account runs in this process.
        self.deferred_jobs = deferred_jobs
        self._holds_share = False

    def respond(self) -> Response:
        request = self.request
        mode = request.req.headers.get(DEFERRED_HEADER, '').lower()
        deferred = mode in ('always', 'auto')
        if deferred:
            if not self.deferred_jobs.take(request.account):
                return too_many_deferred(self.deferred_jobs.limit,
                                         request.config.timeout)
            self._holds_share = True
        try:
            job = request.prepare()
            self.clock.mark('request')
            if deferred:
                wait = 0 if mode == 'always' else \
                    request.config.timeout + 1.0
                return self.response.deferred(
                    lambda: self._run_deferred(job),
                    request.deferred_result_path(), wait)
            return self.response.respond(
                self.scheduler.run(job, stream=len(job.nodes) == 1))
        except BaseException:
            request.remove_inputs()
            self._give_back_share()
            raise

    def _run_deferred(self, job: Job) -> List[NodeResult]:
        try:
            return self.scheduler.run(job, stream=False)
        finally:
            self._give_back_share()

    def _give_back_share(self) -> None:
        if self._holds_share:
            self._holds_share = False
            self.deferred_jobs.give_back(self.request.account)


def too_many_deferred(limit: int, retry_after: int) -> Response:
    """An account runs its share of deferred jobs: it waits, not others."""
    return Response(
        status=503, content_type='text/plain',
        headers={RETRY_AFTER_HEADER: str(retry_after)},
        body='This account already runs %d deferred jobs here '
             '(zerovm_account_deferred); try again later\n' % limit)
