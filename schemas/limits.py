"""The bounds every raw record keeps, checked at the edge (ingestor and cleaner).

One budget, end to end: a record within these bounds fits every later stage
(Kafka messages, Postgres keys and NUMERIC columns, exact Decimal sums), so a
stage after the edge never meets a value it cannot hold. What is outside gets
a clear error at the edge and never travels further.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field, StringConstraints

# Parts of the observation key (indexed in Postgres: a btree row holds at
# most about 2.7 kB, i.e. these in 4-byte characters with room to spare).
MAX_KEY_CHARS = 100
MAX_COMMUNE_CHARS = 10
# Labels, units, dates and the extra (personal) fields.
MAX_TEXT_CHARS = 1_000
MAX_FIELD_NAME_CHARS = 100
MAX_FIELDS = 40
# valeur: |valeur| < 10**MAX_INTEGER_DIGITS with at most MAX_DECIMAL_PLACES
# decimals, so 30 significant digits at most. Sums and weighted sums over
# every commune of France then need under 70 digits: see EXACT_PRECISION.
MAX_INTEGER_DIGITS = 21
MAX_DECIMAL_PLACES = 9
MAX_VALUE_CHARS = 64
# annee: the years an observation (and an objective) may be for.
YEAR_MIN, YEAR_MAX = 1900, 2100
# version: an integer every JSON reader holds exactly, and a Postgres bigint.
MAX_VERSION = 2**53 - 1
# What Postgres stores versions and acceptance times in (bigint): the bounds a
# clean record keeps, whoever wrote it on the topic.
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# Precision of the aggregator's Decimal arithmetic: more than any sum of
# bounded values needs; rounding is trapped, never silent.
EXACT_PRECISION = 100
# How many years back a ratio's denominator may be looked for (catalogue
# ``repli_denominateur``): each change of a denominator reads and locks this
# many years of its commune on either side.
REPLI_MAX = 10


NO_NUL = r"^[^\x00]*$"  # Postgres text cannot hold a NUL
# Record ids: `<batch id>/<partition>/<part>:<index>`, from a bounded batch id.
MAX_RECORD_ID_CHARS = 200


def bounded(limit: int) -> StringConstraints:
    """At most ``limit`` characters, no NUL, valid Unicode (a pattern needs a
    real Unicode string: pydantic-core refuses lone surrogates), all checked
    in pydantic-core, not in Python: this runs for every record."""
    return StringConstraints(max_length=limit, pattern=NO_NUL)


KeyText = Annotated[str, bounded(MAX_KEY_CHARS)]
Text = Annotated[str, bounded(MAX_TEXT_CHARS)]
CommuneCode = Annotated[str, bounded(MAX_COMMUNE_CHARS)]
Year = Annotated[int, Field(ge=YEAR_MIN, le=YEAR_MAX)]
Bigint = Annotated[int, Field(ge=BIGINT_MIN, le=BIGINT_MAX)]


class OutOfBounds(ValueError):
    """A value outside the bounds above; the message never echoes the value."""


def check_text(text: str, limit: int) -> None:
    if len(text) > limit:
        raise OutOfBounds(f"is longer than {limit} characters")
    if "\x00" in text:
        raise OutOfBounds("contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise OutOfBounds("is not valid Unicode (lone surrogate)") from None


def check_scalar(value: Any) -> None:
    """An extra field: text, a number, a boolean or null; nothing nested."""
    if isinstance(value, str):
        check_text(value, MAX_TEXT_CHARS)
    elif not (_finite(value) if isinstance(value, float | Decimal) else True):
        raise OutOfBounds("NaN and Infinity are not numbers")
    elif isinstance(value, dict | list):
        raise OutOfBounds("must be text, a number, a boolean or null, not nested")
    elif not isinstance(value, int | float | Decimal | bool | type(None)):
        raise OutOfBounds(f"unsupported type {type(value).__name__}")


def check_number(number: Decimal) -> Decimal:
    """A finite decimal within the documented magnitude and decimal places."""
    if not number.is_finite():
        raise OutOfBounds("not a finite number")
    if number and number.adjusted() >= MAX_INTEGER_DIGITS:
        raise OutOfBounds(f"more than {MAX_INTEGER_DIGITS} digits before the decimal point")
    if not number:
        return number
    _, digits, exponent = number.as_tuple()
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:  # trailing zeros count not
        trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
        if exponent + trailing_zeros < -MAX_DECIMAL_PLACES:
            raise OutOfBounds(f"more than {MAX_DECIMAL_PLACES} decimal places")
    return number


# Numbers written this way are within the bounds by their shape alone: the
# common case is checked by one match instead of Decimal arithmetic.
PLAIN_NUMBER = re.compile(
    rf"[+-]?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{0,{MAX_DECIMAL_PLACES}}})?"
)


def number_from_text(text: str) -> Decimal | None:
    """``12,5``, ``1 234.5`` or ``-3e2`` as a Decimal, checked with
    :func:`check_number` when finite; None if not a number at all."""
    compact = text.strip()
    if " " in compact or "\xa0" in compact or "\u202f" in compact:  # thousands separators
        compact = compact.replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if len(compact) > MAX_VALUE_CHARS:
        raise OutOfBounds(f"longer than {MAX_VALUE_CHARS} characters")
    compact = compact.replace(",", ".")
    if PLAIN_NUMBER.fullmatch(compact):
        return Decimal(compact)
    try:
        number = Decimal(compact)
    except InvalidOperation:
        return None
    return check_number(number) if number.is_finite() else number


def _finite(number: float | Decimal) -> bool:
    return number.is_finite() if isinstance(number, Decimal) else math.isfinite(number)


# Messages written straight to Kafka are bounded too (issue #30): a 32 MiB
# message of `{"records":[{},{},…]}` is 11 million objects, gigabytes once
# read, and a consumer that runs out of memory on a message reads it again
# after every restart. A JSON message of more values than this (counted by
# its commas, brackets and braces outside strings: an upper bound), or an
# envelope of more records than that, is refused whole and unread: one dead
# letter. The ingestor's messages hold at most 20,000 records of at most
# MAX_FIELDS fields (820,000 values).
MAX_MESSAGE_VALUES = 1_000_000
MAX_MESSAGE_RECORDS = 50_000
JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_values_over(value: bytes, limit: int | None = None) -> bool:
    """Whether the JSON document ``value`` may hold more than ``limit``
    (MAX_MESSAGE_VALUES) values. Counted without reading it: bytes first
    (free), then, only when that count is over, once more with the strings'
    contents left out (a label full of commas is no values)."""
    limit = MAX_MESSAGE_VALUES if limit is None else limit

    def counted(text: bytes) -> int:
        return text.count(b",") + text.count(b"[") + text.count(b"{")

    return counted(value) > limit and counted(JSON_STRING.sub(b'""', value)) > limit
