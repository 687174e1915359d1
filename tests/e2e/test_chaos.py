"""The short chaos run of `make test`: Postgres stopped as by a crash and
started again, then the aggregator paused (SIGSTOP past its session timeout)
while the first versions travel on the bulk lane, each during a load with
corrections and duplicates. The full run (`make chaos`) writes RELIABILITY.md."""

from __future__ import annotations

import random
import time
from datetime import datetime

import psycopg
import pytest

from schemas import bulk
from tests.chaos import run_round
from tests.e2e.stack import Stack
from tests.integration.test_kafka import read_all


def postgres_started(stack: Stack) -> datetime:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    assert row is not None
    return row[0]


def session_timeouts(stack: Stack) -> int:
    """How often the aggregator's consumers found their session had expired."""
    log = stack.log_dir / "aggregator.log"
    return log.read_text(errors="replace").count("session timed out") if log.exists() else 0


# A SIGKILLed aggregator is played by test_crash_recovery and test_bulk_crash.
@pytest.mark.parametrize(("number", "fault"), [(91, "postgres"), (92, "pause:aggregator")])
def test_a_fault_during_a_load_loses_nothing_and_doubles_nothing(
    stack: Stack, number: int, fault: str
) -> None:
    started, since_ms = postgres_started(stack), int(time.time() * 1000)
    timeouts = session_timeouts(stack)
    # The aggregator is paused while the first versions travel on the bulk lane.
    bulk_lane = fault.startswith("pause:")
    result = run_round(stack, number, fault, random.Random(number), bulk=bulk_lane)
    assert (result.lost, result.doubled, result.exact, result.wrong) == (0, 0, True, 0), result
    assert result.communes > 1000 and result.records > result.communes
    bulk_messages = read_all(stack.env["KAFKA_BOOTSTRAP_SERVERS"], bulk.CLEAN_TOPIC, since_ms)
    assert (len(bulk_messages) > 0) == bulk_lane  # the lane taken
    if fault.startswith("pause:"):  # the pause outlasted the session: the group moved on
        assert session_timeouts(stack) > timeouts
    if fault == "postgres" and stack.postgres_state is not None:
        assert postgres_started(stack) > started  # a real restart, not a cut-off
