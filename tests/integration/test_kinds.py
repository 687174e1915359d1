"""Every aggregation kind against the real Postgres: the incremental store and
the independent SQL recomputation (`itte check`) must agree, and the API must
serve each kind's value."""

from __future__ import annotations

import itertools
import random

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import catalogue
from common.referential import ancestors, load
from services.aggregator.rules import AggregationRules
from services.aggregator.verify import check, rebuild
from services.api.app import create_app, read_only_engine
from tests import oracle
from tests.conftest import TEST_CATALOGUE
from tests.integration.test_change_numbers import assert_log_matches
from tests.strategies import values_within_bounds

COMMUNES = ["74010", "74042", "74164", "01010", "74029", "22016", "33063"]
KINDS = ["pop", "co2", "equipee", "tmax", "tmin", "part", "local"]
# Each example writes three years of its own, then skips two: a denominator
# stands in for up to two later years (co2_par_hab_repli), never another's.
SPAN = 3
YEARS = itertools.count(1950, SPAN + 2)
ADDITIVE = {"pop", "co2", "equipee"}
REF = load()
ANCESTORS = ancestors(REF)
RULES = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))


def api(database_url: str) -> TestClient:
    return TestClient(create_app(read_only_engine(database_url, pool_size=1)))


def one(client: TestClient, **params: object) -> dict:
    [row] = client.get("/indicateurs", params=params).json()
    return row


def test_ratio_weighted_mean_max_and_count_as_served(store, obs, database_url) -> None:
    store.apply(
        [
            obs("74010", "100", indicateur="co2"),
            obs("74010", "10", indicateur="pop"),
            obs("74042", "30", indicateur="co2"),
            obs("74042", "90", indicateur="pop"),
            obs("74010", "10", indicateur="part"),
            obs("74042", "40", indicateur="part"),
            obs("74010", "31", indicateur="tmax"),
            obs("74042", "28", indicateur="tmax"),
            obs("74010", "1", indicateur="equipee"),
            obs("74042", "0", indicateur="equipee"),
        ]
    )
    store.apply([obs("74010", "25", 2, indicateur="tmax")])  # the maximum corrected down
    client = api(database_url)
    ratio = one(client, departement="74", indicateur="co2_par_hab")
    assert (ratio["valeur"], ratio["agregation"], ratio["communes_renseignees"]) == (
        1300,
        "ratio",
        2,
    )  # (100 + 30) / (10 + 90) × 1000, never a mean of 10000 and 333
    assert one(client, departement="74", indicateur="part")["valeur"] == 37  # (100+3600)/100
    assert one(client, commune="74042", indicateur="part")["valeur"] == 40
    assert one(client, departement="74", indicateur="tmax")["valeur"] == 28
    assert one(client, departement="74", indicateur="equipee")["valeur"] == 1
    assert one(client, commune="74042", indicateur="co2_par_hab")["valeur"] == pytest.approx(
        30 / 90 * 1000
    )
    assert check(database_url).differences == []


def test_catalogue_is_served(database_url) -> None:
    catalogue = {i["id"]: i for i in api(database_url).get("/indicateurs/catalogue").json()}
    assert catalogue["co2_par_hab"]["agregation"] == "ratio"
    assert catalogue["co2_par_hab"]["numerateur"] == "co2"
    assert catalogue["part"]["poids"] == "pop"


events = st.lists(
    st.tuples(
        st.sampled_from([*COMMUNES, "01340"]),  # 01340: a former code of 01015 (merged)
        st.one_of(
            st.none(),
            st.decimals(-500, 500, places=2, allow_nan=False),
            values_within_bounds,
        ),
        st.integers(1, 4),
        st.sampled_from(KINDS),
        st.integers(0, SPAN - 1),  # year within the example's
    ),
    min_size=1,
    max_size=40,
).map(lambda e: [x for x in e if x[0] != "01340" or x[3] in ADDITIVE])  # as the cleaner does


def history(obs, drawn, annee: int) -> list:
    """The clean records of drawn ``events`` from year ``annee`` (a former code
    placed on its commune, as the cleaner does; twelve record ids recurring)."""
    return [
        obs(
            REF.former_codes.get(c, c),
            None if v is None else str(v),
            version,
            source=c,
            indicateur=ind,
            annee=annee + later,
            rid=f"b:{i % 12:06d}",
        )
        for i, (c, v, version, ind, later) in enumerate(drawn)
    ]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events, st.integers(1, 6), st.randoms(use_true_random=False))
def test_random_histories_stay_exact_in_postgres(store, obs, database_url, drawn, batch, rng):
    annee = next(YEARS)  # each example writes its own year
    records = history(obs, drawn, annee)
    replay = records + rng.sample(records, len(records) // 2)
    batches = [replay[start : start + batch] for start in range(0, len(replay), batch)]
    for part in batches:
        store.apply(part)
    assert check(database_url).differences == []
    truth = oracle.aggregates(oracle.winners(batches).values(), ANCESTORS.__getitem__, RULES)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, numerateur,"
            " denominateur, replis, repli_annees, repli_carres FROM aggregates"
            " WHERE annee BETWEEN %s AND %s",
            (annee, annee + SPAN - 1),
        )
        held = {tuple(r[:5]): tuple(r[5:]) for r in rows if any(r[5:])}
    assert held == truth
    assert_log_matches(database_url)  # extremes settled and recomputed logged too


def test_rebuild_of_a_live_table_changes_nothing_when_exact(store, obs, database_url) -> None:
    rng = random.Random(7)
    store.apply(
        [
            obs(
                rng.choice(COMMUNES),
                str(rng.randint(0, 99)),
                rng.randint(1, 3),
                indicateur=rng.choice(KINDS),
                rid=str(i),
            )
            for i in range(200)
        ]
    )
    assert set(rebuild(database_url).values()) == {0}  # every statement: no row
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM aggregates").fetchone()[0] > 20
