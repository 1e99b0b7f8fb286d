"""Tests of parsing ``SelectObjectContentRequest`` bodies."""

from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.model import ServiceModel
from botocore.serialize import create_serializer
from botocore.session import get_session

from zerocloud.s3select.errors import SelectError
from zerocloud.s3select.request import (MAX_EXPRESSION_BYTES,
                                        MAX_REQUEST_BODY,
                                        check_select_query_params,
                                        parse_request)

NS = 'http://s3.amazonaws.com/doc/2006-03-01/'
CSV_IN = '<InputSerialization><CSV/></InputSerialization>'
CSV_OUT = '<OutputSerialization><CSV/></OutputSerialization>'


def body(inner: str = CSV_IN + CSV_OUT,
         expression: str = 'SELECT * FROM S3Object',
         expression_type: str = 'SQL', xmlns: str = NS) -> bytes:
    namespace = ' xmlns="%s"' % xmlns if xmlns else ''
    return ('<SelectObjectContentRequest%s>'
            '<Expression>%s</Expression>'
            '<ExpressionType>%s</ExpressionType>%s'
            '</SelectObjectContentRequest>'
            % (namespace, expression, expression_type, inner)).encode()


def error_code(data: bytes) -> str:
    with pytest.raises(SelectError) as caught:
        parse_request(data)
    assert caught.value.status == 400
    assert caught.value.message
    return caught.value.code


def test_minimal_request_gets_s3_defaults():
    request = parse_request(body())
    assert request.expression == 'SELECT * FROM S3Object'
    assert request.input.format == 'CSV'
    assert request.input.compression == 'NONE'
    assert request.input.csv.file_header_info == 'NONE'
    assert request.input.csv.comments == '#'
    assert request.input.csv.record_delimiter == '\n'
    assert request.output.format == 'CSV'
    assert request.output.csv.quote_fields == 'ASNEEDED'
    assert request.request_progress is False
    assert request.scan_range is None


def test_namespace_is_optional_and_may_be_mixed():
    plain = parse_request(body(xmlns=''))
    mixed = parse_request(
        ('<SelectObjectContentRequest>'
         '<s3:Expression xmlns:s3="%s">SELECT 1</s3:Expression>'
         '<ExpressionType>SQL</ExpressionType>%s%s'
         '</SelectObjectContentRequest>' % (NS, CSV_IN, CSV_OUT)).encode())
    assert plain.expression == 'SELECT * FROM S3Object'
    assert mixed.expression == 'SELECT 1'


def test_full_csv_request():
    request = parse_request(body(
        '<InputSerialization><CompressionType>GZIP</CompressionType><CSV>'
        '<FileHeaderInfo>USE</FileHeaderInfo><Comments>;</Comments>'
        '<QuoteEscapeCharacter>\\</QuoteEscapeCharacter>'
        '<RecordDelimiter>&#13;</RecordDelimiter>'
        '<FieldDelimiter>\t</FieldDelimiter>'
        "<QuoteCharacter>'</QuoteCharacter>"
        '<AllowQuotedRecordDelimiter>TRUE</AllowQuotedRecordDelimiter>'
        '</CSV></InputSerialization>'
        '<OutputSerialization><CSV><QuoteFields>ALWAYS</QuoteFields>'
        '<QuoteEscapeCharacter>!</QuoteEscapeCharacter>'
        '<RecordDelimiter>|</RecordDelimiter>'
        '<FieldDelimiter> </FieldDelimiter>'
        '<QuoteCharacter>`</QuoteCharacter></CSV></OutputSerialization>'
        '<RequestProgress><Enabled>true</Enabled></RequestProgress>',
        expression='SELECT s."a" FROM S3Object s WHERE s."b" &lt; 3'))
    assert request.expression == 'SELECT s."a" FROM S3Object s WHERE s."b" < 3'
    assert request.input.compression == 'GZIP'
    csv_in = request.input.csv
    assert (csv_in.file_header_info, csv_in.comments,
            csv_in.quote_escape_character, csv_in.record_delimiter,
            csv_in.field_delimiter, csv_in.quote_character,
            csv_in.allow_quoted_record_delimiter) == (
        'USE', ';', '\\', '\r', '\t', "'", True)
    csv_out = request.output.csv
    assert (csv_out.quote_fields, csv_out.quote_escape_character,
            csv_out.record_delimiter, csv_out.field_delimiter,
            csv_out.quote_character) == ('ALWAYS', '!', '|', ' ', '`')
    assert request.request_progress is True


def test_a_csv_record_delimiter_may_be_two_characters():
    request = parse_request(body(
        '<InputSerialization><CSV><RecordDelimiter>&#13;&#10;'
        '</RecordDelimiter></CSV></InputSerialization>'
        '<OutputSerialization><CSV><RecordDelimiter>&#13;&#10;'
        '</RecordDelimiter></CSV></OutputSerialization>'))
    assert request.input.csv.record_delimiter == '\r\n'
    assert request.output.csv.record_delimiter == '\r\n'


def test_json_and_parquet_requests():
    lines = parse_request(body(
        '<InputSerialization><CompressionType>BZIP2</CompressionType>'
        '<JSON><Type>LINES</Type></JSON></InputSerialization>'
        '<OutputSerialization><JSON><RecordDelimiter>&#13;&#10;'
        '</RecordDelimiter></JSON></OutputSerialization>'))
    assert (lines.input.format, lines.input.compression,
            lines.input.json.type) == ('JSON', 'BZIP2', 'LINES')
    assert (lines.output.format, lines.output.json.record_delimiter) == (
        'JSON', '\r\n')
    document = parse_request(body(
        '<InputSerialization><JSON/></InputSerialization>' + CSV_OUT))
    assert document.input.json.type == 'DOCUMENT'
    parquet = parse_request(body(
        '<InputSerialization><Parquet/></InputSerialization>' + CSV_OUT))
    assert parquet.input.format == 'Parquet'


@pytest.mark.parametrize('written, expected', [
    ('Use', 'USE'), ('ignore', 'IGNORE'), (' NONE ', 'NONE')])
def test_file_header_info_in_any_case(written, expected):
    request = parse_request(body(
        '<InputSerialization><CSV><FileHeaderInfo>%s</FileHeaderInfo>'
        '</CSV></InputSerialization>%s' % (written, CSV_OUT)))
    assert request.input.csv.file_header_info == expected


def test_json_type_in_any_case():
    request = parse_request(body(
        '<InputSerialization><JSON><Type>Lines</Type></JSON>'
        '</InputSerialization>' + CSV_OUT))
    assert request.input.json.type == 'LINES'


@pytest.mark.parametrize('enabled, expected', [
    ('<Enabled>FALSE</Enabled>', False), ('', False),
    ('<Enabled>True</Enabled>', True)])
def test_request_progress(enabled, expected):
    request = parse_request(body(
        CSV_IN + CSV_OUT
        + '<RequestProgress>%s</RequestProgress>' % enabled))
    assert request.request_progress is expected


@pytest.mark.parametrize('scan, start, end', [
    ('<Start>0</Start><End>100</End>', 0, 100),
    ('<Start>50</Start>', 50, None),
    ('<End>50</End>', None, 50),
    ('<Start>7</Start><End>7</End>', 7, 7),
    ('<End>9223372036854775807</End>', None, 2 ** 63 - 1)])
def test_scan_range(scan, start, end):
    request = parse_request(body(
        CSV_IN + CSV_OUT + '<ScanRange>%s</ScanRange>' % scan))
    assert (request.scan_range.start, request.scan_range.end) == (start, end)


@pytest.mark.parametrize('scan', [
    '', '<Start>-1</Start>', '<End>x</End>', '<Start>5</Start><End>4</End>',
    '<End>0</End>', '<Start>1.5</Start>', '<Start></Start>',
    '<Start>9223372036854775808</Start>'])
def test_invalid_scan_range(scan):
    assert error_code(body(
        CSV_IN + CSV_OUT + '<ScanRange>%s</ScanRange>' % scan)
    ) == 'InvalidScanRange'


@pytest.mark.parametrize('input_serialization', [
    '<CompressionType>GZIP</CompressionType><CSV/>',
    '<CompressionType>BZIP2</CompressionType><JSON><Type>LINES</Type></JSON>',
    '<JSON><Type>DOCUMENT</Type></JSON>',
    '<JSON/>',
    '<CSV><AllowQuotedRecordDelimiter>TRUE</AllowQuotedRecordDelimiter>'
    '</CSV>'])
def test_scan_range_on_unsplittable_input(input_serialization):
    assert error_code(body(
        '<InputSerialization>%s</InputSerialization>%s'
        '<ScanRange><Start>0</Start></ScanRange>'
        % (input_serialization, CSV_OUT))) == 'UnsupportedScanRangeInput'


@pytest.mark.parametrize('input_serialization', [
    '<JSON><Type>LINES</Type></JSON>', '<Parquet/>', '<CSV/>'])
def test_scan_range_on_splittable_input(input_serialization):
    request = parse_request(body(
        '<InputSerialization>%s</InputSerialization>%s'
        '<ScanRange><End>10</End></ScanRange>'
        % (input_serialization, CSV_OUT)))
    assert request.scan_range.end == 10


@pytest.mark.parametrize('data', [b'', b'   \n'])
def test_empty_body(data):
    assert error_code(data) == 'EmptyRequestBody'


@pytest.mark.parametrize('data', [
    b'not xml',
    b'<SelectObjectContentRequest>',
    b'<Other/>',
    body().replace(b'</SelectObjectContentRequest>', b''),
    body(CSV_IN + CSV_OUT + '<Unknown/>'),
    body(CSV_IN + CSV_OUT + '<Expression>x</Expression>'),
    body(CSV_IN + CSV_IN + CSV_OUT),
    body(CSV_IN + CSV_OUT + 'stray text'),
    body('<InputSerialization><CSV><Bogus/></CSV></InputSerialization>'
         + CSV_OUT),
    body('<InputSerialization><CSV><FieldDelimiter>,</FieldDelimiter>'
         '<FieldDelimiter>;</FieldDelimiter></CSV></InputSerialization>'
         + CSV_OUT),
    body('<InputSerialization><Parquet><X/></Parquet></InputSerialization>'
         + CSV_OUT),
    body(expression='<b>SELECT</b>'),
    body(CSV_IN + CSV_OUT).replace(
        b'<ExpressionType>', b'<x:ExpressionType xmlns:x="urn:other">'
    ).replace(b'</ExpressionType>', b'</x:ExpressionType>'),
])
def test_malformed_xml(data):
    assert error_code(data) == 'MalformedXML'


@pytest.mark.parametrize('data', [
    b'<!DOCTYPE SelectObjectContentRequest>' + body(),
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "SELECT 1">]>'
    + body(expression='&e;'),
    b'<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    + body(expression='&b;'),
    b'<!DOCTYPE r SYSTEM "file:///etc/passwd">' + body(expression='x'),
    ('<!DOCTYPE r>'.encode('utf-16') + body().decode().encode('utf-16')[2:]),
])
def test_doctype_is_refused(data):
    with pytest.raises(SelectError) as caught:
        parse_request(data)
    assert caught.value.code == 'MalformedXML'
    assert 'DOCTYPE' in caught.value.message


@pytest.mark.parametrize('data', [
    b'<SelectObjectContentRequest><ExpressionType>SQL</ExpressionType>'
    + (CSV_IN + CSV_OUT).encode() + b'</SelectObjectContentRequest>',
    body(expression=''),
    body(expression='   '),
    body(expression_type='SQL').replace(
        b'<ExpressionType>SQL</ExpressionType>', b''),
    body(CSV_OUT),
    body(CSV_IN),
    body('<InputSerialization><CompressionType>NONE</CompressionType>'
         '</InputSerialization>' + CSV_OUT),
    body(CSV_IN + '<OutputSerialization/>'),
])
def test_missing_required_parameter(data):
    assert error_code(data) == 'MissingRequiredParameter'


@pytest.mark.parametrize('inner', [
    '<InputSerialization><CSV/><JSON/></InputSerialization>' + CSV_OUT,
    '<InputSerialization><Parquet/><CSV/></InputSerialization>' + CSV_OUT,
    CSV_IN + '<OutputSerialization><CSV/><JSON/></OutputSerialization>',
])
def test_two_formats_conflict(inner):
    assert error_code(body(inner)) == 'ObjectSerializationConflict'


@pytest.mark.parametrize('inner, code', [
    ('<InputSerialization><CompressionType>gzip</CompressionType><CSV/>'
     '</InputSerialization>' + CSV_OUT, 'InvalidCompressionFormat'),
    ('<InputSerialization><CompressionType>ZIP</CompressionType><CSV/>'
     '</InputSerialization>' + CSV_OUT, 'InvalidCompressionFormat'),
    ('<InputSerialization><CompressionType>GZIP</CompressionType>'
     '<Parquet/></InputSerialization>' + CSV_OUT,
     'InvalidCompressionFormat'),
    ('<InputSerialization><CSV><FileHeaderInfo>FIRST</FileHeaderInfo>'
     '</CSV></InputSerialization>' + CSV_OUT, 'InvalidFileHeaderInfo'),
    ('<InputSerialization><JSON><Type>ARRAY</Type></JSON>'
     '</InputSerialization>' + CSV_OUT, 'InvalidJsonType'),
    (CSV_IN + '<OutputSerialization><CSV><QuoteFields>always</QuoteFields>'
     '</CSV></OutputSerialization>', 'InvalidQuoteFields'),
    ('<InputSerialization><CSV><FieldDelimiter>;;</FieldDelimiter>'
     '</CSV></InputSerialization>' + CSV_OUT, 'InvalidRequestParameter'),
    ('<InputSerialization><CSV><QuoteCharacter/></CSV>'
     '</InputSerialization>' + CSV_OUT, 'InvalidRequestParameter'),
    ('<InputSerialization><CSV><Comments>//</Comments></CSV>'
     '</InputSerialization>' + CSV_OUT, 'InvalidRequestParameter'),
    ('<InputSerialization><CSV><RecordDelimiter>;;;</RecordDelimiter>'
     '</CSV></InputSerialization>' + CSV_OUT, 'InvalidRequestParameter'),
    ('<InputSerialization><CSV><AllowQuotedRecordDelimiter>yes'
     '</AllowQuotedRecordDelimiter></CSV></InputSerialization>' + CSV_OUT,
     'InvalidRequestParameter'),
    (CSV_IN + '<OutputSerialization><JSON><RecordDelimiter>abc'
     '</RecordDelimiter></JSON></OutputSerialization>',
     'InvalidRequestParameter'),
    (CSV_IN + '<OutputSerialization><CSV><FieldDelimiter>ab'
     '</FieldDelimiter></CSV></OutputSerialization>',
     'InvalidRequestParameter'),
    (CSV_IN + CSV_OUT + '<RequestProgress><Enabled>1</Enabled>'
     '</RequestProgress>', 'InvalidRequestParameter'),
])
def test_invalid_values(inner, code):
    assert error_code(body(inner)) == code


@pytest.mark.parametrize('expression_type', ['sql', 'PartiQL', ''])
def test_invalid_expression_type(expression_type):
    assert error_code(body(expression_type=expression_type)
                      ) == 'InvalidExpressionType'


def test_expression_length_limit_is_in_utf8_bytes():
    prefix = 'SELECT * FROM S3Object s WHERE s._1 = \''
    fill = MAX_EXPRESSION_BYTES - len(prefix) - 1
    at_limit = prefix + 'x' * fill + '\''
    assert len(parse_request(body(expression=at_limit)).expression) == (
        MAX_EXPRESSION_BYTES)
    # One two-byte character instead of one 'x': one byte over.
    over = prefix + 'é' + 'x' * (fill - 1) + '\''
    assert error_code(body(expression=over)) == 'ExpressionTooLong'


def test_max_request_body_holds_an_escaped_expression_at_the_limit():
    escaped = body(expression='&quot;' * MAX_EXPRESSION_BYTES)
    assert len(escaped) <= MAX_REQUEST_BODY
    assert len(parse_request(escaped).expression) == MAX_EXPRESSION_BYTES


def test_expression_whitespace_is_kept():
    request = parse_request(body(expression='\n  SELECT 1\n'))
    assert request.expression == '\n  SELECT 1\n'


def test_body_built_by_botocore_parses():
    """What a real AWS SDK sends is understood field by field."""
    session = get_session()
    model = ServiceModel(session.get_service_data('s3'), 's3')
    serializer = create_serializer('rest-xml')
    operation = model.operation_model('SelectObjectContent')
    serialized = serializer.serialize_to_request({
        'Bucket': 'b', 'Key': 'k',
        'Expression': 'SELECT s.a FROM S3Object s WHERE s.b > 1',
        'ExpressionType': 'SQL',
        'RequestProgress': {'Enabled': True},
        'InputSerialization': {
            'CSV': {'FileHeaderInfo': 'USE', 'RecordDelimiter': '\n',
                    'FieldDelimiter': ';', 'AllowQuotedRecordDelimiter':
                    False},
            'CompressionType': 'NONE'},
        'OutputSerialization': {'JSON': {'RecordDelimiter': ','}},
        'ScanRange': {'Start': 0, 'End': 99},
    }, operation)
    query = parse_qs(urlsplit(serialized['url_path']).query,
                     keep_blank_values=True)
    check_select_query_params({name: values[0]
                               for name, values in query.items()})
    request = parse_request(serialized['body'])
    assert request.expression == 'SELECT s.a FROM S3Object s WHERE s.b > 1'
    assert request.request_progress is True
    assert request.input.csv.file_header_info == 'USE'
    assert request.input.csv.field_delimiter == ';'
    assert request.input.csv.record_delimiter == '\n'
    assert request.output.format == 'JSON'
    assert request.output.json.record_delimiter == ','
    assert (request.scan_range.start, request.scan_range.end) == (0, 99)


@pytest.mark.parametrize('params', [
    {'select': '', 'select-type': '2'}, {'select': 'x', 'select-type': '2'}])
def test_select_query_params_accepted(params):
    assert check_select_query_params(params) is None


@pytest.mark.parametrize('params', [
    {'select': ''}, {'select': '', 'select-type': '1'},
    {'select': '', 'select-type': ''}, {'select-type': '2'}, {}])
def test_select_query_params_refused(params):
    with pytest.raises(SelectError) as caught:
        check_select_query_params(params)
    assert caught.value.code == 'InvalidRequestParameter'
    assert caught.value.status == 400
