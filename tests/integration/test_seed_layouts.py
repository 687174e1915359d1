"""The source project's own files, with the catalogue itte ships: a long
table of poverty rates by age band (and populations), a commune table of
charging stations with dd/mm/YYYY dates. Each file is read, cleaned and
aggregated by the services' own code over Postgres; the EPCI values and
objectives are read back through the API."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from common import catalogue, db
from common.pii import PiiHasher
from common.referential import load
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from services.api.app import create_app, read_only_engine
from services.cleaner.transform import RecordRefused, Rules, clean_record
from services.ingestor.files import read_file

GRAND_ANNECY = "200066793"
REF = load()
MEMBERS = sorted(c.code for c in REF.communes.values() if c.epci == GRAND_ANNECY)
BANDS = ("total", "moins_30_ans", "75_ans_et_plus")


def long_table(path: Path) -> None:
    """The project's long format: one value per line, `;`, decimal commas."""
    header = (
        "codgeo_libelle;libelle_variable;variable;libelle_sous_champ;sous_champ;"
        "type_var;unite;no_ind;codgeo_code;annee;valeur"
    )
    lines = [header]
    for i, code in enumerate(MEMBERS):
        name = REF.communes[code].nom
        lines.append(f"{name};Population;population;Ensemble;total;n;habitants;1;{code};2022;"
                     f"{REF.communes[code].population}")  # fmt: skip
        for j, band in enumerate(BANDS):
            rate = f"{10 + i % 7},{j}"  # 10,0 … 16,2 %
            lines.append(f"{name};Taux de pauvreté;taux_pvt;{band};{band};p;%;2;{code};2022;{rate}")
    # An age band the catalogue does not list, and a secret cell.
    lines.append("Annecy;Taux de pauvreté;taux_pvt;25 ans;moins_25_ans;p;%;2;74010;2022;12,5")
    lines.append("Annecy;Taux de pauvreté;taux_pvt;60-74;60_74_ans;p;%;2;74010;2022;s")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def commune_table(path: Path) -> None:
    """A charging-station table: one line per commune and date."""
    lines = ["typezone,zone,codezone,date,nb_stations,nb_pdc"]
    for i, code in enumerate(MEMBERS):
        lines.append(f"commune,{REF.communes[code].nom},{code},31/12/2022,{i % 4},{3 * (i % 4)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_seeds_layouts_land_as_epci_values_with_the_shipped_catalogue(
    tmp_path: Path, database_url: str
) -> None:
    shipped = catalogue.load()  # the catalogue itte ships, not the tests'
    db.load_catalogue(db.make_engine(database_url), shipped)
    rules = Rules(ref=REF, hasher=PiiHasher.create(b"k" * 32, []), catalogue=shipped)
    long_table(tmp_path / "pauvrete.csv")
    commune_table(tmp_path / "irve.csv")

    clean, dead = [], []
    received = int(datetime(2026, 11, 29, tzinfo=UTC).timestamp() * 1_000_000)
    for path in (tmp_path / "pauvrete.csv", tmp_path / "irve.csv"):
        for line, record in read_file(path)[1]:
            try:
                clean.append(
                    clean_record(record, record_id=f"{path.name}:{line}:{record['indicateur']}",
                                 received=received, rules=rules)
                )  # fmt: skip
            except RecordRefused as refused:
                dead.append((path.name, line, refused.reason))
    assert dead == [("pauvrete.csv", 1 + len(MEMBERS) * 4 + 1, "unknown_sous_champ")]
    store = AggregateStore(database_url, REF, AggregationRules.from_catalogue(shipped))
    store.apply(clean)
    store.close()

    api = TestClient(create_app(read_only_engine(database_url, 2)))
    rows = api.get(
        "/indicateurs", params={"epci": GRAND_ANNECY, "annee": 2022, "exact": "true"}
    ).json()
    epci = {r["indicateur"]: r for r in rows}
    stations = sum(i % 4 for i in range(len(MEMBERS)))
    population = sum(REF.communes[c].population or 0 for c in MEMBERS)
    assert Decimal(epci["nb_stations"]["valeur"]) == stations
    assert Decimal(epci["nb_pdc"]["valeur"]) == 3 * stations
    assert Decimal(epci["population"]["valeur"]) == population
    ratio = Decimal(epci["pdc_pour_1000_hab"]["valeur"])
    assert abs(ratio - Decimal(3 * stations) / population * 1000) < Decimal("1e-15")
    assert all(epci[i]["complet"] for i in ("nb_stations", "nb_pdc", "pdc_pour_1000_hab"))
    # A poverty rate does not aggregate: communes only, each age band apart.
    assert "taux_pvt" not in epci
    annecy = api.get(
        "/indicateurs", params={"commune": "74010", "indicateur": "taux_pvt", "exact": "true"}
    ).json()
    i = MEMBERS.index("74010")
    assert {r["sous_champ"]: r["valeur"] for r in annecy} == {
        "total": f"{10 + i % 7}.0",
        "moins_30_ans": f"{10 + i % 7}.1",
        "75_ans_et_plus": f"{10 + i % 7}.2",
        "60_74_ans": None,  # secret
    }
    # The charging-point objective brought to the Grand Annecy.
    objectifs = api.get(f"/territoires/epci/{GRAND_ANNECY}/objectifs").json()
    nb_pdc = next(o for o in objectifs["objectifs"] if o["indicateur"] == "nb_pdc")
    france = sum(c.population or 0 for c in REF.communes.values())
    assert objectifs["population"] == population
    assert nb_pdc["objectif"] == float(Decimal(400_000) * population / france)
    assert (nb_pdc["valeur"], nb_pdc["annee_valeur"]) == (3 * stations, 2022)
    assert nb_pdc["atteint"] is False


def test_the_seeds_long_layout_named_by_labels_alone_lands_as_with_codes(
    tmp_path: Path, database_url: str
) -> None:
    """The project's long table with its code column dropped: each commune
    by its name (`codgeo_libelle`) in its département (`dep`)."""
    shipped = catalogue.load()
    db.load_catalogue(db.make_engine(database_url), shipped)
    rules = Rules(ref=REF, hasher=PiiHasher.create(b"k" * 32, []), catalogue=shipped)
    path = tmp_path / "population.csv"
    lines = ["codgeo_libelle;dep;libelle_variable;variable;sous_champ;unite;annee;valeur"]
    lines += [
        f"{REF.communes[c].nom};74;Population;population;total;habitants;2022;"
        f"{REF.communes[c].population}"
        for c in MEMBERS
    ]
    lines.append("Sainte-Colombe;;Population;population;total;habitants;2022;1")  # twelve
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    received = int(datetime(2026, 11, 29, tzinfo=UTC).timestamp() * 1_000_000)
    clean, dead = [], []
    for line, record in read_file(path)[1]:
        try:
            clean.append(
                clean_record(record, record_id=f"n:{line}", received=received, rules=rules)
            )
        except RecordRefused as refused:
            dead.append((line, refused.reason))
    assert sorted(o.commune for o in clean) == MEMBERS
    assert dead == [(len(MEMBERS) + 2, "ambiguous_label")]
    store = AggregateStore(database_url, REF, AggregationRules.from_catalogue(shipped))
    store.apply(clean)
    store.close()
    api = TestClient(create_app(read_only_engine(database_url, 2)))
    [epci] = api.get(
        "/indicateurs",
        params={"epci": GRAND_ANNECY, "annee": 2022, "indicateur": "population", "exact": "true"},
    ).json()
    assert Decimal(epci["valeur"]) == sum(REF.communes[c].population or 0 for c in MEMBERS)
    assert epci["complet"]
