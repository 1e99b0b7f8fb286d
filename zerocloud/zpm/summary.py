"""What a job's ``X-Nexe-*`` headers say about each node, and the table.

``X-Nexe-System``, ``-Status`` and ``-Retcode`` hold one item per node,
comma-separated and percent-encoded (:mod:`zerocloud.headers`); bytes that
were not UTF-8 show as U+FFFD (the table is printed, and a lone surrogate
cannot be).
``X-Nexe-Cdr-Line`` holds the job's total time, then for each node its
time and ten ZeroVM accounting numbers (system and user CPU seconds, disk
reads, bytes read, writes, bytes written, then the same four for the
network); a node that never ran has the ten numbers only.  A wide job's
lists end in one ``...(<n> more)`` item where the server cut them to keep
each header line under 8 KiB: its row says so, and is no failed node.
"""

import re
from dataclasses import dataclass
from typing import List, Mapping, Tuple
from urllib.parse import unquote

from prettytable import PrettyTable

COLUMNS = ('Node', 'Status', 'Retcode', 'NodeT', 'SysT', 'UserT',
           'DiskReads', 'DiskBytesR', 'DiskWrites', 'DiskBytesW',
           'NetworkReads', 'NetworkBytesR', 'NetworkWrites', 'NetworkBytesW')
ACCOUNTING_FIELDS = 10
OK_STATUS = 'ok'
#: The item that ends lists the server cut short.
ELIDED = re.compile(r'\.\.\.\(\d+ more\)')


@dataclass
class NodeSummary:
    name: str
    status: str
    retcode: str
    time: str
    accounting: List[str]

    @property
    def failed(self) -> bool:
        if ELIDED.fullmatch(self.name):
            return False   # the nodes the headers had no room for
        return self.status != OK_STATUS or self.retcode != '0'

    def row(self) -> List[str]:
        return [self.name, self.status, self.retcode, self.time] + \
            self.accounting


def items(headers: Mapping[str, str], name: str) -> List[str]:
    value = headers.get(name)
    if value is None:
        return []
    return [unquote(item, errors='replace') for item in value.split(',')]


def parse_cdr(line: str, count: int
              ) -> Tuple[str, List[Tuple[str, List[str]]]]:
    """(total time, [(node time, accounting)]) for ``count`` nodes."""
    parts = [part.strip() for part in line.split(',')]
    total = parts.pop(0) if parts and parts[0] else '-'
    nodes = []
    for _ in range(count):
        item = parts.pop(0) if parts else ''
        time = '-'
        if item and ' ' not in item:
            time, item = item, (parts.pop(0) if parts else '')
        numbers = item.split()
        numbers += ['-'] * (ACCOUNTING_FIELDS - len(numbers))
        nodes.append((time, numbers[:ACCOUNTING_FIELDS]))
    return total, nodes


def node_summaries(headers: Mapping[str, str]
                   ) -> Tuple[str, List[NodeSummary]]:
    """(total time, one NodeSummary per node) of a job's answer."""
    names = items(headers, 'X-Nexe-System')
    statuses = items(headers, 'X-Nexe-Status')
    retcodes = items(headers, 'X-Nexe-Retcode')
    total, cdr = parse_cdr(headers.get('X-Nexe-Cdr-Line', ''), len(names))
    nodes = [NodeSummary(name,
                         statuses[i] if i < len(statuses) else '-',
                         retcodes[i] if i < len(retcodes) else '-',
                         cdr[i][0], cdr[i][1])
             for i, name in enumerate(names)]
    return total, nodes


def table(nodes: List[NodeSummary], total: str) -> str:
    """zpm 0.3's summary: a heading, one row per node, the total time."""
    grid = PrettyTable(COLUMNS)
    grid.align['Node'] = 'l'
    for node in nodes:
        grid.add_row(node.row())
    return 'Execution summary:\n%s\nTotal time: %s' % (grid.get_string(),
                                                       total)
