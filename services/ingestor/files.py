"""Reading producer files: the long format of the project's source database.

Rows stream from disk (constant memory, whatever the file size). Columns are
matched by name, case- and accent-insensitively, to the raw schema's fields.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Raw field ← column names met in practice (compared after normalization).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "commune": (
        "codgeo",
        "codgeo_code",
        "code_commune",
        "code",
        "codezone",
        "commune",
        "depcom",
        "com",
    ),
    "indicateur": ("variable", "indicateur", "id_indicateur"),
    "annee": ("annee", "year", "an", "millesime"),
    "date": ("date",),
    "valeur": ("valeur", "value", "val"),
    "sous_champ": ("sous_champ",),
    "libelle_sous_champ": ("libelle_sous_champ",),
    "libelle_indicateur": ("libelle_variable", "libelle_indicateur"),
    "unite": ("unite", "unit"),
    "version": ("version",),
}
SNIFF_BYTES = 1 << 20


def _norm(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.strip().lower().replace(" ", "_").replace("-", "_")


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


def column_map(header: list[str]) -> dict[int, str]:
    """Column index → raw field. Other columns keep their (normalized) name:
    the cleaner hashes the personal ones and drops the rest."""
    wanted = {alias: field for field, aliases in COLUMN_ALIASES.items() for alias in aliases}
    mapping: dict[int, str] = {}
    for index, name in enumerate(header):
        target = wanted.get(_norm(name))
        if target and target not in mapping.values():
            mapping[index] = target
    for index, name in enumerate(header):
        if index not in mapping and _norm(name) and _norm(name) not in mapping.values():
            mapping[index] = _norm(name)
    return mapping


def read_long_csv(path: Path) -> Iterator[dict[str, Any]]:
    """Yield one raw record per data row."""
    with open(path, "rb") as binary:
        sample = binary.read(SNIFF_BYTES)
    encoding = detect_encoding(sample)
    with open(path, encoding=encoding, newline="") as text:
        first = text.readline()
        text.seek(0)
        reader = csv.reader(text, delimiter=detect_delimiter(first))
        header = next(reader, [])
        mapping = column_map(header)
        missing = {"commune", "indicateur", "valeur"} - set(mapping.values())
        if missing:
            raise ValueError(
                f"{path.name}: no column for {', '.join(sorted(missing))} "
                f"(columns: {', '.join(header)})"
            )
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            record = {field: row[i] for i, field in mapping.items() if i < len(row)}
            yield {k: v for k, v in record.items() if v != "" or k == "valeur"}
