"""SIGKILL the aggregator while it writes a bulk message (thousands of
records in one transaction, holding the numbering lock), and restart it:
every record is counted once, every aggregate equals its recomputation
(``itte check``), and the topic's last word on France is the database's."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg

from bench.data import observations, write_long_csv
from schemas import aggregates
from services.aggregator.verify import check
from tests.e2e.stack import Stack, eventually
from tests.integration.test_kafka import read_all

PREFIX = "e2e_bulk"  # indicator e2e_bulk_0 (tests/catalogue.toml)
RECORDS = 90_000  # 3 bulk messages of 40,000 raw records at most; 9 or more clean ones


def counted(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(nb_valeurs), 0) FROM aggregates"
            " WHERE niveau = 'france' AND indicateur = %s",
            [f"{PREFIX}_0"],
        ).fetchone()
    return int(row[0]) if row else 0


def writing(database_url: str) -> bool | None:
    """A transaction holds the numbering lock (common/db/changes.py): the aggregator
    is in the middle of writing a batch."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objid = 7277413"
        ).fetchone()
    return bool(row and row[0]) or None


def test_sigkill_of_the_aggregator_in_a_bulk_load_counts_each_record_once(
    stack: Stack, workdir: Path
) -> None:
    source = workdir / "bulk.csv"
    write_long_csv(source, RECORDS, PREFIX)
    expected = sum(Decimal(o.valeur) for o in observations(RECORDS, PREFIX))
    url = stack.env["DATABASE_URL"]
    ingest = subprocess.Popen(
        [sys.executable, "-m", "itte", "ingest", str(source)],
        env=stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    eventually(lambda: writing(url), 120, "the aggregator to write a bulk message", poll=0.005)
    stack.kill("aggregator")
    assert counted(url) < RECORDS
    stack.start("aggregator")
    stack.ready("aggregator")
    assert ingest.wait(120) == 0, ingest.stderr.read() if ingest.stderr else ""

    eventually(lambda: counted(url) == RECORDS or None, 180, "every record counted once")
    assert check(url).differences == []
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT sum(valeur) FROM aggregates WHERE niveau = 'france' AND indicateur = %s",
            [f"{PREFIX}_0"],
        ).fetchone()
    assert row is not None and row[0] == expected

    def published() -> bool | None:
        totals: dict[int, Decimal] = {}
        for m in read_all(stack.env["KAFKA_BOOTSTRAP_SERVERS"], aggregates.TOPIC):
            change = json.loads(m.value())
            if change["indicateur"] == f"{PREFIX}_0" and change["niveau"] == "france":
                totals[change["annee"]] = Decimal(change["valeur"])
        return sum(totals.values()) == expected or None

    eventually(published, 60, "the topic's France totals")
