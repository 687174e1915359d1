"""Database URLs as users write them (libpq), turned into what the code needs."""

from __future__ import annotations

import pytest

from common.db import sqlalchemy_url, with_database


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db:5432/itte", "postgresql://u:p@db:5432/other"),
        # The embedded server: a socket folder in the query, kept whole.
        (
            "postgresql://postgres@/postgres?host=/tmp/state/pg&port=5433",
            "postgresql://postgres@/other?host=/tmp/state/pg&port=5433",
        ),
        ("postgresql://db/itte?sslmode=require", "postgresql://db/other?sslmode=require"),
    ],
)
def test_another_database_on_the_same_server(url: str, expected: str) -> None:
    assert with_database(url, "other") == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@db/itte", "postgresql+psycopg://u@db/itte"),
        ("postgres://u@db/itte", "postgresql+psycopg://u@db/itte"),
        ("postgresql+psycopg://u@db/itte", "postgresql+psycopg://u@db/itte"),
    ],
)
def test_sqlalchemy_url_names_the_psycopg_driver(url: str, expected: str) -> None:
    assert sqlalchemy_url(url) == expected
