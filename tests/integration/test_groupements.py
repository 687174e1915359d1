"""Groupings of communes users define: every indicator aggregated over one,
against an independent recomputation (tests/oracle.py, over the winning
observations) and against the EPCI the aggregator keeps for the same communes."""

from __future__ import annotations

import itertools
from decimal import Decimal

import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import catalogue
from common.referential import load
from itte.cli import main
from services.aggregator.rules import AggregationRules
from services.api import groupements as groupings
from tests import oracle
from tests.conftest import TEST_CATALOGUE
from tests.integration.test_kinds import KINDS, api, events, history

REF = load()
CATALOGUE = catalogue.load(TEST_CATALOGUE)
RULES = AggregationRules.from_catalogue(CATALOGUE)
YEARS = itertools.count(1900)
EMPTY = "TRUNCATE observations, aggregates, aggregate_change_log, outbox_cursor"
# Across three départements and two régions, an EPCI cut in two, a merged
# commune (01015, whose former code 01340 the histories use).
MEMBERS = ["74010", "74042", "01010", "01015", "22016"]
EPCI = REF.communes["74010"].epci
assert EPCI is not None
EPCI_MEMBERS = sorted(c.code for c in REF.communes.values() if c.epci == EPCI)
SERVED_AS_QUOTIENT = {"ratio", "moyenne_ponderee"}


def served(kind: str, indicator: str, row: oracle.Row) -> Decimal | None:
    """What the view serves for a territory's row, from the oracle's sums
    (a quotient over a zero denominator: none, as NULLIF makes it)."""
    value, _, num, den, *_ = row
    if kind in SERVED_AS_QUOTIENT and den == 0:
        return None
    if kind == "ratio":
        return num / den * Decimal(CATALOGUE.indicateurs[indicator].facteur or 1)
    return num / den if kind == "moyenne_ponderee" else value


def close(a: Decimal, b: Decimal, kind: str) -> bool:
    """Sums, counts and extremes exactly; a quotient to 15 significant digits
    (Postgres and Python round a division each at their own scale)."""
    if kind not in SERVED_AS_QUOTIENT:
        return a == b
    return abs(a - b) <= abs(b) * Decimal("1e-15")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events, st.integers(1, 6))
def test_a_grouping_is_its_communes_aggregated_as_an_epci(
    store, obs, database_url, drawn, batch
) -> None:
    with psycopg.connect(database_url) as conn:  # each example from empty tables
        conn.execute(EMPTY)
    annee = 2024
    records = history(obs, drawn, annee)
    batches = [records[start : start + batch] for start in range(0, len(records), batch)]
    for part in batches:
        store.apply(part)
    groupings.store(database_url, groupings.groupement("g", "Le groupement", MEMBERS, REF))
    chosen = set(MEMBERS)
    truth = oracle.aggregates(
        oracle.winners(batches).values(),
        lambda c: [("groupement", "g")] if c in chosen else [],
        RULES,
    )
    expected = {
        (i, s, y): (served(RULES.kind(i), i, row), row[1], denominator_year(RULES.kind(i), y, row))
        for (i, s, y, niveau, _), row in truth.items()
        if niveau == "groupement" and row[1] > 0
    }
    answer = api(database_url).get("/groupements/g/indicateurs", params={"exact": True})
    assert answer.status_code == 200
    got = {(r["indicateur"], r["sous_champ"], r["annee"]): r for r in answer.json()}
    assert got.keys() == expected.keys()
    for key, (value, reporting, years) in expected.items():
        row = got[key]
        assert (row["annee_denominateur"], row["communes_repli"]) == years, (key, row)
        if value is None:
            assert row["valeur"] is None, (key, row)
        else:
            assert close(Decimal(row["valeur"]), value, row["agregation"]), (key, row, value)
        assert row["communes_renseignees"] == reporting
        assert row["communes_total"] == len(MEMBERS)
        assert row["complet"] == (reporting == len(MEMBERS))


def denominator_year(kind: str, annee: int, row: tuple) -> tuple[int | None, int | None]:
    """A ratio's (annee_denominateur, communes_repli) from the oracle's row:
    one year when every paired commune went back as far (docs/catalogue.md)."""
    if kind != "ratio":
        return None, None
    paired, replis, years, squares = row[1], *row[4:]
    same = paired > 0 and all(
        years == paired * lag and squares == paired * lag * lag for lag in [years // paired]
    )
    return (annee - years // paired if same else None), replis


def test_the_communes_of_an_epci_give_the_epci_s_values(store, obs, database_url) -> None:
    annee = next(YEARS)
    store.apply(
        [
            obs(commune, str(10 * n + k), indicateur=kind, annee=annee, rid=f"{commune}{kind}")
            for n, commune in enumerate(EPCI_MEMBERS[:8])
            for k, kind in enumerate(KINDS)
        ]
    )
    groupings.store(database_url, groupings.groupement("epci", "Its communes", EPCI_MEMBERS, REF))
    client = api(database_url)
    grouped = client.get("/groupements/epci/indicateurs", params={"annee": annee, "exact": True})
    epci = client.get(
        "/indicateurs", params={"epci": EPCI, "annee": annee, "exact": True, "limit": 100}
    )
    mine = {r["indicateur"]: r for r in grouped.json()}
    theirs = {r["indicateur"]: r for r in epci.json() if r["valeur"] is not None}
    assert mine.keys() == theirs.keys() and len(mine) >= len(KINDS)
    for indicator, row in theirs.items():
        kept = mine[indicator]
        assert Decimal(kept["valeur"]) == Decimal(row["valeur"]), indicator
        assert (kept["communes_renseignees"], kept["communes_total"]) == (
            row["communes_renseignees"],
            row["communes_total"],
        )


def test_loaded_replaced_listed_and_deleted_from_the_command(database_url, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    loaded = runner.invoke(
        main,
        ["grouping", "load", "scot-x", "-", "--name", "SCoT X"],
        input="code_commune;nom\n74010;Annecy\n01340;Arboys\n75101;Paris 1er\n",
    )
    assert loaded.exit_code == 0, loaded.output
    assert "3 communes" in loaded.output
    client = api(database_url)
    [listed] = client.get("/groupements").json()
    assert (listed["code"], listed["nom"], listed["communes_total"]) == ("scot-x", "SCoT X", 3)
    fiche = client.get("/groupements/scot-x").json()
    assert [c["code"] for c in fiche["communes"]] == ["01015", "74010", "75056"]

    refused = runner.invoke(
        main,
        ["grouping", "load", "scot-x", "-", "--name", "SCoT X"],
        input="74010\n99999\nabc\x00\n",
    )
    assert refused.exit_code == 1
    assert "line 2: '99999': unknown_code" in refused.output
    assert "line 3: 'abc\\x00': invalid_commune" in refused.output
    # Stored whole or not at all: the grouping is as it was.
    assert client.get("/groupements/scot-x").json()["communes_total"] == 3

    replaced = runner.invoke(
        main, ["grouping", "load", "scot-x", "-", "--name", "SCoT X bis"], input="33063\n"
    )
    assert replaced.exit_code == 0, replaced.output
    assert [c["code"] for c in client.get("/groupements/scot-x").json()["communes"]] == ["33063"]

    assert runner.invoke(main, ["grouping", "delete", "scot-x"]).exit_code == 0
    assert client.get("/groupements/scot-x").status_code == 404
    assert client.get("/groupements/scot-x/indicateurs").status_code == 404
    assert runner.invoke(main, ["grouping", "delete", "scot-x"]).exit_code == 1


@pytest.mark.parametrize("code", ["UPPER", "a" * 41, "-lead", "é", "a b"])
def test_a_grouping_code_outside_its_pattern_is_not_found(database_url, code) -> None:
    assert api(database_url).get(f"/groupements/{code}").status_code in (404, 422)
