"""Implicit versions come from the acceptance clock, not the sender's (issue
#30, point 4): a message accepted, by its own account, further ahead of the
cleaner's clock than the skew allowed is dead-lettered ``future_timestamp``
on both lanes (its implicit versions would beat every later correction)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pyarrow as pa
import pytest

from schemas.raw import RawBatchHeader
from services.cleaner.columns import ColumnCleaner
from services.cleaner.transform import MessageOrigin, clean_message
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
