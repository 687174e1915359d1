"""The cleaner's handler: one raw message in, bounded clean messages (each
for the partition of its records' places, so that aggregators on different
partitions lock different places) and one dead letter per refused record
out, all of it decodable downstream."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from common.referential import load
from schemas.clean import CleanBatch, place_hash
from schemas.deadletter import DeadLetter
from services.aggregator.store import LOCK_BUCKETS, lock_bucket
from services.cleaner.handlers import Cleaner
from tests.editions import next_edition
from tests.unit.test_cleaner_transform import ORIGIN, RULES, envelope

COMMUNES = sorted(load().communes)[:2000]
GOOD = {"indicateur": "population", "commune": "33063", "annee": 2024, "valeur": 1}


def test_each_record_ends_in_a_clean_message_or_a_dead_letter() -> None:
    records = [{**GOOD, "valeur": i} for i in range(5)]
    records.insert(2, {**GOOD, "commune": "99999"})
    out = Cleaner(RULES, batch_records=2, partitions=4).handle(envelope(*records), ORIGIN)
    batches = [CleanBatch.model_validate_json(value) for _, value, _ in out.clean]
    assert [len(b.records) for b in batches] == [2, 2, 1]  # one place: one partition
    assert [key for key, _, _ in out.clean] == [b.batch_id for b in batches]
    assert [str(r.valeur) for b in batches for r in b.records] == ["0", "1", "2", "3", "4"]
    [(key, value)] = out.dead
    letter = DeadLetter.model_validate_json(value)
    assert (key, letter.reason, letter.stage) == (letter.record_id, "unknown_code", "cleaner")


def test_clean_messages_stay_within_their_byte_bound() -> None:
    records = [{**GOOD, "valeur": i, "libelle_indicateur": "x" * 900} for i in range(20)]
    out = Cleaner(RULES, batch_records=500, partitions=1, message_bytes=5_000).handle(
        envelope(*records), ORIGIN
    )
    assert len(out.clean) > 1 and all(len(value) <= 5_000 for _, value, _ in out.clean)
    assert sum(len(CleanBatch.model_validate_json(v).records) for _, v, _ in out.clean) == 20


def test_bytes_that_are_no_message_become_one_dead_letter() -> None:
    out = Cleaner(RULES, batch_records=500, partitions=4).handle(b"\x00\xff{", ORIGIN)
    assert out.clean == []
    [(_, value)] = out.dead
    assert DeadLetter.model_validate_json(value).reason == "invalid_message"


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(COMMUNES) - 1), min_size=1, max_size=300),
    years=st.lists(st.integers(1900, 2100), min_size=1, max_size=3),
    partitions=st.sampled_from([1, 2, 3, 4, 8, 12]),
    batch_records=st.integers(1, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_each_record_goes_once_to_the_partition_of_its_place(
    picks: list[int], years: list[int], partitions: int, batch_records: int, seed: int
) -> None:
    rng = random.Random(seed)
    records = [
        {
            "indicateur": rng.choice(["population", "taux"]),
            "sous_champ": rng.choice(["total", "moins_30_ans"]),
            "commune": COMMUNES[i],
            "annee": rng.choice(years),
            "valeur": rng.randint(0, 10**6),
        }
        for i in picks
    ]
    cleaner = Cleaner(RULES, batch_records=batch_records, partitions=partitions)
    out = cleaner.handle(envelope(*records), ORIGIN)

    sent: list[str] = []
    for key, message, partition in out.clean:
        batch = CleanBatch.model_validate_json(message)
        assert batch.batch_id == key and 0 < len(batch.records) <= batch_records
        assert 0 <= partition < partitions
        for record in batch.records:
            assert place_hash(record.sous_champ, record.annee, record.commune) % partitions == (
                partition
            )
            sent.append(record.record_id)
    assert out.dead == []
    assert sorted(sent) == [f"b1:{i:06d}" for i in range(len(records))]  # each once
    assert len({key for key, _, _ in out.clean}) == len(out.clean)  # envelope ids unique


def test_aggregators_on_different_partitions_lock_different_buckets() -> None:
    """With a partition count that divides LOCK_BUCKETS, the buckets of two
    partitions never meet; 3 does not divide it, and they do."""
    places = [("total", year, code) for code in COMMUNES for year in (2023, 2024)]

    def buckets(partitions: int) -> list[set[int]]:
        found: list[set[int]] = [set() for _ in range(partitions)]
        for sous_champ, annee, commune in places:
            partition = place_hash(sous_champ, annee, commune) % partitions
            found[partition].add(lock_bucket(("x", sous_champ, annee, commune)))
        return found

    for partitions in (2, 4, 8):
        assert LOCK_BUCKETS % partitions == 0
        found = buckets(partitions)
        assert all(found) and sum(map(len, found)) == len(set().union(*found))
    found = buckets(3)
    assert sum(map(len, found)) > len(set().union(*found))


def test_a_later_edition_places_the_next_records_on_its_communes() -> None:
    """A commune nouvelle's code is unknown to the edition before; once the
    cleaner uses the later one, it is a commune, and a former code of it
    lands on it (what the editions topic brings: common/edition_feed.py)."""
    edition, names = next_edition()
    cleaner = Cleaner(RULES, batch_records=500, partitions=1)
    born, part = {**GOOD, "commune": names["born"]}, {**GOOD, "commune": names["a"]}
    before = cleaner.handle(envelope(born, part), ORIGIN)
    assert [DeadLetter.model_validate_json(v).reason for _, v in before.dead] == ["unknown_code"]
    cleaner.use(edition)
    after = cleaner.handle(envelope(born, part), ORIGIN)
    assert after.dead == []
    [batch] = [CleanBatch.model_validate_json(value) for _, value, _ in after.clean]
    assert [(r.commune_source, r.commune) for r in batch.records] == [
        (names["born"], names["born"]),
        (names["a"], names["born"]),
    ]
