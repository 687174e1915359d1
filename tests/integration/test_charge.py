"""An edition of the map no release ships, loaded while the services run
(services/aggregator/charge.py, ``itte referentiel charger``): the stored
values placed on it and every aggregate that moves recomputed and numbered
once, the running aggregators stopped, the edition before served as an
older one exactly as it was served when current, and what cannot be taken
refused with nothing changed. The edition is made from the shipped one
(tests/editions.py)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from common import db, migrations, referential
from services.aggregator.charge import Refused, charge
from services.aggregator.ports import EditionMoved
from services.aggregator.verify import check
from tests.editions import files_of, next_edition
from tests.integration.test_editions import served
from tests.integration.test_kinds import api
from tests.integration.test_placement import aggregates

EDITION, C = next_edition()
FILES = files_of(EDITION)
LEVELS = ("commune", "epci", "departement", "region", "france")


def shown(client, **params) -> dict[str, tuple]:
    """Each territory's value and coverage, as served."""
    return {
        code: (Decimal(r["valeur"]), r["communes_renseignees"], r["communes_total"])
        for code, r in served(client, indicateur="pop", annee=2026, **params).items()
    }


def held(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT millesime, version, placed_version FROM referential_meta"
        ).fetchone()


def test_a_loaded_edition_moves_the_stored_values_and_keeps_the_ones_before(
    store, obs, database_url
) -> None:
    store.apply(
        [
            obs(C["keep"], "10", annee=2026, rid="k"),
            obs(C["merged"], "5", annee=2026, rid="m"),
            obs(C["moved"], "7", annee=2026, rid="v"),
            obs(C["a"], "3", annee=2026, rid="a"),
            obs(C["b"], "4", annee=2026, rid="b"),
            obs("33063", "100", annee=2026, rid="bordeaux"),  # far from it all
        ]
    )
    client = api(database_url)
    old_map = {n: shown(client, niveau=n, departement="01") for n in LEVELS[:3]}
    old_map["france"] = shown(client)
    before = aggregates(database_url)
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute("SELECT max(change_seq) FROM aggregate_change_log").fetchone()[0]

    charged = charge(database_url, EDITION, FILES)

    assert charged.placed is not None and charged.placed.earlier == referential.load().version
    assert charged.placed.counts["observations_moved"] == 3  # merged, a and b
    assert charged.placed.counts["dead_letters"] == 0  # sums all
    assert held(database_url) == (2027, "test-2027", "test-2027")
    assert check(database_url).differences == []
    after = aggregates(database_url)
    pop = ("pop", "total", 2026)
    assert after[(*pop, "commune", C["born"])][:2] == (Decimal(7), 2)
    assert after[(*pop, "commune", C["a"])][:2] == (Decimal(0), 0)
    assert after[(*pop, "commune", C["keep"])][:2] == (Decimal(15), 2)
    with psycopg.connect(database_url) as conn:
        numbered = conn.execute(
            f"SELECT {db.AGGREGATE_KEY} FROM aggregate_change_log WHERE change_seq > %s",
            (cursor,),
        ).fetchall()
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert moved and sorted(map(tuple, numbered)) == sorted(moved)  # each once, nothing else
    assert not any(key[4] == "33063" for key in moved)

    # What the services read at their start: the loaded edition, from its files.
    engine = db.make_engine(database_url)
    with engine.connect() as conn:
        current = db.current_referential(conn)
    assert (current.millesime, current.version) == (2027, "test-2027")
    assert current.communes == EDITION.communes
    # The aggregator still on the edition before writes nothing, and is
    # handed the new one (its handlers then do the batch again on it).
    with pytest.raises(EditionMoved, match="moved to the edition 2027 of the map") as moved:
        store.apply([obs(C["born"], "1", annee=2026, rid="n")])
    assert (moved.value.edition.millesime, moved.value.edition.version) == (2027, "test-2027")
    assert moved.value.edition.communes == EDITION.communes

    # Served on 2027 as current, on 2026 as an older edition exactly as before.
    now = shown(client, niveau="commune", departement="01")
    assert now[C["born"]] == (Decimal(7), 1, 1) and C["a"] not in now
    rows = served(client, indicateur="pop", annee=2026, niveau="commune", departement="01")
    assert {r["millesime"] for r in rows.values()} == {2027}
    for niveau in LEVELS[:3]:
        assert shown(client, niveau=niveau, departement="01", millesime=2026) == old_map[niveau]
    assert shown(client, millesime=2026) == old_map["france"]
    assert shown(client, millesime=2027) == shown(client)
    found = client.get("/territoires", params={"q": "Val-Nouveau"}).json()
    assert {"niveau": "commune", "code": C["born"], "nom": "Val-Nouveau"} in found
    assert client.get("/territoires", params={"q": "Val-Nouveau", "millesime": 2026}).json() == []
    refused = client.get("/territoires", params={"q": "x", "millesime": 2028})
    assert refused.status_code == 422 and "2026, 2027" in refused.text
    fiche = client.get(f"/territoires/departement/01?millesime={2026}")
    assert fiche.status_code == 422 and "current edition of the map only (2027)" in fiche.text

    # On it, the same store places a value keyed on the new code.
    store.use(moved.value.edition)
    assert store.apply([obs(C["born"], "1", annee=2026, rid="n")]).unplaced == []
    assert shown(client, niveau="commune", departement="01")[C["born"]][0] == Decimal(8)
    assert check(database_url).differences == []

    # `itte migrate` of this release afterwards: the map does not go back.
    migrations.upgrade(engine)
    with engine.connect() as conn:
        assert db.current_referential(conn).millesime == 2027
        editions = conn.execute(db.editions.select().order_by(db.editions.c.millesime)).all()
    engine.dispose()
    assert [e.millesime for e in editions] == [*referential.EDITIONS, 2027]
    assert held(database_url) == (2027, "test-2027", "test-2027")

    # Loaded already: nothing to do (the command then publishes again).
    assert charge(database_url, EDITION, FILES).placed is None
    for older in (2026, 2019):
        edition, _ = next_edition(older)
        with pytest.raises(Refused, match="ships with this release"):
            charge(database_url, edition, files_of(edition))
    # A later one still: 2027 becomes an older edition, read from its files.
    later, _ = next_edition(2028)
    assert charge(database_url, later, files_of(later)).placed is not None
    with pytest.raises(Refused, match="on the edition 2028 of the map: 2027 is older"):
        charge(database_url, EDITION, FILES)
    assert held(database_url) == (2028, "test-2028", "test-2028")
    with psycopg.connect(database_url) as conn:
        kept = conn.execute(
            "SELECT millesime, count(*) FROM referential_files GROUP BY 1 ORDER BY 1"
        ).fetchall()
        older = conn.execute("SELECT array_agg(millesime ORDER BY 1) FROM editions").fetchone()
        passages = conn.execute(
            "SELECT DISTINCT millesime FROM edition_passage ORDER BY 1"
        ).fetchall()
    assert kept == [(2027, len(referential.FILES)), (2028, len(referential.FILES))]
    assert older[0] == [*referential.EDITIONS, 2027, 2028]
    assert [p[0] for p in passages] == [*referential.EDITIONS, 2027]  # every one but the current
    assert shown(client, millesime=2027) == shown(client)  # 2028 moved nothing more
