"""The parser of S3 Select's SQL: tokens to a ``Statement`` tree.

The grammar is S3 Select's (``SELECT`` list, ``FROM S3Object[*].path
[AS] alias``, ``WHERE``, ``LIMIT``) with its operators, ``CASE``,
``CAST``, the aggregates and the scalar functions of its SQL reference.
Operator precedence, loosest first: ``OR``, ``AND``, ``NOT``, the
predicates (comparisons, ``IN``, ``BETWEEN``, ``LIKE``, ``IS``), ``||``,
``+ -``, ``* / %``, unary ``-``.

Everything S3 Select does not do is refused here with S3's error code
and a message naming the token and where it is: joins, subqueries,
``GROUP BY``, ``ORDER BY`` and the like, unknown functions, aggregates
nested, in ``WHERE``, or mixed with plain columns.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterator, List, Optional, Tuple, Union

from . import sqllex
from .errors import SelectError
from .sqllex import Token
from .values import MISSING

#: Aggregates: S3 Select has no ``GROUP BY``, so one row for all input.
AGGREGATES = frozenset(('AVG', 'COUNT', 'MAX', 'MIN', 'SUM'))
#: Scalar functions called with plain comma-separated arguments, and how
#: many they take (least, most).
PLAIN_FUNCTIONS = {
    'CHAR_LENGTH': (1, 1), 'CHARACTER_LENGTH': (1, 1), 'LOWER': (1, 1),
    'UPPER': (1, 1), 'TO_STRING': (2, 2), 'TO_TIMESTAMP': (1, 2),
    'UTCNOW': (0, 0), 'COALESCE': (1, None), 'NULLIF': (2, 2),
}
#: Date parts ``DATE_ADD`` and ``DATE_DIFF`` take; ``EXTRACT`` takes the
#: time zone's too.
DATE_PARTS = frozenset(('YEAR', 'MONTH', 'DAY', 'HOUR', 'MINUTE', 'SECOND'))
EXTRACT_PARTS = DATE_PARTS | {'TIMEZONE_HOUR', 'TIMEZONE_MINUTE'}
#: ``CAST`` target types, S3's data types.
CAST_TYPES = frozenset(('BOOL', 'BOOLEAN', 'INT', 'INTEGER', 'STRING',
                        'FLOAT', 'DECIMAL', 'NUMERIC', 'TIMESTAMP'))
COMPARISONS = frozenset(('=', '!=', '<>', '<', '<=', '>', '>='))
#: Keywords that start a clause S3 Select does not have, and its code.
_UNSUPPORTED_CLAUSES = dict(
    [('GROUP', 'ParseUnsupportedLiteralsGroupBy')]
    + [(word, 'UnsupportedSqlStructure') for word in (
        'ORDER', 'HAVING', 'UNION', 'INTERSECT', 'EXCEPT', 'OFFSET')]
    + [(word, 'ParseMalformedJoin') for word in (
        'JOIN', 'INNER', 'LEFT', 'RIGHT', 'FULL', 'CROSS', 'OUTER')])


# Path steps.
@dataclass(frozen=True)
class Name:
    name: str
    quoted: bool


@dataclass(frozen=True)
class Index:
    index: Union[int, str]


@dataclass(frozen=True)
class Wildcard:
    """``[*]`` (``of_object`` false) or ``.*``."""
    of_object: bool


Step = Union[Name, Index, Wildcard]


# Expression nodes.
@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class TimestampLiteral:
    text: str
    pos: int


@dataclass(frozen=True)
class Path:
    """``steps[0]`` is always a ``Name``: the table alias or a column."""
    steps: Tuple[Step, ...]
    pos: int


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Any


@dataclass(frozen=True)
class Binary:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Like:
    value: Any
    pattern: Any
    escape: Any
    negated: bool


@dataclass(frozen=True)
class InList:
    value: Any
    items: Tuple[Any, ...]
    negated: bool


@dataclass(frozen=True)
class Between:
    value: Any
    low: Any
    high: Any
    negated: bool


@dataclass(frozen=True)
class IsTest:
    value: Any
    #: ``NULL`` or ``MISSING``.
    what: str
    negated: bool


@dataclass(frozen=True)
class Cast:
    value: Any
    type_name: str


@dataclass(frozen=True)
class Case:
    operand: Any
    whens: Tuple[Tuple[Any, Any], ...]
    default: Any


@dataclass(frozen=True)
class Call:
    """A scalar function, its arguments in ``functions.call``'s shape."""
    name: str
    args: Tuple[Any, ...]


@dataclass(frozen=True)
class Aggregate:
    name: str
    #: ``None`` for ``COUNT(*)``.
    arg: Any
    pos: int


@dataclass(frozen=True)
class SelectItem:
    expr: Any
    alias: Optional[str]


@dataclass
class Statement:
    #: Empty for ``SELECT *``.
    items: List[SelectItem]
    #: Steps after ``S3Object[*]``; ``None`` without the ``[*]``.
    from_path: Optional[Tuple[Step, ...]]
    alias: Optional[str]
    where: Any
    limit: Optional[int]


def children(node: Any) -> Iterator[Any]:
    """The sub-expressions of ``node``."""
    if isinstance(node, Unary):
        yield node.operand
    elif isinstance(node, Cast):
        yield node.value
    elif isinstance(node, Binary):
        yield node.left
        yield node.right
    elif isinstance(node, Like):
        yield from (node.value, node.pattern)
        if node.escape is not None:
            yield node.escape
    elif isinstance(node, InList):
        yield node.value
        yield from node.items
    elif isinstance(node, Between):
        yield from (node.value, node.low, node.high)
    elif isinstance(node, IsTest):
        yield node.value
    elif isinstance(node, Case):
        if node.operand is not None:
            yield node.operand
        for condition, result in node.whens:
            yield from (condition, result)
        if node.default is not None:
            yield node.default
    elif isinstance(node, Call):
        yield from (arg for arg in node.args if not isinstance(arg, str))
    elif isinstance(node, Aggregate) and node.arg is not None:
        yield node.arg


def walk(node: Any) -> Iterator[Any]:
    """``node`` and every node under it, parents first; without
    recursion, as a chain of thousands of ``OR`` is that deep."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(reversed(list(children(current))))


def parse(text: str) -> Statement:
    """The ``Statement`` of ``text``; ``SelectError`` if it is not one S3
    Select runs."""
    statement = _Parser(text).statement()
    _check_aggregates(text, statement)
    return statement


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = sqllex.tokenize(text)
        self.at = 0

    # Token helpers.
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.at += 1
        return token

    def is_op(self, value: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == sqllex.OPERATOR and token.value == value

    def is_keyword(self, *values: str) -> bool:
        token = self.peek()
        return token.kind == sqllex.KEYWORD and token.value in values

    def is_word(self, value: str) -> bool:
        """An unquoted identifier spelt ``value`` (case-insensitive): the
        words that are keywords only inside one function call."""
        token = self.peek()
        return (token.kind == sqllex.IDENT and not token.quoted
                and token.value.upper() == value)

    def error(self, code: str, problem: str,
              token: Optional[Token] = None) -> SelectError:
        token = token or self.peek()
        return SelectError(code, '%s: found %s at %s.' % (
            problem, token.describe(), sqllex.where(self.text, token.pos)))

    def expect_op(self, value: str, code: str = 'ParseExpectedTokenType'):
        if not self.is_op(value):
            raise self.error(code, "Expected '%s'" % value)
        self.take()

    def expect_keyword(self, value: str):
        if not self.is_keyword(value):
            raise self.error('ParseExpectedKeyword', 'Expected %s' % value)
        self.take()

    # Statement.
    def statement(self) -> Statement:
        if not self.is_keyword('SELECT'):
            raise self.error('UnsupportedSqlOperation',
                             'Only SELECT statements are supported')
        self.take()
        items = self.select_list()
        if not self.is_keyword('FROM'):
            raise self.error('ParseSelectMissingFrom',
                             'Expected FROM after the SELECT list')
        self.take()
        from_path = self.table()
        alias = self.table_alias()
        self.refuse_clauses()
        where = None
        if self.is_keyword('WHERE'):
            self.take()
            where = self.expression()
            _refuse_wildcards(self.text, where, 'ParseInvalidPathComponent')
            self.refuse_clauses()
        limit = None
        if self.is_keyword('LIMIT'):
            self.take()
            limit = self.limit()
            self.refuse_clauses()
        if self.peek().kind != sqllex.EOF:
            raise self.error('ParseUnexpectedToken',
                             'Unexpected token after the query')
        return Statement(items, from_path, alias, where, limit)

    def refuse_clauses(self):
        token = self.peek()
        if (token.kind == sqllex.KEYWORD
                and token.value in _UNSUPPORTED_CLAUSES):
            raise self.error(_UNSUPPORTED_CLAUSES[token.value],
                             '%s is not supported by S3 Select' % token.value)
        if self.is_op(','):
            raise self.error('ParseMalformedJoin',
                             'S3 Select queries one object: no joins')

    def select_list(self) -> List[SelectItem]:
        if self.is_keyword('FROM'):
            raise self.error('ParseEmptySelect', 'The SELECT list is empty')
        if self.is_keyword('DISTINCT', 'ALL'):
            raise self.error('UnsupportedSqlStructure',
                             'SELECT %s is not supported' % self.peek().value)
        if self.is_op('*'):
            star = self.take()
            if self.is_op(','):
                raise self.error('ParseAsteriskIsNotAloneInSelectList',
                                 '* must be alone in the SELECT list', star)
            return []
        items = [self.select_item()]
        while self.is_op(','):
            self.take()
            if self.is_op('*'):
                raise self.error('ParseAsteriskIsNotAloneInSelectList',
                                 '* must be alone in the SELECT list')
            items.append(self.select_item())
        if len(items) == 1 and _is_alias_star(items[0].expr):
            return []
        for item in items:
            _refuse_wildcards(self.text, item.expr,
                              'ParseInvalidContextForWildcardInSelectList')
        return items

    def select_item(self) -> SelectItem:
        expr = self.expression()
        alias = None
        if self.is_keyword('AS'):
            self.take()
            alias = self.alias_name()
        elif self.peek().kind == sqllex.IDENT:
            alias = self.take().value
        return SelectItem(expr, alias)

    def alias_name(self) -> str:
        if self.peek().kind != sqllex.IDENT:
            raise self.error('ParseExpectedIdentForAlias',
                             'Expected an alias after AS')
        return self.take().value

    def table(self) -> Optional[Tuple[Step, ...]]:
        token = self.peek()
        if (token.kind != sqllex.IDENT or token.quoted
                or token.value.upper() != 'S3OBJECT'):
            if token.kind == sqllex.OPERATOR and token.value == '(':
                raise self.error('ParseUnsupportedSelect',
                                 'Subqueries are not supported')
            raise self.error('ParseUnexpectedToken',
                             'Expected S3Object after FROM')
        self.take()
        if self.is_op('.'):
            raise self.error('ParseInvalidPathComponent',
                             'A path after S3Object needs S3Object[*] first')
        if not self.is_op('['):
            return None
        self.take()
        self.expect_op('*', 'ParseInvalidPathComponent')
        self.expect_op(']')
        return tuple(self.path_steps())

    def table_alias(self) -> Optional[str]:
        if self.is_keyword('AS'):
            self.take()
            return self.alias_name()
        if self.peek().kind == sqllex.IDENT:
            return self.take().value
        return None

    def limit(self) -> int:
        token = self.peek()
        if self.is_op('-') and self.peek(1).kind == sqllex.INTEGER:
            raise self.error('EvaluatorNegativeLimit',
                             'LIMIT must not be negative')
        if token.kind != sqllex.INTEGER:
            raise self.error('ParseExpectedNumber',
                             'Expected a whole number after LIMIT')
        self.take()
        return int(token.value)

    # Expressions, loosest first.
    def expression(self) -> Any:
        return self.logical_chain('OR', self.conjunction)

    def conjunction(self) -> Any:
        return self.logical_chain('AND', self.negation)

    def logical_chain(self, keyword: str, operand: Callable[[], Any]) -> Any:
        """``a OR b OR c …`` (or ``AND``) as a balanced tree: the same
        operands in the same order, so the same result and short-circuits,
        but ``log2(n)`` deep, not ``n``.  Generated SQL writes thousands of
        terms, and evaluation (and, in the sandbox, freeing the tree)
        recurses once per level."""
        operands = [operand()]
        while self.is_keyword(keyword):
            self.take()
            operands.append(operand())

        def tree(first: int, stop: int) -> Any:
            if stop - first == 1:
                return operands[first]
            middle = (first + stop) // 2
            return Binary(keyword, tree(first, middle), tree(middle, stop))
        return tree(0, len(operands))

    def binary_chain(self, keywords: Tuple[str, ...],
                     operand: Callable[[], Any]) -> Any:
        left = operand()
        while self.is_keyword(*keywords):
            op = self.take().value
            left = Binary(op, left, operand())
        return left

    def negation(self) -> Any:
        if self.is_keyword('NOT'):
            self.take()
            return Unary('NOT', self.negation())
        return self.predicate()

    def predicate(self) -> Any:
        left = self.concatenation()
        while True:
            token = self.peek()
            if token.kind == sqllex.OPERATOR and token.value in COMPARISONS:
                self.take()
                left = Binary(token.value, left, self.concatenation())
                continue
            negated = False
            if self.is_keyword('NOT') and self.peek(1).kind == sqllex.KEYWORD \
                    and self.peek(1).value in ('IN', 'BETWEEN', 'LIKE'):
                self.take()
                negated = True
            if self.is_keyword('IN'):
                self.take()
                left = InList(left, self.value_list(), negated)
            elif self.is_keyword('BETWEEN'):
                self.take()
                low = self.concatenation()
                self.expect_keyword('AND')
                left = Between(left, low, self.concatenation(), negated)
            elif self.is_keyword('LIKE'):
                self.take()
                pattern = self.concatenation()
                escape = None
                if self.is_keyword('ESCAPE'):
                    self.take()
                    escape = self.concatenation()
                left = Like(left, pattern, escape, negated)
            elif self.is_keyword('IS'):
                self.take()
                left = self.is_test(left)
            else:
                return left

    def is_test(self, value: Any) -> IsTest:
        negated = self.is_keyword('NOT')
        if negated:
            self.take()
        if not self.is_keyword('NULL', 'MISSING'):
            raise self.error('ParseExpectedKeyword',
                             'Expected NULL or MISSING after IS')
        return IsTest(value, self.take().value, negated)

    def value_list(self) -> Tuple[Any, ...]:
        self.expect_op('(', 'ParseExpectedLeftParenValueConstructor')
        if self.is_keyword('SELECT'):
            raise self.error('ParseUnsupportedSelect',
                             'Subqueries are not supported')
        items = [self.expression()]
        while self.is_op(','):
            self.take()
            items.append(self.expression())
        self.expect_op(')')
        return tuple(items)

    def concatenation(self) -> Any:
        return self.operator_chain(('||',), self.additive)

    def additive(self) -> Any:
        return self.operator_chain(('+', '-'), self.multiplicative)

    def multiplicative(self) -> Any:
        return self.operator_chain(('*', '/', '%'), self.unary)

    def operator_chain(self, ops: Tuple[str, ...],
                       operand: Callable[[], Any]) -> Any:
        left = operand()
        while self.peek().kind == sqllex.OPERATOR and self.peek().value in ops:
            op = self.take().value
            left = Binary(op, left, operand())
        return left

    def unary(self) -> Any:
        if self.is_op('-') or self.is_op('+'):
            op = self.take().value
            operand = self.unary()
            if op == '-' and isinstance(operand, Literal) \
                    and type(operand.value) in (int, float, Decimal):
                return Literal(-operand.value)
            return Unary(op, operand)
        return self.primary()

    def primary(self) -> Any:
        token = self.peek()
        literal = _literal(token)
        if literal is not None:
            self.take()
            return literal
        if token.kind == sqllex.TIMESTAMP:
            self.take()
            return TimestampLiteral(token.value, token.pos)
        if token.kind == sqllex.OPERATOR and token.value == '(':
            self.take()
            if self.is_keyword('SELECT'):
                raise self.error('ParseUnsupportedSelect',
                                 'Subqueries are not supported')
            inner = self.expression()
            self.expect_op(')')
            return inner
        if self.is_keyword('CASE'):
            self.take()
            return self.case()
        if self.is_keyword('CAST'):
            self.take()
            return self.cast()
        if token.kind == sqllex.IDENT:
            if not token.quoted and self.is_op('(', 1):
                return self.call()
            return self.path()
        if token.kind == sqllex.KEYWORD:
            raise self.error('ParseUnexpectedKeyword',
                             'Unexpected keyword %s' % token.value)
        raise self.error('ParseExpectedExpression', 'Expected an expression')

    def path(self) -> Path:
        first = self.take()
        steps = [Name(first.value, first.quoted)]
        steps.extend(self.path_steps())
        return Path(tuple(steps), first.pos)

    def path_steps(self) -> Iterator[Step]:
        while self.is_op('.') or self.is_op('['):
            if self.take().value == '.':
                yield self.dot_step()
            else:
                yield self.bracket_step()

    def dot_step(self) -> Step:
        token = self.peek()
        if token.kind == sqllex.IDENT:
            self.take()
            return Name(token.value, token.quoted)
        if self.is_op('*'):
            self.take()
            return Wildcard(of_object=True)
        raise self.error('ParseInvalidPathComponent',
                         'Expected a name after "." (quote keywords used '
                         'as names)')

    def bracket_step(self) -> Step:
        token = self.take()
        if token.kind == sqllex.INTEGER:
            step: Step = Index(int(token.value))
        elif token.kind == sqllex.STRING:
            step = Name(token.value, quoted=True)
        elif token.kind == sqllex.OPERATOR and token.value == '*':
            step = Wildcard(of_object=False)
        else:
            raise self.error('ParseInvalidPathComponent',
                             'Expected a number, a string or * in []', token)
        self.expect_op(']', 'ParseInvalidPathComponent')
        return step

    def case(self) -> Case:
        operand = (None if self.is_keyword('WHEN', 'END')
                   else self.expression())
        whens = []
        while self.is_keyword('WHEN'):
            self.take()
            condition = self.expression()
            self.expect_keyword('THEN')
            whens.append((condition, self.expression()))
        if not whens:
            raise self.error('ParseExpectedWhenClause',
                             'Expected WHEN in CASE')
        default = None
        if self.is_keyword('ELSE'):
            self.take()
            default = self.expression()
        self.expect_keyword('END')
        return Case(operand, tuple(whens), default)

    def cast(self) -> Cast:
        self.expect_op('(', 'ParseExpectedLeftParenAfterCast')
        value = self.expression()
        if not self.is_keyword('AS'):
            raise self.error('ParseCastArity', 'Expected AS type in CAST')
        self.take()
        token = self.peek()
        if token.kind != sqllex.IDENT or token.quoted:
            raise self.error('ParseExpectedTypeName',
                             'Expected a type name in CAST')
        type_name = token.value.upper()
        if type_name not in CAST_TYPES:
            raise self.error('InvalidDataType',
                             'Unknown type %s in CAST' % token.value)
        self.take()
        if self.is_op('('):
            self.type_parameters()
        self.expect_op(')', 'ParseExpectedRightParenBuiltinFunctionCall')
        return Cast(value, type_name)

    def type_parameters(self):
        """``DECIMAL(precision, scale)``: read, and ignored as S3 does."""
        self.take()
        while True:
            if self.peek().kind != sqllex.INTEGER:
                raise self.error('ParseInvalidTypeParam',
                                 'Expected a number as type parameter')
            self.take()
            if not self.is_op(','):
                break
            self.take()
        self.expect_op(')')

    # Function calls.
    def call(self) -> Any:
        token = self.take()
        name = token.value.upper()
        self.take()  # (
        if name in AGGREGATES:
            node = self.aggregate(name, token)
        elif name in PLAIN_FUNCTIONS:
            node = Call(name, self.plain_arguments(name, token))
        elif name in _SPECIAL_CALLS:
            node = _SPECIAL_CALLS[name](self)
        else:
            raise self.error('UnsupportedFunction',
                             'Unsupported function %s' % token.value, token)
        self.expect_op(')', 'ParseExpectedRightParenBuiltinFunctionCall')
        return node

    def aggregate(self, name: str, token: Token) -> Aggregate:
        if self.is_op('*'):
            if name != 'COUNT':
                raise self.error('ParseUnsupportedCallWithStar',
                                 'Only COUNT takes (*)')
            self.take()
            return Aggregate(name, None, token.pos)
        if self.is_keyword('DISTINCT'):
            raise self.error('UnsupportedSqlStructure',
                             '%s(DISTINCT ...) is not supported' % name)
        arg = self.expression()
        if self.is_op(','):
            raise self.error('ParseNonUnaryAgregateFunctionCall',
                             '%s takes one argument' % name)
        return Aggregate(name, arg, token.pos)

    def plain_arguments(self, name: str, token: Token) -> Tuple[Any, ...]:
        args = []
        if not self.is_op(')'):
            args.append(self.expression())
            while self.is_op(','):
                self.take()
                args.append(self.expression())
        least, most = PLAIN_FUNCTIONS[name]
        if len(args) < least or (most is not None and len(args) > most):
            if not self.is_op(')'):
                raise self.error('ParseExpectedArgumentDelimiter',
                                 "Expected ',' or ')' in %s" % name)
            raise self.error('EvaluatorInvalidArguments',
                             '%s takes %s argument(s), not %d'
                             % (name, _arity(least, most), len(args)), token)
        return tuple(args)

    def date_part(self, parts: frozenset) -> str:
        token = self.peek()
        if (token.kind != sqllex.IDENT or token.quoted
                or token.value.upper() not in parts):
            raise self.error('ParseExpectedDatePart',
                             'Expected a date part (%s)'
                             % ', '.join(sorted(parts)))
        self.take()
        return token.value.upper()

    def argument_delimiter(self):
        self.expect_op(',', 'ParseExpectedArgumentDelimiter')

    def date_add(self) -> Call:
        part = self.date_part(DATE_PARTS)
        self.argument_delimiter()
        quantity = self.expression()
        self.argument_delimiter()
        return Call('DATE_ADD', (part, quantity, self.expression()))

    def date_diff(self) -> Call:
        part = self.date_part(DATE_PARTS)
        self.argument_delimiter()
        first = self.expression()
        self.argument_delimiter()
        return Call('DATE_DIFF', (part, first, self.expression()))

    def extract(self) -> Call:
        part = self.date_part(EXTRACT_PARTS)
        self.expect_keyword('FROM')
        return Call('EXTRACT', (part, self.expression()))

    def substring(self) -> Call:
        value = self.expression()
        length = None
        if self.is_keyword('FROM'):
            self.take()
            start = self.expression()
            if self.is_word('FOR'):
                self.take()
                length = self.expression()
        else:
            self.argument_delimiter()
            start = self.expression()
            if self.is_op(','):
                self.take()
                length = self.expression()
        return Call('SUBSTRING', (value, start, Literal(None)
                                  if length is None else length))

    def trim(self) -> Call:
        mode = 'BOTH'
        for word in ('LEADING', 'TRAILING', 'BOTH'):
            if self.is_word(word):
                self.take()
                mode = word
                break
        else:
            first = self.expression()
            if not self.is_keyword('FROM'):
                return Call('TRIM', (mode, Literal(None), first))
            self.take()
            return Call('TRIM', (mode, first, self.expression()))
        characters: Any = Literal(None)
        if not self.is_keyword('FROM'):
            characters = self.expression()
        self.expect_keyword('FROM')
        return Call('TRIM', (mode, characters, self.expression()))


_SPECIAL_CALLS = {
    'DATE_ADD': _Parser.date_add, 'DATE_DIFF': _Parser.date_diff,
    'EXTRACT': _Parser.extract, 'SUBSTRING': _Parser.substring,
    'TRIM': _Parser.trim,
}


def _arity(least: int, most: Optional[int]) -> str:
    if most is None:
        return 'at least %d' % least
    return str(least)


def _literal(token: Token) -> Optional[Literal]:
    if token.kind == sqllex.STRING:
        return Literal(token.value)
    if token.kind == sqllex.INTEGER:
        return Literal(int(token.value))
    if token.kind == sqllex.DECIMAL:
        return Literal(Decimal(token.value))
    if token.kind == sqllex.FLOAT:
        return Literal(float(token.value))
    if token.kind == sqllex.KEYWORD:
        return {'TRUE': Literal(True), 'FALSE': Literal(False),
                'NULL': Literal(None), 'MISSING': Literal(MISSING)
                }.get(token.value)
    return None


def _is_alias_star(expr: Any) -> bool:
    """``alias.*`` alone in the SELECT list: the same as ``*``."""
    return (isinstance(expr, Path) and len(expr.steps) == 2
            and expr.steps[1] == Wildcard(of_object=True))


def _refuse_wildcards(text: str, expr: Any, code: str):
    for node in walk(expr):
        if isinstance(node, Path) and any(
                isinstance(step, Wildcard) for step in node.steps):
            raise SelectError(code, 'Wildcards are only allowed in the FROM '
                              'path and as a lone alias.* in the SELECT '
                              'list: found one at %s.'
                              % sqllex.where(text, node.pos))


def _check_aggregates(text: str, statement: Statement):
    """S3 Select's one-group aggregation: no aggregate in ``WHERE`` or
    inside another, and none mixed with per-record columns."""
    if statement.where is not None:
        for node in walk(statement.where):
            if isinstance(node, Aggregate):
                raise _aggregate_error(text, node, 'in WHERE')
    aggregated = False
    for item in statement.items:
        for node in walk(item.expr):
            if isinstance(node, Aggregate):
                aggregated = True
                inner = next((n for n in walk(node.arg) if isinstance(
                    n, Aggregate)), None) if node.arg is not None else None
                if inner is not None:
                    raise _aggregate_error(text, inner, 'inside another')
    if not aggregated:
        return
    for item in statement.items:
        column = _column_outside_aggregate(item.expr)
        if column is not None:
            raise SelectError(
                'UnsupportedSqlOperation',
                'Aggregates cannot be mixed with per-record columns (GROUP '
                'BY is not supported): found a column at %s.'
                % sqllex.where(text, column.pos))


def _aggregate_error(text: str, node: Aggregate, place: str) -> SelectError:
    return SelectError('UnsupportedSqlOperation',
                       'Aggregate %s is not allowed %s: at %s.'
                       % (node.name, place, sqllex.where(text, node.pos)))


def _column_outside_aggregate(expr: Any) -> Optional[Path]:
    if isinstance(expr, Path):
        return expr
    if isinstance(expr, Aggregate):
        return None
    for child in children(expr):
        found = _column_outside_aggregate(child)
        if found is not None:
            return found
    return None
