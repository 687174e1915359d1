"""Aggregates on an older edition of the map (``millesime``), against sums
made here from the shipped edition files themselves (not the passage the
API reads), and on the current map as the aggregator keeps it."""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from decimal import Decimal
from importlib import resources

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.referential import load
from services.api import groupements as groupings
from tests.integration.test_kinds import api, events, history

REF = load()
DATA = resources.files("common.referential").joinpath("data")


def shipped(folder: str, name: str) -> list[dict[str, str]]:
    with DATA.joinpath(folder, f"{name}.csv.gz").open("rb") as raw:
        return list(csv.DictReader(gzip.open(raw, "rt", encoding="utf-8")))


def served(client, **params) -> dict[str, dict]:
    answer = client.get("/indicateurs", params={"limit": 10_000, "exact": "true", **params})
    assert answer.status_code == 200, answer.text
    return {row["code"]: row for row in answer.json()}


def sums(communes: dict[str, Decimal], place) -> dict[str, Decimal]:
    found: dict[str, Decimal] = defaultdict(Decimal)
    for code, value in communes.items():
        if (territory := place(code)) is not None:
            found[territory] += value
    return dict(found)


def test_2019_values_on_2019_codes_sum_by_2019_memberships(store, obs, database_url) -> None:
    """Every 2019 commune's population, keyed on its 2019 code: served on
    the 2019 map, every EPCI, département and région is the sum of its 2019
    members; served on today's, the sum over today's merged communes."""
    communes_2019 = {r["code"]: r for r in shipped("editions/2019", "communes")}
    today = {r["ancien"]: r["actuel"] for r in shipped(".", "anciens_codes")}
    values = {
        code: Decimal(r["population"] or 0) + Decimal("0.25")  # exact sums, not integers
        for code, r in communes_2019.items()
        # The cleaner dead-letters a code split since (ambiguous_code).
        if code in REF.communes or code in REF.former_codes
    }
    assert len(values) > 34_900
    records = [
        obs(REF.former_codes.get(code, code), str(v), source=code, annee=2019, rid=f"r{code}")
        for code, v in values.items()
    ]
    for start in range(0, len(records), 5000):
        store.apply(records[start : start + 5000])
    client = api(database_url)
    for niveau in ("epci", "departement", "region"):
        truth = sums(values, lambda c, n=niveau: communes_2019[c][n] or None)
        rows = served(client, millesime=2019, indicateur="pop", annee=2019, niveau=niveau)
        assert {code: Decimal(r["valeur"]) for code, r in rows.items()} == truth
        assert {(r["millesime"], r["estimee"], r["origine"]) for r in rows.values()} == {
            (2019, False, "agregee")
        }
        members = defaultdict(int)
        for c in communes_2019.values():
            members[c[niveau]] += 1
        assert all(r["communes_total"] == members[code] for code, r in rows.items())
    france = served(client, millesime=2019, indicateur="pop", annee=2019)
    assert Decimal(france["FR"]["valeur"]) == sum(values.values())
    # Today's map: each value on the commune its code became.
    current = {r["code"]: r for r in shipped(".", "communes")}
    for niveau in ("epci", "departement"):
        truth = sums(values, lambda c, n=niveau: current[today.get(c, c)][n] or None)
        rows = served(client, indicateur="pop", annee=2019, niveau=niveau)
        assert {code: Decimal(r["valeur"]) for code, r in rows.items()} == truth
        assert {r["millesime"] for r in rows.values()} == {2026}


def test_a_value_keyed_on_a_commune_made_since_is_split_by_population(
    store, obs, database_url
) -> None:
    """Culoz-Béon (01138 in 2026) was Culoz (01138) and Béon (01039) in
    2019, in one EPCI; Tannay-le-Mont-Dieu (08439) was Tannay and Le
    Mont-Dieu, in two. A 2026 value on the 2019 map: split by the 2019
    populations, and said to be; a 2019 value on 01138 is Culoz's alone."""
    communes_2019 = {r["code"]: r for r in shipped("editions/2019", "communes")}
    people = {c: int(communes_2019[c]["population"]) for c in ("01138", "01039", "08300", "08439")}
    store.apply(
        [
            obs("01138", "1000", source="01138", annee=2026, rid="a"),
            obs("08439", "173", source="08439", annee=2026, rid="b"),
            obs("01138", "7", source="01138", annee=2019, rid="c"),
        ]
    )
    client = api(database_url)
    communes = served(client, millesime=2019, indicateur="pop", annee=2026, niveau="commune")
    culoz = Decimal(1000) * people["01138"] / (people["01138"] + people["01039"])
    assert abs(Decimal(communes["01138"]["valeur"]) - culoz) < Decimal("1e-12")
    assert abs(Decimal(communes["01039"]["valeur"]) - (1000 - culoz)) < Decimal("1e-12")
    assert Decimal(communes["08300"]["valeur"]) == people["08300"]  # 173 people: 16 + 157
    assert Decimal(communes["08439"]["valeur"]) == people["08439"]
    assert all(r["estimee"] and r["millesime"] == 2019 for r in communes.values())
    epcis = served(client, millesime=2019, indicateur="pop", annee=2026, niveau="epci")
    culoz_epci = communes_2019["01138"]["epci"]
    assert abs(Decimal(epcis[culoz_epci]["valeur"]) - 1000) < Decimal("1e-12")
    assert Decimal(epcis[communes_2019["08300"]["epci"]]["valeur"]) == people["08300"]
    # Keyed on 2019's map, the same code is Culoz alone: no estimate.
    alone = served(client, millesime=2019, indicateur="pop", annee=2019, commune="01138")
    assert (alone["01138"]["valeur"], alone["01138"]["estimee"]) == ("7", False)
    # On today's map, each value whole on its commune.
    today = served(client, indicateur="pop", annee=2026, commune="01138")
    assert (today["01138"]["valeur"], today["01138"]["estimee"]) == ("1000", False)


def feed(client, depuis: int, **params) -> dict:
    answer = client.get(
        "/indicateurs/changements",
        params={
            "millesime": 2019,
            "indicateur": "pop",
            "exact": "true",
            "depuis": depuis,
            **params,
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_change_feed_on_an_older_edition_brings_the_rows_its_changes_reach(
    store, obs, database_url
) -> None:
    """Each page: the 2019 map's rows that the indicator's changes reach,
    at their state now, equal to what /indicateurs?millesime=2019 serves."""
    client = api(database_url)
    communes_2019 = {r["code"]: r for r in shipped("editions/2019", "communes")}
    store.apply(
        [
            obs("01138", "1000", source="01138", annee=2026, rid="a"),  # Culoz-Béon since 2019
            obs("33063", "5", annee=2026, rid="b"),
        ]
    )
    first = feed(client, 0)
    assert first["curseur"] > 0 and {r["curseur"] for r in first["changements"]} == {0}
    reached = {(r["niveau"], r["code"]): r for r in first["changements"]}
    bordeaux, culoz = communes_2019["33063"], communes_2019["01138"]
    assert set(reached) == {
        ("commune", "01138"),
        ("commune", "01039"),  # Béon: part of the value lands there
        ("commune", "33063"),
        ("epci", culoz["epci"]),
        ("epci", bordeaux["epci"]),
        ("departement", "01"),
        ("departement", "33"),
        ("region", culoz["region"]),
        ("region", bordeaux["region"]),
        ("france", "FR"),
    }
    for (niveau, code), row in reached.items():
        truth = served(client, millesime=2019, indicateur="pop", annee=2026, niveau=niveau)
        assert row == {**truth[code], "curseur": 0}, (niveau, code)
    assert reached[("commune", "01039")]["estimee"]
    assert Decimal(reached[("france", "FR")]["valeur"]) == 1005
    # Nothing new: an empty page, the same cursor; another indicator's
    # changes move the cursor past them and bring nothing.
    assert feed(client, first["curseur"]) == {"changements": [], "curseur": first["curseur"]}
    store.apply([obs("33063", "9", indicateur="co2", annee=2026, rid="c")])
    quiet = feed(client, first["curseur"])
    assert quiet["changements"] == [] and quiet["curseur"] > first["curseur"]
    # A correction reaches Bordeaux's rows only, at their new state.
    store.apply([obs("33063", "7", version=2, annee=2026, rid="d")])
    corrected = feed(client, quiet["curseur"])
    rows = {(r["niveau"], r["code"]): Decimal(r["valeur"]) for r in corrected["changements"]}
    assert rows == {
        ("commune", "33063"): 7,
        ("epci", bordeaux["epci"]): 7,
        ("departement", "33"): 7,
        ("region", bordeaux["region"]): 7,
        ("france", "FR"): 1007,
    }
    only = feed(client, quiet["curseur"], niveau="departement")["changements"]
    assert [(r["niveau"], r["code"]) for r in only] == [("departement", "33")]
    # Page by page: a page of one change, then the next from its cursor.
    one = feed(client, 0, limit=1)
    assert 0 < one["curseur"] < first["curseur"] and one["changements"]
    rest = feed(client, one["curseur"], limit=1)
    assert rest["curseur"] > one["curseur"]
    # The stream on the same edition says the same.
    with client.stream(
        "GET",
        "/indicateurs/flux",
        params={"millesime": 2019, "indicateur": "pop", "depuis": quiet["curseur"]},
    ) as stream:
        assert stream.status_code == 200
        events = []
        for line in stream.iter_lines():
            if line.startswith("data: {"):
                events.append(json.loads(line.removeprefix("data: ")))
            if len(events) == len(rows):
                break
    assert {(e["niveau"], e["code"]) for e in events} == set(rows)
    assert all(e["curseur"] == quiet["curseur"] for e in events)


def test_what_an_edition_cannot_answer_is_refused_with_the_reason(database_url) -> None:
    client = api(database_url)
    for params, reason in (
        ({"millesime": 2020, "indicateur": "pop"}, "no edition 2020"),
        ({"millesime": 1990, "indicateur": "pop"}, "no edition 1990"),
        ({"millesime": 2019}, "one indicator at a time"),
    ):
        answer = client.get("/indicateurs", params=params)
        assert answer.status_code == 422 and reason in answer.text, answer.text
    for route in ("/indicateurs/changements", "/indicateurs/flux"):
        answer = client.get(route, params={"millesime": 2019})  # which indicator's?
        assert answer.status_code == 422 and "one indicator at a time" in answer.text
    for route in (  # what follows the aggregator's rows: the current edition only
        "/territoires/departement/01",
        "/territoires/departement/01/objectifs",
        "/territoires/departement/01/comparaison",
    ):
        answer = client.get(route, params={"millesime": 2019})
        assert answer.status_code == 422 and "current edition" in answer.text, answer.text
    assert client.get("/indicateurs/changements", params={"millesime": 2026}).status_code == 200
    assert client.get("/territoires/departement/01", params={"millesime": 2026}).status_code == 200
    found = client.get("/territoires", params={"q": "Béon", "millesime": 2019}).json()
    assert {"niveau": "commune", "code": "01039", "nom": "Béon"} in found
    today = client.get("/territoires", params={"q": "Béon"}).json()
    assert "01039" not in {t["code"] for t in today}  # merged since, into Culoz-Béon
    assert {"niveau": "commune", "code": "01138", "nom": "Culoz-Béon"} in today
    assert client.get("/territoires", params={"q": "x", "millesime": 2020}).status_code == 422


def compared(row: dict) -> tuple:
    """A row's fields but its time, its value as a number (0 and 0.00 alike)."""
    value = None if row["valeur"] is None else Decimal(row["valeur"])
    return (*(row[k] for k in COMPARED), value)


CLIENTS: dict[str, object] = {}  # one API for the examples of a test
EMPTY = "TRUNCATE observations, aggregates, aggregate_change_log, outbox_cursor"
COMPARED = (
    "indicateur",
    "sous_champ",
    "annee",
    "code",
    "nom",
    "agregation",
    "unite",
    "communes_renseignees",
    "communes_total",
    "origine",
    "annee_denominateur",
    "communes_repli",
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events, st.integers(1, 6))
def test_on_an_edition_equal_to_todays_every_kind_is_the_aggregators(
    store, obs, database_url, drawn, batch
) -> None:
    """The 2025 map is the 2026 one in the registry: computed from the
    observations at the request, every row of every kind and level equals the
    row the aggregator keeps, to the last digit."""
    with psycopg.connect(database_url) as conn:
        conn.execute(EMPTY)
    records = history(obs, drawn, 2024)
    for start in range(0, len(records), batch):
        store.apply(records[start : start + batch])
    client = CLIENTS.get(database_url) or CLIENTS.setdefault(database_url, api(database_url))
    ratios = {"co2_par_hab", "co2_par_hab_repli"}  # a denominator of up to 2 years before
    for indicateur in sorted({r.indicateur for r in records} | ratios):
        for niveau in ("commune", "epci", "region"):  # every year at once
            params = {"indicateur": indicateur, "niveau": niveau, "annee_min": 2024}
            today, older = by_year(client, **params), by_year(client, millesime=2025, **params)
            kept = {key: compared(r) for key, r in today.items() if r["communes_renseignees"]}
            computed = {key: compared(r) for key, r in older.items() if r["communes_renseignees"]}
            assert kept == computed, drawn
            assert not any(r["estimee"] for r in older.values())


def by_year(client, **params) -> dict[tuple[str, int], dict]:
    answer = client.get("/indicateurs", params={"limit": 10_000, "exact": "true", **params})
    assert answer.status_code == 200, answer.text
    return {(row["code"], row["annee"]): row for row in answer.json()}


def test_a_grouping_on_an_older_edition_holds_the_communes_within_its_own(
    store, obs, database_url
) -> None:
    """A grouping of today's Culoz-Béon: on the 2019 map, Culoz and Béon."""
    groupings.store(database_url, groupings.groupement("g", "G", ["01138"], REF))
    store.apply(
        [
            obs("01138", "7", source="01138", annee=2019, rid="c"),
            obs("01138", "5", source="01039", annee=2019, rid="b"),
        ]
    )
    client = api(database_url)
    path = "/groupements/g/indicateurs"
    [today] = client.get(path, params={"indicateur": "pop", "exact": "true"}).json()
    [older] = client.get(
        path, params={"indicateur": "pop", "exact": "true", "millesime": 2019}
    ).json()
    assert (today["valeur"], today["communes_total"], today["millesime"]) == ("12", 1, 2026)
    assert (older["valeur"], older["communes_total"], older["millesime"]) == ("12", 2, 2019)
    assert (older["communes_renseignees"], older["estimee"]) == (2, False)
    refused = client.get(path, params={"millesime": 2019})
    assert refused.status_code == 422 and "one indicator at a time" in refused.text
