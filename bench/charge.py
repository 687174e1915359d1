"""What loading an edition of the map costs (issue #29, ``itte referentiel
charger``): how long it takes, and how long the aggregators wait.

Loads the population and charging points of every commune for ``YEARS``
through the record-by-record store into a fresh database, runs ``itte
rebuild``'s recomputation on it (nothing to mend: the floor of any
placement, which recomputes every aggregate), then loads the tests'
synthetic 2027 edition (tests/editions.py: a merge, a commune nouvelle, a
commune and an EPCI's communes moved) and writes, side by side, the
rebuild's seconds, the charge's two steps (loading the editions while the
aggregators run; the switch, during which they wait) and their ratio to
``bench/results/charge.json``.

    python -m bench.charge [--communes 35000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.data import RESULTS
from bench.denominators import records
from bench.stack import given_or_embedded
from common import catalogue, migrations, referential
from itte.embedded import stop_embedded
from services.aggregator.charge import charge
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from services.aggregator.verify import rebuild
from tests.editions import files_of, next_edition

BATCH = 1_000
YEARS = (2024, 2025, 2026)


def run(communes: int) -> dict[str, Any]:
    shipped = catalogue.load()
    batch = records(sorted(referential.load().communes)[:communes], YEARS)
    edition, _ = next_edition()
    with tempfile.TemporaryDirectory(prefix="charge-") as state:
        servers = given_or_embedded(Path(state))
        try:
            url = migrations.new_database(
                servers.database_url, f"bench_charge_{uuid.uuid4().hex[:8]}", shipped
            )
            rules = AggregationRules.from_catalogue(shipped)
            store = AggregateStore(url, referential.load(), rules)
            for at in range(0, len(batch), BATCH):
                store.apply(batch[at : at + BATCH])
            store.close()
            start = time.perf_counter()
            rebuild(url)
            rebuilt = time.perf_counter() - start
            charged = charge(url, edition, files_of(edition))
        finally:
            stop_embedded(Path(state))
    assert charged.placed is not None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "observations": len(batch),
        "rebuild_seconds": round(rebuilt, 2),
        "charge_loading_seconds": round(charged.loading_seconds, 2),
        "charge_switch_seconds": round(charged.switch_seconds, 2),
        "switch_to_rebuild": round(charged.switch_seconds / rebuilt, 2),
        "moved": {k: v for k, v in charged.placed.counts.items() if v},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--communes", type=int, default=35_000)
    args = parser.parse_args()
    result = run(args.communes)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "charge.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
