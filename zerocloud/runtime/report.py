"""The six-line ZeroVM report: what a session prints and what callers parse.

Line order (ZeroVM 20130611, kept so ZeroCloud and zpm parse by position)::

    <validation>   0 validated, 1 invalid, 2 not validated (-s, early failure)
    <daemon>       always 0 here (daemon mode is not offered)
    <retcode>      the guest's exit code, signed decimal
    <etags>        "<alias> <md5hex> ..." for channels with etag=1, else
                   "disabled"
    <accounting>   ten numbers: sys s, user s, reads, read bytes, writes,
                   written bytes, net reads, net read bytes, net writes,
                   net written bytes (unobservable ones are 0)
    <status>       "ok" on success, otherwise the first fatal message
"""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

STATUS_OK = 'ok'
ACCOUNTING_FIELDS = 10


class ReportError(ValueError):
    """Text that is not a six-line report."""


@dataclass
class Report:
    validation: int = 2
    daemon: int = 0
    retcode: int = 0
    etags: List[Tuple[str, str]] = field(default_factory=list)
    accounting: List[float] = field(
        default_factory=lambda: [0] * ACCOUNTING_FIELDS)
    status: str = STATUS_OK

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    def etag_line(self) -> str:
        if not self.etags:
            return 'disabled'
        return ' '.join('%s %s' % pair for pair in self.etags)

    def accounting_line(self) -> str:
        sys_s, user_s = self.accounting[:2]
        counters = ' '.join(str(int(n)) for n in self.accounting[2:])
        return '%.2f %.2f %s' % (sys_s, user_s, counters)

    def etag_of(self, alias: str) -> Optional[str]:
        for name, digest in self.etags:
            if name == alias:
                return digest
        return None

    def render(self) -> str:
        status = ' '.join(self.status.splitlines()).rstrip()
        return '\n'.join([str(self.validation), str(self.daemon),
                          str(self.retcode), self.etag_line(),
                          self.accounting_line(), status]) + '\n\n'


def parse_report(text: str) -> Report:
    """Parse report text; raises ReportError when it is not six lines."""
    parts = text.split('\n', 5)
    if len(parts) < 6:
        raise ReportError('report has %d lines, expected 6' % len(parts))
    try:
        validation, daemon, retcode = (int(p) for p in parts[:3])
    except ValueError:
        raise ReportError('report lines 1-3 must be integers')
    tokens = parts[3].split()
    etags: List[Tuple[str, str]] = []
    if tokens not in ([], ['disabled'], ['disable']):
        if tokens and not tokens[0].startswith('/'):
            tokens = tokens[1:]  # a leading memory digest, as ZeroVM allows
        etags = list(zip(tokens[0::2], tokens[1::2]))
    try:
        accounting = [float(n) for n in parts[4].split()]
    except ValueError:
        raise ReportError('report accounting line is not numeric')
    status = ' '.join(parts[5].splitlines()).rstrip()
    return Report(validation, daemon, retcode, etags, accounting, status)
