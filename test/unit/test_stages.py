"""Stage timings: what the object server sends and the proxy logs."""

import pytest

from zerocloud.stages import StageClock, format_stages, parse_stages


def test_stages_cross_the_wire_in_milliseconds():
    value = format_stages([('receive', 0.0012), ('sandbox', 0.0205)])
    assert value == 'receive=1.20,sandbox=20.50'
    assert parse_stages(value) == [('receive', pytest.approx(0.0012)),
                                   ('sandbox', pytest.approx(0.0205))]
    assert format_stages([('read', 0.001)], 'server.') == 'server.read=1.00'


def test_what_does_not_parse_is_left_out():
    assert parse_stages('a=1.5,b=x,,c') == [('a', 0.0015)]
    assert parse_stages('') == []


def test_a_clock_marks_consecutive_stages():
    clock = StageClock()
    clock.mark('one')
    clock.mark('two')
    assert [name for name, _ in clock.stages] == ['one', 'two']
    assert all(seconds >= 0 for _, seconds in clock.stages)
