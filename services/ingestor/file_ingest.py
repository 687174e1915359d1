"""``itte ingest``, the entrypoint for files: each file read a block of
columns at a time (``files.py``) and handed to the handler
(``handlers.py`` ``BlockHandler``), which publishes on the bulk lane
(``indicators.raw.bulk``); here, the progress bar and the summary.

Every record read is either published or rejected with its reason; the
rejected ones go to ``<file>.rejets.ndjson`` (line number and reason beside
the record), which can be fixed and ingested again.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from common import metrics
from services.ingestor.files import Mapping, read_blocks
from services.ingestor.handlers import BlockHandler
from services.ingestor.layouts import Format
from services.ingestor.publisher import SERVICE

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


def private_file(path: Path) -> TextIO:
    """Opened for writing, readable by its owner only (it may hold values the
    producer will fix; personal fields in it are hashed). A lone surrogate
    (a byte the file's encoding could not read) is written as its JSON
    escape, so the rejected line reads back as it was sent."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return open(descriptor, "w", encoding="utf-8", errors="backslashreplace")


def ingest_file(
    handler: BlockHandler,
    path: Path,
    *,
    fmt: Format | None = None,
    mapping: Mapping | None = None,
    producer: str | None = None,
    show_progress: bool = True,
) -> FileSummary:
    summary = FileSummary(path, rejects_path=path.with_name(path.name + ".rejets.ndjson"))
    progress, blocks = read_blocks(path, fmt, mapping, personal=handler.is_personal)
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
        kept = handler.hide(record) if isinstance(record, dict) else {}
        rejects.write(
            json.dumps(
                {**kept, "_ligne": line, "_raison": reason, "_detail": detail},
                ensure_ascii=False,
            )
            + "\n"
        )

    try:
        published = handler.publish(
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


def ingest_files(handler: BlockHandler, paths: list[Path], **options: Any) -> Iterator[FileSummary]:
    """:func:`ingest_file` for each path, in turn (``options``: its keywords)."""
    for path in paths:
        summary = ingest_file(handler, path, **options)
        metrics.RECORDS_IN.labels(SERVICE).inc(summary.read)
        log.info("%s", summary)
        yield summary
