"""S3 Select's scalar functions, ``CAST``, and the text forms of values.

``call(name, args)`` runs the string functions (``CHAR_LENGTH``,
``CHARACTER_LENGTH``, ``LOWER``, ``UPPER``, ``SUBSTRING``, ``TRIM``) and
the date functions (``DATE_ADD``, ``DATE_DIFF``, ``EXTRACT``,
``TO_STRING``, ``TO_TIMESTAMP``, ``UTCNOW``) on arguments the SQL
evaluator has already shaped; ``cast(value, type_name)`` is ``CAST``;
``to_text``/``to_json_value`` give a value's CSV field and JSON value;
``parse_timestamp`` reads a ``TIMESTAMP`` literal.

Choices where the AWS "SQL reference for Amazon S3 Select" is silent:

* NULL or MISSING in any argument of a function gives NULL; ``CAST``
  keeps NULL as NULL and MISSING as MISSING.
* A wrong argument type (``LOWER(5)``, ``DATE_ADD(day, 'x', ts)``) is
  ``IncorrectSqlFunctionArgumentType``; a wrong argument count
  ``EvaluatorInvalidArguments``; a negative ``SUBSTRING`` length
  ``IllegalSqlFunctionArgument``; a date part a function does not take
  ``ParseExpectedDatePart``; an unknown function ``UnsupportedFunction``.
* ``SUBSTRING(s, start, length)`` takes the characters at positions
  ``start`` to ``start + length - 1`` that exist (SQL's rule), so a
  ``start`` below 1 eats into ``length``.
* CAST types are the documented ones: ``BOOL``/``BOOLEAN``,
  ``INT``/``INTEGER``, ``STRING``, ``FLOAT``, ``DECIMAL``/``NUMERIC``,
  ``TIMESTAMP``; any other name is ``InvalidCast``, and so is a cast
  between types that do not convert (``TIMESTAMP`` to ``INT``).  A value
  of a convertible type that does not convert is ``CastFailed``.
* String to ``INT`` accepts surrounding blanks, a sign and decimal digits;
  a fraction or exponent (``'12.5'``, ``'1e3'``) is truncated toward zero
  like ``FLOAT`` to ``INT``; the result must fit 8 bytes.  String to
  ``BOOL`` accepts ``true``/``false`` in any case; a number is true when it
  is not zero.  ``DECIMAL`` keeps at most 38 significant digits.
* A ``TIMESTAMP`` is a ``Timestamp`` (a tz-aware ``datetime``) that
  remembers its precision (year, month, day, minute, second, fraction
  digits) and whether its offset is known, so it prints back the way S3
  prints Ion timestamps: ``2007T``, ``2007-02T``, ``2007-02-23``,
  ``2007-02-23T12:14Z``, ``...:33.079-08:00``; an unknown offset (a date
  without time, or ``-00:00``) prints as ``-00:00`` once ``DATE_ADD`` gives
  it a time.  A time without an offset is read as UTC.
* ``DATE_DIFF`` counts whole units between the two instants: whole
  calendar months for ``year``/``month``, whole elapsed periods below.
  ``EXTRACT(SECOND ...)`` gives whole seconds.
* ``TO_STRING`` pattern letters follow the documented table; ``x``
  prints signed offsets (``+07``, ``+0700``, ``+07:00``) like ``X``
  without ``Z``.  ``TO_TIMESTAMP(s, pattern)`` reads the same letters
  (except ``MMMMM``); text that does not match is ``CastFailed``.
* ``UTCNOW()`` has millisecond precision.

Limits: years 1 to 9999 and microseconds only (``datetime``); fraction
digits beyond six are printed back but not computed with.  A DECIMAL in
JSON output becomes an ``int`` when it has no fraction digits and a
``float`` otherwise; a non-finite float becomes ``null``.
"""

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal
from typing import Any, Callable, Dict, List, Optional, Tuple

from .errors import SelectError
from .values import MISSING, type_name

#: Timestamp precisions, coarsest first.
PRECISIONS = ('YEAR', 'MONTH', 'DAY', 'MINUTE', 'SECOND', 'FRACTION')

#: The type names ``CAST`` takes, mapped to the type they stand for.
CAST_TYPES = {
    'BOOL': 'BOOL', 'BOOLEAN': 'BOOL',
    'INT': 'INT', 'INTEGER': 'INT',
    'STRING': 'STRING',
    'FLOAT': 'FLOAT',
    'DECIMAL': 'DECIMAL', 'NUMERIC': 'DECIMAL',
    'TIMESTAMP': 'TIMESTAMP',
}

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
_DECIMAL_CONTEXT = Context(prec=38)
_MONTH_NAMES = ('January', 'February', 'March', 'April', 'May', 'June',
                'July', 'August', 'September', 'October', 'November',
                'December')
# ASCII digits only, as S3 reads numbers.
_INTEGER_TEXT = re.compile(r'[+-]?[0-9]+')
_NUMBER_TEXT = re.compile(r'[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?')
_FLOAT_WORDS = {'nan': float('nan'), 'inf': float('inf'),
                '+inf': float('inf'), '-inf': float('-inf'),
                'infinity': float('inf'), '+infinity': float('inf'),
                '-infinity': float('-inf')}
_TIMESTAMP_TEXT = re.compile(
    r'(?P<year>\d{4})(?:T|-(?P<month>\d{2})(?:T|-(?P<day>\d{2})'
    r'(?:T(?:(?P<hour>\d{2}):(?P<minute>\d{2})'
    r'(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?'
    r'(?P<offset>Z|[+-]\d{2}:\d{2})?)?)?))')


class Timestamp(datetime):
    """A ``TIMESTAMP``: a tz-aware ``datetime`` that knows how it was given.

    ``precision`` is one of ``PRECISIONS``; ``fraction`` holds the digits
    of the fraction of second exactly as given (``FRACTION`` only);
    ``offset_known`` is false for dates without time and ``-00:00``,
    which Ion prints as ``-00:00`` once there is a time to print.
    """

    precision = 'FRACTION'
    fraction = ''
    offset_known = True


def make_timestamp(moment: datetime, precision: str, fraction: str = '',
                   offset_known: bool = True) -> Timestamp:
    """A ``Timestamp`` of ``moment`` (naive means UTC) with this precision."""
    tzinfo = moment.tzinfo or timezone.utc
    if precision == 'FRACTION':
        fraction = fraction or '%06d' % moment.microsecond
        microsecond = int(fraction[:6].ljust(6, '0'))
    else:
        fraction, microsecond = '', 0
    stamp = Timestamp(moment.year, moment.month, moment.day,
                      moment.hour if _finer(precision, 'DAY') else 0,
                      moment.minute if _finer(precision, 'DAY') else 0,
                      moment.second if _finer(precision, 'MINUTE') else 0,
                      microsecond, tzinfo=tzinfo)
    stamp.precision = precision
    stamp.fraction = fraction
    stamp.offset_known = offset_known
    return stamp


def _finer(precision: str, than: str) -> bool:
    return PRECISIONS.index(precision) > PRECISIONS.index(than)


def _precision_of(moment: datetime) -> str:
    """A ``Timestamp``'s precision, or what a plain ``datetime`` shows."""
    if isinstance(moment, Timestamp):
        return moment.precision
    return 'FRACTION' if moment.microsecond else 'SECOND'


def _fraction_of(moment: datetime) -> str:
    if isinstance(moment, Timestamp) and moment.fraction:
        return moment.fraction
    return '%06d' % moment.microsecond


def _offset_known(moment: datetime) -> bool:
    return not isinstance(moment, Timestamp) or moment.offset_known


def _as_timestamp(moment: datetime) -> Timestamp:
    if isinstance(moment, Timestamp):
        return moment
    return make_timestamp(moment, _precision_of(moment))


# -- timestamp text --------------------------------------------------------

def parse_timestamp(text: str) -> Timestamp:
    """Read an S3 ``TIMESTAMP`` literal (Ion timestamp text).

    ``2007T``, ``2007-02T``, ``2007-02-23`` or ``2007-02-23T``, then
    ``T12:14``, ``:33``, ``.079`` and an offset ``Z``/``+08:00``/``-00:00``
    (no offset: UTC).
    """
    found = _TIMESTAMP_TEXT.fullmatch(text)
    if found is None:
        raise _bad_timestamp(text)
    part = found.groupdict()
    precision = ('FRACTION' if part['fraction'] else
                 'SECOND' if part['second'] else
                 'MINUTE' if part['hour'] else
                 'DAY' if part['day'] else
                 'MONTH' if part['month'] else 'YEAR')
    offset_text = part['offset']
    offset_known = _finer(precision, 'DAY') and offset_text != '-00:00'
    try:
        tzinfo = _offset_zone(offset_text)
        moment = datetime(int(part['year']), int(part['month'] or 1),
                          int(part['day'] or 1), int(part['hour'] or 0),
                          int(part['minute'] or 0), int(part['second'] or 0),
                          tzinfo=tzinfo)
    except ValueError:
        raise _bad_timestamp(text) from None
    return make_timestamp(moment, precision, part['fraction'] or '',
                          offset_known)


def _offset_zone(offset_text: Optional[str]) -> timezone:
    """The zone of ``Z``, ``+HH:MM`` or no offset (UTC)."""
    if not offset_text or offset_text == 'Z':
        return timezone.utc
    hours, minutes = int(offset_text[1:3]), int(offset_text[4:6])
    if minutes > 59:
        raise ValueError(offset_text)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if offset_text[0] == '-' else delta)


def _bad_timestamp(text: str) -> SelectError:
    return SelectError('CastFailed',
                       'Cannot read %r as a TIMESTAMP.' % (text,))


def timestamp_text(moment: datetime) -> str:
    """A timestamp as S3 prints it: Ion text at the precision it has."""
    precision = _precision_of(moment)
    if precision == 'YEAR':
        return '%04dT' % moment.year
    if precision == 'MONTH':
        return '%04d-%02dT' % (moment.year, moment.month)
    text = '%04d-%02d-%02d' % (moment.year, moment.month, moment.day)
    if precision == 'DAY':
        return text
    text += 'T%02d:%02d' % (moment.hour, moment.minute)
    if precision in ('SECOND', 'FRACTION'):
        text += ':%02d' % moment.second
    if precision == 'FRACTION':
        text += '.' + _fraction_of(moment)
    return text + _offset_text(moment)


def _offset_text(moment: datetime) -> str:
    if not _offset_known(moment):
        return '-00:00'
    minutes = _offset_minutes(moment)
    if minutes == 0:
        return 'Z'
    sign = '-' if minutes < 0 else '+'
    return '%s%02d:%02d' % (sign, abs(minutes) // 60, abs(minutes) % 60)


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset() or timedelta(0)
    return int(offset.total_seconds()) // 60


# -- values as output ------------------------------------------------------

def to_text(value: Any) -> Optional[str]:
    """The CSV field of a value; ``None`` for NULL and MISSING (empty)."""
    if value is None or value is MISSING:
        return None
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Decimal):
        return format(value, 'f')
    if isinstance(value, datetime):
        return timestamp_text(value)
    return json.dumps(to_json_value(value), separators=(',', ':'),
                      ensure_ascii=False)


def _float_text(value: float) -> str:
    if value != value:
        return 'NaN'
    if value in (float('inf'), float('-inf')):
        return 'Infinity' if value > 0 else '-Infinity'
    return repr(value)


def to_json_value(value: Any) -> Any:
    """A value ``json.dumps`` writes; MISSING stays MISSING (omitted).

    MISSING inside a list becomes ``null`` and inside a dict is dropped.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, float) and value in (float('inf'), float('-inf')):
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, list):
        return [None if item is MISSING else to_json_value(item)
                for item in value]
    if isinstance(value, dict):
        return {key: to_json_value(item) for key, item in value.items()
                if item is not MISSING}
    return value


# -- CAST ------------------------------------------------------------------

def cast(value: Any, type_name: str) -> Any:
    """``CAST(value AS type_name)``; NULL and MISSING pass through."""
    return caster(type_name)(value)


def caster(type_name: str) -> Callable[[Any], Any]:
    """``CAST(· AS type_name)`` as a function, found once per query; a
    type S3 does not know fails when a value is cast, as S3 does."""
    target = CAST_TYPES.get(type_name)
    if target is None:
        def unknown(value: Any) -> Any:
            raise SelectError('InvalidCast',
                              'CAST to unknown type %s.' % type_name)
        return unknown
    convert = _CASTS[target]

    def cast_to(value: Any) -> Any:
        if value is None or value is MISSING:
            return value
        return convert(value)
    return cast_to


def _invalid_cast(value: Any, target: str) -> SelectError:
    return SelectError('InvalidCast', 'Cannot CAST a %s to %s.'
                       % (type_name(value), target))


def _cast_failed(value: Any, target: str) -> SelectError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:60] + '...'   # a field may be a MiB long
    return SelectError('CastFailed', 'Cannot CAST %s %s to %s.'
                       % (type_name(value), shown, target))


def _cast_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        return value != 0
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ('true', 'false'):
            return word == 'true'
        raise _cast_failed(value, 'BOOL')
    raise _invalid_cast(value, 'BOOL')


def _cast_int(value: Any) -> int:
    if type(value) is str and value.isdigit() and value.isascii():
        number = int(value)   # a CSV field, the common case first
        if number <= _INT_MAX:
            return number
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, (float, Decimal)):
        if value != value or value in (float('inf'), float('-inf')):
            raise _cast_failed(value, 'INT')
        number = int(value)
    elif isinstance(value, str):
        number = _int_from_text(value)
    else:
        raise _invalid_cast(value, 'INT')
    if not _INT_MIN <= number <= _INT_MAX:
        raise _cast_failed(value, 'INT')
    return number


def _int_from_text(text: str) -> int:
    """Integer text as is; decimal or exponent text truncated to zero."""
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():
        return int(stripped)   # the common case, without a regex
    if _INTEGER_TEXT.fullmatch(stripped):
        return int(stripped)
    if _NUMBER_TEXT.fullmatch(stripped):
        number = Decimal(stripped)
        if number.is_zero():
            return 0
        if number.adjusted() >= 19:
            # Past 8 bytes: said before int() spends minutes on 1e999999999.
            raise _cast_failed(text, 'INT')
        return int(number)
    raise _cast_failed(text, 'INT')


def _cast_float(value: Any) -> float:
    if type(value) is str and _NUMBER_TEXT.fullmatch(value):
        return float(value)   # the common case first
    if isinstance(value, (bool, int, float, Decimal)):
        try:
            return float(value)
        except OverflowError:
            raise _cast_failed(value, 'FLOAT') from None
    if isinstance(value, str):
        stripped = value.strip()
        if _NUMBER_TEXT.fullmatch(stripped):
            return float(stripped)
        if stripped.lower() in _FLOAT_WORDS:
            return _FLOAT_WORDS[stripped.lower()]
        raise _cast_failed(value, 'FLOAT')
    raise _invalid_cast(value, 'FLOAT')


def _cast_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, (int, Decimal)):
        return _DECIMAL_CONTEXT.create_decimal(value)
    if isinstance(value, float):
        if value != value or value in (float('inf'), float('-inf')):
            raise _cast_failed(value, 'DECIMAL')
        return _DECIMAL_CONTEXT.create_decimal(repr(value))
    if isinstance(value, str):
        stripped = value.strip()
        if _NUMBER_TEXT.fullmatch(stripped):
            return _DECIMAL_CONTEXT.create_decimal(stripped)
        raise _cast_failed(value, 'DECIMAL')
    raise _invalid_cast(value, 'DECIMAL')


def _cast_string(value: Any) -> str:
    if isinstance(value, (list, dict)):
        raise _invalid_cast(value, 'STRING')
    return to_text(value)


def _cast_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_timestamp(value.strip())
    raise _invalid_cast(value, 'TIMESTAMP')


_CASTS: Dict[str, Callable[[Any], Any]] = {
    'BOOL': _cast_bool, 'INT': _cast_int, 'FLOAT': _cast_float,
    'DECIMAL': _cast_decimal, 'STRING': _cast_string,
    'TIMESTAMP': _cast_timestamp,
}


# -- argument checks -------------------------------------------------------

def _wrong_type(function: str, position: int, wanted: str,
                value: Any) -> SelectError:
    return SelectError(
        'IncorrectSqlFunctionArgumentType',
        'Argument %d of %s must be %s, not %s.'
        % (position, function, wanted, type_name(value)))


def _string_arg(function: str, position: int, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong_type(function, position, 'a STRING', value)
    return value


def _integer_arg(function: str, position: int, value: Any) -> int:
    """An INT, or a number with no fraction (``1.0`` from a literal)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (float, Decimal)) and value == value \
            and value not in (float('inf'), float('-inf')) \
            and value == int(value):
        return int(value)
    raise _wrong_type(function, position, 'an INT', value)


def _timestamp_arg(function: str, position: int, value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise _wrong_type(function, position, 'a TIMESTAMP', value)
    return value


def _date_part(function: str, part: str, allowed: Tuple[str, ...]) -> str:
    if part not in allowed:
        raise SelectError(
            'ParseExpectedDatePart', '%s takes a date part of %s, not %s.'
            % (function, ', '.join(allowed), part))
    return part


# -- string functions ------------------------------------------------------

def _char_length(s: Any) -> int:
    """Characters, not bytes: Python strings count code points."""
    return len(_string_arg('CHAR_LENGTH', 1, s))


def _lower(s: Any) -> str:
    return _string_arg('LOWER', 1, s).lower()


def _upper(s: Any) -> str:
    return _string_arg('UPPER', 1, s).upper()


def _substring(s: Any, start: Any, length: Any = None) -> str:
    """Positions ``start`` .. ``start + length - 1`` (1-based) that exist."""
    text = _string_arg('SUBSTRING', 1, s)
    first = _integer_arg('SUBSTRING', 2, start)
    if length is None:
        return text[max(first, 1) - 1:]
    count = _integer_arg('SUBSTRING', 3, length)
    if count < 0:
        raise SelectError('IllegalSqlFunctionArgument',
                          'SUBSTRING length must not be negative: %d.'
                          % count)
    end = first + count
    begin = max(first, 1)
    return text[begin - 1:max(end - 1, begin - 1)]


def _trim(mode: str, chars: Any, s: Any) -> str:
    """Strip any of ``chars`` (default one space) from the chosen ends."""
    text = _string_arg('TRIM', 2, s)
    removed = ' ' if chars is None else _string_arg('TRIM', 1, chars)
    if mode == 'LEADING':
        return text.lstrip(removed)
    if mode == 'TRAILING':
        return text.rstrip(removed)
    return text.strip(removed)


# -- date functions --------------------------------------------------------

_ADD_PARTS = ('YEAR', 'MONTH', 'DAY', 'HOUR', 'MINUTE', 'SECOND')
_EXTRACT_PARTS = _ADD_PARTS + ('TIMEZONE_HOUR', 'TIMEZONE_MINUTE')
#: The precision a timestamp needs at least to show a change of a part.
_PART_PRECISION = {'YEAR': 'YEAR', 'MONTH': 'MONTH', 'DAY': 'DAY',
                   'HOUR': 'MINUTE', 'MINUTE': 'MINUTE', 'SECOND': 'SECOND'}
_PART_MICROSECONDS = {'DAY': 86400 * 10 ** 6, 'HOUR': 3600 * 10 ** 6,
                      'MINUTE': 60 * 10 ** 6, 'SECOND': 10 ** 6}


def _add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by calendar months, the day clamped to the month."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_month = datetime(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    return moment.replace(year=year, month=month,
                          day=min(moment.day, last_day))


def _date_add(part: str, quantity: Any, ts: Any) -> Timestamp:
    """``ts`` moved by ``quantity`` of ``part``, precision grown to show it."""
    _date_part('DATE_ADD', part, _ADD_PARTS)
    amount = _integer_arg('DATE_ADD', 2, quantity)
    stamp = _as_timestamp(_timestamp_arg('DATE_ADD', 3, ts))
    try:
        if part in ('YEAR', 'MONTH'):
            moved = _add_months(stamp, amount * (12 if part == 'YEAR' else 1))
        else:
            moved = stamp + timedelta(
                microseconds=amount * _PART_MICROSECONDS[part])
    except (OverflowError, ValueError):
        raise SelectError('IllegalSqlFunctionArgument',
                          'DATE_ADD result is out of range.') from None
    precision = max(stamp.precision, _PART_PRECISION[part],
                    key=PRECISIONS.index)
    return make_timestamp(moved, precision, stamp.fraction,
                          stamp.offset_known)


def _date_diff(part: str, ts1: Any, ts2: Any) -> int:
    """Whole ``part`` units from ``ts1`` to ``ts2`` (negative if earlier)."""
    _date_part('DATE_DIFF', part, _ADD_PARTS)
    start = _timestamp_arg('DATE_DIFF', 2, ts1).astimezone(timezone.utc)
    end = _timestamp_arg('DATE_DIFF', 3, ts2).astimezone(timezone.utc)
    if part in ('YEAR', 'MONTH'):
        months = _whole_months(start, end)
        return months if part == 'MONTH' else _toward_zero(months, 12)
    elapsed = (end - start) // timedelta(microseconds=1)
    return _toward_zero(elapsed, _PART_MICROSECONDS[part])


def _whole_months(start: datetime, end: datetime) -> int:
    """A month counts once ``end``'s day and time reach ``start``'s.

    So Jan 31 to Feb 28 is no month yet, as in ``java.time``, which S3's
    answers follow.
    """
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > 0 and _within_month(end) < _within_month(start):
        months -= 1
    elif months < 0 and _within_month(end) > _within_month(start):
        months += 1
    return months


def _within_month(moment: datetime) -> Tuple[int, ...]:
    return (moment.day, moment.hour, moment.minute, moment.second,
            moment.microsecond)


def _toward_zero(amount: int, unit: int) -> int:
    whole = abs(amount) // unit
    return -whole if amount < 0 else whole


def _extract(part: str, ts: Any) -> int:
    """A field of the local time, or of its offset (signed like it)."""
    _date_part('EXTRACT', part, _EXTRACT_PARTS)
    moment = _timestamp_arg('EXTRACT', 2, ts)
    if part.startswith('TIMEZONE_'):
        minutes = _offset_minutes(moment)
        hours_or_minutes = (divmod(abs(minutes), 60)
                            [0 if part == 'TIMEZONE_HOUR' else 1])
        return -hours_or_minutes if minutes < 0 else hours_or_minutes
    return getattr(moment, part.lower())


def _utcnow() -> Timestamp:
    now = datetime.now(timezone.utc)
    return make_timestamp(now, 'FRACTION', '%03d' % (now.microsecond // 1000))


# -- TO_STRING / TO_TIMESTAMP patterns -------------------------------------

#: Pattern letters and the repeat counts each takes.
_PATTERN_COUNTS = {
    'y': range(1, 10), 'M': range(1, 6), 'd': range(1, 3),
    'a': range(1, 2), 'h': range(1, 3), 'H': range(1, 3),
    'm': range(1, 3), 's': range(1, 3), 'S': range(1, 10),
    'n': range(1, 2), 'X': range(1, 6), 'x': range(1, 6),
}
#: The timestamp field each letter reads, for parsing patterns.
_LETTER_FIELD = {'y': 'year', 'M': 'month', 'd': 'day', 'h': 'hour',
                 'H': 'hour', 'a': 'ampm', 'm': 'minute', 's': 'second',
                 'S': 'fraction', 'n': 'fraction', 'X': 'offset',
                 'x': 'offset'}
#: Fields a parsed timestamp fills, coarsest first, and their precision.
_FIELD_ORDER = (('year', 'YEAR'), ('month', 'MONTH'), ('day', 'DAY'),
                ('hour', None), ('minute', 'MINUTE'), ('second', 'SECOND'),
                ('fraction', 'FRACTION'))

Token = Tuple[str, str]  # ('letters', 'yyyy') or ('text', 'T')


def _tokenize(pattern: str) -> List[Token]:
    """Runs of one pattern letter, and literal text (``'...'`` quoted)."""
    tokens: List[Token] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "'":
            text, index = _quoted(pattern, index)
            tokens.append(('text', text))
        elif char.isascii() and char.isalpha():
            end = index
            while end < len(pattern) and pattern[end] == char:
                end += 1
            tokens.append(('letters', _checked_letters(pattern[index:end])))
            index = end
        else:
            tokens.append(('text', char))
            index += 1
    return tokens


def _quoted(pattern: str, index: int) -> Tuple[str, int]:
    """The literal starting at quote ``index``; ``''`` is one quote."""
    if pattern.startswith("''", index):
        return "'", index + 2
    close = index + 1
    text = ''
    while True:
        if close >= len(pattern):
            raise SelectError(
                'EvaluatorUnterminatedTimestampFormatPatternToken',
                'Unterminated quoted text in timestamp pattern %r.'
                % pattern)
        if pattern.startswith("''", close):
            text, close = text + "'", close + 2
        elif pattern[close] == "'":
            return text, close + 1
        else:
            text, close = text + pattern[close], close + 1


def _checked_letters(run: str) -> str:
    counts = _PATTERN_COUNTS.get(run[0])
    if counts is None:
        raise SelectError('EvaluatorInvalidTimestampFormatPatternSymbol',
                          'Invalid timestamp pattern symbol %r.' % run[0])
    if len(run) not in counts:
        raise SelectError('EvaluatorInvalidTimestampFormatPatternToken',
                          'Invalid timestamp pattern token %r.' % run)
    return run


def _format_letters(run: str, moment: datetime) -> str:
    """One pattern token of ``moment`` as TO_STRING prints it."""
    letter, count = run[0], len(run)
    if letter == 'y':
        return ('%02d' % (moment.year % 100) if count == 2
                else '%0*d' % (count if count > 2 else 1, moment.year))
    if letter == 'M':
        name = _MONTH_NAMES[moment.month - 1]
        return {3: name[:3], 4: name, 5: name[0]}.get(
            count, '%0*d' % (count, moment.month))
    if letter == 'a':
        return 'AM' if moment.hour < 12 else 'PM'
    if letter in 'Ss':
        fraction = _fraction_of(moment).ljust(9, '0')
        return (fraction[:count] if letter == 'S'
                else '%0*d' % (count, moment.second))
    if letter == 'n':
        return str(int(_fraction_of(moment).ljust(9, '0')[:9]))
    if letter in 'Xx':
        return _format_offset(_offset_minutes(moment), count, letter == 'X')
    number = {'d': moment.day, 'H': moment.hour,
              'h': moment.hour % 12 or 12, 'm': moment.minute}[letter]
    return '%0*d' % (count, number)


def _format_offset(minutes: int, count: int, zulu: bool) -> str:
    if zulu and minutes == 0:
        return 'Z'
    sign = '-' if minutes < 0 else '+'
    hours, rest = divmod(abs(minutes), 60)
    if count == 1:
        return '%s%02d' % (sign, hours) + ('%02d' % rest if rest else '')
    separator = ':' if count in (3, 5) else ''
    return '%s%02d%s%02d' % (sign, hours, separator, rest)


def _to_string(ts: Any, pattern: Any) -> str:
    moment = _timestamp_arg('TO_STRING', 1, ts)
    tokens = _tokenize(_string_arg('TO_STRING', 2, pattern))
    return ''.join(_format_letters(value, moment) if kind == 'letters'
                   else value for kind, value in tokens)


def _to_timestamp(s: Any, pattern: Any = None) -> Timestamp:
    text = _string_arg('TO_TIMESTAMP', 1, s)
    if pattern is None:
        return parse_timestamp(text.strip())
    return _parse_with_pattern(text, _string_arg('TO_TIMESTAMP', 2, pattern))


def _letters_regex(run: str) -> str:
    """The regex one pattern token reads, in a group named for its field."""
    letter, count = run[0], len(run)
    if run == 'MMMMM':
        raise SelectError(
            'EvaluatorInvalidTimestampFormatPatternSymbolForParsing',
            'MMMMM (first letter of the month) cannot be parsed.')
    if letter == 'M' and count >= 3:
        names = [name if count == 4 else name[:3] for name in _MONTH_NAMES]
        body = '|'.join(names)
    elif letter == 'a':
        body = '[AaPp][Mm]'
    elif letter in 'Xx':
        body = ('Z|' if letter == 'X' else '') + r'[+-]\d{2}(?::?\d{2})?'
    elif letter == 'n':
        body = r'\d{1,9}'
    elif letter == 'S' or count > 1:
        body = r'\d{%d}' % count
    else:
        body = r'\d{1,%d}' % (4 if letter == 'y' else 2)
    return '(?P<%s>%s)' % (_LETTER_FIELD[letter], body)


def _check_pattern_fields(runs: List[str]) -> Dict[str, str]:
    """Each field once, the clock matching AM/PM, no field left out."""
    fields: Dict[str, str] = {}
    for run in runs:
        field = _LETTER_FIELD[run[0]]
        if field in fields:
            raise SelectError(
                'EvaluatorTimestampFormatPatternDuplicateFields',
                'Timestamp pattern gives the %s twice.' % field)
        fields[field] = run
    twelve_hour = fields.get('hour', ' ')[0] == 'h'
    if twelve_hour != ('ampm' in fields):
        raise SelectError(
            'EvaluatorTimestampFormatPatternHourClockAmPmMismatch',
            'A 12-hour clock (h) needs AM/PM (a), and only it takes one.')
    given = [name in fields for name, _ in _FIELD_ORDER]
    depth = given.index(False) if False in given else len(given)
    if any(given[depth:]) or depth == 0 or depth == 4:
        raise SelectError(
            'EvaluatorInvalidTimestampFormatPattern',
            'Timestamp pattern needs the %s field.' % _FIELD_ORDER[depth][0])
    return fields


def _parse_with_pattern(text: str, pattern: str) -> Timestamp:
    tokens = _tokenize(pattern)
    runs = [value for kind, value in tokens if kind == 'letters']
    fields = _check_pattern_fields(runs)
    regex = ''.join(_letters_regex(value) if kind == 'letters'
                    else re.escape(value) for kind, value in tokens)
    found = re.fullmatch(regex, text, re.IGNORECASE)
    if found is None:
        raise SelectError('CastFailed', 'Cannot read %r as a TIMESTAMP with '
                          'pattern %r.' % (text, pattern))
    try:
        return _timestamp_from_fields(found.groupdict(), fields)
    except ValueError:
        raise SelectError('CastFailed', 'Cannot read %r as a TIMESTAMP with '
                          'pattern %r.' % (text, pattern)) from None


def _timestamp_from_fields(part: Dict[str, str],
                           fields: Dict[str, str]) -> Timestamp:
    year = int(part['year'])
    if fields['year'] == 'yy':
        year += 2000
    month = _parsed_month(part.get('month'))
    hour = int(part.get('hour') or 0)
    if 'ampm' in fields:
        if not 1 <= hour <= 12:
            raise ValueError(hour)
        hour = hour % 12 + (12 if part['ampm'].upper() == 'PM' else 0)
    fraction = part.get('fraction') or ''
    if fields.get('fraction') == 'n':
        fraction = fraction.rjust(9, '0')
    precision = [level for name, level in _FIELD_ORDER
                 if name in fields and level][-1]
    moment = datetime(year, month, int(part.get('day') or 1), hour,
                      int(part.get('minute') or 0),
                      int(part.get('second') or 0),
                      tzinfo=_offset_zone(_colon_offset(part.get('offset'))))
    return make_timestamp(moment, precision, fraction,
                          _finer(precision, 'DAY'))


def _parsed_month(text: Optional[str]) -> int:
    if not text:
        return 1
    if text.isdigit():
        return int(text)
    for number, name in enumerate(_MONTH_NAMES, 1):
        if name.lower().startswith(text.lower()):
            return number
    raise ValueError(text)


def _colon_offset(text: Optional[str]) -> Optional[str]:
    """``+07``, ``+0700`` or ``+07:00`` as ``+07:00`` (``Z`` as is)."""
    if not text or text.upper() == 'Z':
        return None
    digits = text[1:].replace(':', '').ljust(4, '0')
    return '%s%s:%s' % (text[0], digits[:2], digits[2:])


# -- dispatch --------------------------------------------------------------

#: name -> (function, smallest and largest argument count).
_FUNCTIONS: Dict[str, Tuple[Callable[..., Any], int, int]] = {
    'CHAR_LENGTH': (_char_length, 1, 1),
    'CHARACTER_LENGTH': (_char_length, 1, 1),
    'LOWER': (_lower, 1, 1),
    'UPPER': (_upper, 1, 1),
    'SUBSTRING': (_substring, 2, 3),
    'TRIM': (_trim, 3, 3),
    'DATE_ADD': (_date_add, 3, 3),
    'DATE_DIFF': (_date_diff, 3, 3),
    'EXTRACT': (_extract, 2, 2),
    'TO_STRING': (_to_string, 2, 2),
    'TO_TIMESTAMP': (_to_timestamp, 1, 2),
    'UTCNOW': (_utcnow, 0, 0),
}
#: Arguments that may be None because the SQL left them out, not NULL.
_OPTIONAL_ARGS = {'SUBSTRING': (2,), 'TRIM': (1,), 'TO_TIMESTAMP': (1,)}


def is_function(name: str) -> bool:
    """Whether ``call`` runs a function of this (upper-case) name."""
    return name in _FUNCTIONS


def call(name: str, args: List[Any]) -> Any:
    """Run scalar function ``name`` on evaluated, normalised ``args``.

    NULL or MISSING in an argument the SQL gave makes the result NULL.
    """
    entry = _FUNCTIONS.get(name)
    if entry is None:
        raise SelectError('UnsupportedFunction',
                          'Unsupported SQL function %s.' % name)
    function, fewest, most = entry
    if not fewest <= len(args) <= most:
        raise SelectError(
            'EvaluatorInvalidArguments',
            '%s takes %s arguments, not %d.' % (
                name, fewest if fewest == most else
                '%d to %d' % (fewest, most), len(args)))
    optional = _OPTIONAL_ARGS.get(name, ())
    for position, value in enumerate(args):
        if value is MISSING or (value is None and position not in optional):
            return None
    return function(*args)
