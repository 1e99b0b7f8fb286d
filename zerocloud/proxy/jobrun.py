"""One execution request from start to answer.

1. :class:`~zerocloud.proxy.request.JobRequest` turns the request into a
   validated job and authorizes every object it touches, before anything
   runs;
2. :class:`~zerocloud.proxy.scheduler.Scheduler` runs its nodes on storage
   servers;
3. :class:`~zerocloud.proxy.response.JobResponse` stores the outputs and
   answers — or, for ``X-Zerovm-Deferred``, answers at once with the
   ``swift://`` URL where the response will be written.
"""

import time
import uuid
from typing import Optional

from swift.common.swob import Response

from zerocloud.proxy.accounting import Accounting
from zerocloud.proxy.nodeclient import NodeClient
from zerocloud.proxy.placement import Placer
from zerocloud.proxy.request import JobRequest
from zerocloud.proxy.response import DEFERRED_HEADER, JobResponse
from zerocloud.proxy.scheduler import Scheduler
from zerocloud.proxy.swiftaccess import SwiftAccess


def new_job_id(now: float) -> str:
    """Sortable by time, unique enough to name files and objects."""
    return '%010x%s' % (int(now * 1000), uuid.uuid4().hex[:6])


class JobRun:
    """One execution request (see the module docstring)."""

    def __init__(self, request: JobRequest, swift: SwiftAccess,
                 placer: Placer, client: NodeClient,
                 accounting: Optional[Accounting], logger):
        self.request = request
        self.started = time.time()
        self.job_id = new_job_id(self.started)
        self.scheduler = Scheduler(request, swift, placer, client,
                                   self.job_id, self.started, logger)
        self.response = JobResponse(swift, request.grants, accounting,
                                    logger, self.job_id, request.account,
                                    self.started)

    def respond(self) -> Response:
        request = self.request
        try:
            job = request.prepare()
            mode = request.req.headers.get(DEFERRED_HEADER, '').lower()
            if mode in ('always', 'auto'):
                wait = 0 if mode == 'always' else \
                    request.config.timeout + 1.0
                return self.response.deferred(
                    lambda: self.scheduler.run(job, stream=False),
                    request.deferred_result_path(), wait)
            return self.response.respond(
                self.scheduler.run(job, stream=len(job.nodes) == 1))
        except BaseException:
            request.remove_inputs()
            raise
