"""Postgres plumbing: URLs in libpq and SQLAlchemy forms, new databases,
engines, long-lived connections, array parameters built fast."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import psycopg
from psycopg import sql
from sqlalchemy import Engine, create_engine


def sqlalchemy_url(database_url: str) -> str:
    """``postgresql://…`` (libpq form, what users configure) → SQLAlchemy + psycopg 3."""
    scheme, sep, rest = database_url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return database_url if sep else f"postgresql+psycopg://{database_url}"


def with_database(url: str, name: str) -> str:
    """The same server, another database (libpq URL, socket or TCP)."""
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """A new database on the server of ``server_url``, empty or a copy of
    the database ``template`` (nobody may be connected to it): its URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(statement)
    return with_database(server_url, name)


def array_literal(values: Sequence[str] | Sequence[int]) -> str:
    """The Postgres array literal of ``values`` (all text or all integers),
    for a ``%s::text[]`` or ``%s::int[]`` parameter: what psycopg sends for a
    list, built faster.

    psycopg dumps a list in Python, element by element: a tenth of the
    aggregator's time in a bulk load, where each batch looks up thousands of
    keys (docs/measurements.md). Here a column is one join: integers as they
    print, text always quoted with its backslashes and double quotes escaped
    (``array_in`` reads any other character inside quotes as it is; a NUL
    never gets this far, the bounds refuse it)."""
    if values and isinstance(values[0], int):
        return "{" + ",".join(map(str, values)) + "}"
    texts = cast(Sequence[str], values)
    if not texts:
        return "{}"
    every = "".join(texts)
    if "\\" not in every and '"' not in every:  # the common case: nothing to escape
        return '{"' + '","'.join(texts) + '"}'
    quoted = ['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in texts]
    return "{" + ",".join(quoted) + "}"


C = TypeVar("C", bound=psycopg.Connection[Any])


def usable(conn: C | None, connect: Callable[[], C]) -> C:
    """A long-lived connection: ``conn`` while it works, else a new one (after
    a database restart, the next batch reconnects)."""
    if conn is None or conn.closed or conn.broken:
        return connect()
    return conn


class KeptConnection:
    """One psycopg connection kept from batch to batch (a new one would add
    its set-up to every batch), opened again once it broke: after a
    database restart, the next batch reconnects."""

    def __init__(self, database_url: str, *, autocommit: bool = False) -> None:
        self._database_url = database_url
        self._autocommit = autocommit
        self._conn: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        self._conn = usable(
            self._conn, lambda: psycopg.connect(self._database_url, autocommit=self._autocommit)
        )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def make_engine(database_url: str, *, pre_ping: bool = True, **kwargs: Any) -> Engine:
    return create_engine(sqlalchemy_url(database_url), pool_pre_ping=pre_ping, **kwargs)
