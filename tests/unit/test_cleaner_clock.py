"""Implicit versions come from the acceptance clock, not the sender's (issue
#30, point 4): a message accepted, by its own account, further ahead of the
cleaner's clock than the skew allowed is dead-lettered ``future_timestamp``
on both lanes (its implicit versions would beat every later correction)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from schemas.raw import RawBatchHeader
from services.cleaner.columns import ColumnCleaner
from services.cleaner.transform import MessageOrigin, clean_message
from tests.unit.fakes import MemoryAggregates
from tests.unit.test_aggregator_plan import ANCESTORS
from tests.unit.test_aggregator_plan import RULES as AGGREGATION
from tests.unit.test_cleaner_transform import RECEIVED, RULES

GOOD = {"indicateur": "population", "commune": "33063", "annee": "2024", "valeur": "5"}
SKEW = timedelta(seconds=RULES.clock_skew_micros / 1e6)


def envelope(received: object, *records: dict) -> bytes:
    header = {"batch_id": "b1", "source": "t", "received_at": str(received)}
    return json.dumps({**header, "records": list(records)}).encode()


@pytest.mark.parametrize(
    ("ahead", "reasons"),
    [
        (timedelta(0), []),
        (SKEW, []),  # as far ahead as allowed
        (SKEW + timedelta(seconds=1), ["future_timestamp"] * 2),
        (timedelta(days=365 * 70), ["future_timestamp"] * 2),  # stamped 2096
    ],
)
def test_a_message_accepted_in_the_future_is_refused_on_both_lanes(
    ahead: timedelta, reasons: list[str]
) -> None:
    now, received = RECEIVED, RECEIVED + ahead
    live = clean_message(envelope(received.isoformat(), GOOD, GOOD), ORIGIN_NOW, RULES, now=now)
    assert [d.reason for d in live.dead] == reasons
    assert len(live.clean) == 2 - len(reasons)
    header = RawBatchHeader(batch_id="b1", source="t", received_at=received)
    table = pa.table({k: pa.array([v, v], pa.string()) for k, v in GOOD.items()})
    bulk = ColumnCleaner(RULES).clean(table, header, now)
    assert [d.reason for d in bulk.dead] == reasons
    assert bulk.table.num_rows == 2 - len(reasons)
    if reasons:
        assert {d.detail for d in live.dead} == {d.detail for d in bulk.dead}
        assert "ahead of this cleaner's clock" in live.dead[0].detail


ORIGIN_NOW = MessageOrigin("indicators.raw", 0, 1, int(RECEIVED.timestamp() * 1000))


def test_a_bare_kafka_record_stamped_in_the_future_is_refused() -> None:
    stamped = RECEIVED + timedelta(days=365 * 70)
    origin = MessageOrigin("indicators.raw", 0, 2, int(stamped.timestamp() * 1000))
    result = clean_message(json.dumps(GOOD).encode(), origin, RULES, now=RECEIVED)
    assert [d.reason for d in result.dead] == ["future_timestamp"] and result.clean == []
    fine = clean_message(json.dumps(GOOD).encode(), ORIGIN_NOW, RULES, now=RECEIVED)
    assert len(fine.clean) == 1 and fine.clean[0].version == int(RECEIVED.timestamp() * 1e6)


def test_the_skew_allowed_is_a_setting() -> None:
    strict = replace(RULES, clock_skew_micros=0)
    ahead = (RECEIVED + timedelta(seconds=1)).isoformat()
    result = clean_message(envelope(ahead, GOOD), ORIGIN_NOW, strict, now=RECEIVED)
    assert [d.reason for d in result.dead] == ["future_timestamp"]


def test_a_replica_whose_clock_runs_ahead_freezes_a_value_no_longer_than_the_skew() -> None:
    """Two ingestor replicas, A's clock ahead of B's (and of the cleaner's)
    by a little less than the skew allowed. A value accepted through A
    carries A's time as its version: a correction sent later through B loses
    until B's clock passes A's stamp, at most the skew later, and an explicit
    version wins at once. A replica further ahead is refused outright (the
    test above): the skew bounds how long any clock can freeze a value."""
    ahead = SKEW - timedelta(seconds=1)
    aggregates = MemoryAggregates(ANCESTORS, AGGREGATION)
    start = RECEIVED

    def push(offset: timedelta, sent: timedelta, valeur: str, **extra: object) -> None:
        accepted = start + sent + offset  # by the replica's clock
        record = {**GOOD, "valeur": valeur, **extra}
        result = clean_message(
            envelope(accepted.isoformat(), record), ORIGIN_NOW, RULES, now=start + sent
        )
        assert result.dead == []  # within the skew: every replica is heard
        # The aggregation rules of the unit catalogue name it "pop".
        aggregates.apply([c.model_copy(update={"indicateur": "pop"}) for c in result.clean])

    def value() -> Decimal:
        return aggregates.aggregates[("pop", "total", 2024, "commune", "33063")][0]

    push(ahead, timedelta(0), "5")  # through A
    push(timedelta(0), ahead / 2, "6")  # through B, later: its clock is behind A's stamp
    assert (value(), aggregates.stale) == (Decimal(5), 1)
    push(timedelta(0), ahead + timedelta(seconds=1), "7")  # B's clock has passed it
    assert value() == Decimal(7)
    push(ahead, ahead + timedelta(seconds=2), "8", version=1)
    push(timedelta(0), ahead + timedelta(seconds=3), "9", version=2)  # explicit: at once
    assert value() == Decimal(9)
