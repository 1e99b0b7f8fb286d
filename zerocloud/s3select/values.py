"""Values as the SQL engine and the writers see them.

A value is ``None`` (SQL ``NULL``), ``MISSING`` (a JSON path that leads
nowhere: not written to JSON output at all), ``bool``, ``int``,
``float``, ``decimal.Decimal``, ``str``, ``datetime.datetime`` (an S3
``TIMESTAMP``, always with a ``tzinfo``), or, from JSON and Parquet
input, ``list`` and ``dict`` of values.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any


class _Missing:
    """The one ``MISSING`` value: falsy, equal only to itself."""

    _instance = None

    def __new__(cls) -> '_Missing':
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return 'MISSING'

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


def type_name(value: Any) -> str:
    """S3's name of a value's type (``INT``, ``STRING``, ``TIMESTAMP`` …),
    for type rules and messages."""
    if isinstance(value, bool):
        return 'BOOL'
    if isinstance(value, int):
        return 'INT'
    if isinstance(value, float):
        return 'FLOAT'
    if isinstance(value, Decimal):
        return 'DECIMAL'
    if isinstance(value, str):
        return 'STRING'
    if isinstance(value, datetime):
        return 'TIMESTAMP'
    if isinstance(value, list):
        return 'LIST'
    if isinstance(value, dict):
        return 'STRUCT'
    return type(value).__name__.upper()
