from __future__ import annotations

from decimal import Decimal

import psycopg

from common.referential import load
from services.aggregator import store as store_module
from services.aggregator.handlers import BatchHandler
from services.aggregator.verify import check
from tests.integration.test_change_numbers import assert_log_matches
from tests.unit.fakes import MemoryDeadLetters, MemoryProgress
from tests.unit.test_aggregator_batches import message, record

EPCI_01_74 = "200070852"  # spans Ain (01) and Haute-Savoie (74)


def agg(url: str, niveau: str, code: str, indicateur: str = "pop") -> tuple[Decimal, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT valeur, nb_valeurs FROM aggregates WHERE indicateur = %s "
            "AND niveau = %s AND code = %s",
            (indicateur, niveau, code),
        ).fetchone()
    assert row is not None, (niveau, code)
    return row[0], row[1]


def test_epci_over_two_departements(store, obs, database_url) -> None:
    store.apply([obs("01010", "1174"), obs("74029", "423")])
    assert agg(database_url, "epci", EPCI_01_74) == (Decimal(1597), 2)
    assert agg(database_url, "departement", "01") == (Decimal(1174), 1)
    assert agg(database_url, "departement", "74") == (Decimal(423), 1)
    assert agg(database_url, "region", "84") == (Decimal(1597), 2)
    assert check(database_url).differences == []


def test_corrections_duplicates_and_replays_stay_exact(store, obs, database_url) -> None:
    first = [obs("74010", "0.1", 1, rid="a"), obs("74042", "0.2", 1, rid="b")]
    store.apply(first)
    result = store.apply([obs("74010", "0.7", 3, rid="c"), obs("74010", "9", 2, rid="d")])
    assert result.written == 1 and result.stale == 1
    replay = store.apply(first)  # a whole replay from offset 0
    assert (replay.written, replay.aggregates_changed) == (0, 0)
    assert agg(database_url, "france", "FR") == (Decimal("0.9"), 2)
    assert check(database_url).differences == []


def test_secret_cell_and_island_commune(store, obs, database_url) -> None:
    store.apply(
        [
            obs("22016", "429"),
            obs("22016", None, 2, indicateur="co2"),
            obs("22050", "12", indicateur="co2"),
        ]
    )
    assert agg(database_url, "departement", "22") == (Decimal(429), 1)
    assert agg(database_url, "departement", "22", "co2") == (Decimal(12), 1)
    with psycopg.connect(database_url) as conn:
        marker = conn.execute(
            "SELECT valeur, marqueur FROM observations WHERE "
            "indicateur = 'co2' AND commune = '22016'"
        ).fetchone()
    assert marker == (None, "s")


def test_merged_commune_reported_under_former_codes(store, obs, database_url) -> None:
    current = load().former_codes["01340"]
    store.apply(
        [obs(current, "3", source="01340", rid="x"), obs(current, "4", source=current, rid="y")]
    )
    assert agg(database_url, "commune", current) == (Decimal(7), 2)
    assert agg(database_url, "departement", "01") == (Decimal(7), 1)
    assert check(database_url).differences == []


def test_unknown_commune_is_returned_not_dropped(store, obs) -> None:
    result = store.apply([obs("99999", "1"), obs("33063", "2")])
    assert [r.commune for r in result.unplaced] == ["99999"]
    assert result.written == 1


def test_each_change_takes_the_next_number_of_the_feed(store, obs, database_url) -> None:
    def numbers() -> dict[str, tuple[int, int]]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT niveau, revision, change_seq FROM aggregates").fetchall()
        return {niveau: (revision, seq) for niveau, revision, seq in rows}

    store.apply([obs("33063", "1")])
    first = numbers()
    store.apply([obs("33063", "2", 2)])
    second = numbers()
    assert {niveau: revision for niveau, (revision, _) in second.items()} == dict.fromkeys(
        ("commune", "epci", "departement", "region", "france"), 2
    )
    assert min(seq for _, seq in second.values()) > max(seq for _, seq in first.values())
    store.apply([obs("33063", "2", 1)])  # older: nothing changes, nothing is numbered
    assert numbers() == second


def test_a_lone_surrogate_on_the_clean_topic_costs_only_its_record(store, database_url) -> None:
    """Not from our cleaner (it refuses one), but anyone may write the topic:
    the record alone is refused, as the cleaner would have refused it."""
    letters = MemoryDeadLetters()
    batches = BatchHandler(store, letters, MemoryProgress())
    odd = {**record("33281", "5", "odd"), "sous_champ": "a\ud800"}
    outcome = batches.handle([message(record("33063", "2", "good"), odd)])  # "\ud800" in JSON
    assert (outcome.records, outcome.dead) == (1, {"invalid_schema": 1})  # refused at decoding
    [letter] = letters.sent
    assert (letter.record_id, letter.reason) == ("odd", "invalid_schema")
    assert "sous_champ" in letter.detail
    with psycopg.connect(database_url) as conn:
        france = conn.execute(
            "SELECT valeur FROM aggregates WHERE niveau = 'france' AND indicateur = 'pop'"
        ).fetchone()
    assert france == (2,)


def test_a_row_that_appears_after_its_lookup_costs_a_retry_not_a_record(
    store, database_url, monkeypatch
) -> None:
    """Rows looked up and not found are inserted plainly (no upsert): only the
    holder of their places' locks inserts them. Should one appear anyway, the
    insert fails on the primary key, the transaction changes nothing, and the
    halves of the batch are looked up again: nothing lost, nothing twice."""
    letters = MemoryDeadLetters()
    batches = BatchHandler(store, letters, MemoryProgress())
    batches.handle([message(record("33063", "1", "a"), record("33281", "5", "b"))])
    attempts: list[int] = []
    real_apply = store.apply

    def apply_blind_once(records):  # the first attempt's lookups find nothing
        attempts.append(len(records))
        if len(attempts) > 1:
            return real_apply(records)
        with monkeypatch.context() as blind:
            for query in ("SELECT_STORED", "SELECT_COMMUNES"):
                blind.setattr(store_module, query, getattr(store_module, query) + " WHERE false")
            return real_apply(records)

    monkeypatch.setattr(store, "apply", apply_blind_once)
    newer = [
        {**record("33063", "2", "c"), "version": 2},
        {**record("33281", "7", "d"), "version": 2},
    ]
    outcome = batches.handle([message(*newer, record("33069", "11", "e"))])
    assert attempts[0] == 3 and len(attempts) > 1  # the blind attempt failed, then retried
    assert (outcome.records, outcome.dead, letters.sent) == (3, {}, [])
    assert agg(database_url, "france", "FR") == (Decimal(20), 3)
    assert agg(database_url, "commune", "33063") == (Decimal(2), 1)
    assert check(database_url).differences == []
    assert_log_matches(database_url)  # the failed attempt left no entry
