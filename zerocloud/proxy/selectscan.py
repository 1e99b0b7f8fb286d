"""S3 Select's native scanner: which selects it answers, and its plans.

The Python engine (:mod:`zerocloud.s3select.engine`) answers every
select; for the common ones a C program,
``zerocloud/s3select/native/selectscan.c`` built for WASI
(``make native``), answers in its place, several times faster, with the
same bytes: same records, same events, same errors.  The proxy decides
here, once per request, from the parsed query; anything this module does
not recognise goes to the Python engine.  The scanner takes:

* CSV whose records end with ``\\n``: a field delimiter and a quote
  character (or none) of one ASCII character each, the quote its own
  escape, a ``Comments`` character of one ASCII character (or none), no
  quoted record delimiters, any ``FileHeaderInfo``; uncompressed (any
  ``ScanRange``) or ``GZIP`` (inflated by the scanner as it reads);
* CSV or JSON output, with any options;
* ``SELECT *``, a list of columns (``_N``, header names, with or without
  the table alias) and ``CAST(column AS INT|FLOAT)``, or a list of
  ``COUNT(*)``, ``COUNT(column)``, ``SUM``, ``MIN``, ``MAX`` of
  ``CAST(column AS INT|FLOAT)``, ``AVG(CAST(column AS FLOAT))``, ``MIN``
  and ``MAX`` of a column;
* a ``WHERE`` of ``AND``, ``OR``, ``NOT`` over comparisons (``IN`` and
  ``BETWEEN`` too) of a column with a string literal, or of a column or
  ``CAST(column AS INT|FLOAT)`` with an integer literal (except for
  ``INT``, one that a double holds exactly); ``column [NOT] LIKE`` a
  literal pattern (and ``ESCAPE``); ``column IS [NOT] NULL|MISSING``;
* ``LIMIT``.

Its plan is a member of the job's image (``/plan``): whitespace-separated
tokens, byte strings as ``x`` and their hex digits::

    zerocloud-select-scan 1
    input <field> <quote> <comment> NONE|USE|IGNORE NONE|GZIP
    range <start> <stop>|-
    output csv ALWAYS|ASNEEDED <field> <record> <quote> <escape>
           | json <record>
    progress 0|1
    limit <n>|-1
    columns <n> (<index>|-1 <name> <quoted 0|1> <where>)...
    select star | items <n> (text|int|float <column>)... |
           aggregates <n> (countall | count <c> | avgfloat <c>
                           | <f><t> <c>)...
    names <n> <name>...
    where none | <condition>
    end

where ``<f><t>`` is one word, ``sum``, ``min`` or ``max`` then ``int`` or
``float`` (of the column ``CAST``), or ``min`` or ``max`` then ``text``;
a condition is ``and <c> <c>``, ``or <c> <c>``, ``not <c>``,
``int|float <column> <op> <integer>`` (the column ``CAST``),
``number <column> <op> <integer>`` (the column compared as the number it
spells, if any), ``string <column> <op> <bytes>``, ``missing <column>``
or ``like <column> <n> (% | _ | <bytes>)...``
(``op`` one of ``eq ne lt le gt ge``).  A column is its position in the
``columns`` table, which lists the columns in the order the Python engine
binds them (``WHERE`` first), each with the ``line L, column C`` of its
first mention, so that a name the header lacks fails with the same error;
the scanner binds header names itself, once it has read the header.
``names`` are the items' output names (JSON's keys).
"""

import functools
import os
from typing import Any, Dict, List, Optional, Tuple

from zerocloud.s3select import functions, sqllex
from zerocloud.s3select.errors import SelectError
from zerocloud.s3select.model import SelectRequest, byte_bounds
from zerocloud.s3select.sql import Query
from zerocloud.s3select.sqleval import (
    INT_MAX, INT_MIN, matches_alias, positional_index)
from zerocloud.s3select.sqlparse import (
    Aggregate, Between, Binary, Cast, InList, IsTest, Like, Literal, Name,
    Path, Unary)

#: The scanner, built by ``make native`` next to its source.
SCANNER_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 's3select',
    'native', 'selectscan.wasm')
PLAN_MAGIC = 'zerocloud-select-scan 1'

_OPS = {'=': 'eq', '!=': 'ne', '<>': 'ne', '<': 'lt', '<=': 'le',
        '>': 'gt', '>=': 'ge'}
#: ``a op b`` as ``b swapped[op] a``.
_SWAPPED = {'=': '=', '!=': '!=', '<>': '<>', '<': '>', '<=': '>=',
            '>': '<', '>=': '<='}
#: The largest integer literal a double holds exactly (and its neighbours).
_EXACT_FLOAT = 1 << 53
#: Nesting of AND, OR and NOT the scanner takes (it evaluates them
#: recursively, on a stack of its own).
MAX_DEPTH = 64


@functools.lru_cache(maxsize=1)
def scanner() -> Optional[bytes]:
    """The scanner's WebAssembly, or ``None`` when it was not built."""
    return built_scanner(SCANNER_PATH)


def built_scanner(path: str) -> Optional[bytes]:
    """The WebAssembly at ``path``, unless it is missing or older than its
    source beside it (a scanner that may not read this module's plans)."""
    source = os.path.splitext(path)[0] + '.c'
    try:
        if os.path.exists(source) and \
                os.path.getmtime(source) > os.path.getmtime(path):
            return None
        with open(path, 'rb') as built:
            return built.read()
    except OSError:
        return None


class _NotNative(Exception):
    """The select needs the Python engine."""


def plan(request: SelectRequest, query: Query, size: int) -> Optional[str]:
    """The scanner's plan for ``query`` over an object of ``size`` bytes,
    or ``None`` when the Python engine must answer it."""
    try:
        return _Planner(request, query).text(size)
    except (_NotNative, RecursionError):
        return None


def _hex(text: str) -> str:
    return 'x' + text.encode('utf-8').hex()


def _one_ascii(text: str, *forbidden: str) -> bool:
    return len(text) == 1 and text.isascii() and text not in forbidden


class _Planner:
    def __init__(self, request: SelectRequest, query: Query):
        self.request = request
        self.query = query
        self.statement = query.statement
        self.columns: List[Tuple[Any, ...]] = []
        self._column_at: Dict[Tuple[Any, ...], int] = {}

    def text(self, size: int) -> str:
        inp = self.request.input
        csv = inp.csv
        if inp.format != 'CSV' or inp.compression not in ('NONE', 'GZIP') or \
                (inp.compression != 'NONE' and self.request.scan_range):
            raise _NotNative
        if csv.record_delimiter != '\n' or \
                csv.allow_quoted_record_delimiter or \
                not _one_ascii(csv.field_delimiter, '\n', '\r') or \
                not (csv.quote_character == '' or _one_ascii(
                    csv.quote_character, '\n', csv.field_delimiter)) or \
                (csv.quote_character and csv.quote_escape_character
                 not in ('', csv.quote_character)) or \
                not (csv.comments == '' or _one_ascii(csv.comments, '\n')):
            raise _NotNative
        if self.statement.from_path is not None:
            raise _NotNative
        try:
            start, stop = byte_bounds(self.request.scan_range, size)
        except SelectError:
            raise _NotNative from None
        # Bound in the Python engine's order: WHERE, then the items.
        where = ('none' if self.statement.where is None
                 else self._condition(self.statement.where, 0))
        select = self._select()
        limit = self.statement.limit
        lines = [
            PLAN_MAGIC,
            'input %s %s %s %s %s' % (_hex(csv.field_delimiter),
                                      _hex(csv.quote_character),
                                      _hex(csv.comments),
                                      csv.file_header_info, inp.compression),
            'range %d %s' % (start, '-' if stop is None else stop),
            self._output(),
            'progress %d' % self.request.request_progress,
            'limit %d' % (-1 if limit is None else limit),
            'columns %d' % len(self.columns),
        ]
        lines += ['%d %s %d %s' % column for column in self.columns]
        lines += ['select ' + select,
                  'names %d %s' % (len(self.query.names), ' '.join(
                      _hex(name) for name in self.query.names)),
                  'where ' + where, 'end', '']
        return '\n'.join(lines)

    def _output(self) -> str:
        output = self.request.output
        if output.format == 'JSON':
            return 'output json %s' % _hex(output.json.record_delimiter)
        out = output.csv
        return 'output csv %s %s %s %s %s' % (
            out.quote_fields, _hex(out.field_delimiter),
            _hex(out.record_delimiter), _hex(out.quote_character),
            _hex(out.quote_escape_character or out.quote_character))

    def _select(self) -> str:
        items = self.statement.items
        if not items:
            return 'star'
        if not self.query.is_aggregate:
            return 'items %d %s' % (len(items), ' '.join(
                self._item(item.expr) for item in items))
        parts = []
        for item in items:
            expr = item.expr
            if not isinstance(expr, Aggregate):
                raise _NotNative
            if expr.name == 'COUNT' and expr.arg is None:
                parts.append('countall')
            elif expr.name == 'COUNT':
                parts.append('count %d' % self._column(expr.arg))
            elif expr.name == 'SUM':
                parts.append('sum%s %d' % self._cast(expr.arg))
            elif expr.name == 'AVG':
                kind, column = self._cast(expr.arg)
                if kind != 'float':
                    raise _NotNative   # AVG of INT is a DECIMAL
                parts.append('avgfloat %d' % column)
            elif expr.name in ('MIN', 'MAX'):
                kind, column = (('text', self._column(expr.arg))
                                if isinstance(expr.arg, Path)
                                else self._cast(expr.arg))
                parts.append('%s%s %d' % (expr.name.lower(), kind, column))
            else:
                raise _NotNative
        return 'aggregates %d %s' % (len(parts), ' '.join(parts))

    def _item(self, node: Any) -> str:
        """A projected column, as it is or ``CAST`` to a number."""
        if isinstance(node, Cast):
            return '%s %d' % self._cast(node)
        return 'text %d' % self._column(node)

    def _condition(self, node: Any, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise _NotNative
        if isinstance(node, Binary) and node.op in ('AND', 'OR'):
            left = self._condition(node.left, depth + 1)
            return '%s %s %s' % (node.op.lower(), left,
                                 self._condition(node.right, depth + 1))
        if isinstance(node, Unary) and node.op == 'NOT':
            return 'not ' + self._condition(node.operand, depth + 1)
        if isinstance(node, Like):
            return _negated(self._like(node), node.negated)
        if isinstance(node, InList) and node.items:
            # OR of equalities: the same three values, the same order.
            return _negated(_joined('or', [
                self._comparison('=', node.value, item)
                for item in node.items]), node.negated)
        if isinstance(node, Between):
            return _negated('and %s %s' % (
                self._comparison('>=', node.value, node.low),
                self._comparison('<=', node.value, node.high)), node.negated)
        if isinstance(node, IsTest):
            # A CSV field is a string or MISSING, never NULL.
            return _negated('missing %d' % self._column(node.value),
                            node.negated)
        if not isinstance(node, Binary) or node.op not in _OPS:
            raise _NotNative
        if _literal(node.left) is not None:
            return self._comparison(_SWAPPED[node.op], node.right, node.left)
        return self._comparison(node.op, node.left, node.right)

    def _comparison(self, op: str, operand: Any, literal: Any) -> str:
        """``operand op literal``: a column (or its ``CAST``) and an
        integer or string literal."""
        value = _literal(literal)
        if value is None:
            raise _NotNative
        if isinstance(value, str):
            return 'string %d %s %s' % (self._column(operand), _OPS[op],
                                        _hex(value))
        if isinstance(operand, Path):
            # The field read as the number it spells (sqleval.compare).
            kind, column = 'number', self._column(operand)
        else:
            kind, column = self._cast(operand)
        bound = _EXACT_FLOAT if kind in ('float', 'number') else None
        if (bound is not None and abs(value) > bound) or \
                not INT_MIN <= value <= INT_MAX:
            raise _NotNative
        return '%s %d %s %d' % (kind, column, _OPS[op], value)

    def _like(self, node: Like) -> str:
        """``column LIKE 'pattern' [ESCAPE 'c']``: the pattern as tokens,
        ``%`` (any run of characters), ``_`` (one) and literal bytes."""
        pattern, escape = _literal(node.pattern), None
        if not isinstance(pattern, str):
            raise _NotNative
        if node.escape is not None:
            escape = _literal(node.escape)
            if not isinstance(escape, str):
                raise _NotNative
        tokens: List[str] = []
        literal = ''
        chars = iter(pattern)
        for char in chars:
            if char == escape:
                literal += next(chars)   # checked when the query compiled
            elif char in '%_':
                if literal:
                    tokens.append(_hex(literal))
                    literal = ''
                tokens.append(char)
            else:
                literal += char
        if literal:
            tokens.append(_hex(literal))
        return 'like %d %d %s' % (self._column(node.value), len(tokens),
                                  ' '.join(tokens))

    def _cast(self, node: Any) -> Tuple[str, int]:
        """``CAST(column AS INT|FLOAT)``: the kind and the column."""
        if not isinstance(node, Cast):
            raise _NotNative
        target = functions.CAST_TYPES.get(node.type_name)
        if target not in ('INT', 'FLOAT'):
            raise _NotNative
        return target.lower(), self._column(node.value)

    def _column(self, node: Any) -> int:
        """The position in the columns table of the CSV column ``node``
        names (as ``sqleval.CSVCompiler`` resolves it)."""
        if not isinstance(node, Path):
            raise _NotNative
        steps = node.steps
        if matches_alias(steps[0], self.query.csv_aliases()):
            steps = steps[1:]
        if len(steps) != 1 or not isinstance(steps[0], Name):
            raise _NotNative
        name = steps[0]
        index = positional_index(name.name)
        if index is not None:
            if index < 0:
                raise _NotNative
            key: Tuple[Any, ...] = (index, name.name, False)
        elif self.request.input.csv.file_header_info != 'USE' or \
                not name.name.isascii():
            raise _NotNative
        else:
            key = (-1, name.name, name.quoted)
        if key not in self._column_at:
            self._column_at[key] = len(self.columns)
            self.columns.append((key[0], _hex(key[1]), key[2],
                                 _hex(sqllex.where(self.query.text,
                                                   node.pos))))
        return self._column_at[key]


def _negated(condition: str, negated: bool) -> str:
    return 'not ' + condition if negated else condition


def _joined(op: str, conditions: List[str]) -> str:
    """``conditions`` joined by ``op`` as a balanced tree (shallow for the
    scanner's stack), still evaluated left to right."""
    if len(conditions) == 1:
        return conditions[0]
    half = len(conditions) // 2
    return '%s %s %s' % (op, _joined(op, conditions[:half]),
                         _joined(op, conditions[half:]))


def _literal(node: Any) -> Optional[Any]:
    """An ``int`` or ``str`` literal's value (``-n`` too), else ``None``."""
    if isinstance(node, Unary) and node.op == '-':
        value = _literal(node.operand)
        return -value if type(value) is int else None
    if isinstance(node, Literal) and type(node.value) in (int, str):
        return node.value
    return None
