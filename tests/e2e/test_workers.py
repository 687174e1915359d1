"""Two cleaners and two aggregators on the four partitions (``ITTE_WORKERS=2``):
random histories pushed concurrently while one instance is killed end with
the aggregates of the oracle (the survivor takes over), and ``itte check``
finds no difference, before and after the killed one comes back."""

from __future__ import annotations

import json
import os
import random
import re
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st

from services.aggregator.verify import check
from tests.e2e.conftest import own_stack
from tests.e2e.stack import Stack, eventually, post
from tests.e2e.test_property import converge, expected, held, histories, records_of

SCALED = ("cleaner", "cleaner-2", "aggregator", "aggregator-2")
FIRST_TEST_YEARS = range(2084, 2100)  # test_each_instance_owns_partitions_and_does_work
# Each example uses two years of its own (the module's database is shared),
# then skips two: a population stands in for up to two later years.
YEARS = iter(range(1950, FIRST_TEST_YEARS.start, 4))

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
    reason="needs a broker of its own: its consumer groups would share the given one's",
)


@pytest.fixture(scope="module")
def workers(
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: Callable[[], str],
    server_state: Path,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("workers")
    with own_stack(workdir, database_factory(), server_state, workers=2) as running:
        yield running


def records_in(stack: Stack, instance: str) -> float:
    """``itte_records_in_total`` of one process (0 when it has none yet)."""
    with urllib.request.urlopen(stack.url(instance, "/metrics"), timeout=10) as response:
        text = response.read().decode()
    found = re.search(r"^itte_records_in_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_each_instance_owns_partitions_and_does_work(workers: Stack) -> None:
    for name in SCALED:  # ready = in the group, with partitions of its own
        workers.ready(name)
    # Raw batches are spread over the partitions by batch id, clean records by
    # place (commune, year, sub-field): 16 batches of 2 communes of their own.
    communes = ["74010", "33063", "74002", "74004", "74019", "33281", "33318", "33069"]
    bodies = [
        [
            {"indicateur": "pop", "commune": c, "annee": year, "valeur": i}
            for c in (communes[i % 8], communes[(i + 3) % 8])
        ]
        for i, year in enumerate(FIRST_TEST_YEARS)
    ]
    for body in bodies:
        assert post(workers.url("ingestor", "/observations"), json.dumps(body).encode())[0] == 202
    eventually(
        lambda: all(records_in(workers, name) > 0 for name in SCALED) or None,
        60,
        "every cleaner and aggregator to have handled records",
    )


# No shrinking: each example kills and restarts a process (about 15 s), and a
# failure is reported as found, with its seed.
@settings(max_examples=3, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(histories, st.sampled_from(SCALED), st.randoms(use_true_random=False))
def test_concurrent_instances_one_killed_lose_and_double_nothing(
    workers: Stack, history, victim: str, rng: random.Random
) -> None:
    year = next(YEARS)
    years = (year, year + 1)
    events = records_of(history, years, rng)
    assume(events)  # a history of the former code's non-additive values alone sends nothing
    sent = events + rng.sample(events, len(events) // 2)  # duplicates
    rng.shuffle(sent)
    requests = [sent[i::4] for i in range(4) if sent[i::4]]
    url = workers.url("ingestor", "/observations")

    def push(body: list[dict]) -> int:
        return post(url, json.dumps(body).encode())[0]

    with ThreadPoolExecutor(4) as pool:  # concurrent producers
        first = list(pool.map(push, requests[: len(requests) // 2]))
        workers.kill(victim)  # while the rest arrive
        rest = list(pool.map(push, requests[len(requests) // 2 :]))
    assert set(first + rest) == {202}
    truth = expected(events)
    database_url = workers.env["DATABASE_URL"]
    # The survivor takes the victim's partitions over (after the group's
    # session timeout), replaying what the victim had not acknowledged.
    converge(database_url, years, truth, 90)
    workers.start(victim)
    workers.ready(victim)  # back in the group: the partitions move again
    assert held(database_url, years) == truth
    assert check(database_url).differences == []
