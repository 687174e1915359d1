"""A ratio whose denominator may be of an earlier year (catalogue
``repli_denominateur``), in Postgres: the incremental store, the independent
recomputation (`itte check`), the older edition's query and a grouping's all
agree with tests/oracle.py, and every row says which year it divided by."""

from __future__ import annotations

import io
import itertools
from csv import DictReader
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.aggregator.verify import check, rebuild
from services.api import groupements as groupings
from tests import oracle
from tests.integration.test_editions import EMPTY, compared, served
from tests.integration.test_groupements import denominator_year
from tests.integration.test_kinds import ANCESTORS, REF, RULES, api

RATIO = "co2_par_hab_repli"  # co2 / pop × 1000, pop of up to 2 years before
COMMUNES = ["74010", "74042", "74164", "33063"]  # two EPCIs of 74, and Bordeaux
YEARS = range(2021, 2026)
KEPT = (
    "SELECT indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, numerateur, "
    "denominateur, replis, repli_annees, repli_carres FROM aggregates"
)


def held(database_url: str) -> dict:
    with psycopg.connect(database_url) as conn:
        return {tuple(r[:5]): tuple(r[5:]) for r in conn.execute(KEPT) if any(r[5:])}


def test_each_row_says_the_year_it_divided_by(store, obs, database_url) -> None:
    store.apply(
        [
            obs("74010", "100", indicateur="co2", annee=2026, rid="a"),
            obs("74010", "10", indicateur="pop", annee=2024, rid="f"),  # two years back
            obs("74010", "20", indicateur="pop", annee=2025, rid="b"),  # one: the nearer
            obs("74042", "60", indicateur="co2", annee=2026, rid="c"),
            obs("74042", "30", indicateur="pop", annee=2026, rid="d"),  # its own year
        ]
    )
    client = api(database_url)
    params = {"indicateur": RATIO, "annee": 2026, "exact": "true"}
    [row] = client.get("/indicateurs", params={**params, "departement": "74"}).json()
    assert (Decimal(row["valeur"]), row["annee_denominateur"], row["communes_repli"]) == (
        Decimal(160) / 50 * 1000,
        None,  # one commune divided by 2025's, the other by 2026's
        1,
    )
    [commune] = client.get("/indicateurs", params={**params, "commune": "74010"}).json()
    assert (
        Decimal(commune["valeur"]),
        commune["annee_denominateur"],
        commune["communes_repli"],
    ) == (
        5000,
        2025,
        1,
    )
    [older] = client.get(
        "/indicateurs", params={**params, "commune": "74010", "millesime": 2025}
    ).json()
    assert (Decimal(older["valeur"]), older["annee_denominateur"]) == (5000, 2025)
    [same] = client.get("/indicateurs", params={**params, "commune": "74042"}).json()
    assert (same["annee_denominateur"], same["communes_repli"]) == (2026, 0)
    [pop] = client.get(
        "/indicateurs", params={"indicateur": "pop", "annee": 2025, "commune": "74010"}
    ).json()
    assert (pop["annee_denominateur"], pop["communes_repli"]) == (None, None)  # not a ratio
    # The same-year ratio of the same terms pairs 74042 only.
    [strict] = client.get(
        "/indicateurs", params={**params, "indicateur": "co2_par_hab", "departement": "74"}
    ).json()
    assert (Decimal(strict["valeur"]), strict["annee_denominateur"], strict["communes_repli"]) == (
        2000,
        2026,
        0,
    )
    csv = client.get("/indicateurs", params={**params, "commune": "74010", "format": "csv"})
    [fields] = list(DictReader(io.StringIO(csv.text)))
    assert (fields["annee_denominateur"], fields["communes_repli"]) == ("2025", "1")
    # 74010's own year's population arrives: both divide by 2026's now.
    store.apply([obs("74010", "25", indicateur="pop", annee=2026, rid="e")])
    [row] = client.get("/indicateurs", params={**params, "departement": "74"}).json()
    assert abs(Decimal(row["valeur"]) - Decimal(160) / 55 * 1000) < Decimal("1e-12")
    assert (row["annee_denominateur"], row["communes_repli"]) == (2026, 0)
    assert check(database_url).differences == []


def test_a_tampered_fallback_is_found_and_rebuilt(store, obs, database_url) -> None:
    store.apply(
        [
            obs("33063", "9", indicateur="co2", annee=2024, rid="a"),
            obs("33063", "3", indicateur="pop", annee=2022, rid="b"),
        ]
    )
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE aggregates SET repli_annees = 1, repli_carres = 1"
            " WHERE indicateur = %s AND niveau = 'departement'",
            (RATIO,),
        )
    [(key, running, truth)] = check(database_url).differences
    assert key == (RATIO, "total", 2024, "departement", "33")
    assert (running[5:], truth[5:]) == ((1, 1), (2, 4))
    assert rebuild(database_url)["updated"] == 1
    assert check(database_url).differences == []
    [row] = (
        api(database_url)
        .get("/indicateurs", params={"indicateur": RATIO, "annee": 2024, "departement": "33"})
        .json()
    )
    assert (row["valeur"], row["annee_denominateur"], row["communes_repli"]) == (3000, 2022, 1)


# Dense histories of the ratio's two terms: a value, a secret or nothing in
# every cell of communes × years, then corrections, in any order and
# batching: fallbacks of one and two years, nearer ones arriving later,
# populations made secret.
CELLS = list(itertools.product(COMMUNES, YEARS, ["co2", "pop"]))
ABSENT = "absent"
amounts = st.decimals(0, 1000, places=1, allow_nan=False)
grids = st.lists(
    st.one_of(st.just(ABSENT), st.none(), amounts, amounts),
    min_size=len(CELLS),
    max_size=len(CELLS),
)
corrections = st.lists(
    st.tuples(st.sampled_from(CELLS), st.one_of(st.none(), amounts), st.integers(2, 3)),
    max_size=15,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(grids, corrections, st.integers(1, 8), st.randoms(use_true_random=False))
def test_fallbacks_agree_everywhere(store, obs, database_url, grid, corrected, batch, rng) -> None:
    drawn = [(*cell, v, 1) for cell, v in zip(CELLS, grid, strict=True) if v != ABSENT]
    drawn += [(*cell, v, version) for cell, v, version in corrected]
    rng.shuffle(drawn)
    with psycopg.connect(database_url) as conn:  # each example from empty tables
        conn.execute(EMPTY)
    records = [
        obs(c, None if v is None else str(v), version, indicateur=ind, annee=y, rid=f"{i}")
        for i, (c, y, ind, v, version) in enumerate(drawn)
    ]
    batches = [records[start : start + batch] for start in range(0, len(records), batch)]
    for part in batches:
        store.apply(part)
    assert check(database_url).differences == []
    kept = oracle.winners(batches).values()
    assert held(database_url) == oracle.aggregates(kept, ANCESTORS.__getitem__, RULES)
    client = api(database_url)
    for annee, niveau in itertools.product(YEARS, ("commune", "epci", "departement")):
        params = {"indicateur": RATIO, "annee": annee, "niveau": niveau}
        today, older = served(client, **params), served(client, millesime=2025, **params)
        assert {c: compared(r) for c, r in today.items() if r["communes_renseignees"]} == {
            c: compared(r) for c, r in older.items() if r["communes_renseignees"]
        }, drawn
    groupings.store(database_url, groupings.groupement("g", "G", COMMUNES, REF))
    truth = oracle.aggregates(kept, lambda c: [("groupement", "g")], RULES)
    expected = {
        y: denominator_year("ratio", y, row)
        for (i, _, y, niveau, _), row in truth.items()
        if i == RATIO and niveau == "groupement" and row[1] > 0
    }
    answer = client.get("/groupements/g/indicateurs", params={"indicateur": RATIO}).json()
    assert {r["annee"]: (r["annee_denominateur"], r["communes_repli"]) for r in answer} == expected
