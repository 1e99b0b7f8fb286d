"""The S3 Select SQL engine: parser, evaluator and the Query runner."""

from decimal import Context, Decimal
from itertools import count

import pytest

from zerocloud.s3select.errors import SelectError
from zerocloud.s3select.sql import compile_query
from zerocloud.s3select.values import MISSING


def run_csv(query, rows, header=None):
    return list(compile_query(query).run_csv(rows, header))


def run_json(query, records):
    return list(compile_query(query).run_json(records))


def value_of(expression, record=None):
    """One expression evaluated over one JSON record."""
    rows = run_json('SELECT %s FROM S3Object s' % expression,
                    [record if record is not None else {}])
    return rows[0][0][1]


def compile_error(query):
    with pytest.raises(SelectError) as caught:
        compile_query(query)
    return caught.value


def run_error(query, records):
    with pytest.raises(SelectError) as caught:
        run_json(query, records)
    return caught.value.code


# -- parsing ---------------------------------------------------------------

@pytest.mark.parametrize('query, code', [
    ('SELECT FROM S3Object', 'ParseEmptySelect'),
    ('SELECT a', 'ParseSelectMissingFrom'),
    ('SELECT a WHERE a = 1', 'ParseSelectMissingFrom'),
    ('DELETE FROM S3Object', 'UnsupportedSqlOperation'),
    ('SELECT a FROM S3Object GROUP BY a', 'ParseUnsupportedLiteralsGroupBy'),
    ('SELECT a FROM S3Object WHERE a = 1 ORDER BY a',
     'UnsupportedSqlStructure'),
    ('SELECT DISTINCT a FROM S3Object', 'UnsupportedSqlStructure'),
    ('SELECT a FROM S3Object s JOIN S3Object t', 'ParseMalformedJoin'),
    ('SELECT a FROM S3Object s, S3Object t', 'ParseMalformedJoin'),
    ('SELECT a FROM S3Object WHERE a IN (SELECT b FROM S3Object)',
     'ParseUnsupportedSelect'),
    ('SELECT a FROM (SELECT b FROM S3Object)', 'ParseUnsupportedSelect'),
    ('SELECT foo(a) FROM S3Object', 'UnsupportedFunction'),
    ('SELECT COUNT(*), a FROM S3Object', 'UnsupportedSqlOperation'),
    ('SELECT SUM(a) + a FROM S3Object', 'UnsupportedSqlOperation'),
    ('SELECT SUM(COUNT(a)) FROM S3Object', 'UnsupportedSqlOperation'),
    ('SELECT a FROM S3Object WHERE COUNT(*) > 1', 'UnsupportedSqlOperation'),
    ('SELECT SUM(*) FROM S3Object', 'ParseUnsupportedCallWithStar'),
    ('SELECT COUNT(a, b) FROM S3Object', 'ParseNonUnaryAgregateFunctionCall'),
    ('SELECT *, a FROM S3Object', 'ParseAsteriskIsNotAloneInSelectList'),
    ('SELECT a, * FROM S3Object', 'ParseAsteriskIsNotAloneInSelectList'),
    ('SELECT a FROM S3Object LIMIT -1', 'EvaluatorNegativeLimit'),
    ('SELECT a FROM S3Object LIMIT x', 'ParseExpectedNumber'),
    ('SELECT CAST(a AS BLOB) FROM S3Object', 'InvalidDataType'),
    ('SELECT CAST a FROM S3Object', 'ParseExpectedLeftParenAfterCast'),
    ('SELECT CAST(a) FROM S3Object', 'ParseCastArity'),
    ('SELECT CAST(a AS 5) FROM S3Object', 'ParseExpectedTypeName'),
    ('SELECT CASE END FROM S3Object', 'ParseExpectedWhenClause'),
    ('SELECT CASE WHEN a THEN 1 FROM S3Object', 'ParseExpectedKeyword'),
    ('SELECT DATE_ADD(week, 1, a) FROM S3Object', 'ParseExpectedDatePart'),
    ('SELECT EXTRACT(a FROM b) FROM S3Object', 'ParseExpectedDatePart'),
    ('SELECT DATE_DIFF(day a, b) FROM S3Object',
     'ParseExpectedArgumentDelimiter'),
    ('SELECT UPPER(a, b) FROM S3Object', 'EvaluatorInvalidArguments'),
    ('SELECT UTCNOW(1) FROM S3Object', 'EvaluatorInvalidArguments'),
    ('SELECT UPPER(a FROM S3Object',
     'ParseExpectedRightParenBuiltinFunctionCall'),
    ("SELECT 'abc FROM S3Object", 'LexerInvalidLiteral'),
    ('SELECT "abc FROM S3Object', 'LexerInvalidLiteral'),
    ('SELECT a FROM S3Object WHERE a ~ 1', 'LexerInvalidChar'),
    ('SELECT `2020-13-01T` FROM S3Object', 'LexerInvalidIONLiteral'),
    ('SELECT `2020 FROM S3Object', 'LexerInvalidIONLiteral'),
    ('SELECT a FROM S3Object.x', 'ParseInvalidPathComponent'),
    ('SELECT a FROM S3Object[0]', 'ParseInvalidPathComponent'),
    ('SELECT a FROM table1', 'ParseUnexpectedToken'),
    ('SELECT a FROM S3Object x y', 'ParseUnexpectedToken'),
    ('SELECT a FROM S3Object AS', 'ParseExpectedIdentForAlias'),
    ('SELECT a AS FROM S3Object', 'ParseExpectedIdentForAlias'),
    ("SELECT a FROM S3Object WHERE a LIKE 'a!b' ESCAPE '!'",
     'EvaluatorLikePatternInvalidEscapeSequence'),
    ("SELECT a FROM S3Object WHERE a LIKE 'ab' ESCAPE '!!'",
     'LikeInvalidInputs'),
    ('SELECT s.a[*] FROM S3Object s',
     'ParseInvalidContextForWildcardInSelectList'),
    ('SELECT s.*, s.a FROM S3Object s',
     'ParseInvalidContextForWildcardInSelectList'),
    ('SELECT a FROM S3Object s WHERE s.a[*] = 1', 'ParseInvalidPathComponent'),
    ('SELECT s.from FROM S3Object s', 'ParseInvalidPathComponent'),
    ('SELECT s.a[x] FROM S3Object s', 'ParseInvalidPathComponent'),
    ('SELECT a FROM S3Object WHERE a IS 5', 'ParseExpectedKeyword'),
    ('SELECT a FROM S3Object WHERE a IN 1',
     'ParseExpectedLeftParenValueConstructor'),
    ('SELECT a + FROM S3Object', 'ParseUnexpectedKeyword'),
    ('SELECT a FROM S3Object WHERE', 'ParseExpectedExpression'),
    ('SELECT (a FROM S3Object', 'ParseExpectedTokenType'),
])
def test_refused_queries(query, code):
    assert compile_error(query).code == code


def test_error_names_token_and_position():
    err = compile_error('SELECT a FROM S3Object\nWHERE a = = 1')
    assert err.code == 'ParseExpectedExpression'
    assert "'='" in err.message
    assert 'line 2, column 11' in err.message
    assert err.status == 400


def test_unknown_function_named():
    assert 'frobnicate' in compile_error(
        'SELECT frobnicate(1) FROM S3Object').message


def test_keywords_are_case_insensitive():
    rows = run_csv('select s._1 from s3object AS s where s._1 like \'b%\' '
                   'limit 5', [['a'], ['bc']])
    assert rows == [[('_1', 'bc')]]


def test_query_attributes():
    query = compile_query('SELECT COUNT(*) FROM S3Object LIMIT 3')
    assert query.limit == 3 and query.is_aggregate
    query = compile_query('SELECT * FROM S3Object')
    assert query.limit is None and not query.is_aggregate


def test_literals():
    assert value_of("'it''s'") == "it's"
    assert value_of('12') == 12 and type(value_of('12')) is int
    assert value_of('1.50') == Decimal('1.50')
    assert value_of('1e2') == 100.0 and type(value_of('1e2')) is float
    assert value_of('TRUE') is True and value_of('false') is False
    assert value_of('NULL') is None
    assert value_of('MISSING') is MISSING
    assert value_of('`2007-02-23T12:14Z`').year == 2007


def test_quoted_identifier_keeps_doubled_quote_and_keywords():
    record = {'a"b': 1, 'limit': 2}
    assert value_of('s."a""b"', record) == 1
    assert value_of('s."limit"', record) == 2


def test_comment_is_skipped():
    rows = run_json('SELECT s.a -- the a\nFROM S3Object s', [{'a': 1}])
    assert rows == [[('a', 1)]]


# -- precedence and operators ----------------------------------------------

@pytest.mark.parametrize('expression, expected', [
    ('1 + 2 * 3', 7),
    ('(1 + 2) * 3', 9),
    ('-2 * 3', -6),
    ('10 - 4 - 3', 3),
    ("'a' || 'b' = 'ab'", True),
    ('NOT 1 = 2', True),
    ('TRUE OR FALSE AND FALSE', True),
    ('1 < 2 AND 2 BETWEEN 1 AND 3', True),
    ('7 / 2', 3),
    ('-7 / 2', -3),
    ('-7 % 3', -1),
    ('7 % -3', 1),
    ('7.0 / 2', Decimal('3.5')),
    ('1 + 0.5', Decimal('1.5')),
    ('1e0 / 4', 0.25),
    ('0.5 + 1e0', 1.5),
    ("'ab' || 'cd'", 'abcd'),
    ('1 = 1.0', True),
    ('1.5 < 2e0', True),
    ("'abc' < 'abd'", True),
    ("'1' = 1", True),
    ("'10' > 9", True),
    ("'10' > '9'", False),
    ("'x' = 1", False),
    ("'x' <> 1", True),
    ("'x' < 1", None),
    ("'true' = TRUE", True),
    ("'5' + 1", 6),
    ("' 2.5' * 2", Decimal('5.0')),
    ('`2020-01-01T` < `2021T`', True),
    ("'2020-01-01T' < `2021T`", True),
    ('NULL + 1', None),
    ('MISSING + 1', MISSING),
    ('NULL = NULL', None),
    ("NULL || 'a'", None),
    ('-NULL', None),
])
def test_operators(expression, expected):
    result = value_of(expression)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize('expression, expected', [
    ('NULL AND FALSE', False),
    ('NULL AND TRUE', None),
    ('NULL OR TRUE', True),
    ('NULL OR FALSE', None),
    ('NOT NULL', None),
    ('MISSING AND FALSE', False),
    ('1 IN (2, 1)', True),
    ('1 IN (2, NULL)', None),
    ('1 NOT IN (2, 3)', True),
    ('NULL IN (1)', None),
    ("'2' IN (1, 2)", True),
    ('5 NOT BETWEEN 1 AND 3', True),
    ('NULL BETWEEN 1 AND 3', None),
    ("'abc' LIKE 'a%'", True),
    ("'abc' LIKE 'a_c'", True),
    ("'abc' LIKE 'a_'", False),
    ("'a%c' LIKE 'a!%c' ESCAPE '!'", True),
    ("'abc' LIKE 'a!%c' ESCAPE '!'", False),
    ("'a.c' LIKE 'a.c'", True),
    ("'abc' LIKE 'a.c'", False),
    ("'ab\nc' LIKE 'a%c'", True),
    ("'abc' NOT LIKE 'A%'", True),
    ("NULL LIKE 'a'", None),
    ('NULL IS NULL', True),
    ('MISSING IS NULL', True),
    ('NULL IS MISSING', False),
    ('MISSING IS MISSING', True),
    ('1 IS NOT NULL', True),
    ('s.nothing IS MISSING', True),
    ('s.nothing IS NOT MISSING', False),
])
def test_logic_and_predicates(expression, expected):
    assert value_of(expression) is expected


def test_like_pattern_from_a_column():
    records = [{'v': 'abc', 'p': 'a%'}, {'v': 'abc', 'p': 'b%'}]
    rows = run_json('SELECT s.v FROM S3Object s WHERE s.v LIKE s.p', records)
    assert rows == [[('v', 'abc')]]


@pytest.mark.parametrize('expression, code', [
    ('1 / 0', 'IllegalSqlFunctionArgument'),
    ('1.5 % 0', 'IllegalSqlFunctionArgument'),
    ('9223372036854775807 + 1', 'IntegerOverflow'),
    ('-9223372036854775807 - 2', 'IntegerOverflow'),
    ("'abc' + 1", 'CastFailed'),
    ('TRUE + 1', 'IncorrectSqlFunctionArgumentType'),
    ("'a' || 1", 'IncorrectSqlFunctionArgumentType'),
    ("5 LIKE 'a'", 'LikeInvalidInputs'),
    ('1 AND TRUE', 'IncorrectSqlFunctionArgumentType'),
    ("CAST('x' AS INT)", 'CastFailed'),
])
def test_runtime_errors(expression, code):
    assert run_error('SELECT %s FROM S3Object' % expression, [{}]) == code


def test_case_coalesce_nullif():
    record = {'n': 2, 'z': None}
    assert value_of("CASE s.n WHEN 1 THEN 'one' WHEN 2 THEN 'two' END",
                    record) == 'two'
    assert value_of("CASE s.n WHEN 1 THEN 'one' END", record) is None
    assert value_of("CASE WHEN s.n > 5 THEN 'big' ELSE 'small' END",
                    record) == 'small'
    assert value_of("CASE WHEN s.z > 5 THEN 'big' END", record) is None
    assert value_of('COALESCE(s.z, s.nothing, s.n, 9)', record) == 2
    assert value_of('COALESCE(s.z, NULL)', record) is None
    assert value_of('NULLIF(s.n, 2)', record) is None
    assert value_of('NULLIF(s.n, 3)', record) == 2


# -- CSV -------------------------------------------------------------------

ROWS = [['Ann', '31', 'Oslo'], ['bob', '9', 'Rome'], ['Cy', 'x', 'Oslo']]
HEADER = ['Name', 'Age', 'City']


def test_csv_star_without_and_with_header():
    assert run_csv('SELECT * FROM S3Object', ROWS[:1]) == [
        [('_1', 'Ann'), ('_2', '31'), ('_3', 'Oslo')]]
    assert run_csv('SELECT * FROM S3Object s', [['a', 'b', 'c', 'd']],
                   HEADER) == [[('Name', 'a'), ('Age', 'b'), ('City', 'c'),
                                ('_4', 'd')]]
    assert run_csv('SELECT s.* FROM S3Object s', ROWS[:1]) == [
        [('_1', 'Ann'), ('_2', '31'), ('_3', 'Oslo')]]


def test_csv_positional_columns_and_names():
    rows = run_csv('SELECT _3, s._1 FROM S3Object s', ROWS[:1])
    assert rows == [[('_3', 'Oslo'), ('_1', 'Ann')]]


def test_csv_header_names_case_rules():
    assert run_csv('SELECT name, s."Age" FROM S3Object s', ROWS[:1],
                   HEADER) == [[('name', 'Ann'), ('Age', '31')]]
    query = compile_query('SELECT s."name" FROM S3Object s')
    with pytest.raises(SelectError) as caught:
        query.run_csv(ROWS, HEADER)
    assert caught.value.code == 'EvaluatorBindingDoesNotExist'
    assert 'name' in caught.value.message


@pytest.mark.parametrize('query, header, code', [
    ('SELECT s.name FROM S3Object s', ['NAME', 'name'], 'AmbiguousFieldName'),
    ('SELECT s.name FROM S3Object s', None, 'EvaluatorBindingDoesNotExist'),
    ('SELECT s.zip FROM S3Object s', HEADER, 'EvaluatorBindingDoesNotExist'),
    ('SELECT _0 FROM S3Object', None, 'InvalidColumnIndex'),
    ('SELECT _4 FROM S3Object', HEADER, 'InvalidColumnIndex'),
    ('SELECT t._1 FROM S3Object s', None, 'InvalidTableAlias'),
    ('SELECT S3Object._1 FROM S3Object s', None, 'InvalidTableAlias'),
    ('SELECT s._1.x FROM S3Object s', None, 'InvalidKeyPath'),
    ('SELECT s[0] FROM S3Object s', None, 'InvalidKeyPath'),
    ('SELECT * FROM S3Object[*].a', None, 'InvalidKeyPath'),
])
def test_csv_binding_errors_come_before_reading(query, header, code):
    def rows():
        raise AssertionError('input read before the query was bound')
        yield  # pragma: no cover
    with pytest.raises(SelectError) as caught:
        compile_query(query).run_csv(rows(), header)
    assert caught.value.code == code


def test_csv_short_row_gives_missing():
    rows = run_csv('SELECT _1, _3 FROM S3Object WHERE _3 IS MISSING',
                   [['a', 'b', 'c'], ['d']])
    assert rows == [[('_1', 'd'), ('_3', MISSING)]]


def test_csv_numbers_compared_after_implicit_conversion():
    rows = run_csv('SELECT s.name FROM S3Object s WHERE s.age > 10', ROWS,
                   HEADER)
    assert rows == [[('name', 'Ann')]]
    rows = run_csv("SELECT _1 FROM S3Object WHERE _2 > '10'", ROWS)
    assert rows == [[('_1', 'Ann')], [('_1', 'bob')], [('_1', 'Cy')]]


def test_csv_where_uses_alias_and_s3object():
    assert run_csv("SELECT _1 FROM S3Object WHERE S3Object._3 = 'Rome'",
                   ROWS) == [[('_1', 'bob')]]


def test_csv_alias_is_case_insensitive():
    assert run_csv('SELECT S._1 FROM S3Object s', ROWS[:1]) == [
        [('_1', 'Ann')]]


def test_output_names():
    rows = run_csv("SELECT _1 AS who, _2 years, UPPER(_3), 'k' "
                   "FROM S3Object", ROWS[:1])
    assert [name for name, _ in rows[0]] == ['who', 'years', '_3', '_4']


# -- LIMIT and laziness ----------------------------------------------------

def counted(source, seen):
    for row in source:
        seen.append(row)
        yield row


def test_limit_stops_reading_input():
    seen = []
    rows = compile_query('SELECT _1 FROM S3Object LIMIT 2').run_csv(
        counted(([str(n)] for n in count()), seen), None)
    assert list(rows) == [[('_1', '0')], [('_1', '1')]]
    assert len(seen) == 2


def test_limit_counts_selected_rows():
    rows = run_csv('SELECT _1 FROM S3Object WHERE _1 > 3 LIMIT 2',
                   [[str(n)] for n in range(10)])
    assert rows == [[('_1', '4')], [('_1', '5')]]


def test_limit_zero_reads_nothing():
    seen = []
    rows = compile_query('SELECT COUNT(*) FROM S3Object LIMIT 0').run_csv(
        counted([['a']], seen), None)
    assert list(rows) == [] and seen == []


def test_rows_come_one_at_a_time():
    seen = []
    rows = compile_query('SELECT _1 FROM S3Object').run_csv(
        counted(([str(n)] for n in count()), seen), None)
    assert next(rows) == [('_1', '0')]
    assert next(rows) == [('_1', '1')]
    assert len(seen) == 2


# -- JSON ------------------------------------------------------------------

PERSON = {'name': 'Susan Smith', 'org': 'engineering',
          'projects': [{'project_name': 'project1', 'completed': False},
                       {'project_name': 'project2', 'completed': True}]}


def test_json_paths_from_the_documentation():
    assert run_json('Select s.name from S3Object s', [PERSON]) == [
        [('name', 'Susan Smith')]]
    assert run_json('Select s.projects[0].project_name from S3Object s',
                    [PERSON]) == [[('project_name', 'project1')]]


def test_json_from_path_with_wildcards_emits_missing():
    records = [{'Rules': [{'id': '1'}, {'expr': 'y > x'},
                          {'id': '2', 'expr': 'z = DEBUG'}]},
               {'created': 'June 27', 'modified': 'July 6'}]
    rows = run_json('SELECT id FROM S3Object[*].Rules[*].id', records)
    assert rows == [[('id', '1')], [('id', MISSING)], [('id', '2')],
                    [('id', MISSING)]]


def test_json_underscore_one_names_a_wildcard_row():
    records = [{'dir_name': 'important_docs', 'owner': 'Amazon S3'}]
    rows = run_json('SELECT _1.dir_name, _1.owner FROM S3Object[*]', records)
    assert rows == [[('dir_name', 'important_docs'), ('owner', 'Amazon S3')]]


def test_json_from_path_with_alias_and_object_wildcard():
    records = [{'books': {'a': {'price': 5}, 'b': {'price': 7}}}]
    rows = run_json('SELECT b.price FROM S3Object[*].books.* AS b '
                    'WHERE b.price > 6', records)
    assert rows == [[('price', 7)]]


def test_json_star():
    assert run_json('SELECT * FROM S3Object', [{'a': 1, 'b': [2]}, 5]) == [
        [('a', 1), ('b', [2])], [('_1', 5)]]
    assert run_json('SELECT * FROM S3Object[*].x[*]', [{'y': 1}]) == [[]]


def test_json_field_case_rules():
    record = {'Name': 'n', 'other': {'Deep': 1}}
    assert value_of('s.name', record) == 'n'
    assert value_of('s.OTHER.deep', record) == 1
    assert value_of('s."name"', record) is MISSING
    assert value_of("s['Name']", record) == 'n'
    assert value_of('s.Name.x', record) is MISSING
    assert value_of('s.other[0]', record) is MISSING
    assert run_error('SELECT s.name FROM S3Object s',
                     [{'name': 1, 'NAME': 2}]) == 'AmbiguousFieldName'


def test_json_attribute_without_alias():
    assert run_json('SELECT name FROM S3Object WHERE org = '
                    "'engineering'", [PERSON]) == [[('name', 'Susan Smith')]]
    assert run_json('SELECT S3Object.org FROM S3Object', [PERSON]) == [
        [('org', 'engineering')]]


def test_json_index_out_of_range_is_missing():
    assert value_of('s.projects[5]', PERSON) is MISSING
    assert value_of('s.projects[1].completed', PERSON) is True


# -- aggregates ------------------------------------------------------------

def test_aggregates_over_json():
    records = [{'n': 1}, {'n': 4}, {'n': None}, {}, {'n': 3}]
    rows = run_json('SELECT COUNT(*), COUNT(s.n), SUM(s.n), AVG(s.n), '
                    'MIN(s.n), MAX(s.n) FROM S3Object s', records)
    assert rows == [[('_1', 5), ('_2', 3), ('_3', 8),
                     ('_4', Context(prec=38).divide(8, 3)), ('_5', 1),
                     ('_6', 4)]]
    assert type(rows[0][3][1]) is Decimal


def test_aggregate_types_and_expressions():
    rows = run_json('SELECT AVG(s.f), SUM(s.d), SUM(s.n) / COUNT(*) AS m '
                    'FROM S3Object s', [{'f': 1.0, 'd': 1, 'n': 3},
                                        {'f': 2.0, 'd': 0.5, 'n': 4}])
    assert rows == [[('_1', 1.5), ('_2', 1.5), ('m', 3)]]


def test_aggregates_with_where_and_csv_strings():
    assert run_error('SELECT SUM(s.x) FROM S3Object s',
                     [{'x': 'abc'}]) == 'CastFailed'
    rows = run_csv("SELECT COUNT(*), SUM(_2), MAX(_1) FROM S3Object "
                   "WHERE _2 <> 'x'", ROWS)
    assert rows == [[('_1', 2), ('_2', 40), ('_3', 'bob')]]


def test_aggregates_of_nothing():
    rows = run_json('SELECT COUNT(*), SUM(s.n), MAX(s.n) FROM S3Object s '
                    'WHERE FALSE', [{'n': 1}])
    assert rows == [[('_1', 0), ('_2', None), ('_3', None)]]


def test_min_of_mixed_types_is_an_error():
    assert run_error('SELECT MIN(s.n) FROM S3Object s',
                     [{'n': 1}, {'n': [2]}]) == \
        'IncorrectSqlFunctionArgumentType'


def test_query_runs_twice_with_fresh_state():
    query = compile_query('SELECT COUNT(*) FROM S3Object')
    assert list(query.run_json([1, 2])) == [[('_1', 2)]]
    assert list(query.run_json([1])) == [[('_1', 1)]]


# -- functions through the evaluator ---------------------------------------

def test_string_functions_get_their_arguments_shaped():
    record = {'a': ' Hello '}
    assert value_of('UPPER(s.a)', record) == ' HELLO '
    assert value_of('CHARACTER_LENGTH(s.a)', record) == 7
    assert value_of('SUBSTRING(s.a FROM 2 FOR 3)', record) == 'Hel'
    assert value_of('SUBSTRING(s.a, 2, 3)', record) == 'Hel'
    assert value_of('SUBSTRING(s.a, 3)', record) == 'ello '
    assert value_of('TRIM(s.a)', record) == 'Hello'
    assert value_of('TRIM(TRAILING FROM s.a)', record) == ' Hello'
    assert value_of("TRIM(BOTH ' Ho' FROM s.a)", record) == 'ell'
    assert value_of("TRIM('x' FROM 'xax')") == 'a'


def test_date_functions_and_timestamp_literals():
    assert value_of('EXTRACT(YEAR FROM `2010-01-01T`)') == 2010
    assert value_of('DATE_DIFF(day, `2020-01-01T`, `2020-02-03T`)') == 33
    added = value_of('DATE_ADD(year, 5, `2010-01-01T`)')
    assert (added.year, added.month) == (2015, 1)
    assert value_of("TO_STRING(TO_TIMESTAMP('2020-02-03T04:05Z'), "
                    "'y-MM')") == '2020-02'
    assert value_of('UTCNOW() IS NOT NULL') is True


def test_cast():
    assert value_of("CAST('12' AS INT) + 1") == 13
    assert value_of('CAST(s.n AS STRING)', {'n': 5}) == '5'
    assert value_of("CAST('1.5' AS DECIMAL(10, 2))") == Decimal('1.5')
    assert value_of('CAST(NULL AS INT)') is None


def test_thousands_of_or_terms_run_and_deep_nesting_is_a_clear_error():
    terms = ' OR '.join("_1 = 'v%d'" % i for i in range(20000))
    query = compile_query('SELECT _1 FROM S3Object WHERE ' + terms)
    assert list(query.run_csv([['v19999'], ['w'], ['v0']], None)) == [
        [('_1', 'v19999')], [('_1', 'v0')]]
    with pytest.raises(SelectError) as deep:
        compile_query('SELECT * FROM S3Object WHERE ' + '(' * 50000 +
                      '1 = 1' + ')' * 50000)
    assert deep.value.code == 'UnsupportedSqlStructure'


@pytest.mark.parametrize('query, fields', [
    ('SELECT s.a, b FROM S3Object s WHERE s."C" > 1', {'a', 'b', 'c'}),
    ('SELECT COUNT(*) FROM S3Object', set()),
    ('SELECT SUM(x.y) FROM S3Object[*] WHERE S3Object.z IS NULL',
     {'x', 'z'}),
    ('SELECT * FROM S3Object', None),
    ('SELECT s FROM S3Object s', None),
    ('SELECT a FROM S3Object[*].b', None),
    ('SELECT s[0] FROM S3Object s', None),
])
def test_fields_read_name_the_columns_a_reader_may_keep(query, fields):
    assert compile_query(query).fields_read() == fields


def test_number_literal_comparisons_keep_every_rule():
    """``x < 10`` takes a shortcut when ``x`` is a number; strings, NULL,
    MISSING and booleans keep the general rules."""
    rows = [['7', '2.5', 'true'], ['12', 'x', 'false'], ['', '1e1'],
            ['99999999999999999999', '-3']]
    assert run_csv('SELECT _1 FROM S3Object WHERE CAST(_1 AS INT) < 10',
                   rows[:2]) == [[('_1', '7')]]
    # A string field: converted when it is a number, else no order.
    assert run_csv('SELECT _1 FROM S3Object WHERE _2 < 10', rows) == [
        [('_1', '7')], [('_1', '99999999999999999999')]]
    # MISSING (a short row) and a boolean are never less than a number.
    assert run_csv('SELECT _1 FROM S3Object WHERE _3 < 10', rows) == []
    assert run_csv('SELECT _1 FROM S3Object WHERE CAST(_3 AS BOOL) = 1',
                   rows[:2]) == []
    assert run_csv('SELECT _1 FROM S3Object WHERE CAST(_2 AS FLOAT) >= 2.5',
                   [rows[0], rows[2]]) == [[('_1', '7')], [('_1', '')]]
    # Past 8 bytes, a CAST to INT fails as ever.
    with pytest.raises(SelectError) as caught:
        run_csv('SELECT _1 FROM S3Object WHERE CAST(_1 AS INT) < 10',
                rows[3:])
    assert caught.value.code == 'CastFailed'


def test_sum_of_floats_skips_null_and_missing():
    rows = [['1.5'], ['', 'x'], [], ['2.25'], ['0.25']]
    assert run_csv("SELECT SUM(CAST(NULLIF(_1, '') AS FLOAT)) "
                   'FROM S3Object', rows) == [[('_1', 4.0)]]
