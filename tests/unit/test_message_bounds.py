"""Kafka is not a back door (issue #30, point 5): a message written straight
to a topic, however large within the broker's limit, is refused whole and
unread when it holds more values or records than any of ours (one dead
letter), never read into gigabytes and a crash loop."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given

from schemas import bulk, limits
from services.aggregator import columns
from services.aggregator.intake import decode
from services.cleaner.transform import clean_message
from tests.unit.test_cleaner_transform import ORIGIN, RULES, envelope
from tests.unit.test_hostile_records import dumps, json_values

GOOD = {"indicateur": "x", "commune": "33063", "annee": 2024, "valeur": 1}


def values_in(value: Any) -> int:
    """Every JSON value of ``value``, itself included."""
    if isinstance(value, list):
        return 1 + sum(map(values_in, value))
    if isinstance(value, dict):
        return 1 + sum(map(values_in, value.values()))
    return 1


@given(json_values)
def test_a_document_is_never_over_twice_its_values(value: Any) -> None:
    text = dumps(value)
    assert not limits.json_values_over(text, 2 * values_in(value))


def test_commas_and_brackets_in_text_are_no_values() -> None:
    labels = [{**GOOD, "libelle_indicateur": ",[{" * 300} for _ in range(3)]
    assert not limits.json_values_over(json.dumps(labels).encode(), 100)
    assert limits.json_values_over(json.dumps([{}] * 101).encode(), 100)


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_MESSAGE_VALUES", 200)
    monkeypatch.setattr(limits, "MAX_MESSAGE_RECORDS", 20)


@pytest.mark.usefixtures("small")
@pytest.mark.parametrize(
    ("value", "why"),
    [
        (envelope(*[{}] * 300), "more than 200 JSON values"),
        (json.dumps([[]] * 300).encode(), "more than 200 JSON values"),
        (envelope(*[GOOD] * 21), "more than 20 records"),
    ],
)
def test_the_cleaner_refuses_a_message_too_large_whole_with_one_letter(
    value: bytes, why: str
) -> None:
    result = clean_message(value, ORIGIN, RULES)
    assert result.clean == [] and len(result.dead) == 1
    assert result.dead[0].reason == "invalid_message" and why in result.dead[0].detail


@pytest.mark.usefixtures("small")
def test_the_cleaner_takes_a_message_at_the_bounds() -> None:
    result = clean_message(envelope(*[GOOD] * 20), ORIGIN, RULES)
    assert len(result.clean) == 20 and result.dead == []


@pytest.mark.usefixtures("small")
def test_the_aggregator_refuses_a_clean_message_too_large_with_one_letter() -> None:
    value = json.dumps({"batch_id": "b", "records": [{}] * 300}).encode()
    records, dead = decode([value])
    assert records == [] and [d.reason for d in dead] == ["invalid_message"]
    assert "more than 200 JSON values" in dead[0].detail


@pytest.mark.usefixtures("small")
def test_a_bulk_message_of_too_many_rows_is_one_letter() -> None:
    table = pa.table({"indicateur": pa.array(["x"] * 21, pa.string())})
    rows = columns.read(bulk.encode(table, bulk.CleanHeader(batch_id="b")))
    assert rows.table.num_rows == 0 and rows.records == []
    assert [d.reason for d in rows.dead] == ["invalid_message"]
    assert "more than 20 rows" in rows.dead[0].detail


def test_a_message_of_a_million_objects_is_refused_unread_at_the_real_bounds() -> None:
    objects = 1_100_000  # 3.3 MB here; the broker takes 32 MiB: 11 million
    value = b'{"batch_id":"b","records":[' + b",".join([b"{}"] * objects) + b"]}"
    result = clean_message(value, ORIGIN, RULES)
    assert [d.reason for d in result.dead] == ["invalid_message"] and result.clean == []
    assert "more than 1,000,000 JSON values" in result.dead[0].detail
    records, dead = decode([value])
    assert records == [] and [d.reason for d in dead] == ["invalid_message"]
