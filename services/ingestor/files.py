"""Reading producer files: CSV (`,` `;` or tab; UTF-8, BOM or Windows-1252),
Excel workbooks (.xlsx), JSON and NDJSON, in any layout of ``layouts.py``.

Rows stream from disk: memory stays flat whatever the file size.
"""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.ingestor.layouts import Format, detect

SNIFF_BYTES = 1 << 20


class Unreadable(str):
    """Stands for a line that is not JSON: the parser's message, never the line."""


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut by the sample's end
            return "cp1252"
    return "utf-8"


def detect_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d])


@dataclass(frozen=True)
class Mapping:
    """A mapping file (TOML) for tables itte cannot read by itself."""

    format: Format | None
    columns: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Mapping:
        document = tomllib.loads(path.read_text("utf-8"))
        return cls(format=document.get("format"), columns=dict(document.get("colonnes", {})))


class Progress:
    """How far through the file, for the progress bar (bytes or rows)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0


# A byte the file's encoding cannot read (a Windows-1252 accent a megabyte
# into a file sniffed as UTF-8, a broken line) becomes a lone surrogate in its
# cell, which the record's bounds refuse: that record is rejected with its
# line, the others go on. Strict decoding stopped the whole file there.
UNDECODABLE = "surrogateescape"


def _csv_rows(path: Path, progress: Progress) -> Iterator[list[str]]:
    with open(path, "rb") as binary:
        sample = binary.read(SNIFF_BYTES)
    with open(path, encoding=detect_encoding(sample), errors=UNDECODABLE, newline="") as text:
        delimiter = detect_delimiter(text.readline())
        text.seek(0)
        for row in csv.reader(text, delimiter=delimiter):
            progress.done += sum(len(c) for c in row) + len(row)  # about the bytes read
            yield row


def _xlsx_rows(path: Path, progress: Progress) -> Iterator[list[str]]:
    from openpyxl import load_workbook  # read-only mode streams the sheet

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        progress.total = sheet.max_row or 0
        for row in sheet.iter_rows(values_only=True):
            progress.done += 1
            yield ["" if cell is None else _cell_text(cell) for cell in row]
    finally:
        workbook.close()


def _cell_text(cell: Any) -> str:
    if hasattr(cell, "strftime"):
        return str(cell.strftime("%d/%m/%Y"))
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def _json_records(path: Path, progress: Progress) -> Iterator[tuple[int, Any]]:
    if path.suffix.lower() == ".json":
        # One document: unreadable, it is one rejected record (line 1).
        document = _parsed(path.read_text("utf-8-sig", errors=UNDECODABLE))
        if isinstance(document, Unreadable):
            yield 1, document
            return
        for number, record in enumerate(document if isinstance(document, list) else [document], 1):
            progress.done = number
            yield number, record
        return
    with open(path, encoding="utf-8-sig", errors=UNDECODABLE) as lines:
        for number, line in enumerate(lines, start=1):
            progress.done += len(line)
            if line.strip():
                yield number, _parsed(line)


def _parsed(text: str) -> Any:
    """The JSON value, or why it is not one (never the text itself)."""
    try:
        return json.loads(text, parse_float=str)
    except ValueError as exc:
        return Unreadable(f"invalid JSON: {exc}")
    except RecursionError:
        return Unreadable("invalid JSON: nested too deep")


def read_file(
    path: Path, fmt: Format | None = None, mapping: Mapping | None = None
) -> tuple[Progress, Iterator[tuple[int, Any]]]:
    """(progress, iterator of (line number, record)); a record that is not a
    dict (a JSON value, or an error text) is refused by the caller."""
    suffix = path.suffix.lower()
    progress = Progress(path.stat().st_size)
    if suffix in (".json", ".ndjson", ".jsonl"):
        return progress, _json_records(path, progress)
    rows = _xlsx_rows(path, progress) if suffix == ".xlsx" else _csv_rows(path, progress)
    header = next(rows, [])
    layout = detect(
        header, fmt or (mapping.format if mapping else None), mapping.columns if mapping else None
    )

    def records() -> Iterator[tuple[int, Any]]:
        for number, row in enumerate(rows, start=2):
            if any(cell.strip() for cell in row):
                for record in layout.records(row):
                    yield number, record

    return progress, records()
