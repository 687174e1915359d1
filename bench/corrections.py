"""Where the aggregator's transaction spends its time: a first load beside
corrections, statement by statement.

W2 streams corrections (bench/freshness.py) and saturates well below the
rate of a bulk load (W1): a correction updates rows that exist (its
observation, its commune's row and, shared with the rest of its batch, the
rows of its EPCI, département, région and France), where a first load
inserts. This drives ``AggregateStore.apply`` directly on a fresh database of
the embedded Postgres (or ``DATABASE_URL``'s server), without the broker:
one record for every commune of the referential in batches from empty, then
rounds of corrections of random communes, and writes the wall time of each
statement (COPYs include writing their rows), of ``plan`` and of the rest
(the commit, mostly) per record to ``bench/results/corrections.json``.

    python -m bench.corrections [--batch 2500] [--rounds 10]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from bench.data import RESULTS, communes, write_catalogue
from bench.stack import given_or_embedded
from common import catalogue, migrations
from common.referential import load
from itte.embedded import stop_embedded
from schemas.catalogue import Catalogue
from schemas.clean import CleanObservation
from services.aggregator import store as store_module
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore

INDICATOR = "corr_0"


class Timings:
    """Seconds spent in each statement, by its first words."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def add(self, query: object, seconds: float) -> None:
        self.seconds[" ".join(str(query).split()[:4])] += seconds

    def per_record(self, records: int, wall: float) -> dict[str, float]:
        rows = {q: s / records * 1e6 for q, s in sorted(self.seconds.items(), key=lambda x: -x[1])}
        rows["(the rest: commit, glue)"] = wall / records * 1e6 - sum(rows.values())
        return {q: round(us, 1) for q, us in rows.items()}


def timed_cursor(timings: Timings) -> type[psycopg.Cursor[Any]]:
    class TimedCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> TimedCursor:
            started = time.perf_counter()
            try:
                return super().execute(query, params, **kwargs)
            finally:
                timings.add(query, time.perf_counter() - started)

        @contextmanager
        def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
            started = time.perf_counter()
            try:
                with super().copy(statement, params, **kwargs) as copy:
                    yield copy
            finally:
                timings.add(statement, time.perf_counter() - started)

    return TimedCursor


@contextmanager
def timed_plan(timings: Timings) -> Iterator[None]:
    """The store's ``plan`` (pure Python) timed as if it were a statement."""
    untimed = store_module.plan

    def plan(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return untimed(*args, **kwargs)
        finally:
            timings.add("plan (Python)", time.perf_counter() - started)

    store_module.plan = plan
    try:
        yield
    finally:
        store_module.plan = untimed


def record(rid: str, commune: str, valeur: int, *, version: int = 1) -> CleanObservation:
    return CleanObservation(
        record_id=rid,
        indicateur=INDICATOR,
        annee=2024,
        commune=commune,
        commune_source=commune,
        valeur=Decimal(valeur),
        version=version,
        unite="u",
    )


def phase_batches(
    batch: int, rounds: int
) -> tuple[tuple[str, Iterator[list[CleanObservation]]], ...]:
    """A first load of every commune, then ``rounds`` batches of corrections
    of random communes (some twice in a batch: the latest must win).

    Each batch is built just before it is applied, so that what the process
    holds alive is one batch, as in the service: holding them all made every
    full collection of the collector walk them all."""
    every, rng = communes(), random.Random(1)
    first_load = (
        [record(f"b{i}", c, i % 1000) for i, c in enumerate(every[n : n + batch], n)]
        for n in range(0, len(every), batch)
    )
    corrections = (
        [
            record(f"c{r}_{j}", rng.choice(every), rng.randrange(10**5), version=2 + r)
            for j in range(batch)
        ]
        for r in range(rounds)
    )
    return ("first_load", first_load), ("corrections", corrections)


def measure(url: str, indicators: Catalogue, batch: int, rounds: int) -> dict[str, Any]:
    store = AggregateStore(url, load(), AggregationRules.from_catalogue(indicators))
    gc.collect()
    gc.freeze()  # as the services do
    phases: dict[str, Any] = {}
    try:
        for phase, batches in phase_batches(batch, rounds):
            timings = Timings()
            store._connection().cursor_factory = timed_cursor(timings)
            count, wall = 0, 0.0
            with timed_plan(timings):
                for records in batches:
                    started = time.perf_counter()
                    store.apply(records)
                    wall += time.perf_counter() - started
                    count += len(records)
            phases[phase] = {
                "records": count,
                "us_per_record": round(wall / count * 1e6, 1),
                "by_statement_us_per_record": timings.per_record(count, wall),
            }
    finally:
        store.close()
    return phases


def arguments(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--batch", type=int, default=2_500)
    parser.add_argument("--rounds", type=int, default=10)
    return parser.parse_args()


@contextmanager
def databases(prefix: str, *kinds: str) -> Iterator[tuple[Catalogue, list[str]]]:
    """The catalogue of the generated indicator and a fresh database for each
    of ``kinds`` on the embedded Postgres (or ``DATABASE_URL``'s server),
    stopped after."""
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
        workdir = Path(tmp)
        indicators = catalogue.load(write_catalogue(workdir / "c.toml", "corr", 1))
        servers = given_or_embedded(workdir / "state")
        try:
            tag = uuid.uuid4().hex[:8]
            yield (
                indicators,
                [
                    migrations.new_database(servers.database_url, f"bench_{kind}_{tag}", indicators)
                    for kind in kinds
                ],
            )
        finally:
            stop_embedded(workdir / "state")


def main() -> None:
    args = arguments(__doc__)
    with databases("corrections", "corrections") as (indicators, (url,)):
        phases = measure(url, indicators, args.batch, args.rounds)
    figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "batch": args.batch,
        "rounds": args.rounds,
        **phases,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "corrections.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
