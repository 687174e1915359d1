"""What a download of ``GET /indicateurs`` holds beyond the JSON row (issue
#32): the indicator's label and source, and the territories above the row's
(its EPCI, département and région where it has one of each), as an analyst
joins them; and the two other shapes it comes in: Parquet (typed columns)
and the wide table (one column per indicator), streamed like the CSV."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, text

from services.api.formats import Format, csv_lines
from services.api.models import CSV_COLUMNS
from services.api.reads import editions
from services.api.reads import indicateurs as reads
from services.api.reads.indicateurs import Filters

PARENTS = ("epci", "departement", "region")
# The JSON row's fields, the label beside the code, the parents beside the
# territory, the source last.
EXPORT_COLUMNS = (
    "indicateur",
    "libelle_indicateur",
    *CSV_COLUMNS[1:6],  # sous_champ, annee, niveau, code, nom
    *PARENTS,
    *CSV_COLUMNS[6:],
    "source",
)
# A territory's parents: a commune's own; an EPCI's, a département's where
# its communes have one only (89 EPCI span two départements).
PARENTS_SQL = """
SELECT 'commune' AS niveau, code, epci, departement, region FROM communes
UNION ALL
SELECT 'epci', epci, NULL,
       CASE WHEN count(DISTINCT departement) = 1 THEN min(departement) END,
       CASE WHEN count(DISTINCT region) = 1 THEN min(region) END
FROM communes WHERE epci IS NOT NULL GROUP BY epci
UNION ALL
SELECT 'departement', departement, NULL, NULL, min(region) FROM communes GROUP BY departement
"""
LABELS_SQL = "SELECT id, libelle, source FROM indicators"
Parents = Mapping[tuple[str, str], tuple[str | None, str | None, str | None]]
_PARENTS: dict[str | None, Parents] = {}


@dataclass(frozen=True)
class Context:
    """The catalogue's labels and sources, the parents of every territory."""

    labels: Mapping[str, tuple[str, str]]
    parents: Parents

    @classmethod
    def read(cls, engine: Engine) -> Context:
        """The labels as the catalogue has them now; the parents of the
        referential's version, read once a version by this process (35,000
        communes: a few MB, not one copy a download)."""
        with engine.connect() as conn:
            labels = {r.id: (r.libelle, r.source) for r in conn.execute(text(LABELS_SQL))}
            version = conn.execute(text("SELECT version FROM referential_meta")).scalar()
            parents = _PARENTS.get(version)
            if parents is None:
                parents = {
                    (r.niveau, r.code): (r.epci, r.departement, r.region)
                    for r in conn.execute(text(PARENTS_SQL))
                }
                _PARENTS.clear()  # one referential at a time
                _PARENTS[version] = parents
        return cls(labels, parents)

    def enrich(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Each row with its label, source and parents (empty where none)."""
        nothing = (None, None, None)
        for row in rows:
            label, source = self.labels.get(row["indicateur"], (None, None))
            epci, departement, region = self.parents.get((row["niveau"], row["code"]), nothing)
            yield row | {
                "libelle_indicateur": label,
                "source": source,
                "epci": epci,
                "departement": departement,
                "region": region,
            }


# Parquet's columns, typed. The values are decimal text, every digit kept
# (a ratio's has more than decimal128 can hold): pandas reads them with
# Decimal or to_numeric.
PARQUET = pa.schema(
    [
        pa.field(name, kind)
        for name, kind in {
            "indicateur": pa.string(),
            "libelle_indicateur": pa.string(),
            "sous_champ": pa.string(),
            "annee": pa.int32(),
            "niveau": pa.string(),
            "code": pa.string(),
            "nom": pa.string(),
            "epci": pa.string(),
            "departement": pa.string(),
            "region": pa.string(),
            "agregation": pa.string(),
            "valeur": pa.string(),
            "unite": pa.string(),
            "communes_renseignees": pa.int32(),
            "communes_total": pa.int32(),
            "couverture": pa.float64(),
            "complet": pa.bool_(),
            "mis_a_jour": pa.timestamp("us", tz="UTC"),
            "origine": pa.string(),
            "valeur_publiee": pa.string(),
            "annee_denominateur": pa.int32(),
            "communes_repli": pa.int32(),
            "millesime": pa.int16(),
            "estimee": pa.bool_(),
            "source": pa.string(),
        }.items()
    ]
)
ROW_GROUP = 5000


def parquet_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """The rows as one Parquet file, a row group at a time (never whole in
    memory): each group's bytes as soon as it is written, then the footer."""
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, PARQUET, compression="zstd") as writer:
        group: list[dict[str, Any]] = []
        for row in rows:
            group.append(_typed(row))
            if len(group) == ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(group, schema=PARQUET))
                group.clear()
                yield _drained(sink)
        if group:
            writer.write_table(pa.Table.from_pylist(group, schema=PARQUET))
    yield _drained(sink)


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    typed = {name: row.get(name) for name in PARQUET.names}
    for name in ("valeur", "valeur_publiee"):
        if typed[name] is not None:
            typed[name] = str(typed[name])
    if isinstance(typed["mis_a_jour"], str):
        typed["mis_a_jour"] = datetime.fromisoformat(typed["mis_a_jour"])
    return typed


def _drained(sink: io.BytesIO) -> bytes:
    written = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return written


# The wide table: one line a territory and year, one column an indicator
# (``indicateur`` or ``indicateur.sous_champ`` beside its total).
KEYS = ("niveau", "code", "nom", *PARENTS, "annee", "millesime")


def wide_column(row: Mapping[str, Any]) -> str:
    sous_champ = row["sous_champ"]
    return row["indicateur"] if sous_champ == "total" else f"{row['indicateur']}.{sous_champ}"


def wide_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One column an indicator (its total first, then its sub-fields)."""
    found = {(r["indicateur"], r["sous_champ"] != "total", r["sous_champ"]) for r in rows}
    return [wide_column({"indicateur": i, "sous_champ": s}) for i, _, s in sorted(found)]


def wide(rows: Iterable[dict[str, Any]], columns: list[str]) -> Iterator[dict[str, Any]]:
    """``rows`` ordered by territory and year, one line each: its keys, then
    each column's exact value (empty where it has none)."""
    line: dict[str, Any] | None = None
    for row in rows:
        key = tuple(row[k] for k in KEYS)
        if line is None or tuple(line[k] for k in KEYS) != key:
            if line is not None:
                yield line
            line = dict.fromkeys(columns) | {k: row[k] for k in KEYS}
        line[wide_column(row)] = row["valeur"]
    if line is not None:
        yield line


def download(
    engine: Engine,
    f: Filters,
    older: int | None,
    fmt: Format,
    forme: str,
    context: Context,
) -> Iterator[bytes]:
    """Every matching row as ``fmt`` (streamed; the wide table's columns
    read first)."""
    large = forme == "large"
    if older is None:
        rows = reads.exported(engine, f, by_territory=large)
        columns = wide_columns(reads.indicators_in(engine, f)) if large else []
    else:  # computed whole at the request anyway
        found = list(editions.exported(engine, f, older))
        if large:
            found.sort(key=lambda r: (r["code"], r["annee"], r["indicateur"], r["sous_champ"]))
        rows, columns = iter(found), wide_columns(found)
    enriched = context.enrich(rows)
    if fmt == "parquet":
        return parquet_chunks(enriched)
    if large:
        return csv_lines(wide(enriched, columns), [*KEYS, *columns], fmt, frozenset(columns))
    return csv_lines(enriched, EXPORT_COLUMNS, fmt)
