"""The demo data of ``make up``: several years, each population the real one
of its edition of the COG, every synthetic row labelled so, every row placed
on today's map (none would be dead-lettered), the current year first."""

from __future__ import annotations

import csv
from collections import defaultdict

import pytest

from common import referential
from itte.demo import HISTORY, YEAR, write_demo


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[list[dict[str, str]]]:
    """Each file's rows, in the order ``itte up`` ingests them."""
    read = []
    for path in write_demo(tmp_path_factory.mktemp("demo")):
        delimiter = ";" if path.name.startswith("population") else ","
        with open(path, encoding="utf-8", newline="") as handle:
            read.append(list(csv.DictReader(handle, delimiter=delimiter)))
    return read


def test_the_current_year_comes_first_then_the_history(files: list[list[dict[str, str]]]) -> None:
    years = [{int(r["annee"]) for r in f} for f in files]
    assert years == [{YEAR}, {YEAR}, set(HISTORY), set(HISTORY)]


def test_each_years_population_is_its_editions(files: list[list[dict[str, str]]]) -> None:
    by_year: dict[int, dict[str, str]] = defaultdict(dict)
    for f in files:
        for r in f:
            if r["variable"] == "population":
                by_year[int(r["annee"])][r["code"]] = r["valeur"]
    assert set(by_year) == {YEAR, *HISTORY}
    for year, values in by_year.items():
        ref = referential.load() if year == YEAR else referential.edition(year)
        expected = {
            c.code: "" if c.population is None else str(c.population) for c in ref.communes.values()
        }
        assert values == expected, year


def test_every_row_is_placed_on_todays_map(files: list[list[dict[str, str]]]) -> None:
    today = referential.load()
    for f in files:
        for r in f:
            referential.locate(r["code"], today)  # raises Unplaced otherwise


def test_synthetic_rows_say_so_and_walk_back_plausibly(files: list[list[dict[str, str]]]) -> None:
    series: dict[tuple[str, str], dict[int, str]] = defaultdict(dict)
    for f in files:
        for r in f:
            if r["variable"] != "population":
                assert "SYNTHÉTIQUE" in r["libelle_variable"], r
                series[(r["code"], r["variable"])][int(r["annee"])] = r["valeur"]
    walked = {k: v for k, v in series.items() if len(v) > 1}
    assert {variable for _, variable in walked} == {
        "points_recharge_synthetique",
        "part_menages_chauffage_bois_synthetique",
    }
    for (_, variable), values in walked.items():
        assert set(values) == {YEAR, *HISTORY}
        if "s" in values.values():  # a secret cell stays secret every year
            assert set(values.values()) == {"s"}
            continue
        ordered = [float(values[y]) for y in sorted(values)]
        if variable == "points_recharge_synthetique":
            assert ordered == sorted(ordered)  # more points every year
        else:
            assert ordered == sorted(ordered, reverse=True)  # less wood every year


def test_the_demo_objectives_baselines_are_the_demos_own_sums(
    files: list[list[dict[str, str]]],
) -> None:
    """The shipped catalogue's synthetic objectives (France's, and the Grand
    Annecy's own) start from the demo's 2023 charging points there: the two
    cannot drift apart."""
    from common.catalogue import load

    communes = referential.load().communes
    demo = [o for o in load().objectifs if o.indicateur == "points_recharge_synthetique"]
    assert {o.niveau for o in demo} == {"france", "epci"}
    for objective in demo:
        inside = {
            c
            for c in communes
            if objective.niveau == "france" or communes[c].epci == objective.code
        }
        total = sum(
            int(r["valeur"])
            for f in files
            for r in f
            if r["variable"] == objective.indicateur
            and r["annee"] == str(objective.annee_reference)
            and r["valeur"] != "s"
            and r["code"] in inside
        )
        assert objective.valeur_reference == total, objective.niveau
