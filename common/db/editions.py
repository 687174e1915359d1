"""Loading the older editions of the map (migration 0017) from the shipped
referential: each edition's communes (its file, as shipped), its
territories (counted from them), and the passage of every code onto each
edition's communes (``data/editions/passage.csv.gz``, written with the
editions by ``scripts/build_referential.py`` from
``common/referential/editions.py``; a unit test recomputes it). Reloaded
when the shipped versions change; about 480,000 rows, by COPY of the files
themselves (2 s, not the 5 s of placing them in Python at each migration).

An edition loaded since by `itte referentiel charger` (its files in
``referential_files``) joins them: the one it follows becomes an older
edition, and every passage is computed again, the new edition's codes
included (5 s)."""

from __future__ import annotations

import gzip
import logging
from importlib import resources
from typing import Any

from sqlalchemy import Connection, select

from common import referential
from common.db.reference import charged, charged_editions
from common.db.tables import edition_communes, edition_passage, edition_territories, editions
from common.referential.editions import passages

log = logging.getLogger(__name__)
DATA = resources.files("common.referential").joinpath("data")
PASSAGE = "editions/passage.csv.gz"

# Each edition's shipped files, read into these first (dropped at commit).
LOADING = """
CREATE TEMP TABLE loading_communes (code text, nom text, departement text, region text,
    epci text, population integer) ON COMMIT DROP;
CREATE TEMP TABLE loading_epci (code text, nom text, type text) ON COMMIT DROP;
CREATE TEMP TABLE loading_departements (code text, nom text, region text) ON COMMIT DROP;
CREATE TEMP TABLE loading_regions (code text, nom text) ON COMMIT DROP;
"""
# An edition's communes, then its territories with their communes counted,
# as territories holds the current edition's (reference._territory_rows).
FILL = """
INSERT INTO edition_communes SELECT %(y)s, * FROM loading_communes;
INSERT INTO edition_territories
SELECT %(y)s, 'epci', c.epci, coalesce(min(e.nom), c.epci), count(*)
FROM loading_communes c LEFT JOIN loading_epci e ON e.code = c.epci
WHERE c.epci IS NOT NULL GROUP BY c.epci
UNION ALL
SELECT %(y)s, 'departement', c.departement, coalesce(min(d.nom), c.departement), count(*)
FROM loading_communes c LEFT JOIN loading_departements d ON d.code = c.departement
GROUP BY c.departement
UNION ALL
SELECT %(y)s, 'region', c.region, coalesce(min(r.nom), c.region), count(*)
FROM loading_communes c LEFT JOIN loading_regions r ON r.code = c.region
GROUP BY c.region
UNION ALL
SELECT %(y)s, 'france', %(france)s, 'France', count(*) FROM loading_communes;
INSERT INTO editions SELECT %(y)s, %(version)s, count(*) FROM loading_communes;
TRUNCATE loading_communes, loading_epci, loading_departements, loading_regions;
"""


def folder_of(year: int) -> str:
    return "." if year == referential.CURRENT_EDITION else f"editions/{year}"


def shipped_versions() -> dict[int, str]:
    return {
        year: DATA.joinpath(folder_of(year), "VERSION").read_text("utf-8").strip()
        for year in referential.EDITIONS
    }


def load_editions(conn: Connection) -> None:
    """Every edition of :data:`referential.EDITIONS` and those loaded since,
    unless the database holds these versions already."""
    versions = shipped_versions()
    loaded = {year: charged(conn, year) for year in charged_editions(conn) if year not in versions}
    expected = versions | {year: ref.version for year, ref in loaded.items()}
    held = dict(conn.execute(select(editions.c.millesime, editions.c.version)).tuples().all())
    if held == expected:
        return
    for table in (editions, edition_communes, edition_territories, edition_passage):
        conn.execute(table.delete())
    raw = conn.connection.driver_connection
    assert raw is not None  # a connection in use has its driver's
    with raw.cursor() as cursor:
        cursor.execute(LOADING)
        for year, version in expected.items():
            if year in loaded:
                _write(cursor, loaded[year])
            else:
                for name in ("communes", "epci", "departements", "regions"):
                    _copy(cursor, f"loading_{name}", f"{folder_of(year)}/{name}.csv.gz")
            named = {"y": year, "version": version, "france": referential.FRANCE}
            for statement in FILL.split(";")[:-1]:  # with parameters: one at a time
                cursor.execute(statement, named)
        if loaded:
            every = {year: referential.edition(year) for year in versions} | loaded
            with cursor.copy(f"COPY {PASSAGE_COLUMNS} FROM STDIN") as copy:
                for row in passages(every):
                    copy.write_row(row)
        else:
            _copy(cursor, PASSAGE_COLUMNS, PASSAGE)
    log.info("loaded editions %s", ", ".join(map(str, expected)))


PASSAGE_COLUMNS = "edition_passage (millesime, cle, code, commune, part, total)"


def _write(cursor: Any, ref: referential.Referential) -> None:
    """A loaded edition into the loading tables, from what its files said."""
    rows = {
        "loading_communes": (
            (c.code, c.nom, c.departement, c.region, c.epci, c.population)
            for c in ref.communes.values()
        ),
        "loading_epci": ((code, nom, None) for code, nom in ref.epci.items()),
        "loading_departements": ((code, nom, None) for code, nom in ref.departements.items()),
        "loading_regions": ref.regions.items(),
    }
    for table, values in rows.items():
        with cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)


def _copy(cursor: Any, table: str, path: str) -> None:
    """A shipped CSV file (with its header) into ``table``, as it is."""
    with (
        DATA.joinpath(path).open("rb") as raw,
        gzip.open(raw) as text,
        cursor.copy(f"COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
    ):
        while chunk := text.read(1 << 20):
            copy.write(chunk)
