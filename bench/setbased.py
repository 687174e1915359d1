"""Would set-based SQL beat ``plan``? The aggregator's store beside an apply
done by Postgres alone, on the same batches, in one run (issue #14's first
direction, measured before it is built).

The set-based apply COPYs a clean batch into a staging table and, in one
statement, keeps each key's latest record, looks the stored observation up,
upserts the records whose version wins, sums their deltas by commune, joins
the communes to their territories, groups the deltas by territory and merges
them into ``aggregates``: what ``plan`` does in Python, done in C. It covers
only what this measurement needs (``somme`` indicators of one producer); the
store covers every kind. Both run on databases of their own, batch by batch
in alternation (first the store, then Postgres alone, then the other way
round), a first load of every commune then rounds of corrections of random
communes; then the two ``aggregates`` tables must hold the same values, or
the run fails. Figures per record: the transaction's wall time, the CPU of
this process and of the Postgres backend serving it (``/proc``, so the
server must run on this machine: the embedded one does), in
``bench/results/setbased.json``.

Its statement writes no change log (migration 0010: Postgres allows
data-modifying statements only at the top of a ``WITH``), where the store
now does: its figures (docs/measurements.md) were taken before 0010.

    python -m bench.setbased [--batch 2500] [--rounds 10]
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.corrections import arguments, databases, phase_batches
from bench.data import RESULTS
from common import db
from common.referential import FRANCE, load
from schemas.catalogue import Catalogue
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import (
    ADD_DELTA,
    AGGREGATE_COLUMNS,
    LOCK_NAMESPACE,
    OBSERVATION_COLUMNS,
    OBSERVATION_ROW_TYPES,
    REPLACE_OBSERVATION,
    AggregateStore,
    lock_bucket,
    observation_row,
)

STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS staged ({OBSERVATION_ROW_TYPES}, bucket int)
ON COMMIT DELETE ROWS
"""

# The store's locks, taken in the same sorted order.
LOCK_STAGED = f"""
SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, b)
FROM (SELECT DISTINCT bucket AS b FROM staged ORDER BY 1) AS buckets
"""

# Keys: (indicateur, sous_champ, annee, commune_source) for observations,
# (indicateur, sous_champ, annee, niveau, code) for aggregates.
APPLY = f"""
WITH latest AS (
    SELECT DISTINCT ON (indicateur, sous_champ, annee, commune_source) *
    FROM staged
    ORDER BY indicateur, sous_champ, annee, commune_source,
             version_explicite DESC, version DESC, recu DESC, record_id COLLATE "C" DESC
), prior AS (
    SELECT l.*, o.valeur AS old_valeur, o.found,
           o.version_explicite AS o_explicite, o.version AS o_version, o.recu AS o_recu,
           o.record_id AS o_record_id
    FROM latest l LEFT JOIN LATERAL (
        SELECT o.*, true AS found FROM observations o
        WHERE (o.indicateur, o.sous_champ, o.annee, o.commune_source)
            = (l.indicateur, l.sous_champ, l.annee, l.commune_source)
        LIMIT 1
    ) o ON true
), winners AS (
    SELECT * FROM prior
    WHERE found IS NULL
       OR (o_explicite, o_version, o_recu, o_record_id COLLATE "C")
        < (version_explicite, version, recu, record_id COLLATE "C")
), inserted AS (
    -- Rows the probe found absent, under the locks of their places: a plain
    -- insert, as the store does (half the cost of ON CONFLICT).
    INSERT INTO observations ({OBSERVATION_COLUMNS})
    SELECT {OBSERVATION_COLUMNS} FROM winners WHERE found IS NULL
), written AS (
    INSERT INTO observations ({OBSERVATION_COLUMNS})
    SELECT {OBSERVATION_COLUMNS} FROM winners WHERE found
    {REPLACE_OBSERVATION}
), by_commune AS (
    SELECT indicateur, sous_champ, annee, commune,
           sum(coalesce(valeur, 0) - coalesce(old_valeur, 0)) AS dv,
           sum((valeur IS NOT NULL)::int - (old_valeur IS NOT NULL)::int) AS dn,
           max(unite) AS unite
    FROM winners GROUP BY indicateur, sous_champ, annee, commune
), before AS (
    SELECT b.*, coalesce(c.nb_valeurs, 0) AS cn, c.nb_valeurs IS NULL AS created
    FROM by_commune b LEFT JOIN LATERAL (
        SELECT a.nb_valeurs FROM aggregates a
        WHERE (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code)
            = (b.indicateur, b.sous_champ, b.annee, 'commune', b.commune)
        LIMIT 1
    ) c ON true
    WHERE c.nb_valeurs IS NULL OR b.dv <> 0 OR b.dn <> 0
), levels AS (
    SELECT indicateur, sous_champ, annee, 'commune' AS niveau, commune AS code,
           dv, dn, unite, created
    FROM before
    UNION ALL
    SELECT b.indicateur, b.sous_champ, b.annee, t.niveau, t.code, b.dv,
           (b.cn + b.dn > 0)::int - (b.cn > 0)::int, b.unite, b.created
    FROM before b
    -- One probe per commune: as a join, a hash of the whole table.
    CROSS JOIN LATERAL (SELECT * FROM communes m WHERE m.code = b.commune LIMIT 1) m
    CROSS JOIN LATERAL (VALUES ('epci', m.epci), ('departement', m.departement),
                               ('region', m.region), ('france', '{FRANCE}')) AS t(niveau, code)
    WHERE t.code IS NOT NULL
), deltas AS (
    SELECT indicateur, sous_champ, annee, niveau, code, sum(dv) AS dv, sum(dn)::int AS dn,
           max(unite) AS unite, niveau = 'commune' AND bool_and(created) AS fresh
    FROM levels GROUP BY indicateur, sous_champ, annee, niveau, code
    HAVING sum(dv) <> 0 OR sum(dn) <> 0 OR bool_or(created)
), fresh_communes AS (
    INSERT INTO aggregates ({AGGREGATE_COLUMNS}, revision, change_seq)
    SELECT indicateur, sous_champ, annee, niveau, code, dv, dn, unite, 0, 0, 1, {db.NEXT_CHANGE}
    FROM deltas WHERE fresh
)
INSERT INTO aggregates AS a ({AGGREGATE_COLUMNS}, revision, change_seq)
SELECT indicateur, sous_champ, annee, niveau, code, dv, dn, unite, 0, 0, 1, {db.NEXT_CHANGE}
FROM deltas WHERE NOT fresh ORDER BY indicateur, sous_champ, annee, niveau, code
{ADD_DELTA}
"""


class SetBasedStore:
    """The batch applied by Postgres alone (``somme`` of one producer only)."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)

    def apply(self, records: list[CleanObservation]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(STAGING)
            with cur.copy(f"COPY staged ({OBSERVATION_COLUMNS}, bucket) FROM STDIN") as copy:
                for r in records:
                    place = (r.indicateur, r.sous_champ, r.annee, r.commune)
                    copy.write_row((*observation_row(r), lock_bucket(place)))
            cur.execute(LOCK_STAGED)
            cur.execute(db.NUMBERING_LOCK)
            cur.execute(APPLY)

    def close(self) -> None:
        self.conn.close()


def backend_cpu(conn: psycopg.Connection[Any]) -> Callable[[], float]:
    """CPU seconds of the server process behind ``conn`` so far."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    conn.commit()  # or the batches' transactions would nest in this one
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return read


class Meter:
    def __init__(self, server_cpu: Callable[[], float]) -> None:
        self.server_cpu = server_cpu
        self.wall = self.client = self.server = 0.0
        self.records = 0

    def run(self, apply: Callable[[list[CleanObservation]], Any], records: list[Any]) -> None:
        wall, client, server = time.perf_counter(), time.process_time(), self.server_cpu()
        apply(records)
        self.wall += time.perf_counter() - wall
        self.client += time.process_time() - client
        self.server += self.server_cpu() - server
        self.records += len(records)

    def figures(self) -> dict[str, float]:
        per = 1e6 / self.records
        return {
            "records": self.records,
            "wall_us": round(self.wall * per, 1),
            "client_cpu_us": round(self.client * per, 1),
            "server_cpu_us": round(self.server * per, 1),
        }


def aggregates(url: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, unite "
            "FROM aggregates"
        ).fetchall()
    return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def measure(
    store_url: str, sql_url: str, indicators: Catalogue, batch: int, rounds: int
) -> dict[str, Any]:
    store = AggregateStore(store_url, load(), AggregationRules.from_catalogue(indicators))
    setbased = SetBasedStore(sql_url)
    gc.collect()
    gc.freeze()
    phases: dict[str, Any] = {}
    try:
        server_cpu = {
            "store": backend_cpu(store._connection()),
            "setbased": backend_cpu(setbased.conn),
        }
        runs = [("store", store.apply), ("setbased", setbased.apply)]
        for phase, batches in phase_batches(batch, rounds):
            meters = {name: Meter(read) for name, read in server_cpu.items()}
            for n, records in enumerate(batches):
                for name, apply in runs if n % 2 == 0 else reversed(runs):
                    meters[name].run(apply, records)
            phases[phase] = {name: m.figures() for name, m in meters.items()}
    finally:
        store.close()
        setbased.close()
    return phases


def main() -> None:
    args = arguments(__doc__)
    with databases("setbased", "store", "sql") as (indicators, (store_url, sql_url)):
        phases = measure(store_url, sql_url, indicators, args.batch, args.rounds)
        by_store, by_sql = aggregates(store_url), aggregates(sql_url)
    differing = [k for k in by_store.keys() | by_sql.keys() if by_store.get(k) != by_sql.get(k)]
    if differing:
        raise SystemExit(f"the applies disagree on {len(differing)} aggregates: {differing[:5]}")
    figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "batch": args.batch,
        "rounds": args.rounds,
        "aggregates_compared": len(by_store),
        **phases,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "setbased.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
