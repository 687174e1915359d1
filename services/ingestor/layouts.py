"""Turning table rows into raw records, whatever the file's layout (pure).

- ``long``: one row per value (the project's source database): a commune, an
  indicator, a year or date, a value.
- ``wide`` (ITDD): one row per commune and indicator, one column per year
  (``A2015``, ``A2016``, ...).
- ``communes``: one row per commune (and date), one column per measure, such
  as ``typezone, zone, codezone, date, nb_stations, nb_pdc``: each measure
  column is an indicator.
Column names are matched case-, accent- and spacing-insensitively; a mapping
file can name the columns of any other table (docs/producers.md). A column
named like a personal field (``personal``: ``common.pii.PiiHasher.is_personal``)
is never a measure nor mapped to anything else: it passes under its own name,
and the ingestor hashes it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, Literal

Format = Literal["long", "wide", "communes"]

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
        "code_insee",
    ),
    # The commune's name, read when no code is given (schemas/raw.py).
    "libelle_territoire": (
        "libelle_territoire",
        "codgeo_libelle",
        "libgeo",
        "libelle_commune",
        "nom_commune",
        "lib_commune",
    ),
    # The territory's level, when a value is published above the commune.
    "niveau": ("niveau", "typezone", "type_zone", "type_territoire", "echelon"),
    # Narrows a name to one département's communes.
    "departement": ("departement", "dep", "code_departement", "code_dep"),
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
# Descriptive columns of commune tables that are not measures.
NOT_MEASURES = frozenset(
    {
        "typezone",
        "zone",
        "libgeo",
        "nom",
        "nom_commune",
        "codgeo_libelle",
        "type_var",
        "no_ind",
        "epci",
        "dep",
        "reg",
        "departement",
        "region",
    }
)
YEAR_COLUMN = re.compile(r"^a?(\d{4})$")


def norm(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[\s\-]+", "_", plain.strip().lower())


@dataclass(frozen=True)
class Layout:
    format: Format
    fields: dict[int, str]  # column index -> raw field
    values: dict[int, str] = field(default_factory=dict)  # wide: year; communes: indicator
    extras: dict[int, str] = field(default_factory=dict)  # other columns, passed along

    def records(self, row: list[str]) -> Iterator[dict[str, Any]]:
        base = {
            name: row[i].strip()
            for i, name in self.fields.items()
            if i < len(row) and row[i].strip() != ""
        }
        base.update(
            {name: row[i] for i, name in self.extras.items() if i < len(row) and row[i] != ""}
        )
        if self.format == "long":
            yield {**base, "valeur": base.get("valeur", "")}
            return
        for i, label in self.values.items():
            cell = row[i].strip() if i < len(row) else ""
            if self.format == "wide":
                yield {**base, "annee": label, "valeur": cell}
            else:
                yield {**base, "indicateur": label, "valeur": cell}

    def columns(self, rows: Sequence[list[str]]) -> dict[str, list[str | None]]:
        """The records of ``rows`` as columns (None: absent), exactly as
        :meth:`records` makes them, in the same order: row by row, and in a
        row, value column by value column. A column at a time: no dict per
        record (the bulk lane, schemas/bulk.py)."""
        cells = list(zip_longest(*rows, fillvalue=""))
        empty = ("",) * len(rows)

        def cell(i: int) -> Sequence[str]:
            return cells[i] if i < len(cells) else empty

        base: dict[str, list[str | None]] = {}
        for i, name in self.fields.items():
            base[name] = [v or None for v in map(str.strip, cell(i))]
        for i, name in self.extras.items():
            given = [v or None for v in cell(i)]
            held = base.get(name)
            # A field and an extra column of one name: the extra's cell wins when it has one.
            base[name] = (
                given if held is None else [e or f for f, e in zip(held, given, strict=True)]
            )
        if self.format == "long":
            valeur = base.get("valeur") or [None] * len(rows)
            return {**base, "valeur": [v or "" for v in valeur]}
        labels: list[str | None] = list(self.values.values())
        repeat = len(labels)
        table = {name: [v for v in values for _ in range(repeat)] for name, values in base.items()}
        what = "annee" if self.format == "wide" else "indicateur"
        table[what] = labels * len(rows)
        table["valeur"] = [
            v.strip() for row in zip(*(cell(i) for i in self.values), strict=True) for v in row
        ]
        return table

    def per_row(self) -> int:
        """Records each row makes."""
        return 1 if self.format == "long" else len(self.values)


def needed(found: Format, fields: set[str]) -> set[str]:
    """The fields a table of this format lacks."""
    wanted = {
        "long": {"commune", "indicateur", "valeur"},
        "wide": {"commune", "indicateur"},
        "communes": {"commune"},
    }[found]
    if "libelle_territoire" in fields:  # the commune by its name
        wanted = wanted - {"commune"}
    return wanted - fields


def never(name: str) -> bool:
    return False


def detect(
    header: list[str],
    wanted: Format | None = None,
    columns: dict[str, str] | None = None,
    personal: Callable[[str], bool] = never,
) -> Layout:
    """The layout of a table from its header (or as told by ``--format``/a mapping)."""
    aliases = {a: f for f, names in COLUMN_ALIASES.items() for a in names}
    if columns:  # a mapping file names the columns itself
        aliases = {norm(source): target for source, target in columns.items()}
        wrong = sorted(s for s, t in columns.items() if personal(s) and not personal(t))
        if wrong:
            raise ValueError(
                f"personal columns cannot be mapped to another field: {', '.join(wrong)} "
                "(they pass under their own name, hashed)"
            )
    fields: dict[int, str] = {}
    for i, name in enumerate(header):
        target = aliases.get(norm(name))
        if target and target not in fields.values() and not personal(name):
            fields[i] = target
    years = {
        i: m.group(1)
        for i, name in enumerate(header)
        if i not in fields and (m := YEAR_COLUMN.match(norm(name)))
    }
    found = wanted or (
        "wide"
        if years and "indicateur" in fields.values()
        else "long"
        if "valeur" in fields.values()
        else "communes"
    )
    values: dict[int, str] = {}
    if found == "wide":
        values = years
    elif found == "communes":
        values = {
            i: norm(name)
            for i, name in enumerate(header)
            if i not in fields
            and norm(name)
            and norm(name) not in NOT_MEASURES
            and not personal(name)
        }
    extras = {
        i: norm(name)
        for i, name in enumerate(header)
        if i not in fields and i not in values and norm(name)
    }
    missing = needed(found, set(fields.values()))
    if missing or (found != "long" and not values):
        what = ", ".join(sorted(missing)) or ("year columns" if found == "wide" else "measures")
        raise ValueError(f"{found} format: no column for {what} (columns: {', '.join(header)})")
    return Layout(found, fields, values, extras)
