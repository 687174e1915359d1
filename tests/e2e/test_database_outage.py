"""Postgres away: the aggregator reports it, waits, and loses nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from common.referential import load
from services.aggregator.verify import check
from tests.e2e.stack import Stack, allow_connections, eventually, get_json, post


def aggregator_health(stack: Stack) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(stack.url("aggregator", "/health"), timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_aggregator_waits_out_a_database_outage(stack: Stack) -> None:
    url = stack.env["DATABASE_URL"]
    communes = sorted(c.code for c in load().communes.values() if c.departement == "973")
    records = [{"indicateur": "co2", "commune": c, "annee": 2040, "valeur": 1} for c in communes]
    allow_connections(url, False)
    try:
        status, answer = post(stack.url("ingestor", "/observations"), json.dumps(records).encode())
        # The ingestor needs no database without Idempotency-Key: published, untracked.
        assert status == 202 and answer["tracked"] is False, answer
        _, body = eventually(
            lambda: ((h := aggregator_health(stack))[0] == 503 and h) or None,
            60,
            "the aggregator to report the outage",
        )
        assert body["status"] == "failing" and body["error"]
    finally:
        allow_connections(url, True)
    eventually(lambda: aggregator_health(stack)[0] == 200, 90, "the aggregator to recover")

    def guyane() -> dict | None:
        rows = get_json(stack.url("api", "/indicateurs?departement=973&indicateur=co2&annee=2040"))
        return rows[0] if rows and rows[0]["valeur"] == len(communes) else None

    assert eventually(guyane, 60, "the values sent during the outage")[
        "communes_renseignees"
    ] == len(communes)
    assert check(url).differences == []
