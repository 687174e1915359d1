"""How list answers leave the API: one JSON page with its total and the link
to the next page, or CSV of every matching row, streamed (never held whole in
memory). Pure encoding: the queries are in ``queries.py``."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal
from urllib.parse import urlencode

Format = Literal["json", "csv", "csv-fr", "parquet"]
MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "csv-fr": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
# Excel opens a CSV as UTF-8 when it starts with this mark (else as cp1252).
BOM = "\ufeff"


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def next_link(path: str, params: dict[str, str], offset: int, limit: int, total: int) -> str | None:
    """``Link`` to the next page, or None on the last one."""
    if offset + limit >= total:
        return None
    following = {**params, "offset": str(offset + limit), "limit": str(limit)}
    return f'<{path}?{urlencode(following)}>; rel="next"'


NUMBERS = frozenset({"valeur", "couverture", "valeur_publiee"})


def csv_lines(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    numbers: frozenset[str] = NUMBERS,
) -> Iterator[bytes]:
    """The header, then one line per row, a few hundred rows per chunk.
    ``csv-fr``: `;` between fields and a decimal comma in the ``numbers``
    columns, as a French Excel reads them, after a byte order mark."""
    french = fmt == "csv-fr"
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if french else ",", lineterminator="\r\n")
    if french:
        buffer.write(BOM)
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        writer.writerow(_cell(row[c], french, c in numbers) for c in columns)
        if count % 500 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


# A spreadsheet runs a cell that starts with one of these as a formula
# (OWASP, "CSV injection"): a producer's label "=HYPERLINK(…)" would run in
# the collectivité's Excel. Such text is written after a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any, french: bool, number: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("oui" if value else "non") if french else str(value).lower()
    if number:  # typed numbers: "-3.5" is a value, not a formula
        return str(value).replace(".", ",") if french else value
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()
