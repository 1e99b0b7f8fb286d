"""Header values made of program and user text (zerocloud.headers)."""

from urllib.parse import unquote

import pytest

from zerocloud.headers import (
    MAX_HEADER_LINE, MAX_ITEM_LENGTH, TRUNCATED, fit_item_lists, fit_text,
    guard_headers, header_value)

ODD_TEXTS = [
    'plain text: ok',
    '\u2603 snowman, comma',
    'bad \udcff\udcfe bytes',
    'lone \ud800 surrogate',
    'bell\x07 esc\x1b[31m del\x7f c1\x85',
    '  tab\tcr\rlf\n  ',
    '100% done %41',
    '\u2603' * 400,
    'x' * 2000,
]


def test_printable_ascii_stays_as_it_is():
    assert header_value('Node py failed: (exit 3) [a/b] ~ok') == \
        'Node py failed: (exit 3) [a/b] ~ok'


def test_non_ascii_becomes_percent_encoded_utf8():
    assert header_value('bad return code: \u2603') == \
        'bad return code: %E2%98%83'
    assert unquote(header_value('caf\xe9 \U0001f600')) == 'caf\xe9 \U0001f600'


def test_comma_is_encoded_so_items_stay_apart():
    assert header_value('a,b') == 'a%2Cb'


def test_surrogateescape_bytes_come_back_as_themselves():
    raw = b'bad \xff\xfe end'
    value = header_value(raw.decode('utf-8', 'surrogateescape'))
    assert value == 'bad %FF%FE end'
    assert unquote(value, errors='surrogateescape').encode(
        'utf-8', 'surrogateescape') == raw


def test_other_lone_surrogates_become_the_replacement_character():
    assert header_value('a\ud800b') == 'a%EF%BF%BDb'


def test_control_characters_are_removed_and_whitespace_folded():
    assert header_value('red\x1b[31m bell\x07 del\x7f c1\x85!') == \
        'red[31m bell del c1!'
    assert header_value('  one\t\ttwo\r\nthree \x00 four\n') == \
        'one two three four'


def test_percent_is_kept():
    assert header_value('100% done %41') == '100% done %41'


def test_long_text_is_cut_between_characters():
    value = header_value('\u2603' * 400)
    assert len(value) <= MAX_ITEM_LENGTH
    assert value.endswith(TRUNCATED)
    # Whole characters only: every escape group decodes.
    assert set(unquote(value[:-len(TRUNCATED)], errors='strict')) == \
        {'\u2603'}
    assert header_value('x' * 2000, limit=20) == 'x' * 17 + TRUNCATED


def test_no_limit_keeps_everything():
    assert header_value('x' * 2000, limit=None) == 'x' * 2000


@pytest.mark.parametrize('text', ODD_TEXTS)
def test_encoding_twice_changes_nothing(text):
    once = header_value(text)
    assert header_value(once) == once


@pytest.mark.parametrize('text', ODD_TEXTS)
def test_result_is_sendable_printable_ascii_without_commas(text):
    value = header_value(text)
    value.encode('latin-1')
    assert all(' ' <= char <= '~' for char in value)
    assert ',' not in value
    assert value == value.strip()


def test_guard_leaves_plain_values_and_encodes_the_rest():
    assert guard_headers([('Content-Type', 'text/plain; charset=UTF-8'),
                          ('X-Nexe-Status', 'ok,ok'),
                          ('X-Nexe-Error', '\u2603\r\nInjected: 1')]) == [
        ('Content-Type', 'text/plain; charset=UTF-8'),
        ('X-Nexe-Status', 'ok,ok'),
        ('X-Nexe-Error', '%E2%98%83 Injected: 1')]


# -- header lines under MAX_HEADER_LINE -------------------------------------

def line_length(name: str, value: str) -> int:
    return len('%s: %s\r\n' % (name, value))


def test_item_lists_that_fit_are_joined_whole():
    assert fit_item_lists({'X-A': ['1', '2'], 'X-B': ['x', 'y']},
                          {'X-B': 'head, '}) == {'X-A': '1,2',
                                                 'X-B': 'head, x,y'}


def test_long_lists_keep_the_same_leading_items_and_a_marker():
    names = ['node-%04d-%s' % (n, 'n' * 40) for n in range(1000)]
    statuses = ['ok'] * 1000
    values = fit_item_lists({'X-Nexe-System': names,
                             'X-Nexe-Status': statuses},
                            {'X-Nexe-Status': '0.1, '})
    system = values['X-Nexe-System'].split(',')
    status = values['X-Nexe-Status'][len('0.1, '):].split(',')
    assert len(system) == len(status) < 1000
    kept = len(system) - 1
    assert system[:kept] == names[:kept]
    assert system[-1] == status[-1] == '...(%d more)' % (1000 - kept)
    for name, value in values.items():
        assert line_length(name, value) < MAX_HEADER_LINE
    # As many as fit: one more would not.
    longer = ','.join(names[:kept + 1] + [system[-1]])
    assert line_length('X-Nexe-System', longer) >= MAX_HEADER_LINE - 2


def test_one_huge_item_leaves_only_the_marker():
    values = fit_item_lists({'X-A': ['a' * 9000, 'b'], 'X-B': ['1', '2']})
    assert values == {'X-A': '...(2 more)', 'X-B': '...(2 more)'}


def test_long_text_is_cut_to_its_line_with_a_marker():
    assert fit_text('X-Nexe-Error', 'short') == 'short'
    cut = fit_text('X-Nexe-Error', 'e' * 20000)
    assert cut.endswith(TRUNCATED)
    assert line_length('X-Nexe-Error', cut) == MAX_HEADER_LINE - 1
