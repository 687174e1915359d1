"""What a ratio's denominator of an earlier year costs the aggregator (issue #29).

A population record is paired against its ratios' numerators of the same
year and, with ``repli_denominateur = N``, of the N years after, and against
its own N years on either side: more commune rows looked up and more places
locked per record. This loads the same population and charging-point
records of every commune for two years through the record-by-record store
(``AggregateStore.apply``, batches of ``BATCH``), into a fresh database under
the shipped catalogue with ``repli_denominateur`` 0 and 3 alternately, and
writes the rates side by side with their ratio to
``bench/results/denominators.json``.

    python -m bench.denominators [--communes 35000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.data import RESULTS
from bench.stack import given_or_embedded
from common import catalogue, migrations, referential
from itte.embedded import stop_embedded
from schemas.catalogue import Catalogue
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore

BATCH = 1_000
FALLBACKS = (0, 3)
YEARS = (2025, 2026)


def with_fallback(shipped: Catalogue, years: int) -> Catalogue:
    indicators = {
        key: ind.model_copy(update={"repli_denominateur": years})
        if ind.agregation == "ratio"
        else ind
        for key, ind in shipped.indicateurs.items()
    }
    return shipped.model_copy(update={"indicateurs": indicators})


def records(communes: list[str], years: tuple[int, ...] = YEARS) -> list[CleanObservation]:
    """The population of each commune in each year, and its charging points."""
    return [
        CleanObservation(
            record_id=f"{indicateur}:{annee}:{code}",
            indicateur=indicateur,
            annee=annee,
            commune=code,
            commune_source=code,
            valeur=Decimal(1 + i % 997),
            version=1,
        )
        for annee in years
        for indicateur in ("population", "nb_pdc")
        for i, code in enumerate(communes)
    ]


def load(server_url: str, chosen: Catalogue, batch: list[CleanObservation]) -> float:
    url = migrations.new_database(server_url, f"bench_den_{uuid.uuid4().hex[:8]}", chosen)
    store = AggregateStore(url, referential.load(), AggregationRules.from_catalogue(chosen))
    try:
        start = time.perf_counter()
        for at in range(0, len(batch), BATCH):
            store.apply(batch[at : at + BATCH])
        return time.perf_counter() - start
    finally:
        store.close()


def run(communes: int, rounds: int) -> dict[str, Any]:
    shipped = catalogue.load()
    codes = sorted(referential.load().communes)[:communes]
    batch = records(codes)
    rates: dict[int, list[int]] = {years: [] for years in FALLBACKS}
    with tempfile.TemporaryDirectory(prefix="denominators-") as state:
        servers = given_or_embedded(Path(state))
        try:
            for round_ in range(rounds):
                for years in FALLBACKS if round_ % 2 == 0 else FALLBACKS[::-1]:
                    seconds = load(servers.database_url, with_fallback(shipped, years), batch)
                    rates[years].append(round(len(batch) / seconds))
        finally:
            stop_embedded(Path(state))
    ratios = [three / none for none, three in zip(rates[0], rates[3], strict=True)]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "records": len(batch),
        "batch": BATCH,
        "records_per_second": {f"repli_{years}": rates[years] for years in FALLBACKS},
        "repli_3_to_repli_0": round(statistics.median(ratios), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communes", type=int, default=35_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = run(args.communes, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "denominators.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
