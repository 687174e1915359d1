"""Values published for a territory above the commune (issue #29), through
the aggregator's store and the API on real Postgres: served beside the
aggregated value by the indicator's priority, never added into anything,
under the observations' version and ownership rules, published as changes,
checked and rebuilt by `itte check` / `itte rebuild`; and, over any mix of
commune and territory values in any batches, nothing counted twice."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.referential import FRANCE, ancestors, load
from schemas.aggregates import AggregateChange
from schemas.clean import CleanObservation
from services.aggregator.verify import check, rebuild
from services.api.app import create_app, read_only_engine

REF = load()
GRAND_ANNECY = "200066793"
MEMBERS = sorted(c.code for c in REF.communes.values() if c.epci == GRAND_ANNECY)[:3]


def published(
    indicateur: str, niveau: str, code: str, valeur: str | None, version: int = 1, **more: Any
) -> CleanObservation:
    return CleanObservation(
        record_id=more.pop("rid", f"p-{niveau}-{code}-{version}"),
        indicateur=indicateur,
        annee=more.pop("annee", 2024),
        niveau=niveau,
        commune=code,
        commune_source=code,
        valeur=None if valeur is None else Decimal(valeur),
        marqueur="s" if valeur is None else None,
        version=version,
        **more,
    )


def rows(api: TestClient, **params: str) -> dict[tuple[str, str], dict[str, Any]]:
    answer = api.get("/indicateurs", params={**params, "exact": "true"})
    assert answer.status_code == 200, answer.text
    return {(r["niveau"], r["code"]): r for r in answer.json()}


def test_a_published_value_is_served_beside_the_aggregated_one(store, obs, database_url) -> None:
    store.apply([obs(c, "10") for c in MEMBERS] + [obs(c, "7", indicateur="co2") for c in MEMBERS])
    applied = store.apply(
        [
            published("pop", "epci", GRAND_ANNECY, "1000.5"),
            published("pop", "departement", "74", "5000"),
            published("co2", "epci", GRAND_ANNECY, "99"),  # co2: the aggregated value first
            published("co2", "epci", "200000172", None),  # secret, and no commune reported
        ]
    )
    assert applied.written == 4 and applied.foreign == []
    api = TestClient(create_app(read_only_engine(database_url, 2)))
    epci = rows(api, epci=GRAND_ANNECY, indicateur="pop")[("epci", GRAND_ANNECY)]
    assert (epci["valeur"], epci["origine"], epci["valeur_publiee"]) == (
        "1000.5",
        "publiee",
        "1000.5",
    )
    assert epci["communes_renseignees"] == epci["communes_total"] and epci["complet"]
    # Never added into anything: the région and France hold the communes' sum.
    for niveau, code in (("region", "84"), ("france", FRANCE)):
        [row] = rows(
            api, **({niveau: code} if niveau != "france" else {}), indicateur="pop"
        ).values()
        assert (row["valeur"], row["origine"], row["valeur_publiee"]) == ("30", "agregee", None)
    [dep] = rows(api, departement="74", indicateur="pop").values()
    assert (dep["valeur"], dep["origine"]) == ("5000", "publiee")
    co2 = rows(api, niveau="epci", departement="74", indicateur="co2")
    assert co2[("epci", GRAND_ANNECY)]["valeur"] == "21"  # priorite = agregee
    assert co2[("epci", GRAND_ANNECY)]["origine"] == "agregee"
    assert co2[("epci", GRAND_ANNECY)]["valeur_publiee"] == "99"
    faucigny = co2[("epci", "200000172")]  # nothing aggregated: the published, secret
    assert (faucigny["valeur"], faucigny["origine"], faucigny["valeur_publiee"]) == (
        None,
        "publiee",
        None,
    )
    # Each change published says the same as the API.
    messages = {c.key: AggregateChange.model_validate_json(c.message) for c in applied.changes}
    message = messages[f"pop|total|2024|epci|{GRAND_ANNECY}"]
    assert (message.origine, message.valeur, message.valeur_publiee) == (
        "publiee",
        Decimal("1000.5"),
        Decimal("1000.5"),
    )
    assert check(database_url).differences == []


def test_published_values_keep_the_version_and_ownership_rules(store, database_url) -> None:
    first = store.apply([published("pop", "epci", GRAND_ANNECY, "5", version=2, producteur="a")])
    assert first.written == 1
    older = store.apply([published("pop", "epci", GRAND_ANNECY, "4", version=1, producteur="a")])
    assert (older.written, older.stale, older.changes) == (0, 1, [])
    other = published("pop", "epci", GRAND_ANNECY, "6", version=9, producteur="b")
    assert store.apply([other]).foreign == [other]
    in_one_batch = [
        published("pop", "epci", GRAND_ANNECY, "7", version=3, producteur="a", rid="r3"),
        published("pop", "epci", GRAND_ANNECY, "8", version=4, producteur="a", rid="r4"),
    ]
    assert store.apply(list(reversed(in_one_batch))).written == 1
    api = TestClient(create_app(read_only_engine(database_url, 2)))
    [row] = rows(api, epci=GRAND_ANNECY, indicateur="pop").values()
    assert row["valeur"] == "8"


def test_check_finds_and_rebuild_mends_a_published_value(store, database_url) -> None:
    store.apply([published("pop", "region", "84", "12")])
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE aggregates SET valeur_publiee = 13 WHERE niveau = 'region'")
        conn.execute("UPDATE aggregates SET publiee = false WHERE niveau = 'region'")
    [(key, running, stored)] = check(database_url).differences
    assert key == ("pop", "total", 2024, "region", "84") and running is None
    assert stored == ("publiee", Decimal(12))
    assert rebuild(database_url)["published"] == 1
    assert check(database_url).differences == []
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT valeur_publiee, publiee FROM aggregates WHERE niveau = 'region'"
        ).fetchone() == (Decimal(12), True)


# ---------------------------------------------------------------- property

PLACES = ["74002", "74004", "74001", "73001"]  # three EPCI, two départements
ABOVE = [
    *sorted({t for c in PLACES for t in ancestors(REF)[c] if t[0] != "france"}),
    ("france", FRANCE),
]
years = itertools.count(1950)

commune_values = st.tuples(
    st.just("commune"), st.sampled_from(PLACES), st.integers(-50, 50), st.integers(1, 4)
)
territory_values = st.tuples(
    st.just("above"), st.sampled_from(range(len(ABOVE))), st.integers(-50, 50), st.integers(1, 4)
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(st.one_of(commune_values, territory_values), min_size=1, max_size=14),
    cuts=st.lists(st.integers(1, 14), max_size=4),
)
def test_commune_and_territory_values_mixed_in_any_batches_count_once(
    store, database_url, values: list[tuple[str, Any, int, int]], cuts: list[int]
) -> None:
    annee = next(years)
    records = []
    for i, (kind, where, value, version) in enumerate(values):
        niveau, code = ("commune", where) if kind == "commune" else ABOVE[where]
        records.append(
            CleanObservation(
                record_id=f"y{annee}:{i:06d}",
                indicateur="pop",
                annee=annee,
                niveau=niveau,
                commune=code,
                commune_source=code,
                valeur=Decimal(value),
                version=version,
            )
        )
    bounds = sorted({0, len(records), *(c for c in cuts if c < len(records))})
    for start, end in itertools.pairwise(bounds):
        store.apply(records[start:end])

    # The oracle: of each key, the highest (version, record) wins; communes
    # summed up by the referential, published values as they are.
    final: dict[tuple[str, str], CleanObservation] = {}
    for r in records:
        key = (r.niveau, r.commune)
        if key not in final or r.order > final[key].order:
            final[key] = r
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    reported: dict[tuple[str, str], int] = defaultdict(int)
    for (niveau, code), r in final.items():
        if niveau == "commune":
            for territory in [("commune", code), *ancestors(REF)[code]]:
                sums[territory] += r.valeur or 0
                reported[territory] += 1
    publishedv = {k: r.valeur for k, r in final.items() if k[0] != "commune"}

    with psycopg.connect(database_url) as conn:
        stored = {
            (n, c): (v, nb, publiee, vp)
            for n, c, v, nb, publiee, vp in conn.execute(
                "SELECT niveau, code, valeur, nb_valeurs, publiee, valeur_publiee"
                " FROM aggregates WHERE indicateur = 'pop' AND annee = %s",
                (annee,),
            )
        }
    expected = {
        key: (
            sums.get(key, Decimal(0)),
            reported.get(key, 0),
            key in publishedv,
            publishedv.get(key),
        )
        for key in sums.keys() | publishedv.keys()
    }
    assert stored == expected
    assert json.dumps(check(database_url).differences, default=str) == "[]"
