"""What the change feed reads: every committed aggregate change, numbered
(its cursor, ``change_seq``, migrations 0006 and 0009), by pages after a
cursor (``/indicateurs/changements``, and each step of ``/indicateurs/flux``).

A page is read in one snapshot with the highest number visible then: when
the page is not full, the next cursor is that number, so a client whose
filters match few changes does not read the others again. Numbers become
visible in order (a writer numbers under a lock held to commit), so
nothing below a cursor can appear later: no gap, no duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, and_, func, select, true

from common.db import AGGREGATE_KEY_COLUMNS, aggregate_change_log, aggregate_values
from services.api.models import public_row
from services.api.reads.indicateurs import ROW, Filters, attributes, matching


@dataclass(frozen=True)
class Page:
    rows: list[dict]  # API rows, each with its "curseur"
    cursor: int  # read from here next time


def read_changes(
    engine: Engine, filters: Filters, after: int, limit: int, exact: bool = False
) -> Page:
    """The changes after ``after`` (at most ``limit``), as API rows."""
    with engine.connect() as conn:
        snapshot = conn.execution_options(isolation_level="REPEATABLE READ")
        with snapshot.begin():
            found = list(snapshot.execute(changes(filters, after, limit)))
            highest = snapshot.execute(last_change()).scalar_one()
    # An entry of the log whose row is gone reads empty: counted, not shown.
    rows = [
        {**public_row(row, exact), "curseur": row.change_seq}
        for row in found
        if row.code is not None
    ]
    if len(found) == limit:
        return Page(rows, found[-1].change_seq)
    return Page(rows, max(after, highest))


def changes(filters: Filters, after: int, limit: int) -> Select[Any]:
    """The changes numbered after ``after``, oldest first, found through the
    change log (migration 0010). Without a territorial filter nor
    ``niveau``, those of every level. A row changed again is shown once, at
    its latest number and state."""
    v, log = aggregate_values.c, aggregate_change_log.c
    if not filters.areas() and filters.niveau is None:
        return _every_change(filters, after, limit)
    numbered = and_(
        *(v[name] == log[name] for name in AGGREGATE_KEY_COLUMNS), v.change_seq == log.change_seq
    )
    return (
        matching(filters)
        .add_columns(v.change_seq)
        .join(aggregate_change_log, numbered)
        .where(log.change_seq > after)
        .order_by(log.change_seq)
        .limit(limit)
    )


def _every_change(filters: Filters, after: int, limit: int) -> Select[Any]:
    """A page of the log, each entry's row probed by its key: as a join,
    Postgres scanned the whole table for every page (docs/measurements.md).
    An entry whose row is gone (deleted by hand) comes with empty columns,
    so that the page stays full and the cursor moves past it."""
    log = aggregate_change_log.c
    page = attributes(select(aggregate_change_log).where(log.change_seq > after), filters, log)
    entries = page.order_by(log.change_seq).limit(limit).subquery()
    v = aggregate_values.c
    row = (
        select(*ROW)
        .where(*(v[name] == entries.c[name] for name in AGGREGATE_KEY_COLUMNS))
        .where(v.change_seq == entries.c.change_seq)
        .limit(1)
        .lateral()
    )
    return (
        select(*row.c, entries.c.change_seq)
        .select_from(entries.outerjoin(row, true()))
        .order_by(entries.c.change_seq)
    )


def last_change() -> Select[Any]:
    return select(func.coalesce(func.max(aggregate_change_log.c.change_seq), 0))


def current_cursor(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(last_change()).scalar_one())
