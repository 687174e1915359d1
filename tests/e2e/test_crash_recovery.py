"""SIGKILL any one service in the middle of an ingestion, restart it: nothing
is lost and nothing is counted twice."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from schemas import aggregates
from services.aggregator.verify import check
from tests.chaos import workload
from tests.e2e.stack import Stack, eventually, get_json, post_with_retry
from tests.integration.test_kafka import read_all

DEPARTEMENTS = ("01", "33", "74", "2A", "29")
POSTS = 24
KILL_AFTER = 8


@pytest.mark.parametrize("victim", ["ingestor", "cleaner", "aggregator", "api"])
def test_sigkill_during_ingestion_loses_nothing_and_counts_nothing_twice(
    stack: Stack, victim: str
) -> None:
    indicateur = f"crash_{victim}"
    posts, final = workload(
        indicateur, 2024, random.Random(indicateur), DEPARTEMENTS, posts=POSTS, duplicated=0
    )
    for number, body in enumerate(posts):
        if number == KILL_AFTER:
            stack.kill(victim)
            if victim == "ingestor":  # the producer retries while it is down
                stack.start(victim)
        post_with_retry(stack, body)
        if number == KILL_AFTER and victim != "ingestor":
            stack.start(victim)
    stack.ready(victim)

    total = sum(final.values())

    def france() -> dict | None:
        rows = get_json(stack.url("api", f"/indicateurs?indicateur={indicateur}"))
        return rows[0] if rows and Decimal(str(rows[0]["valeur"])) == total else None

    row = eventually(france, 120, f"France total of {indicateur} = {total}")
    assert row["communes_renseignees"] == len(final)

    # Every aggregate of the database equals a recomputation from scratch.
    assert check(stack.env["DATABASE_URL"]).differences == []
    [corsica] = get_json(stack.url("api", f"/indicateurs?departement=2A&indicateur={indicateur}"))
    assert corsica["communes_renseignees"] == sum(1 for c in final if c.startswith("2A"))

    # Subscribers end with the same figure: the last France message on the topic.
    def published() -> Decimal | None:
        ours = [
            json.loads(m.value())
            for m in read_all(stack.env["KAFKA_BOOTSTRAP_SERVERS"], aggregates.TOPIC)
        ]
        last = [m for m in ours if m["indicateur"] == indicateur and m["niveau"] == "france"]
        return Decimal(last[-1]["valeur"]) if last else None

    assert eventually(lambda: published() == total or None, 60, "published France total")
