"""The cleaner's handler: one raw message in, bounded clean messages and one
dead letter per refused record out, all of it decodable downstream."""

from __future__ import annotations

from schemas.clean import CleanBatch
from schemas.deadletter import DeadLetter
from services.cleaner.handlers import Cleaner
from tests.unit.test_cleaner_transform import ORIGIN, RULES, envelope

GOOD = {"indicateur": "population", "commune": "33063", "annee": 2024, "valeur": 1}


def test_each_record_ends_in_a_clean_message_or_a_dead_letter() -> None:
    records = [{**GOOD, "valeur": i} for i in range(5)]
    records.insert(2, {**GOOD, "commune": "99999"})
    out = Cleaner(RULES, batch_records=2).handle(envelope(*records), ORIGIN)
    batches = [CleanBatch.model_validate_json(value) for _, value in out.clean]
    assert [len(b.records) for b in batches] == [2, 2, 1]
    assert [key for key, _ in out.clean] == [b.batch_id for b in batches]
    assert [str(r.valeur) for b in batches for r in b.records] == ["0", "1", "2", "3", "4"]
    [(key, value)] = out.dead
    letter = DeadLetter.model_validate_json(value)
    assert (key, letter.reason, letter.stage) == (letter.record_id, "unknown_code", "cleaner")


def test_clean_messages_stay_within_their_byte_bound() -> None:
    records = [{**GOOD, "valeur": i, "libelle_indicateur": "x" * 900} for i in range(20)]
    out = Cleaner(RULES, batch_records=500, message_bytes=5_000).handle(envelope(*records), ORIGIN)
    assert len(out.clean) > 1 and all(len(value) <= 5_000 for _, value in out.clean)
    assert sum(len(CleanBatch.model_validate_json(v).records) for _, v in out.clean) == 20


def test_bytes_that_are_no_message_become_one_dead_letter() -> None:
    out = Cleaner(RULES, batch_records=500).handle(b"\x00\xff{", ORIGIN)
    assert out.clean == []
    [(_, value)] = out.dead
    assert DeadLetter.model_validate_json(value).reason == "invalid_message"
