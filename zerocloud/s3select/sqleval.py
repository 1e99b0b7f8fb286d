"""The evaluator of S3 Select's SQL: operator semantics and the compiler
of a parsed expression into a Python closure over one row.

Semantics (S3's SQL reference where it says, PartiQL's otherwise):

* Three-valued logic: ``NULL`` and ``MISSING`` are unknown in ``AND``,
  ``OR``, ``NOT``; a ``WHERE`` keeps a row only when it is ``TRUE``.
  ``MISSING`` in an operator gives ``MISSING``, ``NULL`` gives ``NULL``.
  ``x IS NULL`` is also true for ``MISSING``; ``IS MISSING`` only for it.
* S3 reads every CSV field as a string ("if CAST is not defined, all input
  data is treated as a string"); we convert a string implicitly where the
  other operand needs it, so ``s._2 > 10`` on CSV compares numbers: a
  string that is a number (``12``, ``-1.5``, ``2e3``) when compared or
  computed with a number, ``true``/``false`` with a boolean, Ion
  timestamp text with a timestamp.  Values that still differ in type are
  never equal (``=`` false, ``<>`` true) and have no order (``<`` and
  the like give ``NULL``, so the row is not selected); arithmetic on a
  string that is no number is ``CastFailed``.  Two strings compare as
  strings (``MAX`` of CSV fields too); ``CAST`` when that is not meant.
* Numbers: ``int`` with ``int`` stays ``int`` (8 bytes, else
  ``IntegerOverflow``; ``/`` truncates toward zero, ``%`` has the sign of
  the dividend), with a ``DECIMAL`` becomes ``DECIMAL`` (38 digits), with
  a ``FLOAT`` becomes ``FLOAT``.  Division by zero is
  ``IllegalSqlFunctionArgument`` (S3 lists no code of its own for it).
* ``||`` joins strings only (``IncorrectSqlFunctionArgumentType``
  otherwise); ``LIKE`` matches strings only (``LikeInvalidInputs``),
  ``%`` any run of characters, ``_`` one, the ``ESCAPE`` character (one
  character) only before ``%``, ``_`` or itself
  (``EvaluatorLikePatternInvalidEscapeSequence``).
* Aggregates skip ``NULL`` and ``MISSING``; ``COUNT`` of nothing is 0, the
  others ``NULL``.  ``SUM`` of ``INT`` is ``INT``, ``AVG`` of ``INT`` is
  ``DECIMAL``, of ``FLOAT`` is ``FLOAT``.

CSV columns (``_N``, header names) are resolved once per query against
the header, so a row costs list indexing; a JSON path is looked up in each
record, unquoted names case-insensitively (``AmbiguousFieldName`` when
two keys differ only in case), quoted names exactly.
"""

import math
import re
from decimal import Context, Decimal
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from . import functions
from . import sqllex
from .errors import SelectError
from .sqlparse import (Aggregate, Between, Binary, Call, Case, Cast, InList,
                       IsTest, Like, Literal, Name, Path, Step,
                       TimestampLiteral, Unary, Wildcard)
from .values import MISSING, type_name

Evaluator = Callable[[Any], Any]

INT_MIN = -2 ** 63
INT_MAX = 2 ** 63 - 1
_DECIMAL = Context(prec=38)
# ASCII digits only, as S3 reads numbers.
_NUMBER_TEXT = re.compile(
    r'\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*')
_INTEGER_TEXT = re.compile(r'\s*[+-]?[0-9]+\s*')


# -- implicit conversion ---------------------------------------------------

#: The type family each S3 type compares within.
_FAMILIES = {'BOOL': 'bool', 'INT': 'number', 'FLOAT': 'number',
             'DECIMAL': 'number', 'STRING': 'string',
             'TIMESTAMP': 'timestamp', 'LIST': 'list', 'STRUCT': 'struct'}


def _family(value: Any) -> str:
    """The type family values compare within."""
    return _FAMILIES.get(type_name(value), 'other')


def number_from_text(text: str) -> Any:
    """``text`` as ``int`` or ``Decimal`` (``float`` with an exponent), or
    ``None`` when it is not a number."""
    if _INTEGER_TEXT.fullmatch(text):
        return int(text)
    found = _NUMBER_TEXT.fullmatch(text)
    if found is None:
        return None
    return float(text) if found.group(2) else Decimal(text.strip())


def _from_text(text: str, family: str) -> Any:
    """``text`` as a value of ``family``, or ``None`` when it is not one."""
    if family == 'number':
        return number_from_text(text)
    if family == 'bool':
        return {'true': True, 'false': False}.get(text.strip().lower())
    if family == 'timestamp':
        try:
            return functions.parse_timestamp(text.strip())
        except SelectError:
            return None
    return None


def _same_family(left: Any, right: Any) -> Optional[Tuple[Any, Any]]:
    """``left`` and ``right`` converted to one type family, or ``None``."""
    left_family, right_family = _family(left), _family(right)
    if left_family == right_family:
        return left, right
    if left_family == 'string':
        left = _from_text(left, right_family)
        return None if left is None else (left, right)
    if right_family == 'string':
        right = _from_text(right, left_family)
        return None if right is None else (left, right)
    return None


# -- comparison and logic --------------------------------------------------

_ORDERED = frozenset(('bool', 'number', 'string', 'timestamp'))
#: Types ``compare`` takes as they are when both sides are numbers or both
#: strings (``bool`` is not among them: ``type(True)`` is ``bool``).
_PLAIN = frozenset((int, float, str))
_COMPARE = {
    '=': lambda a, b: a == b, '!=': lambda a, b: a != b,
    '<>': lambda a, b: a != b, '<': lambda a, b: a < b,
    '<=': lambda a, b: a <= b, '>': lambda a, b: a > b,
    '>=': lambda a, b: a >= b,
}


def compare(op: str, left: Any, right: Any) -> Any:
    """``left op right`` with S3's NULL/MISSING rules and implicit
    conversion of strings (module docstring)."""
    if type(left) in _PLAIN and type(right) in _PLAIN and (
            type(left) is type(right) or str not in (type(left),
                                                     type(right))):
        # The common case, two numbers or two strings: nothing to convert.
        return _COMPARE[op](left, right)
    if left is MISSING or right is MISSING:
        return MISSING
    if left is None or right is None:
        return None
    pair = _same_family(left, right)
    if pair is None:
        return {'=': False, '!=': True, '<>': True}.get(op)
    if op not in ('=', '!=', '<>') and _family(pair[0]) not in _ORDERED:
        return None
    return _COMPARE[op](*pair)


def _compare_with_number(op: str, left: Evaluator,
                         number: Any) -> Evaluator:
    """``left op <number literal>``: when ``left`` gives a number (a
    ``CAST``), the comparison itself; anything else as :func:`compare`."""
    test = _COMPARE[op]

    def compare_number(row: Any) -> Any:
        value = left(row)
        if type(value) in (int, float):
            return test(value, number)
        return compare(op, value, number)
    return compare_number


def truth(value: Any) -> Optional[bool]:
    """``value`` as a condition: ``True``, ``False`` or ``None``
    (unknown)."""
    if value is True or value is False:
        return value
    if value is None or value is MISSING:
        return None
    if isinstance(value, str):
        converted = _from_text(value, 'bool')
        if converted is not None:
            return converted
    raise SelectError('IncorrectSqlFunctionArgumentType',
                      'Expected a boolean condition, got %s.' % _show(value))


def logical_and(left: Evaluator, right: Evaluator) -> Evaluator:
    def evaluate(row: Any) -> Optional[bool]:
        first = truth(left(row))
        if first is False:
            return False
        second = truth(right(row))
        if second is False:
            return False
        return True if first and second else None
    return evaluate


def logical_or(left: Evaluator, right: Evaluator) -> Evaluator:
    def evaluate(row: Any) -> Optional[bool]:
        first = truth(left(row))
        if first is True:
            return True
        second = truth(right(row))
        if second is True:
            return True
        return False if first is False and second is False else None
    return evaluate


def logical_not(value: Any) -> Optional[bool]:
    value = truth(value)
    return None if value is None else not value


# -- arithmetic ------------------------------------------------------------

def _as_number(value: Any, op: str) -> Any:
    """An operand of ``op`` as a number, strings converted."""
    if isinstance(value, str):
        number = number_from_text(value)
        if number is None:
            raise SelectError('CastFailed', 'Cannot use %s as a number in '
                              "'%s'." % (_show(value), op))
        return number
    if isinstance(value, bool) or not isinstance(value, (int, float,
                                                         Decimal)):
        raise SelectError('IncorrectSqlFunctionArgumentType',
                          "'%s' needs numbers, got %s." % (op, _show(value)))
    return value


def checked_int(value: int) -> int:
    """``value`` if it fits S3's 8-byte INT."""
    if not INT_MIN <= value <= INT_MAX:
        raise SelectError('IntegerOverflow',
                          'Integer result %d does not fit 8 bytes.' % value)
    return value


def _int_op(op: str, left: int, right: int) -> int:
    if op == '+':
        return checked_int(left + right)
    if op == '-':
        return checked_int(left - right)
    if op == '*':
        return checked_int(left * right)
    quotient = abs(left) // abs(right)
    if (left < 0) != (right < 0):
        quotient = -quotient
    if op == '/':
        return checked_int(quotient)
    return left - right * quotient


def _decimal_op(op: str, left: Decimal, right: Decimal) -> Decimal:
    if op == '+':
        return _DECIMAL.add(left, right)
    if op == '-':
        return _DECIMAL.subtract(left, right)
    if op == '*':
        return _DECIMAL.multiply(left, right)
    if op == '/':
        return _DECIMAL.divide(left, right)
    return _DECIMAL.remainder(left, right)


def _float_op(op: str, left: float, right: float) -> float:
    if op == '+':
        return left + right
    if op == '-':
        return left - right
    if op == '*':
        return left * right
    if op == '/':
        return left / right
    return math.fmod(left, right)


def arithmetic(op: str, left: Any, right: Any) -> Any:
    """``left op right`` for ``+ - * / %``."""
    if type(left) is float and type(right) is float and (
            right or op not in ('/', '%')):
        return _float_op(op, left, right)   # the common case, as it is
    if left is MISSING or right is MISSING:
        return MISSING
    if left is None or right is None:
        return None
    left, right = _as_number(left, op), _as_number(right, op)
    if op in ('/', '%') and right == 0:
        raise SelectError('IllegalSqlFunctionArgument',
                          "Division by zero in '%s'." % op)
    if isinstance(left, float) or isinstance(right, float):
        return _float_op(op, float(left), float(right))
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        return _decimal_op(op, Decimal(left), Decimal(right))
    return _int_op(op, left, right)


def negate(value: Any) -> Any:
    if value is None or value is MISSING:
        return value
    value = _as_number(value, '-')
    return checked_int(-value) if isinstance(value, int) else -value


def concatenate(left: Any, right: Any) -> Any:
    if left is MISSING or right is MISSING:
        return MISSING
    if left is None or right is None:
        return None
    if not isinstance(left, str) or not isinstance(right, str):
        raise SelectError('IncorrectSqlFunctionArgumentType',
                          "'||' joins strings, got %s and %s; CAST them."
                          % (_show(left), _show(right)))
    return left + right


# -- LIKE ------------------------------------------------------------------

def like_regex(pattern: str, escape: Optional[str]) -> 're.Pattern[str]':
    """The regular expression of LIKE ``pattern``."""
    if escape is not None and len(escape) != 1:
        raise SelectError('LikeInvalidInputs', 'The ESCAPE of LIKE must be '
                          'one character, not %r.' % escape)
    parts = []
    chars = iter(pattern)
    for char in chars:
        if char == escape:
            following = next(chars, None)
            if following not in ('%', '_', escape):
                raise SelectError(
                    'EvaluatorLikePatternInvalidEscapeSequence',
                    'In LIKE pattern %r the escape %r must come before %%, '
                    '_ or itself.' % (pattern, escape))
            parts.append(re.escape(following))
        elif char == '%':
            parts.append('.*')
        elif char == '_':
            parts.append('.')
        else:
            parts.append(re.escape(char))
    return re.compile(''.join(parts), re.DOTALL)


def like(value: Any, pattern: Any, escape: Any) -> Any:
    """``value LIKE pattern ESCAPE escape``, the pattern compiled per
    call."""
    if any(v is MISSING for v in (value, pattern, escape)):
        return MISSING
    if value is None or pattern is None:
        return None
    _like_inputs(value, pattern, escape)
    return like_regex(pattern, escape).fullmatch(value) is not None


def _like_inputs(value: Any, pattern: Any, escape: Any = None):
    for what in (value, pattern) + (() if escape is None else (escape,)):
        if not isinstance(what, str):
            raise SelectError('LikeInvalidInputs',
                              'LIKE works on strings, got %s.' % _show(what))


# -- aggregates ------------------------------------------------------------

class Accumulator:
    """One aggregate's running state over the rows that pass ``WHERE``."""

    name = ''

    def add(self, value: Any) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError


class Count(Accumulator):
    name = 'COUNT'

    def __init__(self):
        self.count = 0

    def add(self, value: Any) -> None:
        if value is not None and value is not MISSING:
            self.count += 1

    def result(self) -> int:
        return self.count


class Sum(Accumulator):
    name = 'SUM'

    def __init__(self):
        self.total: Any = None
        self.count = 0

    def add(self, value: Any) -> None:
        if type(value) is float and type(self.total) is float:
            self.total += value   # the common case, as arithmetic does it
            self.count += 1
            return
        if value is None or value is MISSING:
            return
        value = _as_number(value, self.name)
        self.total = value if self.total is None else arithmetic(
            '+', self.total, value)
        self.count += 1

    def result(self) -> Any:
        return self.total


class Average(Sum):
    name = 'AVG'

    def result(self) -> Any:
        if self.total is None:
            return None
        if isinstance(self.total, float):
            return self.total / self.count
        return _DECIMAL.divide(Decimal(self.total), Decimal(self.count))


class Extreme(Accumulator):
    """``MIN`` (``keep`` is ``<``) or ``MAX`` (``>``)."""

    def __init__(self, name: str, keep: str):
        self.name = name
        self.keep = keep
        self.best: Any = None

    def add(self, value: Any) -> None:
        if value is None or value is MISSING:
            return
        if self.best is None:
            self.best = value
            return
        better = compare(self.keep, value, self.best)
        if better is None:
            raise SelectError('IncorrectSqlFunctionArgumentType',
                              '%s cannot order %s and %s.'
                              % (self.name, _show(value), _show(self.best)))
        if better:
            self.best = value

    def result(self) -> Any:
        return self.best


ACCUMULATORS: Dict[str, Callable[[], Accumulator]] = {
    'COUNT': Count, 'SUM': Sum, 'AVG': Average,
    'MIN': lambda: Extreme('MIN', '<'), 'MAX': lambda: Extreme('MAX', '>'),
}


# -- paths -----------------------------------------------------------------

def field(value: Any, name: str, quoted: bool) -> Any:
    """Field ``name`` of a JSON object, ``MISSING`` when there is none."""
    if not isinstance(value, dict):
        return MISSING
    if quoted:
        return value.get(name, MISSING)
    wanted = name.lower()
    found = [key for key in value
             if isinstance(key, str) and key.lower() == wanted]
    if len(found) > 1:
        raise SelectError('AmbiguousFieldName', 'Field name %s matches %s '
                          'in the record.' % (name, ', '.join(found)))
    return value[found[0]] if found else MISSING


def _step_getter(step: Step) -> Evaluator:
    if isinstance(step, Name):
        name, quoted = step.name, step.quoted
        return lambda value: field(value, name, quoted)
    index = step.index
    return lambda value: (value[index] if isinstance(value, list)
                          and 0 <= index < len(value) else MISSING)


def expand_path(value: Any, steps: Sequence[Step]):
    """The values a ``FROM S3Object[*]...`` path reaches from one record;
    a wildcard that reaches nothing gives one ``MISSING``."""
    if not steps:
        yield value
        return
    step, rest = steps[0], steps[1:]
    if not isinstance(step, Wildcard):
        yield from expand_path(_step_getter(step)(value), rest)
        return
    if step.of_object:
        items = list(value.values()) if isinstance(value, dict) else []
    else:
        items = value if isinstance(value, list) else []
    if not items:
        yield MISSING
    for item in items:
        yield from expand_path(item, rest)


def matches_alias(name: Name, aliases: Set[str]) -> bool:
    return name.name.lower() in aliases


# -- the compiler ----------------------------------------------------------

class Compiler:
    """Turns expression nodes into closures over a row.

    ``aliases`` are the lower-case names of the row itself; subclasses say
    what a row is and how a ``Path`` reads it (``_Path``).  Aggregates
    compile to their accumulator's result and are fed through
    ``aggregate_updates``.
    """

    def __init__(self, text: str, aliases: Set[str]):
        self.text = text
        self.aliases = aliases
        self.aggregate_updates: List[Tuple[Optional[Evaluator],
                                           Accumulator]] = []

    def compile(self, node: Any) -> Evaluator:
        return getattr(self, '_' + type(node).__name__)(node)

    def _Path(self, node: Path) -> Evaluator:
        raise NotImplementedError

    def _Literal(self, node: Literal) -> Evaluator:
        value = node.value
        return lambda row: value

    def _TimestampLiteral(self, node: TimestampLiteral) -> Evaluator:
        try:
            value = functions.parse_timestamp(node.text)
        except SelectError:
            raise SelectError('LexerInvalidIONLiteral',
                              'Invalid timestamp literal `%s` at %s.'
                              % (node.text, sqllex.where(self.text, node.pos))
                              ) from None
        return lambda row: value

    def _Unary(self, node: Unary) -> Evaluator:
        operand = self.compile(node.operand)
        if node.op == 'NOT':
            return lambda row: logical_not(operand(row))
        if node.op == '-':
            return lambda row: negate(operand(row))
        return lambda row: arithmetic('+', 0, operand(row))

    def _Binary(self, node: Binary) -> Evaluator:
        left, right = self.compile(node.left), self.compile(node.right)
        op = node.op
        if op == 'AND':
            return logical_and(left, right)
        if op == 'OR':
            return logical_or(left, right)
        if op == '||':
            return lambda row: concatenate(left(row), right(row))
        if op in _COMPARE:
            if isinstance(node.right, Literal) and \
                    type(node.right.value) in (int, float):
                return _compare_with_number(op, left, node.right.value)
            return lambda row: compare(op, left(row), right(row))
        return lambda row: arithmetic(op, left(row), right(row))

    def _Like(self, node: Like) -> Evaluator:
        return _negated(self._like(node), node.negated)

    def _like(self, node: Like) -> Evaluator:
        """A constant pattern is compiled (and checked) once."""
        value = self.compile(node.value)
        constant = isinstance(node.pattern, Literal) and (
            node.escape is None or isinstance(node.escape, Literal))
        if not constant or not isinstance(node.pattern.value, str):
            pattern = self.compile(node.pattern)
            escape = (self.compile(node.escape) if node.escape is not None
                      else lambda row: None)
            return lambda row: like(value(row), pattern(row), escape(row))
        fixed_escape = None if node.escape is None else node.escape.value
        _like_inputs('', node.pattern.value, fixed_escape)
        regex = like_regex(node.pattern.value, fixed_escape)
        return lambda row: _like_fixed(regex, value(row))

    def _InList(self, node: InList) -> Evaluator:
        value = self.compile(node.value)
        items = [self.compile(item) for item in node.items]

        def evaluate(row: Any) -> Any:
            left = value(row)
            unknown = False
            for item in items:
                equal = compare('=', left, item(row))
                if equal is True:
                    return True
                unknown = unknown or equal is not False
            return None if unknown else False
        return _negated(evaluate, node.negated)

    def _Between(self, node: Between) -> Evaluator:
        value = self.compile(node.value)
        low, high = self.compile(node.low), self.compile(node.high)

        def inside(row: Any) -> Optional[bool]:
            checked = value(row)
            above = truth(compare('>=', checked, low(row)))
            below = truth(compare('<=', checked, high(row)))
            if above is False or below is False:
                return False
            return True if above and below else None
        return _negated(inside, node.negated)

    def _IsTest(self, node: IsTest) -> Evaluator:
        value = self.compile(node.value)
        if node.what == 'MISSING':
            def test(row: Any) -> bool:
                return value(row) is MISSING
        else:
            def test(row: Any) -> bool:
                return _is_null(value(row))
        if node.negated:
            return lambda row: not test(row)
        return test

    def _Cast(self, node: Cast) -> Evaluator:
        value, convert = self.compile(node.value), functions.caster(
            node.type_name)
        return lambda row: convert(value(row))

    def _Case(self, node: Case) -> Evaluator:
        whens = [(self.compile(condition), self.compile(result))
                 for condition, result in node.whens]
        default = (self.compile(node.default) if node.default is not None
                   else lambda row: None)
        if node.operand is None:
            def chosen(row: Any) -> Any:
                for condition, result in whens:
                    if truth(condition(row)) is True:
                        return result(row)
                return default(row)
            return chosen
        operand = self.compile(node.operand)

        def simple(row: Any) -> Any:
            value = operand(row)
            for candidate, result in whens:
                if compare('=', value, candidate(row)) is True:
                    return result(row)
            return default(row)
        return simple

    def _Call(self, node: Call) -> Evaluator:
        args = [(lambda row, arg=arg: arg) if isinstance(arg, str)
                else self.compile(arg) for arg in node.args]
        name = node.name
        if name == 'COALESCE':
            return lambda row: _coalesce(args, row)
        if name == 'NULLIF':
            first, second = args
            return lambda row: _nullif(first(row), second(row))
        return lambda row: functions.call(name, [arg(row) for arg in args])

    def _Aggregate(self, node: Aggregate) -> Evaluator:
        accumulator = ACCUMULATORS[node.name]()
        argument = self.compile(node.arg) if node.arg is not None else None
        self.aggregate_updates.append((argument, accumulator))
        return lambda row: accumulator.result()


def _negated(evaluate: Evaluator, negated: bool) -> Evaluator:
    if negated:
        return lambda row: logical_not(evaluate(row))
    return evaluate


def _like_fixed(regex: 're.Pattern[str]', value: Any) -> Any:
    if value is None or value is MISSING:
        return value
    _like_inputs(value, '')
    return regex.fullmatch(value) is not None


def _is_null(value: Any) -> bool:
    return value is None or value is MISSING


def _coalesce(args: List[Evaluator], row: Any) -> Any:
    for arg in args:
        value = arg(row)
        if value is not None and value is not MISSING:
            return value
    return None


def _nullif(first: Any, second: Any) -> Any:
    return None if compare('=', first, second) is True else first


def _show(value: Any) -> str:
    """A value in an error message."""
    if isinstance(value, str):
        return "string '%s'" % (value if len(value) <= 40
                                else value[:40] + '...')
    if value is MISSING:
        return 'MISSING'
    shown = str(value)
    return '%s %s' % (type(value).__name__, shown if len(shown) <= 40
                      else shown[:40] + '...')


class JSONCompiler(Compiler):
    """Rows are JSON values: the record, or what the FROM path reached."""

    def _Path(self, node: Path) -> Evaluator:
        steps = node.steps
        if matches_alias(steps[0], self.aliases):
            steps = steps[1:]
        getters = [_step_getter(step) for step in steps]
        if not getters:
            return lambda row: row
        if len(getters) == 1:
            return getters[0]

        def evaluate(row: Any) -> Any:
            for getter in getters:
                row = getter(row)
            return row
        return evaluate


class CSVCompiler(Compiler):
    """Rows are lists of strings; ``header`` the names with
    ``FileHeaderInfo USE``."""

    def __init__(self, text: str, aliases: Set[str],
                 header: Optional[Sequence[str]]):
        super().__init__(text, aliases)
        self.header = list(header) if header is not None else None

    def _Path(self, node: Path) -> Evaluator:
        steps = node.steps
        if matches_alias(steps[0], self.aliases):
            steps = steps[1:]
            if not steps:
                return self.whole_row
        elif len(steps) > 1:
            raise self.error('InvalidTableAlias', 'Unknown table alias %s'
                             % steps[0].name, node)
        if len(steps) > 1 or not isinstance(steps[0], Name):
            raise self.error('InvalidKeyPath', 'A CSV column has no fields '
                             'or elements', node)
        index = self.column_index(steps[0], node)
        return lambda row: row[index] if index < len(row) else MISSING

    def column_index(self, name: Name, node: Path) -> int:
        """Where column ``name`` (``_N`` or a header name) is in a row."""
        index = positional_index(name.name)
        if index is not None:
            if index < 0 or (self.header is not None
                             and index >= len(self.header)):
                raise self.error('InvalidColumnIndex', 'No column %s'
                                 % name.name, node)
            return index
        if self.header is None:
            raise self.error('EvaluatorBindingDoesNotExist',
                             'Column %s needs FileHeaderInfo USE or _N'
                             % name.name, node)
        if name.quoted:
            found = [i for i, title in enumerate(self.header)
                     if title == name.name]
        else:
            found = [i for i, title in enumerate(self.header)
                     if title.lower() == name.name.lower()]
        if not found:
            raise self.error('EvaluatorBindingDoesNotExist',
                             'No column %s in the header' % name.name, node)
        if len(found) > 1:
            raise self.error('AmbiguousFieldName', 'Column %s matches %s'
                             % (name.name, ', '.join(self.header[i]
                                                     for i in found)), node)
        return found[0]

    def whole_row(self, row: List[str]) -> Dict[str, str]:
        return dict(csv_pairs(row, self.header))

    def error(self, code: str, problem: str, node: Path) -> SelectError:
        return SelectError(code, '%s, at %s.'
                           % (problem, sqllex.where(self.text, node.pos)))


def positional_index(name: str) -> Optional[int]:
    """The row index ``_N`` names (``N - 1``, -1 for ``_0``), or ``None``
    for a name that is not positional."""
    if re.fullmatch(r'_\d+', name):
        return int(name[1:]) - 1
    return None


def csv_pairs(row: Sequence[str],
              header: Optional[Sequence[str]]) -> List[Tuple[str, str]]:
    """A CSV row as (name, value) pairs: header names, ``_N`` past them."""
    names = header or ()
    return [(names[i] if i < len(names) else '_%d' % (i + 1), value)
            for i, value in enumerate(row)]
