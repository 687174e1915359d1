"""Key columns reach Postgres as array literals built by itte
(``db.array_literal``), not by psycopg: Postgres must read back exactly the
values sent, whatever text a producer put in a key."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import db
from schemas import limits
from services.aggregator.store import _columns

# What a key may hold once past the bounds: any Unicode but NUL and lone
# surrogates, so quotes, backslashes, braces, commas, blanks and "NULL" too.
key_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=limits.MAX_KEY_CHARS,
)
TRICKY = ["", " ", "NULL", "null", '"', "\\", '\\"', "{a,b}", "a,b", "é ü", "\t\n", "}{", "💶"]


@pytest.fixture(scope="module")
def conn(database_factory) -> psycopg.Connection:
    with psycopg.connect(database_factory(), autocommit=True) as connection:
        yield connection


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(key_text, st.sampled_from(TRICKY)), max_size=30))
def test_any_text_reads_back_as_sent(conn: psycopg.Connection, values: list[str]) -> None:
    back = conn.execute("SELECT %s::text[]", (db.array_literal(values),)).fetchone()
    assert back == (values,)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=30))
def test_any_integer_reads_back_as_sent(conn: psycopg.Connection, values: list[int]) -> None:
    back = conn.execute("SELECT %s::bigint[]", (db.array_literal(values),)).fetchone()
    assert back == (values,)


def test_an_empty_column_is_an_empty_array(conn: psycopg.Connection) -> None:
    assert conn.execute("SELECT %s::int[], %s::text[]", ("{}", "{}")).fetchone() == ([], [])
    assert db.array_literal([]) == "{}"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(key_text, st.integers(-(2**31), 2**31 - 1)), max_size=30))
def test_key_columns_read_back_as_the_keys(
    conn: psycopg.Connection, keys: list[tuple[str, int]]
) -> None:
    """The store's keys, transposed into one literal per column."""
    back = conn.execute("SELECT * FROM unnest(%s::text[], %s::int[])", _columns(keys, 2))
    assert back.fetchall() == keys


def test_key_columns_of_no_keys_and_of_ragged_keys() -> None:
    assert _columns([], 3) == ["{}", "{}", "{}"]
    with pytest.raises(ValueError):
        _columns([("a", 1), ("b",)], 2)
    with pytest.raises(ValueError):
        _columns([("a", 1)], 3)
