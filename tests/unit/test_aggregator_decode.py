"""The aggregator's decoding and dead letters are total: any bytes as a clean
message, any JSON value as a clean record, never an exception."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import faust_app
from schemas.deadletter import DeadLetter, encode
from services.aggregator.intake import decode
from tests.unit.test_hostile_records import dumps, json_values

GOOD = {
    "record_id": "b:000000",
    "indicateur": "pop",
    "annee": 2024,
    "commune": "33063",
    "commune_source": "33063",
    "valeur": "1",
    "version": 1,
}


@settings(max_examples=200)
@given(st.lists(json_values, max_size=4), st.binary(max_size=200))
def test_any_clean_message_decodes_or_is_dead_lettered(records: list[Any], junk: bytes) -> None:
    batch = dumps({"batch_id": "b", "records": [GOOD, *records]})
    good, dead = decode([batch, junk])
    assert good[0].record_id == "b:000000"
    assert len(good) + len(dead) >= 2  # each record of the batch, and the junk message
    for letter in dead:
        DeadLetter.model_validate_json(encode(letter))


def test_a_bad_record_in_a_clean_batch_costs_only_itself() -> None:
    batch = json.dumps({"batch_id": "b", "records": [GOOD, {"record_id": 3}, GOOD]}).encode()
    good, [dead] = decode([batch])
    assert len(good) == 2 and (dead.record_id, dead.reason) == ("b:000001", "invalid_schema")


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("sous_champ", "a\ud800"),  # a lone surrogate: not UTF-8, Postgres refuses it
        ("unite", "k\x00g"),  # a NUL: Postgres text cannot hold one
        ("indicateur", "x" * 101),  # longer than a key may be
        ("commune", "330630000000"),
        ("record_id", "r" * 201),
        ("producteur", "\x00"),
    ],
)
def test_text_the_cleaner_would_refuse_is_refused_here_as_invalid_schema(
    field: str, text: str
) -> None:
    odd = {**GOOD, "record_id": "odd", field: text}
    batch = json.dumps({"batch_id": "b", "records": [GOOD, odd]}).encode()  # escapes kept
    good, [dead] = decode([batch])
    assert [g.record_id for g in good] == ["b:000000"]
    assert (dead.record_id, dead.reason) == (
        "b:000001" if field == "record_id" else "odd",
        "invalid_schema",
    )
    assert field in dead.detail


def test_a_dead_letter_always_encodes_even_with_text_that_is_not_unicode() -> None:
    letter = DeadLetter(
        record_id="r",
        stage="s",
        reason="x",
        detail="d",
        payload={"a": "\ud800"},
        at="2026-01-01T00:00:00Z",
    )
    assert json.loads(encode(letter))["payload"] is None


def test_an_error_outside_any_record_stops_the_process_unacknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits: list[int] = []

    def exit_now(status: int) -> None:
        exits.append(status)
        raise SystemExit(status)

    monkeypatch.setattr(faust_app.os, "_exit", exit_now)

    async def agent() -> None:
        async with faust_app.stop_on_unexpected("test"):
            raise RuntimeError("lost the broker's assignment")

    with pytest.raises(SystemExit):
        asyncio.run(agent())
    assert exits == [faust_app.EXIT_UNEXPECTED]


# Kafka is not a back door (issue #30, point 5): anyone may write to the
# clean topics, so the aggregator takes only keyed hashes as personal data.
CLEAR = "jeanne.martin@example.org"
HASH = "a" * 64


@pytest.mark.parametrize(
    "pii",
    [
        {"email": CLEAR},
        {"email": "A" * 64},  # not lower-case hex
        {"email": HASH[:-1]},
        {"email": "hmac-sha256:" + HASH},  # the edge's form, not the stored one
        {f"f{i}": HASH for i in range(41)},  # more fields than a record may have
    ],
)
def test_personal_data_that_is_no_keyed_hash_is_refused_on_the_live_lane(pii: dict) -> None:
    batch = json.dumps({"batch_id": "b", "records": [{**GOOD, "pii": pii}]}).encode()
    good, dead = decode([batch])
    assert good == [] and [d.reason for d in dead] == ["invalid_schema"]
    assert CLEAR not in encode(dead[0]).decode()


def test_a_keyed_hash_is_taken() -> None:
    batch = json.dumps({"batch_id": "b", "records": [{**GOOD, "pii": {"email": HASH}}]})
    good, dead = decode([batch.encode()])
    assert dead == [] and good[0].pii == {"email": HASH}
