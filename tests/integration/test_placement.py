"""A new edition of the map under stored values (services/aggregator/placement.py):
`itte migrate` loads it, the aggregator of that release places every stored
value again at its start, and every aggregate that moves is recomputed and
numbered once; what the edition cannot take is a dead letter. The edition
here is made from the shipped one: a commune merged into its neighbour, one
moved to another EPCI, an EPCI gone."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from common import catalogue, db
from common.errors import Fatal
from common.referential import load
from schemas.clean import record_id
from services.aggregator.placement import bring_onto, where
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from services.aggregator.verify import check
from services.ingestor.ledger import PostgresBatchLedger
from tests.conftest import TEST_CATALOGUE
from tests.editions import next_edition
from tests.integration.test_published_values import published

REF = load()
PUSHED = record_id("b-tmax", 0)  # the first record of an HTTP batch


def aggregates(url: str) -> dict[tuple, tuple]:
    with psycopg.connect(url) as conn:
        return {
            tuple(r[:5]): tuple(r[5:])
            for r in conn.execute(
                f"SELECT {db.AGGREGATE_KEY}, valeur, nb_valeurs, valeur_publiee FROM aggregates"
            )
        }


def test_stored_values_move_onto_a_new_edition_once(database_url, obs) -> None:
    edition, c = next_edition()
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    old = AggregateStore(database_url, REF, rules)
    old.apply(
        [
            obs(c["keep"], "10", annee=2026, rid="k"),
            obs(c["merged"], "5", annee=2026, rid="m"),
            obs(c["moved"], "7", annee=2026, rid="v"),
            obs(c["merged"], "30", indicateur="tmax", annee=2026, rid=PUSHED),
            published("pop", "epci", c["gone"], "99", annee=2026, rid="g"),
        ]
    )
    with psycopg.connect(database_url) as conn:
        # The tmax record came by HTTP, first of its batch, and is in the results.
        conn.execute(
            "INSERT INTO ingest_batches (batch_id, producer, accepted, lines, refused)"
            " VALUES ('b-tmax', 'p', 1, '{1}', '[]')"
        )
        conn.execute("INSERT INTO batch_progress VALUES ('b-tmax', B'1')")
        conn.execute(
            "INSERT INTO groupements (code, nom, communes_total) VALUES ('scot', 'SCoT', 2)"
        )
        conn.execute(
            "INSERT INTO groupement_communes VALUES ('scot', %s), ('scot', %s)",
            (c["keep"], c["merged"]),
        )
        cursor = conn.execute("SELECT max(change_seq) FROM aggregate_change_log").fetchone()[0]
    before = aggregates(database_url)
    engine = db.make_engine(database_url)
    with engine.begin() as conn:  # as `itte migrate` of the next release
        db.load_referential(conn, edition)
    engine.dispose()

    # The running aggregator of the release before may not write any more.
    with pytest.raises(Fatal, match=r"moved to the edition 2027 of the map \(test-2027\)"):
        old.apply([obs(c["keep"], "11", 2, annee=2026, rid="k2")])
    old.close()
    with pytest.raises(Fatal, match="holds the referential test-2027"):
        bring_onto(database_url, REF)

    placed = bring_onto(database_url, edition)
    assert placed is not None and placed.earlier == REF.version
    assert placed.counts["observations_moved"] == 1
    assert placed.counts["dead_letters"] == 2  # the max of a part, the EPCI gone
    assert bring_onto(database_url, edition) is None  # once
    assert check(database_url).differences == []

    after = aggregates(database_url)
    pop = ("pop", "total", 2026)
    assert after[(*pop, "commune", c["keep"])][:2] == (Decimal(15), 2)
    # The merged commune's row: emptied under a new number, so its subscribers
    # are told it is gone (numbered below with the others).
    assert after[(*pop, "commune", c["merged"])] == (Decimal(0), 0, None)
    assert after[(*pop, "epci", c["e3"])][:2] == (Decimal(7), 1)  # the moved commune
    assert (*pop, "epci", c["e2"]) not in after or after[(*pop, "epci", c["e2"])][1] == 0
    # The EPCI gone: its row empty (as good as none: served nowhere), said once.
    assert after[(*pop, "epci", c["gone"])] == (Decimal(0), 0, None)
    assert after[(*pop, "france", "FR")][:2] == (Decimal(22), 2)  # two communes now
    with psycopg.connect(database_url) as conn:
        letters = {
            r[0]: r[1:]
            for r in conn.execute("SELECT record_id, reason, detail, payload FROM dead_letters")
        }
        numbered = conn.execute(
            f"SELECT {db.AGGREGATE_KEY} FROM aggregate_change_log WHERE change_seq > %s",
            (cursor,),
        ).fetchall()
        grouped = conn.execute(
            "SELECT commune FROM groupement_communes WHERE groupement = 'scot'"
        ).fetchall()
        total = conn.execute("SELECT communes_total FROM groupements").fetchone()[0]
    t = letters[PUSHED]
    assert t[0] == "ambiguous_code" and "max value" in t[1]
    assert "pii" not in t[2] and t[2]["valeur"] == "30"
    # Its batch says so: in the dead letters, at its position, no longer in the results.
    status = PostgresBatchLedger(database_url).progress("p", "b-tmax")
    assert status is not None and status.clean == 0
    assert [(x.position, x.reason) for x in status.letters] == [(1, "ambiguous_code")]
    assert letters["g"][0] == "unknown_code" and c["gone"] in letters["g"][1]
    # Every aggregate that moved, numbered once; nothing else.
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert sorted(map(tuple, numbered)) == sorted(moved)
    assert grouped == [(c["keep"],)] and total == 1

    # The next release's aggregator: a value keyed on the merged commune, as
    # a cleaner of the release before placed it, lands on the whole.
    new = AggregateStore(database_url, edition, rules)
    result = new.apply([obs(c["merged"], "6", 2, annee=2026, rid="m2")])
    assert result.unplaced == []
    new.close()
    assert aggregates(database_url)[(*pop, "commune", c["keep"])][:2] == (Decimal(16), 2)
    assert check(database_url).differences == []


def test_where_says_why_a_code_has_no_place() -> None:
    edition, c = next_edition()
    assert where(c["merged"], edition) == (c["merged"], c["keep"], None, None)
    assert where(c["keep"], edition) == (c["keep"], c["keep"], None, None)
    _, commune, reason, detail = where("99999", edition)
    assert (commune, reason) == (None, "unknown_code") and "test-2027" in (detail or "")
