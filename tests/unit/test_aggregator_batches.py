"""The aggregator's batch handler against the fakes of its ports: what is
applied, what is dead-lettered and why, what stops the batch."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import catalogue
from common.referential import Referential, ancestors, load
from schemas import deadletter
from schemas.clean import CleanObservation, batch_position
from schemas.deadletter import DeadLetter
from services.aggregator.handlers import Archive, BatchHandler, Relay
from services.aggregator.ports import EditionMoved
from services.aggregator.rules import AggregationRules
from tests.conftest import TEST_CATALOGUE
from tests.editions import next_edition
from tests.unit.fakes import (
    MemoryAggregates,
    MemoryDeadLetters,
    MemoryLetterArchive,
    MemoryOutbox,
    MemoryProgress,
)
from tests.unit.test_hostile_records import dumps, json_values

RULES = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
ANCESTORS = ancestors(load())


def record(commune: str, valeur: str, rid: str, producteur: str | None = None) -> dict:
    return {
        "record_id": rid,
        "indicateur": "pop",
        "annee": 2024,
        "commune": commune,
        "commune_source": commune,
        "valeur": valeur,
        "version": 1,
        "producteur": producteur,
    }


def message(*records: dict) -> bytes:
    return json.dumps({"batch_id": "b", "records": list(records)}).encode()


def handler(
    refuse: str | None = None, error: Exception | None = None
) -> tuple[BatchHandler, MemoryAggregates, MemoryDeadLetters, Relay]:
    """``refuse``: the record id the fake database refuses with ``error``."""

    def refusal(r: CleanObservation) -> Exception | None:
        return error if r.record_id == refuse else None

    store = MemoryAggregates(ANCESTORS, RULES, refusal)
    letters = MemoryDeadLetters()
    return BatchHandler(store, letters, MemoryProgress()), store, letters, Relay(MemoryOutbox())


def france(store: MemoryAggregates) -> Decimal:
    return store.aggregates[("pop", "total", 2024, "france", "FR")][0]


def test_a_good_batch_is_applied_and_its_changes_relayed() -> None:
    batches, store, letters, relay = handler()
    outcome = batches.handle(
        [message(record("33063", "2", "a")), message(record("75056", "3", "b"))]
    )
    assert (outcome.records, outcome.dead) == (2, {})
    assert france(store) == Decimal(5) and letters.sent == []
    relay.committed(outcome)
    # Each commune, its EPCI, département and région; France once.
    assert relay.handle() == 9
    assert isinstance(relay.outbox, MemoryOutbox)
    # Published as the transaction wrote them, without reading the log.
    assert relay.outbox.relays == 0
    [written] = relay.outbox.written
    assert len(written) == len(outcome.changes[0])


def test_transactions_are_published_as_written_in_commit_order() -> None:
    batches, _, _, relay = handler()
    outcomes = [batches.handle([message(record("33063", str(v), f"r{v}"))]) for v in (1, 2, 3)]
    for outcome in outcomes:
        relay.committed(outcome)
    relay.handle()
    assert isinstance(relay.outbox, MemoryOutbox) and relay.outbox.relays == 0
    seqs = [c.seq for changes in relay.outbox.written for c in changes]
    assert seqs == sorted(seqs) and len(relay.outbox.written) == 3


def test_when_an_older_change_is_pending_the_log_is_read_once_instead() -> None:
    batches, _, _, relay = handler()
    assert isinstance(relay.outbox, MemoryOutbox)
    relay.outbox.older_pending = True  # another aggregator's batch, say
    for v in (1, 2):
        relay.committed(batches.handle([message(record("33063", str(v), f"r{v}"))]))
    relay.handle()
    assert relay.outbox.relays == 1 and relay.outbox.written == []


def test_a_publication_that_failed_is_caught_up_from_the_log() -> None:
    batches, _, _, _ = handler()
    outbox = MemoryOutbox(failures=1)
    relay = Relay(outbox)
    relay.committed(batches.handle([message(record("33063", "1", "r1"))]))
    with pytest.raises(ConnectionError):
        relay.handle()
    relay.committed(batches.handle([message(record("33063", "2", "r2"))]))
    relay.handle()
    assert outbox.relays == 1 and outbox.written == []


def test_changes_held_while_the_broker_is_away_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.aggregator.handlers.CHANGES_HELD", 8)
    batches, _, _, relay = handler()
    for v in (1, 2):  # 5 changes each
        relay.committed(batches.handle([message(record("33063", str(v), f"r{v}"))]))
    relay.handle()
    assert isinstance(relay.outbox, MemoryOutbox)
    assert relay.outbox.written == [] and relay.outbox.relays == 1


def test_the_backlog_is_measured_at_most_every_few_seconds_not_every_round() -> None:
    outbox = MemoryOutbox()
    relay = Relay(outbox, backlog_every=3600)
    for _ in range(5):
        relay.handle()
    assert (outbox.relays, outbox.backlogs) == (5, 1)  # the first round measures
    every_round = Relay(outbox, backlog_every=0)
    every_round.handle()
    every_round.handle()
    assert outbox.backlogs == 3


def test_a_record_the_database_refuses_costs_only_itself() -> None:
    refused = psycopg.errors.NumericValueOutOfRange("numeric field overflow")
    batches, store, letters, _ = handler(refuse="bad", error=refused)
    records = [record(c, "1", f"r{i}") for i, c in enumerate(("33063", "75056", "69123"))]
    outcome = batches.handle([message(*records[:2], record("33063", "9", "bad"), records[2])])
    assert outcome.dead == {"database_error": 1}
    [letter] = letters.sent
    assert (letter.record_id, letter.stage) == ("bad", "aggregator")
    assert "SQLSTATE 22003" in letter.detail
    assert france(store) == Decimal(3)  # the three others, each once


def test_undecodable_messages_and_unknown_communes_are_dead_lettered_with_their_reason() -> None:
    batches, store, letters, _ = handler()
    outcome = batches.handle(
        [b"\xff not json", message(record("99999", "1", "nowhere"), record("33063", "4", "ok"))]
    )
    assert outcome.dead == {"invalid_message": 1, "unknown_code": 1}
    assert {d.reason for d in letters.sent} == {"invalid_message", "unknown_code"}
    assert france(store) == Decimal(4)


def test_another_producers_observation_is_refused_to_it() -> None:
    batches, store, letters, _ = handler()
    batches.handle([message(record("33063", "4", "first", producteur="ademe"))])
    outcome = batches.handle([message(record("33063", "1", "second", producteur="autre"))])
    assert outcome.dead == {"other_producer": 1}
    # The owner is not named to the other producer (issue #30).
    assert "ademe" not in letters.sent[0].detail and france(store) == Decimal(4)
    assert "another producer" in letters.sent[0].detail


@pytest.mark.parametrize(
    "error",
    [psycopg.OperationalError("connection lost"), psycopg.errors.UndefinedTable("gone")],
    ids=["transient", "fatal"],
)
def test_an_error_that_is_not_a_records_fault_stops_the_batch_before_any_letter(
    error: Exception,
) -> None:
    batches, _, letters, _ = handler(refuse="a", error=error)
    with pytest.raises(type(error)):
        batches.handle([message(record("33063", "1", "a"), record("75056", "1", "b"))])
    assert letters.sent == []


def test_the_records_in_the_results_are_marked_by_batch_and_position_once() -> None:
    refused = psycopg.errors.NumericValueOutOfRange("numeric field overflow")
    batches, _, _, _ = handler(refuse="B:000001", error=refused)
    first = [
        record("33063", "1", "B:000000"),
        record("33063", "2", "B:000001"),  # refused by the database
        record("99999", "1", "B:000002"),  # unknown commune
        record("75056", "1", "C:000004"),
    ]
    batches.handle([message(*first)])
    progress = batches.progress
    assert isinstance(progress, MemoryProgress)
    assert progress.clean == {"B": {1}, "C": {5}}
    # A replay, cut otherwise, with a stale record: still counted, once.
    batches.handle([message(first[0]), message(record("75056", "0", "C:000004"), first[1])])
    assert progress.clean == {"B": {1}, "C": {5}}
    batches.handle([message(record("69123", "1", "whole-message-id"))])  # no position: not marked
    assert progress.clean == {"B": {1}, "C": {5}}


def letter_json(record_id: str, reason: str = "unknown_code") -> bytes:
    return json.dumps(
        {
            "record_id": record_id,
            "stage": "cleaner",
            "reason": reason,
            "detail": "d",
            "payload": None,
            "at": "2026-11-29T10:00:00Z",
        }
    ).encode()


def test_dead_letters_are_archived_once_and_junk_is_skipped() -> None:
    archive = MemoryLetterArchive()
    handled = Archive(archive).handle([letter_json("b:000002"), b"\xff junk", letter_json("m")])
    assert handled == 2 and set(archive.kept) == {"b:000002", "m"}
    Archive(archive).handle([letter_json("b:000002", reason="other")])  # a replay
    assert archive.kept["b:000002"].reason == "unknown_code"


def test_a_record_id_names_its_batch_and_position() -> None:
    assert batch_position("b-1:000000") == ("b-1", 1)
    assert batch_position("kafka:indicators.raw:3:000041") == ("kafka:indicators.raw:3", 42)
    for whole_message in ("aggregator:sha256:abc", "kafka:indicators.raw:3:41", "x:00001a", ""):
        assert batch_position(whole_message) is None


# Values that break a clean record where it is hardest: texts Postgres or JSON
# cannot hold, integers past a bigint and past a float, any JSON value.
EXTREME_INTS = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**53 + 1, 10**309, -(10**400)]
hostile_values = st.one_of(
    json_values,
    st.sampled_from(EXTREME_INTS),
    st.sampled_from(["\ud800", "a\x00b", "\udfff:000001", "x" * 300, "1E+999999", "NaN"]),
)
FIELDS = [*CleanObservation.model_fields, "batch_id"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.sampled_from(FIELDS), hostile_values), max_size=4))
def test_any_value_in_any_field_of_a_clean_message_costs_only_its_record(
    overrides: list[dict[str, Any]],
) -> None:
    """Written on indicators.clean by anyone: the batch is handled without an
    exception (one would stop the aggregator on this message at every
    restart), each record is decoded or dead-lettered, every dead letter can
    be sent, and the good record is applied."""
    batches, store, letters, _ = handler()
    good = record("33063", "7", "good:000000")
    odd = [{**record("75056", "1", f"odd:{i:06d}"), **o} for i, o in enumerate(overrides)]
    batch_id = next((o["batch_id"] for o in overrides if "batch_id" in o), "b")
    value = dumps({"batch_id": batch_id, "records": [*odd, good]})
    outcome = batches.handle([value])
    assert outcome.records + outcome.dead.get("invalid_schema", 0) == len(odd) + 1
    applied = {r.record_id for batch in store.received for r in batch}
    assert "good:000000" in applied - {letter.record_id for letter in letters.sent}
    for letter in letters.sent:
        assert letter.reason and letter.detail
        DeadLetter.model_validate_json(deadletter.encode(letter))


def test_a_three_item_array_is_no_decimal() -> None:
    """pydantic reads a JSON array of three as a Decimal tuple: [0, [1], 0]
    was stored as 1, and [null, null, null] raised a ValueError that stopped
    the aggregator on the message at every restart."""
    batches, store, _, _ = handler()
    arrays = ([None, None, None], [0, [1], 0])
    odd = [{**record("75056", "1", f"odd:{i:06d}"), "valeur": v} for i, v in enumerate(arrays)]
    good = record("33063", "7", "g:000000")
    outcome = batches.handle([dumps({"batch_id": "b", "records": [*odd, good]})])
    assert outcome.dead == {"invalid_schema": 2}
    assert [r.record_id for batch in store.received for r in batch] == ["g:000000"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("recu", 10**309), ("version", 2**63), ("annee", 10**400), ("annee", 1899)],
)
def test_numbers_no_later_stage_holds_are_refused_at_decoding(field: str, value: int) -> None:
    batches, store, letters, _ = handler()
    odd = {**record("75056", "1", "odd:000000"), field: value}
    outcome = batches.handle([message(odd, record("33063", "7", "good:000001"))])
    assert outcome.dead == {"invalid_schema": 1} and france(store) == Decimal(7)
    assert field in letters.sent[0].detail


@pytest.mark.parametrize("text", ["\ud800", "a\x00b"])
def test_a_record_id_that_json_or_postgres_cannot_hold_still_makes_a_dead_letter(
    text: str,
) -> None:
    batches, _, letters, _ = handler()
    batches.handle(
        [
            dumps({"batch_id": text, "records": [{"record_id": 3}]}),
            dumps({"batch_id": "b", "records": [{"record_id": text}]}),
        ]
    )
    assert len(letters.sent) == 2
    for letter in letters.sent:
        sent = json.loads(deadletter.encode(letter))
        assert "\x00" not in sent["record_id"]
        sent["record_id"].encode("utf-8")  # valid Unicode: Postgres takes it


def test_a_batch_meeting_a_new_edition_is_done_again_on_it() -> None:
    """`itte referentiel charger` moved the database to 2027 while this
    batch was in flight: nothing of it was written (EditionMoved); done again
    on 2027, a code of the commune nouvelle lands, and the batch's records
    count once, its dead letters once."""
    edition, names = next_edition()

    class Moved(MemoryAggregates):
        """The database on 2027 until the store uses it."""

        def use(self, ref: Referential) -> None:
            self.refuse = lambda _: None
            super().use(ref)

    store = Moved(ANCESTORS, RULES, lambda _: EditionMoved(edition))
    letters = MemoryDeadLetters()
    batches = BatchHandler(store, letters, MemoryProgress())
    outcome = batches.handle([message(record(names["born"], "2", "a"), record("99999", "1", "b"))])
    assert outcome.records == 2
    assert outcome.dead == {"unknown_code": 1}  # 99999 is a commune of no edition
    assert [d.record_id for d in letters.sent] == ["b"]
    assert store.aggregates[("pop", "total", 2024, "commune", names["born"])][0] == Decimal(2)
