"""Reading producer files: CSV (`,` `;` or tab; UTF-8, BOM or Windows-1252),
Excel workbooks (.xlsx), JSON and NDJSON, in any layout of ``layouts.py``:
record by record (:func:`read_file`), or as blocks of records in columns
for the bulk lane (:func:`read_blocks`).

Rows stream from disk: memory stays flat whatever the file size.
"""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa

from services.ingestor.columns import representable, table_of
from services.ingestor.layouts import Format, Layout, detect, never

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


class ReadProgress:
    """How far through the file, for the progress bar (bytes or rows)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0


# A byte the file's encoding cannot read (a Windows-1252 accent a megabyte
# into a file sniffed as UTF-8, a broken line) becomes a lone surrogate in its
# cell, which the record's bounds refuse: that record is rejected with its
# line, the others go on. Strict decoding stopped the whole file there.
UNDECODABLE = "surrogateescape"


def _csv_rows(path: Path, progress: ReadProgress) -> Iterator[list[str]]:
    with open(path, "rb") as binary:
        sample = binary.read(SNIFF_BYTES)
    with open(path, encoding=detect_encoding(sample), errors=UNDECODABLE, newline="") as text:
        delimiter = detect_delimiter(text.readline())
        text.seek(0)
        for row in csv.reader(text, delimiter=delimiter):
            progress.done += sum(len(c) for c in row) + len(row)  # about the bytes read
            yield row


def _xlsx_rows(path: Path, progress: ReadProgress) -> Iterator[list[str]]:
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


def _json_records(path: Path, progress: ReadProgress) -> Iterator[tuple[int, Any]]:
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


BLOCK_RECORDS = 40_000  # records read into columns at a time: one bulk message


@dataclass
class Block:
    """Records read together: those columns can carry (``table``, one row a
    record, text; ``lines`` their line in the file), and those they cannot
    (``others``, with their line: a cell whose bytes the file's encoding
    could not read, a JSON value that is no object, a nested value), which
    the edge checks one by one."""

    table: pa.Table
    lines: list[int]
    others: list[tuple[int, Any]] = field(default_factory=list)


def _header_and_rows(
    path: Path,
    fmt: Format | None,
    mapping: Mapping | None,
    progress: ReadProgress,
    personal: Callable[[str], bool],
) -> tuple[Layout, Iterator[list[str]]]:
    rows = (
        _xlsx_rows(path, progress) if path.suffix.lower() == ".xlsx" else _csv_rows(path, progress)
    )
    header = next(rows, [])
    layout = detect(
        header,
        fmt or (mapping.format if mapping else None),
        mapping.columns if mapping else None,
        personal,
    )
    return layout, rows


def _is_json(path: Path) -> bool:
    return path.suffix.lower() in (".json", ".ndjson", ".jsonl")


def read_blocks(
    path: Path,
    fmt: Format | None = None,
    mapping: Mapping | None = None,
    size: int = BLOCK_RECORDS,
    personal: Callable[[str], bool] = never,
) -> tuple[ReadProgress, Iterator[Block]]:
    """(progress, blocks of about ``size`` records), in the file's order;
    ``personal``: which columns hold personal data (layouts.detect)."""
    progress = ReadProgress(path.stat().st_size)
    if _is_json(path):
        return progress, record_blocks(_json_records(path, progress), size)
    layout, rows = _header_and_rows(path, fmt, mapping, progress, personal)
    numbered = ((n, row) for n, row in enumerate(rows, start=2) if any(c.strip() for c in row))
    return progress, row_blocks(numbered, layout, size)


def row_blocks(
    rows: Iterable[tuple[int, list[str]]], layout: Layout, size: int = BLOCK_RECORDS
) -> Iterator[Block]:
    """Table rows (with their line) as blocks, by ``layout``."""
    iterator = iter(rows)
    per_block = max(1, size // layout.per_row())
    while chunk := list(islice(iterator, per_block)):
        columns = layout.columns([row for _, row in chunk])
        lines = [n for n, _ in chunk for _ in range(layout.per_row())]
        yield _block(columns, lines)


def record_blocks(records: Iterable[tuple[int, Any]], size: int = BLOCK_RECORDS) -> Iterator[Block]:
    """JSON records (with their line) as blocks."""
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        carried = [(n, r) for n, r in chunk if isinstance(r, dict) and representable(r)]
        try:
            table = table_of([r for _, r in carried])
        except (pa.ArrowException, UnicodeEncodeError):  # a lone surrogate in a text
            carried = [(n, r) for n, r in carried if all(map(_encodable_value, [*r, *r.values()]))]
            table = table_of([r for _, r in carried])
        kept = {id(r) for _, r in carried}
        others = [(n, r) for n, r in chunk if id(r) not in kept]
        yield Block(table, [n for n, _ in carried], others)


def _encodable_value(value: Any) -> bool:
    return _encodable(value) if isinstance(value, str) else True


def _block(columns: dict[str, list[str | None]], lines: list[int]) -> Block:
    """Columns as a block; a record holding text Arrow cannot (a lone
    surrogate: bytes the file's encoding could not read) goes to ``others``."""
    try:
        return Block(pa.table({n: pa.array(v, pa.string()) for n, v in columns.items()}), lines)
    except (pa.ArrowException, UnicodeEncodeError):
        pass
    bad = {
        i
        for values in columns.values()
        for i, v in enumerate(values)
        if v is not None and not _encodable(v)
    }
    keep = [i for i in range(len(lines)) if i not in bad]
    table = pa.table(
        {n: pa.array([values[i] for i in keep], pa.string()) for n, values in columns.items()}
    )
    others = [
        (lines[i], {n: values[i] for n, values in columns.items() if values[i] is not None})
        for i in sorted(bad)
    ]
    return Block(table, [lines[i] for i in keep], others)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_file(
    path: Path,
    fmt: Format | None = None,
    mapping: Mapping | None = None,
    personal: Callable[[str], bool] = never,
) -> tuple[ReadProgress, Iterator[tuple[int, Any]]]:
    """(progress, iterator of (line number, record)); a record that is not a
    dict (a JSON value, or an error text) is refused by the caller."""
    progress = ReadProgress(path.stat().st_size)
    if _is_json(path):
        return progress, _json_records(path, progress)
    layout, rows = _header_and_rows(path, fmt, mapping, progress, personal)

    def records() -> Iterator[tuple[int, Any]]:
        for number, row in enumerate(rows, start=2):
            if any(cell.strip() for cell in row):
                for record in layout.records(row):
                    yield number, record

    return progress, records()
