"""Where a request's time goes: the durations of its consecutive stages.

Both filters time their part of each job with a monotonic clock; the object
server sends its stages to the proxy (:data:`zerocloud.protocol.
STAGES_HEADER`), and the proxy logs every stage of each job on one line::

    zerocloud job <id> txn <transaction> stages request=2.10 \
run+respond=24.31 subrequests=1 memcache=2/2 <node>:place=0.05,\
connect=1.02,...,server.receive=0.40,server.prepare=0.35,\
server.sandbox=9.80,...

Values are milliseconds; ``subrequests`` counts the job's sub-requests
that reached the pipeline below ``proxy_query``, ``memcache`` the hits and
lookups of its info and ACL checks.  ``bench/exec.py --profile`` reads
these lines.
"""

import time
from typing import List, Tuple

Stages = List[Tuple[str, float]]


class StageClock:
    """Durations of consecutive stages, each ending at :meth:`mark`."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self.stages: Stages = []

    def mark(self, name: str) -> None:
        """End the stage ``name`` now; the next one starts."""
        now = time.monotonic()
        self.stages.append((name, now - self._last))
        self._last = now


def format_stages(stages: Stages, prefix: str = '') -> str:
    """``name=ms,name=ms`` (two decimals), each name after ``prefix``."""
    return ','.join('%s%s=%.2f' % (prefix, name, seconds * 1000)
                    for name, seconds in stages)


def parse_stages(value: str) -> Stages:
    """The stages :func:`format_stages` wrote, in seconds; what does not
    parse is left out (the value crossed the network)."""
    stages: Stages = []
    for item in value.split(','):
        name, _, ms = item.strip().partition('=')
        try:
            stages.append((name, float(ms) / 1000))
        except ValueError:
            continue
    return stages
