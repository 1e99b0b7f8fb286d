"""Parse a ``SelectObjectContentRequest`` XML body into a ``SelectRequest``.

The body is checked the way S3 checks it, so that every mistake is a
``400`` with S3's error code before any sandbox starts:

* not XML, a ``<!DOCTYPE`` (so no entities either), an unknown or a
  repeated element, text where only elements belong -> ``MalformedXML``;
* a missing ``Expression``, ``ExpressionType``, ``InputSerialization``,
  ``OutputSerialization``, or a serialisation without its format ->
  ``MissingRequiredParameter``; two formats at once ->
  ``ObjectSerializationConflict``;
* bad enum values -> ``InvalidExpressionType``,
  ``InvalidCompressionFormat``, ``InvalidFileHeaderInfo``,
  ``InvalidJsonType``, ``InvalidQuoteFields``; other bad values
  (delimiters, quotes, booleans) -> ``InvalidRequestParameter``;
* an expression over 256 KB -> ``ExpressionTooLong``;
* a bad ``ScanRange`` -> ``InvalidScanRange``; one on input S3 cannot
  split (compressed, JSON ``DOCUMENT``, CSV with quoted record
  delimiters) -> ``UnsupportedScanRangeInput``.

Elements may carry S3's namespace or none.  Enum values are
case-sensitive, except ``FileHeaderInfo`` and the JSON ``Type``, which
S3's own documentation spells ``Use``, ``Document`` and ``Lines`` and
so accepts in any case.  Limits: a ``RecordDelimiter`` (CSV or JSON) may
be one or two characters (``\\r\\n``), as S3 accepts; the other
characters exactly one.  A literal carriage return in an element is turned into
a line feed by XML itself; send ``&#13;`` to keep it.

Runs on the proxy only (it needs ``xml.etree``), but keeps to the
standard library like the rest of the package.
"""

import re
import xml.etree.ElementTree as ElementTree
from typing import AbstractSet, Dict, Mapping, Optional, Tuple, Union

from .errors import SelectError
from .model import (COMPRESSIONS, FILE_HEADER_INFOS, JSON_TYPES, QUOTE_FIELDS,
                    CSVInput, CSVOutput, InputSerialization, JSONInput,
                    JSONOutput, OutputSerialization, ScanRange, SelectRequest)

#: The namespace S3's request elements may be qualified with.
S3_NAMESPACE = 'http://s3.amazonaws.com/doc/2006-03-01/'
#: S3's limit on the SQL expression, in UTF-8 bytes.
MAX_EXPRESSION_BYTES = 256 * 1024
#: Bytes the proxy should read of a request body at most: a 256 KB
#: expression written with XML escapes (up to six bytes a character,
#: ``&quot;``) plus room for everything else.
MAX_REQUEST_BODY = 6 * MAX_EXPRESSION_BYTES + 512 * 1024
#: ``Start``/``End`` are S3 ``Long`` values.
_MAX_LONG = 2 ** 63 - 1
_NON_NEGATIVE_INTEGER = re.compile(r'[0-9]+\Z')

_ROOT = 'SelectObjectContentRequest'
_REQUEST_FIELDS = frozenset((
    'Expression', 'ExpressionType', 'RequestProgress', 'InputSerialization',
    'OutputSerialization', 'ScanRange'))
_INPUT_FORMATS = ('CSV', 'JSON', 'Parquet')
_OUTPUT_FORMATS = ('CSV', 'JSON')
_CSV_INPUT_FIELDS = frozenset((
    'FileHeaderInfo', 'Comments', 'QuoteEscapeCharacter', 'RecordDelimiter',
    'FieldDelimiter', 'QuoteCharacter', 'AllowQuotedRecordDelimiter'))
_CSV_OUTPUT_FIELDS = frozenset((
    'QuoteFields', 'QuoteEscapeCharacter', 'RecordDelimiter',
    'FieldDelimiter', 'QuoteCharacter'))
_CSV_CHARACTER_FIELDS = (
    ('QuoteEscapeCharacter', 'quote_escape_character'),
    ('RecordDelimiter', 'record_delimiter'),
    ('FieldDelimiter', 'field_delimiter'),
    ('QuoteCharacter', 'quote_character'))

Children = Dict[str, ElementTree.Element]


def check_select_query_params(params: Mapping[str, str]) -> None:
    """Refuse a query string that is not ``?select&select-type=2``.

    S3 documents no error code of its own for this; the parameter is
    simply invalid, hence ``InvalidRequestParameter``.
    """
    if 'select' not in params:
        raise SelectError('InvalidRequestParameter',
                          'The query string must contain "select".')
    select_type = params.get('select-type')
    if select_type != '2':
        raise SelectError(
            'InvalidRequestParameter',
            'The query parameter select-type must be 2, not %s.'
            % ('missing' if select_type is None else repr(select_type)))


def parse_request(body: bytes) -> SelectRequest:
    """The ``SelectRequest`` a ``SelectObjectContentRequest`` body asks for."""
    if not body.strip():
        raise SelectError('EmptyRequestBody',
                          'The request body cannot be empty.')
    root = _parse_xml(body)
    if _local_name(root) != _ROOT:
        raise _malformed('the root element must be %s, not %s'
                         % (_ROOT, _local_name(root)))
    fields = _children(root, _REQUEST_FIELDS)
    expression = _parse_expression(_required(fields, 'Expression', _ROOT))
    _parse_expression_type(_required(fields, 'ExpressionType', _ROOT))
    input_serialization = _parse_input(
        _required(fields, 'InputSerialization', _ROOT))
    output_serialization = _parse_output(
        _required(fields, 'OutputSerialization', _ROOT))
    scan_range = None
    if 'ScanRange' in fields:
        scan_range = _parse_scan_range(fields['ScanRange'])
        _check_scan_range_input(input_serialization)
    request_progress = False
    if 'RequestProgress' in fields:
        request_progress = _parse_request_progress(fields['RequestProgress'])
    return SelectRequest(
        expression=expression, input=input_serialization,
        output=output_serialization, request_progress=request_progress,
        scan_range=scan_range)


class _NoDoctypeTreeBuilder(ElementTree.TreeBuilder):
    """Stops at a ``<!DOCTYPE``: no DTD, so no entity can be declared."""

    def doctype(self, name: str, pubid: Optional[str],
                system: Optional[str]) -> None:
        raise SelectError('MalformedXML',
                          'The XML must not contain a DOCTYPE declaration.')


def _parse_xml(body: bytes) -> ElementTree.Element:
    parser = ElementTree.XMLParser(target=_NoDoctypeTreeBuilder())
    try:
        parser.feed(body)
        return parser.close()
    except ElementTree.ParseError as error:
        raise _malformed('it is not well-formed (%s)' % error) from None


def _malformed(reason: str) -> SelectError:
    return SelectError(
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate '
        'against our published schema: %s.' % reason)


def _split_tag(tag: str) -> Tuple[str, str]:
    if tag.startswith('{'):
        namespace, _, local = tag[1:].partition('}')
        return namespace, local
    return '', tag


def _local_name(element: ElementTree.Element) -> str:
    return _split_tag(element.tag)[1]


def _children(element: ElementTree.Element,
              allowed: AbstractSet[str]) -> Children:
    """Child elements by local name, refusing unknown, repeated or text."""
    parent = _local_name(element)
    if (element.text or '').strip():
        raise _malformed('%s must contain elements, not text' % parent)
    children: Children = {}
    for child in element:
        namespace, name = _split_tag(child.tag)
        if namespace not in ('', S3_NAMESPACE) or name not in allowed:
            raise _malformed('%s is not a valid element in %s'
                             % (child.tag, parent))
        if name in children:
            raise _malformed('%s appears more than once in %s'
                             % (name, parent))
        if (child.tail or '').strip():
            raise _malformed('%s must contain elements, not text' % parent)
        children[name] = child
    return children


def _required(children: Children, name: str,
              parent: str) -> ElementTree.Element:
    if name not in children:
        raise SelectError('MissingRequiredParameter',
                          'The %s element is required in %s.'
                          % (name, parent))
    return children[name]


def _text(element: ElementTree.Element) -> str:
    """The text of an element that must hold text only, unstripped."""
    if len(element):
        raise _malformed('%s must contain text, not elements'
                         % _local_name(element))
    return element.text or ''


def _enum(element: ElementTree.Element, allowed: Tuple[str, ...],
          code: str, any_case: bool = False) -> str:
    value = _text(element).strip()
    normalised = value.upper() if any_case else value
    if normalised not in allowed:
        raise SelectError(code, '%s %r is not valid; it must be one of %s.'
                          % (_local_name(element), value,
                             ', '.join(allowed)))
    return normalised


def _boolean(element: ElementTree.Element) -> bool:
    value = _text(element).strip()
    if value.lower() not in ('true', 'false'):
        raise SelectError('InvalidRequestParameter',
                          '%s %r is not valid; it must be TRUE or FALSE.'
                          % (_local_name(element), value))
    return value.lower() == 'true'


def _characters(element: ElementTree.Element, longest: int = 1) -> str:
    """A delimiter or quote: S3 takes a single character (whitespace too)."""
    value = _text(element)
    if not 1 <= len(value) <= longest:
        wanted = ('a single character' if longest == 1
                  else 'one to %d characters' % longest)
        raise SelectError('InvalidRequestParameter',
                          '%s %r is not valid; it must be %s.'
                          % (_local_name(element), value, wanted))
    return value


def _parse_expression(element: ElementTree.Element) -> str:
    expression = _text(element)
    if not expression.strip():
        raise SelectError('MissingRequiredParameter',
                          'The Expression element must not be empty.')
    if len(expression.encode('utf-8')) > MAX_EXPRESSION_BYTES:
        raise SelectError('ExpressionTooLong',
                          'The SQL expression is too long: the maximum '
                          'byte-length for the SQL expression is 256 KB.')
    return expression


def _parse_expression_type(element: ElementTree.Element) -> None:
    _enum(element, ('SQL',), 'InvalidExpressionType')


def _one_format(fields: Children, formats: Tuple[str, ...],
                parent: str) -> str:
    present = [name for name in formats if name in fields]
    if not present:
        raise SelectError('MissingRequiredParameter',
                          '%s must specify one of %s.'
                          % (parent, ', '.join(formats)))
    if len(present) > 1:
        raise SelectError('ObjectSerializationConflict',
                          '%s specifies more than one format (%s); it can '
                          'only specify one.' % (parent, ', '.join(present)))
    return present[0]


def _parse_input(element: ElementTree.Element) -> InputSerialization:
    fields = _children(element, frozenset(_INPUT_FORMATS + (
        'CompressionType',)))
    data_format = _one_format(fields, _INPUT_FORMATS, 'InputSerialization')
    compression = 'NONE'
    if 'CompressionType' in fields:
        compression = _enum(fields['CompressionType'], COMPRESSIONS,
                            'InvalidCompressionFormat')
    result = InputSerialization(format=data_format, compression=compression)
    if data_format == 'CSV':
        result.csv = _parse_csv_input(fields['CSV'])
    elif data_format == 'JSON':
        result.json = _parse_json_input(fields['JSON'])
    else:
        _children(fields['Parquet'], frozenset())
        if compression != 'NONE':
            raise SelectError(
                'InvalidCompressionFormat',
                'Parquet objects cannot be compressed as a whole; use '
                'CompressionType NONE.')
    return result


def _parse_csv_input(element: ElementTree.Element) -> CSVInput:
    fields = _children(element, _CSV_INPUT_FIELDS)
    result = CSVInput()
    if 'FileHeaderInfo' in fields:
        result.file_header_info = _enum(
            fields['FileHeaderInfo'], FILE_HEADER_INFOS,
            'InvalidFileHeaderInfo', any_case=True)
    if 'Comments' in fields:
        result.comments = _characters(fields['Comments'])
    if 'AllowQuotedRecordDelimiter' in fields:
        result.allow_quoted_record_delimiter = _boolean(
            fields['AllowQuotedRecordDelimiter'])
    _set_characters(result, fields)
    return result


def _set_characters(result: Union[CSVInput, CSVOutput],
                    fields: Dict[str, ElementTree.Element]) -> None:
    """The delimiters and quotes of a CSV input or output that were given
    (a record delimiter may be two characters, ``\\r\\n``)."""
    for name, attribute in _CSV_CHARACTER_FIELDS:
        if name in fields:
            setattr(result, attribute, _characters(
                fields[name], longest=2 if name == 'RecordDelimiter' else 1))


def _parse_json_input(element: ElementTree.Element) -> JSONInput:
    fields = _children(element, frozenset(('Type',)))
    result = JSONInput()
    if 'Type' in fields:
        result.type = _enum(fields['Type'], JSON_TYPES, 'InvalidJsonType',
                            any_case=True)
    return result


def _parse_output(element: ElementTree.Element) -> OutputSerialization:
    fields = _children(element, frozenset(_OUTPUT_FORMATS))
    data_format = _one_format(fields, _OUTPUT_FORMATS, 'OutputSerialization')
    result = OutputSerialization(format=data_format)
    if data_format == 'CSV':
        result.csv = _parse_csv_output(fields['CSV'])
    else:
        result.json = _parse_json_output(fields['JSON'])
    return result


def _parse_csv_output(element: ElementTree.Element) -> CSVOutput:
    fields = _children(element, _CSV_OUTPUT_FIELDS)
    result = CSVOutput()
    if 'QuoteFields' in fields:
        result.quote_fields = _enum(fields['QuoteFields'], QUOTE_FIELDS,
                                    'InvalidQuoteFields')
    _set_characters(result, fields)
    return result


def _parse_json_output(element: ElementTree.Element) -> JSONOutput:
    fields = _children(element, frozenset(('RecordDelimiter',)))
    result = JSONOutput()
    if 'RecordDelimiter' in fields:
        result.record_delimiter = _characters(fields['RecordDelimiter'],
                                              longest=2)
    return result


def _parse_request_progress(element: ElementTree.Element) -> bool:
    fields = _children(element, frozenset(('Enabled',)))
    return 'Enabled' in fields and _boolean(fields['Enabled'])


def _scan_offset(element: ElementTree.Element) -> int:
    value = _text(element).strip()
    if not _NON_NEGATIVE_INTEGER.match(value) or int(value) > _MAX_LONG:
        raise SelectError('InvalidScanRange',
                          'ScanRange %s %r is not valid; it must be a '
                          'non-negative integer.'
                          % (_local_name(element), value))
    return int(value)


def _parse_scan_range(element: ElementTree.Element) -> ScanRange:
    """Start and End, inclusive; S3 requires the range not to be empty."""
    fields = _children(element, frozenset(('Start', 'End')))
    start = _scan_offset(fields['Start']) if 'Start' in fields else None
    end = _scan_offset(fields['End']) if 'End' in fields else None
    if start is None and end is None:
        raise SelectError('InvalidScanRange',
                          'ScanRange must not be empty: give Start, End '
                          'or both.')
    if start is not None and end is not None and start > end:
        raise SelectError('InvalidScanRange',
                          'ScanRange Start (%d) is greater than End (%d).'
                          % (start, end))
    if start is None and end == 0:
        raise SelectError('InvalidScanRange',
                          'ScanRange with only End 0 (the last 0 bytes) is '
                          'empty.')
    return ScanRange(start=start, end=end)


def _check_scan_range_input(serialization: InputSerialization) -> None:
    """S3 splits only uncompressed CSV, JSON LINES and Parquet input."""
    if serialization.compression != 'NONE':
        reason = 'compressed objects'
    elif (serialization.format == 'JSON'
          and serialization.json.type == 'DOCUMENT'):
        reason = 'JSON of Type DOCUMENT (only LINES)'
    elif (serialization.format == 'CSV'
          and serialization.csv.allow_quoted_record_delimiter):
        reason = 'CSV with AllowQuotedRecordDelimiter TRUE'
    else:
        return
    raise SelectError('UnsupportedScanRangeInput',
                      'Scan range queries are not supported on %s.' % reason)
