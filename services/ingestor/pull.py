"""``itte pull``, the entrypoint for databases: read observations from a SQL
database, incrementally, and hand them to the handler (``BlockHandler``).

What the project's daily orchestrator used to do: run a query against a
source database (any SQLAlchemy URL), publish the rows, and remember the
highest value of a cursor column so the next run only reads newer rows. The
query receives that value as ``:cursor``:

    SELECT codgeo, variable, annee, valeur, maj FROM indicateurs
    WHERE maj > :cursor ORDER BY maj

The cursor is saved only once the broker acknowledged the rows: a crash in
between re-reads them next time, and duplicates change nothing downstream.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from services.ingestor.files import row_blocks
from services.ingestor.handlers import BlockHandler
from services.ingestor.layouts import detect

log = logging.getLogger(__name__)


@dataclass
class PullResult:
    read: int
    published: int
    rejected: int
    cursor: Any


def _load_cursor(state: Path, since: str) -> Any:
    return json.loads(state.read_text())["cursor"] if state.exists() else since


def _save_cursor(state: Path, cursor: Any) -> None:
    state.parent.mkdir(parents=True, exist_ok=True)
    temporary = state.with_suffix(".tmp")
    temporary.write_text(json.dumps({"cursor": cursor}, default=str))
    temporary.replace(state)  # atomic: a crash leaves the old cursor or the new one


def pull_once(
    handler: BlockHandler,
    *,
    url: str,
    query: str,
    cursor_column: str,
    state: Path,
    since: str,
    producer: str | None = None,
) -> PullResult:
    cursor = _load_cursor(state, since)
    engine = create_engine(url)
    result = PullResult(0, 0, 0, cursor)
    highest: list[Any] = []  # the highest cursor value read (values of one column: comparable)
    try:
        with engine.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=5000).execute(
                text(query), {"cursor": cursor}
            )
            columns = list(rows.keys())
            if cursor_column not in columns:
                raise ValueError(f"the query returns no column {cursor_column!r}: {columns}")
            layout = detect(columns, personal=handler.is_personal)
            at = columns.index(cursor_column)

            def values() -> Iterator[tuple[int, list[str]]]:
                for number, row in enumerate(rows, start=1):
                    if row[at] is not None and (not highest or row[at] > highest[0]):
                        highest[:] = [row[at]]
                    yield number, ["" if v is None else str(v) for v in row]

            def rejected(record: Any, line: int, reason: str, detail: str) -> None:
                result.rejected += 1

            def read(records: int) -> None:
                result.read += records

            published = handler.publish(
                row_blocks(values(), layout),
                source=f"pull:{state.stem}",
                producer=producer,
                rejected=rejected,
                read=read,
            )
    finally:
        engine.dispose()
    result.published = published.records
    if highest:
        result.cursor = highest[0]
        _save_cursor(state, result.cursor)
    return result


def pull(handler: BlockHandler, *, every: float | None, **options: Any) -> Iterator[PullResult]:
    """Once, or every ``every`` seconds until interrupted."""
    while True:
        yield pull_once(handler, **options)
        if every is None:
            return
        time.sleep(every)
