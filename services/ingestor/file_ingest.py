"""``itte ingest``: files → the bulk lane (``indicators.raw.bulk``), with a
progress bar and a summary.

Every record read is either published or rejected here with its reason; the
rejected ones go to ``<file>.rejets.ndjson`` (line number and reason beside
the record), which can be fixed and ingested again. Records are read and
checked a block of columns at a time (files.py, columns.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
from tqdm import tqdm

from common import metrics
from schemas.raw import schema_problem
from services.ingestor.columns import check_rows, record_of
from services.ingestor.files import Block, Mapping, Unreadable, read_blocks
from services.ingestor.layouts import Format
from services.ingestor.ports import Published
from services.ingestor.publisher import SERVICE, RawPublisher

log = logging.getLogger(__name__)


@dataclass
class FileSummary:
    path: Path
    read: int = 0
    published: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejects_path: Path | None = None

    def __str__(self) -> str:
        text = (
            f"{self.path}: {self.read} read, {self.published} published, "
            f"{sum(self.rejected.values())} rejected"
        )
        if self.rejected:
            reasons = ", ".join(f"{n} {reason}" for reason, n in self.rejected.most_common())
            text += f" ({reasons}); fix and re-ingest {self.rejects_path}"
        return text


def problem(record: Any) -> tuple[str, str] | None:
    """(reason, detail) when the record cannot be published, else None."""
    if isinstance(record, Unreadable):
        return "invalid_json", str(record)
    if not isinstance(record, dict):
        return "not_an_object", f"a record must be an object, not {type(record).__name__}"
    detail = schema_problem(record)
    return None if detail is None else ("invalid_schema", detail)


def private_file(path: Path) -> TextIO:
    """Opened for writing, readable by its owner only (it may hold values the
    producer will fix; personal fields in it are hashed). A lone surrogate
    (a byte the file's encoding could not read) is written as its JSON
    escape, so the rejected line reads back as it was sent."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return open(descriptor, "w", encoding="utf-8", errors="backslashreplace")


def publish_blocks(
    publisher: RawPublisher,
    blocks: Iterable[Block],
    *,
    source: str,
    producer: str | None,
    rejected: Callable[[Any, int, str, str], None],
    read: Callable[[int], None] = lambda _: None,
) -> Published:
    """Each block checked at the edge, a column at a time, and what it
    accepts published on the bulk lane; each refused record handed to
    ``rejected`` (record, line, reason, detail). ``read``: told how many
    records each block held."""
    live: list[dict[str, Any]] = []  # accepted, but not carried by columns

    def accepted() -> Iterator[pa.Table]:
        for block in blocks:
            read(block.table.num_rows + len(block.others))
            ok, refused = check_rows(block.table)
            reasons = [
                (block.lines[i], record_of(block.table, i), "invalid_schema", detail)
                for i, detail in refused.items()
            ]
            for line, record in block.others:
                found = problem(record)
                if found is None:
                    live.append(record)
                else:
                    reasons.append((line, record, *found))
            for line, record, reason, detail in sorted(reasons, key=lambda r: r[0]):
                rejected(record, line, reason, detail)
            yield block.table.filter(ok) if refused else block.table

    published = publisher.publish_tables(accepted(), source=source, producer=producer)
    if live:  # the live lane reads any record as it came
        more = publisher.publish(live, source=source, producer=producer)
        published = Published(
            published.records + more.records, published.batch_ids + more.batch_ids
        )
    return published


def ingest_file(
    publisher: RawPublisher,
    path: Path,
    *,
    fmt: Format | None = None,
    mapping: Mapping | None = None,
    producer: str | None = None,
    show_progress: bool = True,
) -> FileSummary:
    summary = FileSummary(path, rejects_path=path.with_name(path.name + ".rejets.ndjson"))
    progress, blocks = read_blocks(path, fmt, mapping)
    rejects: TextIO | None = None
    bar = tqdm(
        total=progress.total,
        desc=path.name,
        unit="B",
        unit_scale=True,
        disable=None if show_progress else True,
        dynamic_ncols=True,
    )

    def read(records: int) -> None:
        summary.read += records
        bar.update(progress.done - bar.n)
        bar.set_postfix(rows=summary.read, refresh=False)

    def rejected(record: Any, line: int, reason: str, detail: str) -> None:
        nonlocal rejects
        summary.rejected[reason] += 1
        if rejects is None:
            assert summary.rejects_path is not None
            rejects = private_file(summary.rejects_path)
        # Not an object: only its line, reason and type (a bare value may
        # be personal, and the producer's file holds it anyway).
        kept = publisher.hide(record) if isinstance(record, dict) else {}
        rejects.write(
            json.dumps(
                {**kept, "_ligne": line, "_raison": reason, "_detail": detail},
                ensure_ascii=False,
            )
            + "\n"
        )

    try:
        published = publish_blocks(
            publisher,
            blocks,
            source=f"file:{path.name}",
            producer=producer,
            rejected=rejected,
            read=read,
        )
    finally:
        bar.update(progress.done - bar.n)
        bar.close()
        if rejects is not None:
            rejects.close()
    summary.published = published.records
    if not summary.rejected:
        summary.rejects_path = None
    return summary


def ingest_files(
    publisher: RawPublisher, paths: list[Path], **options: Any
) -> Iterator[FileSummary]:
    """:func:`ingest_file` for each path, in turn (``options``: its keywords)."""
    for path in paths:
        summary = ingest_file(publisher, path, **options)
        metrics.RECORDS_IN.labels(SERVICE).inc(summary.read)
        log.info("%s", summary)
        yield summary
