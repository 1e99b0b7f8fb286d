"""S3 Select scalar functions, CAST and value text (s3select.functions)."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from zerocloud.s3select import functions
from zerocloud.s3select.errors import SelectError
from zerocloud.s3select.functions import (
    call, cast, is_function, parse_timestamp, to_json_value, to_text)
from zerocloud.s3select.values import MISSING


def ts(text):
    return parse_timestamp(text)


def error_code(action, *args):
    with pytest.raises(SelectError) as caught:
        action(*args)
    return caught.value.code


# -- timestamps as text ----------------------------------------------------

@pytest.mark.parametrize('text', [
    '2007T', '2007-02T', '2007-02-23', '2007-02-23T12:14Z',
    '2007-02-23T12:14:33Z', '2007-02-23T12:14:33.079Z',
    '2007-02-23T12:14:33.079-08:00', '2007-02-23T12:14+08:00',
    '2007-02-23T12:14:33.123456789Z', '2007-02-23T12:14-00:00',
])
def test_timestamp_prints_back_as_given(text):
    assert to_text(ts(text)) == text


def test_day_with_t_prints_as_ion_day():
    assert to_text(ts('2007-02-23T')) == '2007-02-23'


def test_timestamp_values_and_zone():
    stamp = ts('2007-02-23T12:14:33.079-08:00')
    assert stamp == datetime(2007, 2, 23, 20, 14, 33, 79000,
                             tzinfo=timezone.utc)
    assert stamp.utcoffset() == timedelta(hours=-8)


def test_time_without_offset_is_utc():
    stamp = ts('2010-01-01T23:00')
    assert stamp.utcoffset() == timedelta(0)
    assert to_text(stamp) == '2010-01-01T23:00Z'


@pytest.mark.parametrize('text', [
    '2007', '2007-02', '2007-13T', '2007-02-30', '2007-02-23T25:00Z',
    '2007-02-23T12:14+08:99', 'nonsense', '',
])
def test_bad_timestamp_is_cast_failed(text):
    assert error_code(parse_timestamp, text) == 'CastFailed'


def test_plain_datetime_prints_with_its_microseconds():
    moment = datetime(2020, 5, 6, 7, 8, 9, 120000, tzinfo=timezone.utc)
    assert to_text(moment) == '2020-05-06T07:08:09.120000Z'
    assert to_text(moment.replace(microsecond=0)) == '2020-05-06T07:08:09Z'


# -- to_text / to_json_value -----------------------------------------------

@pytest.mark.parametrize('value, text', [
    (None, None), (MISSING, None), (True, 'true'), (False, 'false'),
    (12, '12'), (-3, '-3'), (2.5, '2.5'), (Decimal('1.50'), '1.50'),
    (Decimal('1E+3'), '1000'), ('abc', 'abc'), (float('nan'), 'NaN'),
    ([1, 'a', None], '[1,"a",null]'), ({'a': 1, 'b': MISSING}, '{"a":1}'),
])
def test_to_text(value, text):
    assert to_text(value) == text


def test_to_json_value():
    assert to_json_value(Decimal('12')) == 12
    assert isinstance(to_json_value(Decimal('12')), int)
    assert to_json_value(Decimal('1.25')) == 1.25
    assert to_json_value(ts('2007T')) == '2007T'
    assert to_json_value(MISSING) is MISSING
    assert to_json_value(float('inf')) is None
    nested = {'a': [Decimal('2'), MISSING, ts('2007-02T')], 'b': MISSING}
    assert json.dumps(to_json_value(nested)) == '{"a": [2, null, "2007-02T"]}'


# -- CAST ------------------------------------------------------------------

@pytest.mark.parametrize('value, type_name, result', [
    ('12', 'INT', 12), (' 12 ', 'INTEGER', 12), ('-7', 'INT', -7),
    ('12.9', 'INT', 12), ('-12.9', 'INT', -12), ('1e3', 'INT', 1000),
    (3.99, 'INT', 3), (Decimal('-2.5'), 'INT', -2), (True, 'INT', 1),
    ('true', 'BOOL', True), (' FALSE ', 'BOOLEAN', False), (0, 'BOOL', False),
    (2.5, 'BOOL', True), ('0.456', 'FLOAT', 0.456), (3, 'FLOAT', 3.0),
    ('1.50', 'DECIMAL', Decimal('1.50')), (0.1, 'NUMERIC', Decimal('0.1')),
    (7, 'STRING', '7'), (False, 'STRING', 'false'),
    (Decimal('1.50'), 'STRING', '1.50'), ('x', 'STRING', 'x'),
])
def test_cast(value, type_name, result):
    got = cast(value, type_name)
    assert got == result
    assert type(got) is type(result)


def test_cast_timestamp_both_ways():
    stamp = cast('2007-04-05T14:30Z', 'TIMESTAMP')
    assert to_text(stamp) == '2007-04-05T14:30Z'
    assert cast(stamp, 'STRING') == '2007-04-05T14:30Z'
    assert cast(stamp, 'TIMESTAMP') is stamp


def test_cast_keeps_null_and_missing():
    assert cast(None, 'INT') is None
    assert cast(MISSING, 'STRING') is MISSING


def test_cast_float_to_nan_and_decimal_keeps_38_digits():
    assert cast('NaN', 'FLOAT') != cast('NaN', 'FLOAT')
    assert cast('-Infinity', 'FLOAT') == float('-inf')
    long_digits = '1' * 45
    assert len(cast(long_digits, 'DECIMAL').as_tuple().digits) == 38


@pytest.mark.parametrize('value, type_name', [
    ('abc', 'INT'), ('1_000', 'INT'), ('', 'INT'), (str(1 << 63), 'INT'),
    (float('nan'), 'INT'), ('yes', 'BOOL'), ('1.2.3', 'FLOAT'),
    ('NaN', 'DECIMAL'), ('2007-13T', 'TIMESTAMP'),
])
def test_cast_failed(value, type_name):
    assert error_code(cast, value, type_name) == 'CastFailed'


@pytest.mark.parametrize('value, type_name', [
    (ts('2007T'), 'INT'), (ts('2007T'), 'BOOL'), (5, 'TIMESTAMP'),
    ([1], 'STRING'), ({'a': 1}, 'INT'), ('1', 'BLOB'), ('1', 'DOUBLE'),
])
def test_invalid_cast(value, type_name):
    assert error_code(cast, value, type_name) == 'InvalidCast'


# -- string functions ------------------------------------------------------

def test_is_function():
    assert is_function('SUBSTRING')
    assert is_function('UTCNOW')
    assert not is_function('COUNT')
    assert not is_function('lower')


@pytest.mark.parametrize('name, args, result', [
    ('CHAR_LENGTH', [''], 0), ('CHARACTER_LENGTH', ['abcdefg'], 7),
    ('CHAR_LENGTH', ['żółw'], 4),
    ('LOWER', ['AbC'], 'abc'), ('UPPER', ['AbC'], 'ABC'),
    ('SUBSTRING', ['123456789', 0, None], '123456789'),
    ('SUBSTRING', ['123456789', 1, None], '123456789'),
    ('SUBSTRING', ['123456789', 2, None], '23456789'),
    ('SUBSTRING', ['123456789', -4, None], '123456789'),
    ('SUBSTRING', ['123456789', 0, 999], '123456789'),
    ('SUBSTRING', ['123456789', 1, 5], '12345'),
    ('SUBSTRING', ['123456789', 0, 3], '12'),
    ('SUBSTRING', ['123456789', -4, 3], ''),
    ('SUBSTRING', ['123456789', 8, 5], '89'),
    ('SUBSTRING', ['123456789', 20, None], ''),
    ('SUBSTRING', ['123456789', 2, 0], ''),
    ('SUBSTRING', ['123456789', Decimal('2'), None], '23456789'),
    ('TRIM', ['BOTH', None, '   foobar   '], 'foobar'),
    ('TRIM', ['BOTH', None, '   \tfoobar\t   '], '\tfoobar\t'),
    ('TRIM', ['LEADING', None, '   foobar   '], 'foobar   '),
    ('TRIM', ['TRAILING', None, '   foobar   '], '   foobar'),
    ('TRIM', ['BOTH', '12', '1112211foobar22211122'], 'foobar'),
])
def test_string_functions(name, args, result):
    assert call(name, args) == result


@pytest.mark.parametrize('name, args', [
    ('LOWER', [None]), ('UPPER', [MISSING]), ('CHAR_LENGTH', [None]),
    ('SUBSTRING', ['abc', None, None]), ('SUBSTRING', ['abc', 1, MISSING]),
    ('TRIM', ['BOTH', None, None]), ('TO_STRING', [None, 'y']),
    ('DATE_ADD', ['DAY', None, ts('2007T')]),
])
def test_null_or_missing_argument_gives_null(name, args):
    assert call(name, args) is None


@pytest.mark.parametrize('name, args, code', [
    ('LOWER', [5], 'IncorrectSqlFunctionArgumentType'),
    ('CHAR_LENGTH', [True], 'IncorrectSqlFunctionArgumentType'),
    ('SUBSTRING', ['abc', 'x', None], 'IncorrectSqlFunctionArgumentType'),
    ('SUBSTRING', ['abc', 1.5, None], 'IncorrectSqlFunctionArgumentType'),
    ('SUBSTRING', ['abc', 1, -1], 'IllegalSqlFunctionArgument'),
    ('TRIM', ['BOTH', 1, 'abc'], 'IncorrectSqlFunctionArgumentType'),
    ('LOWER', ['a', 'b'], 'EvaluatorInvalidArguments'),
    ('UTCNOW', [1], 'EvaluatorInvalidArguments'),
    ('SUBSTRING', ['a'], 'EvaluatorInvalidArguments'),
    ('NOSUCH', [], 'UnsupportedFunction'),
])
def test_function_errors(name, args, code):
    assert error_code(call, name, args) == code


# -- date functions --------------------------------------------------------

@pytest.mark.parametrize('part, quantity, start, result', [
    ('YEAR', 5, '2010-01-01T', '2015-01-01'),
    ('MONTH', 1, '2010T', '2010-02T'),
    ('MONTH', 13, '2010T', '2011-02T'),
    ('DAY', -1, '2017-01-10T', '2017-01-09'),
    ('HOUR', 1, '2017T', '2017-01-01T01:00-00:00'),
    ('HOUR', 1, '2017-01-02T03:04Z', '2017-01-02T04:04Z'),
    ('MINUTE', 1, '2017-01-02T03:04:05.006Z', '2017-01-02T03:05:05.006Z'),
    ('SECOND', 1, '2017-01-02T03:04:05.006Z', '2017-01-02T03:04:06.006Z'),
    ('SECOND', 1, '2017-01-02T03:04Z', '2017-01-02T03:04:01Z'),
    ('MONTH', 1, '2011-01-31', '2011-02-28'),
    ('YEAR', 1, '2012-02-29T10:00+05:30', '2013-02-28T10:00+05:30'),
    ('DAY', 1, '2017-12-31T23:30-08:00', '2018-01-01T23:30-08:00'),
])
def test_date_add(part, quantity, start, result):
    assert to_text(call('DATE_ADD', [part, quantity, ts(start)])) == result


@pytest.mark.parametrize('part, first, second, result', [
    ('YEAR', '2010-01-01T', '2011-01-01T', 1),
    ('YEAR', '2010T', '2010-05T', 0),
    ('MONTH', '2010T', '2011T', 12),
    ('MONTH', '2011T', '2010T', -12),
    ('DAY', '2010-01-01T23:00Z', '2010-01-02T01:00Z', 0),
    ('DAY', '2010-01-01T23:00Z', '2010-01-02T23:00Z', 1),
    ('MONTH', '2010-01-31T', '2010-02-28T', 0),
    ('MONTH', '2010-01-15T', '2010-03-14T', 1),
    ('MONTH', '2010-03-14T', '2010-01-15T', -1),
    ('YEAR', '2010-06T', '2012-05T', 1),
    ('HOUR', '2010-01-01T00:00Z', '2010-01-01T00:00-02:00', 2),
    ('MINUTE', '2010-01-01T00:00:59Z', '2010-01-01T00:02:58Z', 1),
    ('SECOND', '2010-01-01T00:00:01.9Z', '2010-01-01T00:00Z', -1),
])
def test_date_diff(part, first, second, result):
    assert call('DATE_DIFF', [part, ts(first), ts(second)]) == result


@pytest.mark.parametrize('part, stamp, result', [
    ('YEAR', '2010-01-01T', 2010), ('MONTH', '2010T', 1),
    ('MONTH', '2010-10T', 10), ('DAY', '2010-10-05', 5),
    ('HOUR', '2017-01-02T03:04:05+07:08', 3),
    ('MINUTE', '2017-01-02T03:04:05+07:08', 4),
    ('SECOND', '2017-01-02T03:04:05+07:08', 5),
    ('TIMEZONE_HOUR', '2017-01-02T03:04:05+07:08', 7),
    ('TIMEZONE_MINUTE', '2017-01-02T03:04:05+07:08', 8),
    ('TIMEZONE_HOUR', '2017-01-02T03:04:05-03:30', -3),
    ('TIMEZONE_MINUTE', '2017-01-02T03:04:05-03:30', -30),
])
def test_extract(part, stamp, result):
    assert call('EXTRACT', [part, ts(stamp)]) == result


@pytest.mark.parametrize('name, args, code', [
    ('DATE_ADD', ['TIMEZONE_HOUR', 1, ts('2007T')], 'ParseExpectedDatePart'),
    ('DATE_DIFF', ['WEEK', ts('2007T'), ts('2008T')],
     'ParseExpectedDatePart'),
    ('EXTRACT', ['CENTURY', ts('2007T')], 'ParseExpectedDatePart'),
    ('DATE_ADD', ['DAY', 'one', ts('2007T')],
     'IncorrectSqlFunctionArgumentType'),
    ('DATE_ADD', ['DAY', 1, '2007T'], 'IncorrectSqlFunctionArgumentType'),
    ('DATE_ADD', ['YEAR', 9000, ts('2007T')], 'IllegalSqlFunctionArgument'),
    ('EXTRACT', ['YEAR', 2007], 'IncorrectSqlFunctionArgumentType'),
    ('TO_STRING', ['2007', 'y'], 'IncorrectSqlFunctionArgumentType'),
    ('TO_TIMESTAMP', [2007], 'IncorrectSqlFunctionArgumentType'),
    ('TO_TIMESTAMP', ['2007'], 'CastFailed'),
])
def test_date_function_errors(name, args, code):
    assert error_code(call, name, args) == code


@pytest.mark.parametrize('stamp, pattern, result', [
    ('1969-07-20T20:18Z', 'MMMM d, y', 'July 20, 1969'),
    ('1969-07-20T20:18Z', 'MMM d, yyyy', 'Jul 20, 1969'),
    ('1969-07-20T20:18Z', 'M-d-yy', '7-20-69'),
    ('1969-07-20T20:18Z', 'MM-d-y', '07-20-1969'),
    ('1969-07-20T20:18Z', 'MMMM d, y h:m a', 'July 20, 1969 8:18 PM'),
    ('1969-07-20T20:18Z', "y-MM-dd'T'H:m:ssX", '1969-07-20T20:18:00Z'),
    ('1969-07-20T20:18+08:00', "y-MM-dd'T'H:m:ssXXXX",
     '1969-07-20T20:18:00+0800'),
    ('1969-07-20T20:18+08:00', "y-MM-dd'T'H:m:ssXXXXX",
     '1969-07-20T20:18:00+08:00'),
    ('1969-07-20T20:18+08:00', 'X', '+08'),
    ('1969-07-20T20:18+08:30', 'X', '+0830'),
    ('1969-07-20T20:18Z', 'x xx xxx', '+00 +0000 +00:00'),
    ('1969-07-20T20:18-07:00', 'x|xx|xxx', '-07|-0700|-07:00'),
    ('1969-01-02T00:05:06.079Z', 'MMMMM dd hh:mm:ss a', 'J 02 12:05:06 AM'),
    ('1969-01-02T00:05:06.079Z', 'S|SS|SSS|SSSS|n', '0|07|079|0790|79000000'),
    ('1969-01-02T03:05:06Z', "HH 'o''clock' ''", "03 o'clock '"),
])
def test_to_string(stamp, pattern, result):
    assert call('TO_STRING', [ts(stamp), pattern]) == result


@pytest.mark.parametrize('pattern, code', [
    ('yyyy-QQ', 'EvaluatorInvalidTimestampFormatPatternSymbol'),
    ('yyyy-MMMMMM', 'EvaluatorInvalidTimestampFormatPatternToken'),
    ('hhh', 'EvaluatorInvalidTimestampFormatPatternToken'),
    ("yyyy 'T", 'EvaluatorUnterminatedTimestampFormatPatternToken'),
])
def test_to_string_bad_pattern(pattern, code):
    assert error_code(call, 'TO_STRING', [ts('2007T'), pattern]) == code


@pytest.mark.parametrize('text', [
    '2007T', '2007-02-23T12:14:33.079-08:00', '2007-02-23',
])
def test_to_timestamp_reads_timestamp_text(text):
    assert to_text(call('TO_TIMESTAMP', [text])) == text


@pytest.mark.parametrize('text, pattern, result', [
    ('July 20, 1969', 'MMMM d, y', '1969-07-20'),
    ('20 jul 69', 'dd MMM yy', '2069-07-20'),
    ('1969/07', 'yyyy/MM', '1969-07T'),
    ('1969', 'y', '1969T'),
    ('07-20-1969 8:18 PM', 'MM-dd-yyyy h:mm a', '1969-07-20T20:18Z'),
    ('07-20-1969 12:18 am', 'MM-dd-yyyy h:mm a', '1969-07-20T00:18Z'),
    ('1969-07-20T20:18:00+0800', "yyyy-MM-dd'T'HH:mm:ssXX",
     '1969-07-20T20:18:00+08:00'),
    ('1969-07-20 20:18:00.25 Z', 'yyyy-MM-dd HH:mm:ss.SS X',
     '1969-07-20T20:18:00.25Z'),
])
def test_to_timestamp_with_pattern(text, pattern, result):
    assert to_text(call('TO_TIMESTAMP', [text, pattern])) == result


CLOCK_MISMATCH = 'EvaluatorTimestampFormatPatternHourClockAmPmMismatch'


@pytest.mark.parametrize('pattern, code', [
    ('yyyy y', 'EvaluatorTimestampFormatPatternDuplicateFields'),
    ('yyyy-MM-dd hh:mm', CLOCK_MISMATCH),
    ('yyyy-MM-dd HH:mm a', CLOCK_MISMATCH),
    ('yyyy-MM-dd HH:mm', None),
    ('yyyy-dd', 'EvaluatorInvalidTimestampFormatPattern'),
    ('yyyy-MM-dd HH', 'EvaluatorInvalidTimestampFormatPattern'),
    ('MM-dd', 'EvaluatorInvalidTimestampFormatPattern'),
    ('MMMMM yyyy', 'EvaluatorInvalidTimestampFormatPatternSymbolForParsing'),
])
def test_to_timestamp_bad_pattern(pattern, code):
    if code is None:
        assert call('TO_TIMESTAMP', ['2001-02-03 04:05', pattern]).minute == 5
    else:
        assert error_code(call, 'TO_TIMESTAMP', ['x', pattern]) == code


def test_to_timestamp_text_not_matching_pattern():
    assert error_code(call, 'TO_TIMESTAMP',
                      ['1969-13', 'yyyy-MM']) == 'CastFailed'
    assert error_code(call, 'TO_TIMESTAMP',
                      ['nope', 'yyyy']) == 'CastFailed'


def test_utcnow_is_current_utc_with_milliseconds():
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    now = call('UTCNOW', [])
    assert before <= now <= datetime.now(timezone.utc)
    assert now.utcoffset() == timedelta(0)
    assert len(to_text(now).split('.')[1]) == len('123Z')


def test_timestamp_subclass_is_a_datetime():
    assert isinstance(ts('2007T'), datetime)
    assert functions.make_timestamp(
        datetime(2001, 2, 3, 4, 5), 'DAY').hour == 0


def test_a_failed_cast_quotes_only_the_start_of_a_long_value():
    with pytest.raises(SelectError) as failed:
        functions.cast('x' * (1 << 20), 'INT')
    assert failed.value.code == 'CastFailed'
    assert len(failed.value.message) < 120
    assert "'xxxx" in failed.value.message
