"""An error that is neither bad data nor an outage (here: a table gone) stops
the aggregator at once, loudly, without acknowledging what it held; once the
cause is mended and the service restarted, nothing is lost."""

from __future__ import annotations

import json

import psycopg

from common.faust_app import EXIT_UNEXPECTED
from services.aggregator.verify import check
from tests.e2e.stack import Stack, eventually, get_json, post


def rename(database_url: str, old: str, new: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {old} RENAME TO {new}")


def test_a_fatal_error_stops_the_aggregator_and_loses_nothing(stack: Stack) -> None:
    url = stack.env["DATABASE_URL"]
    record = {"indicateur": "co2", "commune": "2B033", "annee": 2041, "valeur": 17}
    rename(url, "observations", "observations_away")
    try:
        status, _ = post(stack.url("ingestor", "/observations"), json.dumps([record]).encode())
        assert status == 202
        aggregator = stack.running["aggregator"]
        eventually(lambda: aggregator.poll() is not None, 60, "the aggregator to stop")
        assert aggregator.returncode == EXIT_UNEXPECTED
        assert "UndefinedTable" in stack.log_tail("aggregator", 60)
    finally:
        rename(url, "observations_away", "observations")
        if stack.running["aggregator"].poll() is not None:  # as a supervisor would
            stack.start("aggregator")
            stack.ready("aggregator")

    def served() -> list | None:
        rows = get_json(stack.url("api", "/indicateurs?commune=2B033&indicateur=co2&annee=2041"))
        return rows if rows and rows[0]["valeur"] == 17 else None

    eventually(served, 90, "the record held when the aggregator stopped")
    assert check(url).differences == []
