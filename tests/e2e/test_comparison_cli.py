"""An analyst compares territories from the command line: values pushed
through the ingestor, then `itte typology` and `itte compare` against the
running API find the three kinds of EPCI built into the data."""

from __future__ import annotations

import json

from tests.e2e.stack import Stack, eventually, get_json, post
from tests.kinds import GIRONDE_EPCI, commune_values, kind_of

YEAR = 2077  # a year of its own in the shared stack


def complete_epci(stack: Stack) -> int:
    query = f"/indicateurs?niveau=epci&indicateur=tmax&annee={YEAR}&departement=33&limit=1000"
    return sum(1 for row in get_json(stack.url("api", query)) if row["complet"])


def test_itte_typology_and_compare_read_the_groups_back(stack: Stack) -> None:
    body = [
        {"indicateur": indicateur, "commune": commune, "annee": YEAR, "valeur": str(value)}
        for commune, indicateur, value in commune_values()
    ]
    status, answer = post(stack.url("ingestor", "/observations"), json.dumps(body).encode())
    assert status == 202, answer
    eventually(lambda: complete_epci(stack) == len(GIRONDE_EPCI), 90, "every EPCI complete")

    args = ("--indicateurs", "co2,tmax", "--annee", str(YEAR))
    shown = stack.itte("typology", "--niveau", "epci", *args)
    assert shown.returncode == 0, shown.stderr
    assert "3 groups, chosen by silhouette" in shown.stdout
    assert f"{len(GIRONDE_EPCI)} grouped" in shown.stdout

    as_json = json.loads(stack.itte("typology", "--niveau", "epci", *args, "--json").stdout)
    found = {frozenset(m["code"] for m in g["membres"]) for g in as_json["groupes"]}
    assert found == {frozenset(e for e in GIRONDE_EPCI if kind_of(e) == k) for k in range(3)}

    epci = GIRONDE_EPCI[0]
    compared = stack.itte("compare", "epci", epci, *args, "--pairs", "2")
    assert compared.returncode == 0, compared.stderr
    same_kind = sum(1 for e in GIRONDE_EPCI if kind_of(e) == kind_of(epci))
    assert f"with {same_kind - 1} others" in compared.stdout
    assert f"of {len(GIRONDE_EPCI)}" in compared.stdout and "nearest peers" in compared.stdout

    refused = stack.itte("typology", "--niveau", "epci", "--indicateurs", "absent",
                         "--annee", str(YEAR))  # fmt: skip
    assert refused.returncode == 2 and "not in the catalogue: absent" in refused.stderr
