"""Comparing territories on the real referential, through the API over
Postgres: typologies recover groups built into the data, ranks and
percentiles agree with a direct count, peers are the nearest, and national
objectives are brought to a commune as computed by hand."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from schemas.clean import CleanObservation
from services.aggregator.store import AggregateStore
from services.api import comparisons
from services.api.app import create_app, read_only_engine
from tests.kinds import GIRONDE_EPCI, MEMBERS, commune_values

YEAR = 2024
HALF_REPORTED = "200066793"  # the Grand Annecy: one commune of 34 reports


@pytest.fixture
def api(
    store: AggregateStore, obs: Callable[..., CleanObservation], database_url: str
) -> Iterator[TestClient]:
    """The Gironde EPCI of three kinds (tests/kinds.py); one commune of the
    Grand Annecy reports too."""
    records = [
        obs(commune, str(value), indicateur=indicateur, rid=f"{indicateur}{commune}")
        for commune, indicateur, value in commune_values()
    ]
    records.append(obs("74010", "7", indicateur="co2", rid="annecy"))
    records.append(obs("74010", "12", indicateur="tmax", rid="annecy-t"))
    store.apply(records)
    with TestClient(create_app(read_only_engine(database_url, 2))) as client:
        yield client


def epci_values(api: TestClient, indicateur: str) -> dict[str, Decimal]:
    rows = api.get(
        "/indicateurs",
        params={"niveau": "epci", "indicateur": indicateur, "annee": YEAR, "exact": "true",
                "limit": 10_000},
    ).json()  # fmt: skip
    return {r["code"]: Decimal(r["valeur"]) for r in rows if r["complet"]}


def test_the_typology_recovers_the_kinds_built_into_the_data(api: TestClient) -> None:
    params = {"niveau": "epci", "indicateurs": "co2,tmax", "annee": YEAR}
    answer = api.get("/typologies", params=params)
    assert answer.status_code == 200, answer.text
    typologie = answer.json()
    assert typologie["k"] == 3 and typologie["k_choisi"] is True  # chosen by silhouette
    found = {frozenset(m["code"] for m in g["membres"]) for g in typologie["groupes"]}
    built = {frozenset(e for i, e in enumerate(GIRONDE_EPCI) if i % 3 == kind) for kind in range(3)}
    assert found == built
    # Each centre is its members' mean, in the indicators' own units.
    co2, tmax = epci_values(api, "co2"), epci_values(api, "tmax")
    for group in typologie["groupes"]:
        codes = [m["code"] for m in group["membres"]]
        assert group["taille"] == len(codes)
        assert group["centre"]["co2"] == pytest.approx(
            float(sum(co2[c] for c in codes) / len(codes))
        )
        assert group["centre"]["tmax"] == pytest.approx(
            float(sum(tmax[c] for c in codes) / len(codes))
        )
    # The Grand Annecy is not complete: listed apart, with why.
    assert typologie["exclus"] == [
        {"code": HALF_REPORTED, "nom": "CA du Grand Annecy",
         "raison": "co2: 1 of 34 communes reported; tmax: 1 of 34 communes reported"}
    ]  # fmt: skip
    # Deterministic: the same values give the same answer, k given or chosen.
    assert api.get("/typologies", params=params).json() == typologie
    given_k = api.get("/typologies", params={**params, "k": 3}).json()
    assert given_k["groupes"] == typologie["groupes"] and given_k["k_choisi"] is False
    assert len(api.get("/typologies", params={**params, "k": 5}).json()["groupes"]) == 5


def test_a_typology_opens_in_excel_one_line_per_territory(api: TestClient) -> None:
    params = {"niveau": "epci", "indicateurs": "co2,tmax", "annee": YEAR}
    groups = {
        m["code"]: g["groupe"]
        for g in api.get("/typologies", params=params).json()["groupes"]
        for m in g["membres"]
    }
    answer = api.get("/typologies", params={**params, "format": "csv-fr"})
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.content.decode("utf-8").removeprefix("\ufeff").splitlines()
    rows = list(csv.DictReader(lines, delimiter=";"))
    assert lines[0] == "code;nom;groupe;co2;tmax;raison"
    assert {r["code"]: int(r["groupe"]) for r in rows if r["groupe"]} == groups
    co2 = epci_values(api, "co2")
    for row in rows[:3]:  # exact, with a decimal comma
        assert Decimal(row["co2"].replace(",", ".")) == co2[row["code"]]
    [left_out] = [r for r in rows if not r["groupe"]]
    assert (left_out["code"], left_out["co2"]) == (HALF_REPORTED, "")
    assert left_out["raison"].startswith("co2: 1 of 34 communes reported")


def test_ranks_and_percentiles_agree_with_a_direct_count(api: TestClient) -> None:
    co2, tmax = epci_values(api, "co2"), epci_values(api, "tmax")
    for epci in GIRONDE_EPCI[:6]:
        answer = api.get(
            f"/territoires/epci/{epci}/comparaison",
            params={"indicateurs": "co2,tmax", "annee": YEAR, "pairs": 3},
        ).json()
        rangs = {r["indicateur"]: r for r in answer["rangs"]}
        # co2: lower is better (sens = baisse); tmax: higher is better.
        for indicateur, values, better in (
            ("co2", co2, lambda a, b: a < b),
            ("tmax", tmax, lambda a, b: a > b),
        ):
            mine = values[epci]
            others = [v for c, v in values.items() if c != epci]
            r = rangs[indicateur]
            assert r["sur"] == len(values) == len(GIRONDE_EPCI)
            assert r["rang"] == 1 + sum(1 for v in others if better(v, mine))
            assert r["meilleur_que"] == pytest.approx(
                sum(1 for v in others if better(mine, v)) / len(others)
            )
        # Its peers are of its own kind, nearest first.
        kind = GIRONDE_EPCI.index(epci) % 3
        assert answer["groupe"]["taille"] == sum(
            1 for i in range(len(GIRONDE_EPCI)) if i % 3 == kind
        )
        assert [GIRONDE_EPCI.index(p["code"]) % 3 for p in answer["pairs"]] == [kind] * 3
        distances = [p["distance"] for p in answer["pairs"]]
        assert distances == sorted(distances)
        # The ranks alone (the web page's): the same, without a typology.
        alone = api.get(
            f"/territoires/epci/{epci}/comparaison",
            params={"indicateurs": "co2,tmax", "annee": YEAR, "grouper": "false"},
        ).json()
        assert alone["rangs"] == answer["rangs"] and alone["groupe"] is None
        assert alone["raison"] == "no typology asked"


def test_a_territory_left_out_is_told_why_and_still_ranked_where_it_can_be(
    api: TestClient,
) -> None:
    incomplete = api.get(
        f"/territoires/epci/{HALF_REPORTED}/comparaison",
        params={"indicateurs": "co2,tmax", "annee": YEAR},
    ).json()
    assert incomplete["groupe"] is None and incomplete["pairs"] == []
    assert "co2: 1 of 34 communes reported" in incomplete["raison"]
    assert {r["rang"] for r in incomplete["rangs"]} == {None}
    assert incomplete["rangs"][0]["raison"] == "1 of 34 communes reported"
    short = incomplete["rangs"][0]
    assert (short["raison_code"], short["communes_renseignees"], short["communes_total"]) == (
        "couverture_incomplete",
        1,
        34,
    )
    # With the coverage it has (1 of 34 communes), it counts: grouped and ranked.
    enough = api.get(
        f"/territoires/epci/{HALF_REPORTED}/comparaison",
        params={"indicateurs": "co2,tmax", "annee": YEAR, "couverture_min": 0.02},
    ).json()
    assert enough["groupe"] is not None and enough["raison"] is None
    assert [r["sur"] for r in enough["rangs"]] == [len(GIRONDE_EPCI) + 1] * 2
    warmer = sum(1 for v in epci_values(api, "tmax").values() if v > 12)
    assert [r["rang"] for r in enough["rangs"]] == [1, 1 + warmer]  # the least co2: 7
    typologie = api.get(
        "/typologies",
        params={"niveau": "epci", "indicateurs": "co2,tmax", "annee": YEAR, "couverture_min": 0.02},
    ).json()
    assert typologie["exclus"] == [] and sum(g["taille"] for g in typologie["groupes"]) == 29
    # A commune is complete when it reports: Annecy is ranked among the communes.
    annecy = api.get(
        "/territoires/commune/74010/comparaison",
        params={"indicateurs": "tmax", "annee": YEAR, "k": 2},
    ).json()
    [tmax] = annecy["rangs"]
    assert tmax["valeur"] == 12 and tmax["sur"] == sum(len(m) for m in MEMBERS.values()) + 1


@pytest.mark.parametrize(
    "query",
    [
        "indicateurs=inconnu&annee=2024&niveau=epci",
        "indicateurs=co2&annee=2024&niveau=france",  # one territory: nothing to group
        "indicateurs=co2&annee=1999&niveau=epci",  # no value that year
        "indicateurs=co2,tmax&annee=2024&niveau=departement&k=2",  # one complete département
        "indicateurs=co2%00&annee=2024&niveau=epci",
        "indicateurs=" + ",".join(["co2"] * 9) + "&annee=2024&niveau=epci",
        "indicateurs=co2&annee=2024&niveau=epci&k=1",
    ],
)
def test_a_typology_that_cannot_be_made_is_a_422_that_says_why(api: TestClient, query: str) -> None:
    answer = api.get(f"/typologies?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_objectives_are_brought_to_two_communes_as_computed_by_hand(
    store: AggregateStore, obs: Callable[..., CleanObservation], database_url: str
) -> None:
    store.apply(
        [
            obs("33063", "5000", indicateur="co2", rid="b-co2"),
            obs("33063", "267991", indicateur="pop", rid="b-pop"),
            obs("74010", "1000", indicateur="co2", rid="a-co2"),
        ]
    )
    api = TestClient(create_app(read_only_engine(database_url, 2)))
    # By hand, from the referential (COG 2026): Bordeaux 267,991 inhabitants,
    # Annecy 132,117, France 68,952,941. The test catalogue's objective for
    # co2 in 2030 is 1,000,000, shared by population:
    #   Bordeaux: 1,000,000 × 267,991 / 68,952,941 = 3,886.578…
    #   Annecy:   1,000,000 × 132,117 / 68,952,941 = 1,916.046…
    # co2_par_hab's objective (2.5) is the same everywhere.
    bordeaux = api.get("/territoires/commune/33063/objectifs").json()
    assert (bordeaux["population"], bordeaux["population_france"]) == (267_991, 68_952_941)
    national = [o for o in bordeaux["objectifs"] if o["portee"] == "nationale"]
    by_indicator = {o["indicateur"]: o for o in national}
    co2 = by_indicator["co2"]
    assert co2["objectif"] == pytest.approx(3886.578238918)
    assert (co2["valeur"], co2["annee_valeur"], co2["complet"]) == (5000, YEAR, True)
    assert co2["ecart"] == pytest.approx(5000 - 3886.578238918)
    assert co2["ecart_relatif"] == pytest.approx((5000 - 3886.578238918) / 3886.578238918)
    assert co2["atteint"] is False  # lower is better, and 5,000 is above
    ratio = by_indicator["co2_par_hab"]
    # 5,000 / 267,991 × 1,000 = 18.657…, against 2.5 everywhere.
    assert ratio["objectif"] == 2.5 and ratio["valeur"] == pytest.approx(18.6573429)
    assert ratio["atteint"] is False
    assert by_indicator["nb_pdc"]["valeur"] is None and by_indicator["nb_pdc"]["atteint"] is None

    annecy = {
        o["indicateur"]: o
        for o in api.get("/territoires/commune/74010/objectifs").json()["objectifs"]
    }
    assert annecy["co2"]["objectif"] == pytest.approx(1916.045901508)
    assert annecy["co2"]["atteint"] is True  # 1,000 is below its share
    assert annecy["co2_par_hab"]["valeur"] is None  # no population sent for Annecy

    # France's objective is the national one; a year before any value: none.
    france = api.get("/territoires/france/FR/objectifs").json()
    assert {o["indicateur"]: o["objectif"] for o in france["objectifs"]}["co2"] == 1_000_000
    early = api.get("/territoires/commune/33063/objectifs", params={"annee": 2000}).json()
    assert {o["valeur"] for o in early["objectifs"]} == {None}
    assert api.get("/territoires/commune/99999/objectifs").status_code == 404


def test_where_a_commune_stands_on_each_path_as_computed_by_hand(
    store: AggregateStore, obs: Callable[..., CleanObservation], database_url: str
) -> None:
    """Bordeaux's co2 in 2024 (5,000) against the national path brought to
    it and against its own (a PCAET's); the other objectives say why they
    have no position."""
    store.apply([obs("33063", "5000", indicateur="co2", rid="p-co2")])
    api = TestClient(create_app(read_only_engine(database_url, 2)))
    answer = api.get("/territoires/commune/33063/objectifs").json()["objectifs"]
    national = next(o for o in answer if o["indicateur"] == "co2" and o["portee"] == "nationale")
    # By hand: share = 267,991 / 68,952,941. The path, 2,000,000 in 2020 to
    # 1,000,000 in 2030, expects 1,600,000 in 2024: × share = 6,218.525…;
    # 5,000 is 1,218.5 below, and lower is better: ahead (by 19.6 %).
    share = Decimal(267_991) / Decimal(68_952_941)
    assert national["reference"] == pytest.approx(float(2_000_000 * share))
    position = national["position"]
    assert position["annee"] == YEAR and position["position"] == "en_avance"
    assert position["attendu"] == pytest.approx(float(1_600_000 * share))
    assert position["ecart"] == pytest.approx(float(5000 - 1_600_000 * share))
    assert position["ecart_relatif"] == pytest.approx(
        float((5000 - 1_600_000 * share) / (1_600_000 * share))
    )
    assert position["echeance_passee"] is False
    # Its own: 6,000 in 2020 to 3,000 in 2030 at a constant rate expects
    # 6,000 × 0.5^0.4 = 4,547.35… in 2024; 5,000 is 9.95 % above, beyond its
    # 5 % tolerance: behind.
    local = next(o for o in answer if o["indicateur"] == "co2" and o["portee"] == "locale")
    assert (local["objectif"], local["reference"], local["objectif_national"]) == (3000, 6000, None)
    assert local["position"]["attendu"] == pytest.approx(6000 * 0.5**0.4)
    assert local["position"]["position"] == "en_retard"
    assert local["trajectoire"] == "geometrique" and local["tolerance"] == 0.05
    no_path = next(o for o in answer if o["indicateur"] == "nb_pdc")
    assert no_path["position"] is None
    assert (no_path["sans_position"], no_path["sans_position_code"]) == (
        "no baseline in the catalogue",
        "sans_reference",
    )
    # A year before the baseline, and another territory: no local objective there.
    early = api.get("/territoires/commune/33063/objectifs", params={"annee": 2019}).json()
    assert {
        (o["sans_position"], o["sans_position_code"])
        for o in early["objectifs"]
        if o["indicateur"] == "co2"
    } == {("no value", "sans_valeur")}
    annecy = api.get("/territoires/commune/74010/objectifs").json()["objectifs"]
    assert {o["portee"] for o in annecy} == {"nationale"}


def test_a_coverage_finer_than_a_thousandth_is_refused(api: TestClient) -> None:
    """Each coverage is a study of its own: a float drawn at random would
    compute a k-means per request, past the cache (issue #30, point 6)."""
    params = {"niveau": "epci", "indicateurs": "co2,tmax", "annee": YEAR}
    assert api.get("/typologies", params={**params, "couverture_min": 0.001}).status_code == 200
    finer = api.get("/typologies", params={**params, "couverture_min": 0.0015})
    assert finer.status_code == 422 and "3 decimal places" in finer.text


def held_studies(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, turn: float
) -> tuple[threading.Event, threading.Event]:
    """One study computed at a time, each waiting ``turn`` for it; a study
    computing says so (the first event) and holds until released (the second)."""
    api.app.state.studies = comparisons.KeptStudies(api.app.state.changed, at_once=1, turn=turn)  # type: ignore[attr-defined]
    inside, release = threading.Event(), threading.Event()
    computed = comparisons.study

    def slow(*args: object) -> comparisons.Study:
        inside.set()
        release.wait(10)
        return computed(*args)

    monkeypatch.setattr(comparisons, "study", slow)
    return inside, release


def test_studies_beyond_those_computing_wait_their_turn_then_get_503(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, release = held_studies(api, monkeypatch, turn=0.2)
    params = {"niveau": "epci", "indicateurs": "co2,tmax", "annee": YEAR}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.get, "/typologies", params=params)
        assert inside.wait(10)
        other = api.get("/typologies", params={**params, "k": 2})
        assert other.status_code == 503 and other.headers["Retry-After"] == "1"
        release.set()
        assert first.result(10).status_code == 200
    assert api.get("/typologies", params={**params, "k": 2}).status_code == 200


def test_a_study_waiting_or_computing_holds_no_database_connection(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anonymous readers asking for studies must not take the connections
    every other route needs (the engine's pool is small)."""
    app = api.app
    inside, release = held_studies(api, monkeypatch, turn=5)
    params = {"niveau": "epci", "indicateurs": "co2,tmax", "annee": YEAR}
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(api.get, "/typologies", params=params)
        assert inside.wait(10)
        waiting = pool.submit(api.get, "/typologies", params={**params, "k": 2})
        time.sleep(0.5)  # the second is waiting for its turn by now
        assert not waiting.done()
        assert app.state.engine.pool.checkedout() == 0
        release.set()
        assert first.result(10).status_code == 200 and waiting.result(10).status_code == 200
