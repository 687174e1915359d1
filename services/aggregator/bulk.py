"""Postgres adapter of the bulk lane: a first load of many communes applied
as a set, in one transaction.

A row of a clean bulk message (schemas/bulk.py) whose commune row and
observation do not exist yet changes nothing but itself: its observation
is new, its commune's aggregate is its own value, and its territories move
by sums, counts and extremes of such values. Those rows are written with
``COPY`` straight into ``observations``, ``aggregates`` (numbers reserved
from the change feed in one call) and ``aggregate_change_log``, their
messages built here; their territories' rows are grouped and merged by one
statement, which returns theirs. No lookup per record: one range scan per
(indicator, sub-field, year) finds the communes already there, whose rows
go, with every other case (a correction, a pair, several sources for one
commune), to the record-by-record store (``store.py``). The locks, the
numbering lock and the change log are the store's: the two paths may run
side by side, and after a crash a replay finds the rows and changes nothing.
``tests/integration/test_bulk_store.py`` holds the two paths equal.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from common import db, referential
from common.referential import FRANCE
from schemas import bulk
from services.aggregator.changes import PUBLISHED, Change, changes_of
from services.aggregator.ports import FastResult
from services.aggregator.store import (
    LOCK_BUCKETS,
    LOCK_NAMESPACE,
    OBSERVATION_COLUMNS,
    same_edition,
)

# Kinds whose territories move by the new commune values alone: no pair.
FAST_KINDS = frozenset({"somme", "nombre", "min", "max", "non_agregeable"})

# The communes of each (indicator, sub-field, year) between two codes that
# already have a row, or an observation (by the code sent): a range scan of
# each primary key, not a probe per record.
GROUPS = "unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[]) AS g(i, s, y, lo, hi)"
EXISTING = f"""
SELECT g.i, g.s, g.y, a.code FROM {GROUPS}
CROSS JOIN LATERAL (
    SELECT a.code FROM aggregates a
    WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau) = (g.i, g.s, g.y, 'commune')
      AND a.code BETWEEN g.lo AND g.hi
) a
UNION ALL
SELECT g.i, g.s, g.y, o.commune_source FROM {GROUPS}
CROSS JOIN LATERAL (
    SELECT o.commune_source FROM observations o
    WHERE (o.indicateur, o.sous_champ, o.annee) = (g.i, g.s, g.y)
      AND o.commune_source BETWEEN g.lo AND g.hi
) o
"""

# Numbers for n rows at once, under the numbering lock (common/db/changes.py): no
# other writer takes one before the transaction ends, so they are in order.
RESERVE = "SELECT setval('aggregate_changes', nextval('aggregate_changes') + %s - 1)"
NOW = "SELECT to_json(now())::text"

AGGREGATE_COPY = (
    "indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, unite, "
    "numerateur, denominateur, revision, change_seq"
)
STAGED = """
CREATE TEMP TABLE IF NOT EXISTS new_communes (
    indicateur text, sous_champ text, annee int, valeur numeric, unite text, kind text,
    epci text, departement text, region text
) ON COMMIT DELETE ROWS
"""

# The territories of the new commune rows, each by its indicator's rule;
# merged into rows that exist as the store's deltas and extremes would.
LEVELS = f"""VALUES ('epci', n.epci), ('departement', n.departement), ('region', n.region),
                    ('france', '{FRANCE}')"""
TERRITORIES = db.logged(
    f"""
INSERT INTO aggregates AS a (indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs,
                             unite, numerateur, denominateur, revision, change_seq)
SELECT n.indicateur, n.sous_champ, n.annee, t.niveau, t.code,
       CASE min(n.kind)
           WHEN 'somme' THEN coalesce(sum(n.valeur), 0)
           WHEN 'nombre' THEN count(*) FILTER (WHERE n.valeur <> 0)
           WHEN 'min' THEN coalesce(min(n.valeur), 0)
           ELSE coalesce(max(n.valeur), 0)
       END,
       count(n.valeur), max(n.unite), 0, 0, 1, {db.NEXT_CHANGE}
FROM new_communes n CROSS JOIN LATERAL ({LEVELS}) AS t(niveau, code)
WHERE t.code IS NOT NULL AND n.kind <> 'non_agregeable'
GROUP BY n.indicateur, n.sous_champ, n.annee, t.niveau, t.code
ORDER BY n.indicateur, n.sous_champ, n.annee, t.niveau, t.code
ON CONFLICT (indicateur, sous_champ, annee, niveau, code) DO UPDATE SET
    valeur = CASE (SELECT agregation FROM indicators WHERE id = a.indicateur)
        WHEN 'min' THEN CASE WHEN EXCLUDED.nb_valeurs = 0 THEN a.valeur
                             WHEN a.nb_valeurs = 0 THEN EXCLUDED.valeur
                             ELSE least(a.valeur, EXCLUDED.valeur) END
        WHEN 'max' THEN CASE WHEN EXCLUDED.nb_valeurs = 0 THEN a.valeur
                             WHEN a.nb_valeurs = 0 THEN EXCLUDED.valeur
                             ELSE greatest(a.valeur, EXCLUDED.valeur) END
        ELSE a.valeur + EXCLUDED.valeur
    END,
    nb_valeurs = a.nb_valeurs + EXCLUDED.nb_valeurs,
    unite = COALESCE(EXCLUDED.unite, a.unite),
    revision = a.revision + 1,
    change_seq = EXCLUDED.change_seq,
    previous_seq = a.change_seq,
    updated_at = now()""",
    select=PUBLISHED,
)

CSV = pacsv.WriteOptions(include_header=False)


@dataclass(frozen=True)
class Indicator:
    """What a commune row's message says of its indicator (the catalogue's)."""

    agregation: str
    unite: str | None


class BulkStore:
    """Applies the new communes of a clean bulk table (see the module)."""

    def __init__(
        self,
        database_url: str,
        ref: referential.Referential,
        indicators: Mapping[str, Indicator],
    ) -> None:
        self._indicators = indicators
        self.use(ref)
        self._db = db.KeptConnection(database_url)

    def use(self, ref: referential.Referential) -> None:
        """Place the next tables on the edition ``ref``."""
        self._ref = ref
        codes = sorted(ref.communes)
        self._codes = bulk.CodeIndex(codes)
        self._epci = pa.array([ref.communes[c].epci for c in codes], pa.string())
        self._departement = pa.array([ref.communes[c].departement for c in codes], pa.string())
        self._region = pa.array([ref.communes[c].region for c in codes], pa.string())
        self._nom = pa.array([json.dumps(ref.communes[c].nom, ensure_ascii=False) for c in codes])

    def placed(self, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Whether the referential has each row's commune (bool, never null)."""
        return pc.is_valid(self._codes.positions(codes))

    def _connection(self) -> psycopg.Connection[Any]:
        return self._db.get()

    def close(self) -> None:
        self._db.close()

    def apply(self, rows: pa.Table, batch_id: str, producer: str | None) -> FastResult:
        """``rows``: clean rows of fast kinds, one for each observation key
        and commune, communes of the referential. Those whose commune or
        observation exists are left (``FastResult.existing``); the others
        are written, atomically."""
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            same_edition(cur, self._ref)
            buckets = pc.unique(
                pc.remainder(pc.cast(rows.column("place"), pa.int64()), LOCK_BUCKETS)
            )
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s, b) FROM unnest(%s::int[]) AS b",
                (LOCK_NAMESPACE, db.array_literal(sorted(buckets.to_pylist()))),
            )
            existing = self._existing(cur, rows)
            positions = rows.column("position").to_pylist()
            result = FastResult(existing=[positions[i] for i in sorted(existing)])
            if existing:
                rows = rows.filter(pa.array([i not in existing for i in range(rows.num_rows)]))
            if rows.num_rows:
                result.changes = self._write(cur, rows, batch_id, producer)
                result.written = rows.column("position").to_pylist()
        return result

    def _existing(self, cur: psycopg.Cursor[Any], rows: pa.Table) -> set[int]:
        keys: list[tuple[Any, ...]] = []
        lows: list[str] = []
        highs: list[str] = []
        for key, members in bulk.groups(rows, ["indicateur", "sous_champ", "annee"]):
            codes = pa.concat_arrays(
                [bulk.whole(rows.column(n)).take(members) for n in ("commune", "commune_source")]
            )
            low_high = pc.min_max(codes)
            keys.append(key)
            lows.append(low_high["min"].as_py())
            highs.append(low_high["max"].as_py())
        columns = [db.array_literal([k[i] for k in keys]) for i in range(3)]
        arguments = [*columns, db.array_literal(lows), db.array_literal(highs)]
        found = cur.execute(EXISTING, arguments * 2).fetchall()
        if not found:
            return set()
        there = {(i, s, y, c) for i, s, y, c in found}
        row_keys = zip(
            *(rows.column(n).to_pylist() for n in ("indicateur", "sous_champ", "annee")),
            rows.column("commune").to_pylist(),
            rows.column("commune_source").to_pylist(),
            strict=True,
        )
        return {
            i
            for i, (ind, sc, y, c, src) in enumerate(row_keys)
            if (ind, sc, y, c) in there or (ind, sc, y, src) in there
        }

    def _write(
        self, cur: psycopg.Cursor[Any], rows: pa.Table, batch_id: str, producer: str | None
    ) -> list[Change]:
        n = rows.num_rows
        observations = observations_of(rows, batch_id, producer)
        copy(
            cur, f"COPY observations ({OBSERVATION_COLUMNS}) FROM STDIN (FORMAT csv)", observations
        )
        cur.execute(f"{db.NUMBERING_LOCK}; {db.ANNOUNCING}")  # caches: see below
        last = one(cur.execute(RESERVE, (n,)))
        seqs = pa.array(range(last - n + 1, last + 1), pa.int64())
        reporting = pc.cast(pc.is_valid(rows.column("valeur")), pa.int32())
        copy(
            cur,
            f"COPY aggregates ({AGGREGATE_COPY}) FROM STDIN (FORMAT csv)",
            commune_aggregates(rows, seqs, reporting),
        )
        copy(
            cur,
            f"COPY aggregate_change_log (change_seq, {db.AGGREGATE_KEY}) FROM STDIN (FORMAT csv)",
            change_log_entries(rows, seqs),
        )
        now = one(cur.execute(NOW))
        changes = self._commune_changes(rows, seqs, reporting, now)
        cur.execute(STAGED)
        copy(cur, "COPY new_communes FROM STDIN (FORMAT csv)", self._territories_of(rows))
        changes += changes_of(cur.execute(TERRITORIES).fetchall())
        touched = rows.group_by(["indicateur", "annee"]).aggregate([])
        pairs = zip(touched["indicateur"].to_pylist(), touched["annee"].to_pylist(), strict=True)
        cur.execute(db.ANNOUNCE, (db.CHANGES_CHANNEL, db.announcements(set(pairs))))
        return changes

    def _territories_of(self, rows: pa.Table) -> pa.Table:
        at = self._codes.positions(rows.column("commune"))
        kinds = by_indicator(rows.column("indicateur"), lambda i: self._indicator(i).agregation)
        return pa.table(
            [
                rows.column("indicateur"),
                rows.column("sous_champ"),
                rows.column("annee"),
                rows.column("valeur"),
                rows.column("unite"),
                kinds,
                self._epci.take(at),
                self._departement.take(at),
                self._region.take(at),
            ],
            names=[
                "indicateur",
                "sous_champ",
                "annee",
                "valeur",
                "unite",
                "kind",
                "epci",
                "departement",
                "region",
            ],
        )

    def _indicator(self, name: str) -> Indicator:
        return self._indicators.get(name) or Indicator("non_agregeable", None)

    def _commune_changes(
        self, rows: pa.Table, seqs: pa.Array, reporting: pa.Array, now: str
    ) -> list[Change]:
        """Each new commune row's message, as Postgres builds it (changes.py):
        the same fields, in the same order, the same text."""
        n = rows.num_rows
        at = self._codes.positions(rows.column("commune"))
        reported = pc.cast(reporting, pa.string())
        unite = by_indicator(rows.column("indicateur"), lambda i: self._indicator(i).unite)
        unite = pc.if_else(pc.is_valid(unite), unite, rows.column("unite"))
        parts = [
            '{"indicateur":',
            json_text(rows.column("indicateur")),
            ',"sous_champ":',
            json_text(rows.column("sous_champ")),
            ',"annee":',
            pc.cast(rows.column("annee"), pa.string()),
            ',"niveau":"commune","code":',
            json_text(rows.column("commune")),
            ',"nom":',
            self._nom.take(at),
            ',"agregation":',
            json_text(
                by_indicator(rows.column("indicateur"), lambda i: self._indicator(i).agregation)
            ),
            ',"valeur":',
            pc.fill_null(json_text(rows.column("valeur")), "null"),
            ',"unite":',
            pc.fill_null(json_text(unite), "null"),
            # A new commune row: nothing is published for it, nor is it a ratio's.
            ',"origine":"agregee","valeur_publiee":null,"annee_denominateur":null,'
            '"communes_repli":null,"communes_renseignees":',
            reported,
            ',"communes_total":1,"revision":1,"updated_at":',
            now,
            ',"couverture":',
            reported,
            ',"complet":',
            pc.if_else(pc.equal(reporting, 1), "true", "false"),
            "}",
        ]
        columns = [pa.array([p] * n, pa.string()) if isinstance(p, str) else p for p in parts]
        messages = pc.binary_join_element_wise(*columns, "")
        keys = pc.binary_join_element_wise(
            rows.column("indicateur"),
            rows.column("sous_champ"),
            pc.cast(rows.column("annee"), pa.string()),
            "commune",
            rows.column("commune"),
            "|",
        )
        return list(
            map(
                Change,
                seqs.to_pylist(),
                repeat("commune"),
                keys.to_pylist(),
                messages.cast(pa.binary()).to_pylist(),
            )
        )


def one(cur: psycopg.Cursor[Any]) -> Any:
    """The single value a statement returns."""
    row = cur.fetchone()
    assert row is not None
    return row[0]


def by_indicator(column: pa.Array, of: Any) -> pa.Array:
    """``of(indicator)`` for each row, once per distinct indicator."""
    encoded = bulk.whole(column).dictionary_encode()
    return pa.array([of(i) for i in encoded.dictionary.to_pylist()], pa.string()).take(
        encoded.indices
    )


# What JSON escapes in a string (json.dumps with ensure_ascii=False, and
# Postgres' to_json): a quote, a backslash, a control character.
ESCAPED = r'["\\\x00-\x1f]'


def json_text(column: pa.Array) -> pa.Array:
    """Each text as a JSON string (null stays null): quoted as it is when
    nothing in it needs escaping (codes, numbers, most names), else by
    json.dumps, once per distinct value."""
    column = bulk.whole(column)
    plain = pc.fill_null(pc.invert(pc.match_substring_regex(column, ESCAPED)), True)
    quoted = pc.binary_join_element_wise('"', column, '"', "")
    if pc.all(plain).as_py():
        return quoted
    encoded = pc.if_else(plain, pa.scalar(None, pa.string()), column).dictionary_encode()
    texts = [json.dumps(v, ensure_ascii=False) for v in encoded.dictionary.to_pylist()]
    return pc.if_else(plain, quoted, pa.array(texts, pa.string()).take(encoded.indices))


def copy(cur: psycopg.Cursor[Any], statement: str, table: pa.Table) -> None:
    """``table`` through ``COPY … (FORMAT csv)``: written as CSV by Arrow, in C."""
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, CSV)
    with cur.copy(statement) as writer:
        writer.write(sink.getbuffer())


OBSERVED = (
    "indicateur",
    "sous_champ",
    "annee",
    "commune_source",
    "commune",
    "valeur",
    "marqueur",
    "unite",
    "libelle_indicateur",
    "libelle_sous_champ",
    "version",
    "version_explicite",
    "recu",
)


def observations_of(rows: pa.Table, batch_id: str, producer: str | None) -> pa.Table:
    """The rows as ``observations`` holds them, each with its record id."""
    positions = pc.utf8_lpad(pc.cast(rows.column("position"), pa.string()), 6, "0")
    return pa.table(
        {
            **{name: rows.column(name) for name in OBSERVED},
            "record_id": pc.binary_join_element_wise(f"{batch_id}:", positions, ""),
            "pii": rows.column("pii"),
            "pii_key_id": rows.column("pii_key_id"),
            "producteur": pa.array([producer] * rows.num_rows, pa.string()),
        }
    )


def _key_and_commune(rows: pa.Table) -> list[pa.Array]:
    """(indicateur, sous_champ, annee, niveau, code) of each row's commune aggregate."""
    commune = pa.array(["commune"] * rows.num_rows, pa.string())
    key = [rows.column(name) for name in ("indicateur", "sous_champ", "annee")]
    return [*key, commune, rows.column("commune")]


def commune_aggregates(rows: pa.Table, seqs: pa.Array, reporting: pa.Array) -> pa.Table:
    """One commune-level aggregate per row (a new commune: its value alone)."""
    n = rows.num_rows
    zero = pa.array(["0"] * n, pa.string())
    return pa.table(
        [
            *_key_and_commune(rows),
            pc.fill_null(rows.column("valeur"), "0"),
            reporting,
            rows.column("unite"),
            zero,
            zero,
            pa.array([1] * n, pa.int64()),
            seqs,
        ],
        names=AGGREGATE_COPY.split(", "),
    )


def change_log_entries(rows: pa.Table, seqs: pa.Array) -> pa.Table:
    return pa.table(
        [seqs, *_key_and_commune(rows)], names=["change_seq", *db.AGGREGATE_KEY_COLUMNS]
    )
