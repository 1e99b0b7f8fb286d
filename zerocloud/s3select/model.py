"""What a ``SelectObjectContentRequest`` asks for, as plain data.

The proxy builds a ``SelectRequest`` from the request's XML
(``request.parse_request``) and hands it to the sandbox as JSON
(``to_json``/``from_json``); every default is S3's.
"""

import json
from dataclasses import asdict, dataclass, field
from typing import Optional, Tuple

from .errors import SelectError

#: ``CompressionType`` values.
COMPRESSIONS = ('NONE', 'GZIP', 'BZIP2')
#: ``FileHeaderInfo`` values.
FILE_HEADER_INFOS = ('NONE', 'USE', 'IGNORE')
#: ``JSON`` input ``Type`` values.
JSON_TYPES = ('DOCUMENT', 'LINES')
#: ``QuoteFields`` values.
QUOTE_FIELDS = ('ASNEEDED', 'ALWAYS')


@dataclass
class CSVInput:
    file_header_info: str = 'NONE'
    comments: str = '#'
    quote_escape_character: str = '"'
    record_delimiter: str = '\n'
    field_delimiter: str = ','
    quote_character: str = '"'
    allow_quoted_record_delimiter: bool = False


@dataclass
class JSONInput:
    type: str = 'DOCUMENT'


@dataclass
class InputSerialization:
    #: ``CSV``, ``JSON`` or ``Parquet``; exactly one is given.
    format: str = 'CSV'
    compression: str = 'NONE'
    csv: CSVInput = field(default_factory=CSVInput)
    json: JSONInput = field(default_factory=JSONInput)


@dataclass
class CSVOutput:
    quote_fields: str = 'ASNEEDED'
    quote_escape_character: str = '"'
    record_delimiter: str = '\n'
    field_delimiter: str = ','
    quote_character: str = '"'


@dataclass
class JSONOutput:
    record_delimiter: str = '\n'


@dataclass
class OutputSerialization:
    #: ``CSV`` or ``JSON``.
    format: str = 'CSV'
    csv: CSVOutput = field(default_factory=CSVOutput)
    json: JSONOutput = field(default_factory=JSONOutput)


@dataclass
class ScanRange:
    """Bytes ``start`` to ``end``, both inclusive; either may be absent.

    Only ``end``: the last ``end`` bytes.  A record belongs to the range
    its first byte is in.
    """
    start: Optional[int] = None
    end: Optional[int] = None


def byte_bounds(scan_range: Optional[ScanRange],
                size: Optional[int]) -> Tuple[int, Optional[int]]:
    """``(start, stop)``: the records (or Parquet row groups) starting in
    ``[start, stop)`` belong to ``scan_range`` (``stop`` None: to the end).
    ``size`` is needed only for a range of the last ``End`` bytes."""
    if scan_range is None:
        return 0, None
    start, end = scan_range.start, scan_range.end
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise SelectError('InvalidScanRange',
                          'ScanRange Start and End must not be negative.')
    if start is None and end is None:
        return 0, None
    if start is None:
        if size is None:
            raise ValueError('a ScanRange with only End needs the size')
        return max(size - end, 0), None
    if end is None:
        return start, None
    if start > end:
        raise SelectError('InvalidScanRange',
                          'ScanRange Start %d is after End %d.' % (start, end))
    return start, end + 1


@dataclass
class SelectRequest:
    expression: str
    input: InputSerialization = field(default_factory=InputSerialization)
    output: OutputSerialization = field(default_factory=OutputSerialization)
    request_progress: bool = False
    scan_range: Optional[ScanRange] = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(',', ':'))

    @classmethod
    def from_json(cls, text: str) -> 'SelectRequest':
        data = json.loads(text)
        scan = data.get('scan_range')
        inp = data['input']
        out = data['output']
        return cls(
            expression=data['expression'],
            input=InputSerialization(
                format=inp['format'], compression=inp['compression'],
                csv=CSVInput(**inp['csv']), json=JSONInput(**inp['json'])),
            output=OutputSerialization(
                format=out['format'], csv=CSVOutput(**out['csv']),
                json=JSONOutput(**out['json'])),
            request_progress=data['request_progress'],
            scan_range=ScanRange(**scan) if scan is not None else None)
