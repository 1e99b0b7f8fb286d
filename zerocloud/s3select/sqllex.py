"""The tokenizer of S3 Select's SQL.

Turns an expression into ``Token`` s: keywords (upper-cased), identifiers
(plain ones keep their spelling and match case-insensitively; ``"quoted"``
ones match exactly), ``'string'`` literals with ``''`` for a quote,
numbers, `` `timestamp` `` literals and operators.  ``--`` comments run to
the end of the line.  Anything else is a ``LexerInvalidChar`` error naming
the character and its position.
"""

import re
from dataclasses import dataclass
from typing import List, Tuple

from .errors import SelectError

#: Words with a meaning in the grammar (or refused by it): as plain
#: identifiers they are errors, quoted (``s."limit"``) they are names.
KEYWORDS = frozenset('''
    ALL AND AS ASC BETWEEN BY CASE CAST CROSS DESC DISTINCT ELSE END ESCAPE
    EXCEPT FALSE FROM FULL GROUP HAVING IN INNER INTERSECT IS JOIN LEFT LIKE
    LIMIT MISSING NOT NULL OFFSET ON OR ORDER OUTER RIGHT SELECT THEN TRUE
    UNION WHEN WHERE
'''.split())

#: Token kinds.
KEYWORD = 'keyword'
IDENT = 'identifier'
STRING = 'string'
INTEGER = 'integer'
DECIMAL = 'decimal'
FLOAT = 'float'
TIMESTAMP = 'timestamp'
OPERATOR = 'operator'
EOF = 'end of expression'

_OPERATORS = ('||', '<=', '>=', '<>', '!=', '=', '<', '>', '+', '-', '*',
              '/', '%', '(', ')', '[', ']', ',', '.')
_NUMBER = re.compile(r'(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?')
_WORD = re.compile(r'[A-Za-z_][A-Za-z0-9_$]*')
_SPACE = re.compile(r'(\s+|--[^\n]*)+')


@dataclass(frozen=True)
class Token:
    kind: str
    #: Keyword in upper case, identifier as written (unquoted), string
    #: literal's text, number's source text, operator.
    value: str
    pos: int
    quoted: bool = False

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind == EOF:
            return 'the end of the expression'
        if self.kind == STRING:
            return "string '%s'" % self.value
        if self.quoted:
            return 'identifier "%s"' % self.value
        return "%s '%s'" % (self.kind, self.value)


def where(text: str, pos: int) -> str:
    """``line L, column C`` of offset ``pos`` in ``text``, as S3 says it."""
    line = text.count('\n', 0, pos) + 1
    column = pos - (text.rfind('\n', 0, pos) + 1) + 1
    return 'line %d, column %d' % (line, column)


def tokenize(text: str) -> List[Token]:
    """All tokens of ``text``, ending with an ``EOF`` token."""
    tokens = []
    pos = 0
    while True:
        space = _SPACE.match(text, pos)
        if space:
            pos = space.end()
        if pos >= len(text):
            tokens.append(Token(EOF, '', pos))
            return tokens
        token, pos = _next_token(text, pos)
        tokens.append(token)


def _next_token(text: str, pos: int) -> Tuple[Token, int]:
    """The token at ``pos`` and the offset just past it."""
    char = text[pos]
    if char == "'":
        value, end = _quoted(text, pos, 'string literal')
        return Token(STRING, value, pos), end
    if char == '"':
        value, end = _quoted(text, pos, 'quoted identifier')
        return Token(IDENT, value, pos, quoted=True), end
    if char == '`':
        end = text.find('`', pos + 1)
        if end < 0:
            raise SelectError('LexerInvalidIONLiteral',
                              'Unterminated `literal` at %s.'
                              % where(text, pos))
        return Token(TIMESTAMP, text[pos + 1:end], pos), end + 1
    number = _NUMBER.match(text, pos)
    if number:
        kind = (FLOAT if number.group(2) else
                DECIMAL if '.' in number.group(1) else INTEGER)
        return Token(kind, number.group(0), pos), number.end()
    word = _WORD.match(text, pos)
    if word:
        upper = word.group(0).upper()
        if upper in KEYWORDS:
            return Token(KEYWORD, upper, pos), word.end()
        return Token(IDENT, word.group(0), pos), word.end()
    for operator in _OPERATORS:
        if text.startswith(operator, pos):
            return Token(OPERATOR, operator, pos), pos + len(operator)
    raise SelectError('LexerInvalidChar', 'Invalid character %r at %s.'
                      % (char, where(text, pos)))


def _quoted(text: str, pos: int, what: str) -> Tuple[str, int]:
    """The text of the quoted token at ``pos`` (a doubled quote read as
    one) and the offset past its closing quote."""
    quote = text[pos]
    parts = []
    start = pos + 1
    while True:
        end = text.find(quote, start)
        if end < 0:
            raise SelectError('LexerInvalidLiteral', 'Unterminated %s at %s.'
                              % (what, where(text, pos)))
        parts.append(text[start:end])
        if not text.startswith(quote, end + 1):
            return ''.join(parts), end + 1
        parts.append(quote)
        start = end + 2
