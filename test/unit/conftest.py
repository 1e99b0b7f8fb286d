"""Fixtures shared by the unit tests."""

from typing import BinaryIO

import eventlet
import pytest

from zerocloud import tarscan


class ExpansionCounter:
    """How many uncompressed bytes tarscan has read out of images."""

    def __init__(self) -> None:
        self.total = 0

    def wrap(self, stream: BinaryIO) -> 'CountingStream':
        return CountingStream(stream, self)


class CountingStream:
    def __init__(self, stream: BinaryIO, counter: ExpansionCounter):
        self.stream = stream
        self.counter = counter

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.counter.total += len(data)
        return data

    def __enter__(self) -> 'CountingStream':
        return self

    def __exit__(self, *exc_info) -> None:
        self.stream.close()


@pytest.fixture
def expansion(monkeypatch) -> ExpansionCounter:
    """Counts what every tarscan scan expands, behind its own caps: a bomb
    that was expanded shows here, however fast it went."""
    counter = ExpansionCounter()
    opened = tarscan.expanded_stream
    monkeypatch.setattr(tarscan, 'expanded_stream',
                        lambda raw: counter.wrap(opened(raw)))
    return counter


#: Seconds after which a test of waits on sockets fails rather than hang,
#: when the code under test left a wait unbounded.
HANG_GUARD = 30


@pytest.fixture
def no_hang():
    """Fails the test (an AssertionError raised where it waits) instead of
    letting an unbounded wait hang the suite."""
    with eventlet.Timeout(HANG_GUARD, AssertionError('a wait was unbounded')):
        yield
