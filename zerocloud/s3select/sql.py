"""S3 Select's SQL: ``compile_query`` checks an expression and gives a
``Query`` that runs it over CSV rows or JSON (and Parquet) records.

``sqllex`` tokenizes, ``sqlparse`` parses and refuses what S3 Select does
not run (with S3's error codes), ``sqleval`` holds the semantics (its
docstring says how types, NULL and MISSING behave, and how CSV strings
meet numbers).  This module binds a statement to one input: the table
alias, the CSV header or the JSON ``FROM`` path, the output names, the
``WHERE`` filter, ``LIMIT``, and aggregation into one final row.

Rows are produced lazily, one per input record (or per value a ``FROM
S3Object[*].path`` reaches); only aggregates keep state, of fixed size.

Output names: the alias (``AS name`` or a bare name); a path's last name
(``s.a.b`` gives ``b``, ``_2`` gives ``_2``); otherwise ``_N``, N the
item's position.  ``SELECT *`` gives a CSV row's header names (``_N``
without ``FileHeaderInfo USE`` and past the header's end) and a JSON
object's own fields; any other JSON value ``_1``.

Limits: a ``_N`` past the end of a short CSV row is ``MISSING`` (past
the header, ``InvalidColumnIndex``); the CSV header must be known when
``run_csv`` is called.
"""

from typing import (Any, Callable, Iterable, Iterator, List, Optional,
                    Sequence, Set, Tuple)

from .errors import SelectError
from .sqleval import (Compiler, CSVCompiler, JSONCompiler, Evaluator,
                      csv_pairs, expand_path, matches_alias, truth)
from .sqlparse import Aggregate, Name, Path, SelectItem, Statement, parse, walk
from .values import MISSING

Row = List[Tuple[str, Any]]


def compile_query(expression: str) -> 'Query':
    """The ``Query`` of ``expression``; ``SelectError`` with S3's parse
    error code if S3 Select would not run it."""
    try:
        return Query(expression, parse(expression))
    except RecursionError:
        raise too_deep() from None


def too_deep() -> SelectError:
    return SelectError(
        'UnsupportedSqlStructure', 'The expression nests too deeply to be '
        'evaluated (parentheses, NOT, CASE or functions inside each other '
        'hundreds of levels deep).')


class Query:
    """A checked statement, runnable over any number of inputs."""

    def __init__(self, text: str, statement: Statement):
        self.text = text
        self.statement = statement
        self.limit: Optional[int] = statement.limit
        self.is_aggregate = any(
            isinstance(node, Aggregate)
            for item in statement.items for node in walk(item.expr))
        self.names = [_output_name(item, position) for position, item
                      in enumerate(statement.items, 1)]
        # Literals and constant LIKE patterns fail here, not mid-stream.
        self._bind(JSONCompiler(text, self._json_aliases()))

    def run_csv(self, rows: Iterable[Sequence[str]],
                header: Optional[Sequence[str]]) -> Iterator[Row]:
        """Output rows over CSV records (lists of strings); ``header`` the
        column names with ``FileHeaderInfo USE``, else ``None``."""
        if self.statement.from_path:
            raise SelectError('InvalidKeyPath', 'A path after S3Object[*] '
                              'in FROM works with JSON input only.')
        compiler = CSVCompiler(self.text, self.csv_aliases(), header)
        return self._generate(rows, compiler,
                              lambda row: csv_pairs(row, header))

    def run_json(self, records: Iterable[Any]) -> Iterator[Row]:
        """Output rows over JSON (or Parquet) records as Python values."""
        steps = self.statement.from_path or ()
        rows = (value for record in records
                for value in expand_path(record, steps))
        return self._generate(rows, JSONCompiler(self.text,
                                                 self._json_aliases()),
                              _json_pairs)

    def fields_read(self) -> Optional[Set[str]]:
        """The lower-case names of the top-level fields of a JSON (or
        Parquet) record the statement reads, so a Parquet reader may skip
        the other columns; ``None`` when it may read the whole record
        (``SELECT *``, the row itself, a path after ``S3Object[*]``, or one
        that starts with an index or a wildcard)."""
        statement = self.statement
        if not statement.items or statement.from_path:
            return None
        aliases = self._json_aliases()
        fields: Set[str] = set()
        roots = [item.expr for item in statement.items]
        if statement.where is not None:
            roots.append(statement.where)
        for root in roots:
            for node in walk(root):
                if not isinstance(node, Path):
                    continue
                steps = node.steps
                if matches_alias(steps[0], aliases):
                    steps = steps[1:]
                if not steps or not isinstance(steps[0], Name):
                    return None
                fields.add(steps[0].name.lower())
        return fields

    def csv_aliases(self) -> Set[str]:
        return {(self.statement.alias or 'S3Object').lower()}

    def _json_aliases(self) -> Set[str]:
        """The names of the row: the alias, else ``S3Object`` and the FROM
        path's last name (``_1`` when it ends with a wildcard)."""
        if self.statement.alias:
            return {self.statement.alias.lower()}
        aliases = {'s3object'}
        path = self.statement.from_path
        if path is not None:
            last = path[-1] if path else None
            aliases.add(last.name.lower() if isinstance(last, Name)
                        else '_1')
        return aliases

    def _bind(self, compiler: Compiler
              ) -> Tuple[Optional[Evaluator], List[Evaluator]]:
        where = self.statement.where
        condition = compiler.compile(where) if where is not None else None
        return condition, [compiler.compile(item.expr)
                           for item in self.statement.items]

    def _generate(self, rows: Iterable[Any], compiler: Compiler,
                  star: Callable[[Any], Row]) -> Iterator[Row]:
        """Binds now (so binding errors come before any input is read),
        then filters and projects lazily."""
        condition, outputs = self._bind(compiler)
        if self.is_aggregate:
            return self._aggregate(rows, condition, outputs,
                                   compiler.aggregate_updates)
        return self._project(rows, condition, outputs, star)

    def _project(self, rows: Iterable[Any], condition: Optional[Evaluator],
                 outputs: List[Evaluator],
                 star: Callable[[Any], Row]) -> Iterator[Row]:
        if self.limit == 0:
            return
        names = self.names
        emitted = 0
        for row in rows:
            if condition is not None and not _selects(condition(row)):
                continue
            if outputs:
                yield [(name, output(row))
                       for name, output in zip(names, outputs)]
            else:
                yield star(row)
            emitted += 1
            if emitted == self.limit:
                return

    def _aggregate(self, rows: Iterable[Any], condition: Optional[Evaluator],
                   outputs: List[Evaluator], updates) -> Iterator[Row]:
        if self.limit == 0:
            return
        for row in rows:
            if condition is not None and not _selects(condition(row)):
                continue
            for argument, accumulator in updates:
                accumulator.add(True if argument is None else argument(row))
        yield [(name, output(None))
               for name, output in zip(self.names, outputs)]


def _selects(verdict: Any) -> bool:
    """Whether a ``WHERE`` keeps its row: only when it is ``TRUE``."""
    return verdict is True or (verdict is not False
                               and truth(verdict) is True)


def _output_name(item: SelectItem, position: int) -> str:
    if item.alias is not None:
        return item.alias
    expr = item.expr
    if isinstance(expr, Path) and isinstance(expr.steps[-1], Name):
        return expr.steps[-1].name
    return '_%d' % position


def _json_pairs(row: Any) -> Row:
    """``SELECT *`` of a JSON row."""
    if isinstance(row, dict):
        return list(row.items())
    if row is MISSING:
        return []
    return [('_1', row)]
