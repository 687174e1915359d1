from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.catalogue import parse
from common.pii import PiiHasher
from common.referential import load
from schemas.catalogue import Indicator
from services.cleaner.transform import MessageOrigin, Rules, clean_message, parse_value

HASHER = PiiHasher.create(b"k" * 32, ["nom_declarant", "email"])
CATALOGUE = parse("""
[[indicateur]]
id = "x"
libelle = "x"
agregation = "somme"
[[indicateur]]
id = "population"
libelle = "Population"
agregation = "somme"
min = 0
[[indicateur]]
id = "temperature"
libelle = "Température maximale"
agregation = "max"
min = -60
max = 60
[[indicateur]]
id = "densite"
libelle = "Habitants par km²"
agregation = "ratio"
numerateur = "population"
denominateur = "x"
[[indicateur]]
id = "taux"
libelle = "Taux par tranche d'âge"
agregation = "non_agregeable"
sous_champs = { total = "Ensemble", moins_30_ans = "Moins de 30 ans" }
alias_sous_champs = { moins30 = "moins_30_ans" }
""")
RULES = Rules(ref=load(), hasher=HASHER, catalogue=CATALOGUE)
ORIGIN = MessageOrigin("indicators.raw", 2, 41, 1_700_000_000_000)
RECEIVED = datetime(2026, 1, 2, tzinfo=UTC)


def envelope(*records: Any) -> bytes:
    return json.dumps(
        {
            "batch_id": "b1",
            "source": "test",
            "received_at": RECEIVED.isoformat(),
            "records": list(records),
        }
    ).encode()


def run(value: bytes, rules: Rules = RULES) -> Any:
    return clean_message(value, ORIGIN, rules)


def test_normalizes_a_record() -> None:
    result = run(
        envelope(
            {
                "indicateur": " population ",
                "commune": 1001,
                "annee": "2020",
                "valeur": "1 234,5",
                "unite": " habitants  ",
            }
        )
    )
    assert result.dead == []
    [obs] = result.clean
    assert (obs.indicateur, obs.commune, obs.commune_source) == ("population", "01001", "01001")
    assert (obs.annee, obs.valeur, obs.unite, obs.sous_champ) == (
        2020,
        Decimal("1234.5"),
        "habitants",
        "total",
    )
    assert obs.record_id == "b1:000000"
    assert obs.version == int(RECEIVED.timestamp() * 1_000_000)


def test_corsican_codes_and_dates() -> None:
    result = run(
        envelope({"indicateur": "x", "commune": "2a004", "date": "15/03/2024", "valeur": 3})
    )
    [obs] = result.clean
    assert (obs.commune, obs.annee, obs.valeur) == ("2A004", 2024, Decimal(3))


def test_former_code_lands_on_current_commune() -> None:
    # 01340 was merged into 01015 (Arboys en Bugey) in the 2026 referential.
    [obs] = run(envelope({"indicateur": "x", "commune": "01340", "annee": 2019, "valeur": 1})).clean
    assert (obs.commune_source, obs.commune) == ("01340", "01015")


@pytest.mark.parametrize(
    ("code", "commune"),
    [("75101", "75056"), ("75120", "75056"), ("69381", "69123"), ("69389", "69123"),
     ("13201", "13055"), ("13216", "13055")],
)  # fmt: skip
def test_an_arrondissement_municipal_is_a_part_of_its_commune(code: str, commune: str) -> None:
    [obs] = run(envelope({"indicateur": "x", "commune": code, "annee": 2024, "valeur": 1})).clean
    assert (obs.commune_source, obs.commune) == (code, commune)


def test_a_commune_named_by_its_label_alone() -> None:
    named = {"indicateur": "x", "annee": 2024, "valeur": 1}
    result = run(
        envelope(
            {**named, "libelle_territoire": "Saint-Émilion"},
            {**named, "libelle_territoire": "sainte colombe", "departement": 33},
            {**named, "commune": " ", "libelle_territoire": "Bordeaux"},  # blank: absent
            {**named, "commune": "74010", "libelle_territoire": "Bordeaux"},  # the code wins
            {**named, "libelle_territoire": "Sainte-Colombe"},
            {**named, "libelle_territoire": "Nulle-Part"},
            {**named, "commune": " "},
            {**named},
        )
    )
    assert [(o.commune_source, o.commune) for o in result.clean] == [
        ("33394", "33394"),
        ("33390", "33390"),
        ("33063", "33063"),
        ("74010", "74010"),
    ]
    assert [(d.record_id[-1], d.reason) for d in result.dead] == [
        ("4", "ambiguous_label"),
        ("5", "unknown_label"),
        ("6", "invalid_commune"),
        ("7", "invalid_schema"),
    ]
    assert "give the code, or the département" in result.dead[0].detail


def test_a_value_published_for_a_territory_above_the_commune() -> None:
    v = {"indicateur": "x", "annee": 2024, "valeur": "12,5"}
    result = run(
        envelope(
            {**v, "niveau": "epci", "code": "200000172"},
            {**v, "niveau": "EPCI", "commune": "200000172"},  # the code in `commune`
            {**v, "niveau": "epci", "libelle_territoire": "CC Faucigny-Glières"},
            {**v, "niveau": "Département", "code": "1"},
            {**v, "niveau": "reg", "code": 84},
            {**v, "niveau": "france", "code": "fr"},
            {**v, "niveau": "commune", "code": "33063"},
            {**v, "niveau": "epci", "code": "999999999"},
            {**v, "niveau": "canton", "code": "3301"},
            {**v, "niveau": "epci"},
            {**v, "niveau": "departement", "code": "33", "commune": "33063"},  # code wins
        )
    )
    assert [(o.niveau, o.commune, o.commune_source) for o in result.clean] == [
        ("epci", "200000172", "200000172"),
        ("epci", "200000172", "200000172"),
        ("epci", "200000172", "200000172"),
        ("departement", "01", "01"),
        ("region", "84", "84"),
        ("france", "FR", "FR"),
        ("commune", "33063", "33063"),
        ("departement", "33", "33"),
    ]
    assert all(o.valeur == Decimal("12.5") and o.published != (o.niveau == "commune")
               for o in result.clean)  # fmt: skip
    assert [(d.record_id[-2:], d.reason) for d in result.dead] == [
        ("07", "unknown_code"),
        ("08", "invalid_niveau"),
        ("09", "invalid_schema"),
    ]


@pytest.mark.parametrize("code", ["75100", "75121", "69380", "69390", "13200", "13217"])
def test_codes_beside_the_arrondissements_are_unknown(code: str) -> None:
    result = run(envelope({"indicateur": "x", "commune": code, "annee": 2024, "valeur": 1}))
    assert not result.clean and [d.reason for d in result.dead] == ["unknown_code"]


@pytest.mark.parametrize("marker", ["s", "nd", "NA", "", None, " S "])
def test_secret_and_missing_cells_are_missing_not_zero(marker: Any) -> None:
    [obs] = run(
        envelope({"indicateur": "x", "commune": "33063", "annee": 2020, "valeur": marker})
    ).clean
    assert obs.valeur is None
    assert obs.marqueur


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"indicateur": "x", "commune": "99999", "annee": 2020, "valeur": 1}, "unknown_code"),
        ({"indicateur": "x", "commune": "ABC", "annee": 2020, "valeur": 1}, "invalid_commune"),
        ({"indicateur": "x", "commune": "55273", "annee": 2020, "valeur": 1}, "ambiguous_code"),
        ({"indicateur": "x", "commune": "33063", "valeur": 1}, "missing_year"),
        ({"indicateur": "x", "commune": "33063", "annee": "20x0", "valeur": 1}, "invalid_year"),
        (
            {"indicateur": "x", "commune": "33063", "date": "2020/13/45", "valeur": 1},
            "invalid_date",
        ),
        (
            {"indicateur": "x", "commune": "33063", "annee": 2020, "valeur": "douze"},
            "invalid_value",
        ),
        ({"indicateur": "x", "commune": "33063", "annee": 2020, "valeur": "NaN"}, "invalid_value"),
        ({"commune": "33063", "annee": 2020, "valeur": 1}, "invalid_schema"),
        ({"indicateur": "  ", "commune": "33063", "annee": 2020, "valeur": 1}, "invalid_schema"),
        (["not", "an", "object"], "invalid_schema"),
    ],
)
def test_invalid_records_are_dead_lettered_with_a_reason(record: Any, reason: str) -> None:
    result = run(envelope(record))
    assert result.clean == []
    [dead] = result.dead
    assert (dead.reason, dead.stage, dead.record_id) == (reason, "cleaner", "b1:000000")
    assert dead.detail


def test_every_record_is_either_clean_or_dead() -> None:
    records = [
        {"indicateur": "x", "commune": c, "annee": 2020, "valeur": 1}
        for c in ["33063", "00000", "74010", "bad", "2B033"]
    ]
    result = run(envelope(*records))
    ids = [o.record_id for o in result.clean] + [d.record_id for d in result.dead]
    assert sorted(ids) == [f"b1:{i:06d}" for i in range(5)]
    assert len(result.clean) == 3


def test_personal_data_is_hashed_and_never_kept_in_clear() -> None:
    clear = {"nom_declarant": "Jeanne Martin", "email": "jeanne@example.org"}
    good = {
        "indicateur": "x",
        "commune": "33063",
        "annee": 2020,
        "valeur": 1,
        **clear,
        "note_libre": "Jeanne Martin",
    }
    bad = {**good, "commune": "99999"}
    result = run(envelope(good, bad))
    [obs], [dead] = result.clean, result.dead
    assert obs.pii == {
        "nom_declarant": HASHER.digest("Jeanne Martin"),
        "email": HASHER.digest("jeanne@example.org"),
    }
    assert obs.pii_key_id == HASHER.key_id
    for text in (obs.model_dump_json(), dead.model_dump_json()):
        assert "Jeanne" not in text and "jeanne@" not in text
    assert dead.payload is not None
    assert dead.payload["nom_declarant"] == "hmac-sha256:" + HASHER.digest("Jeanne Martin")
    assert "note_libre" not in dead.payload  # undeclared fields may be personal too


def test_validation_errors_do_not_echo_input() -> None:
    [dead] = run(
        envelope(
            {
                "indicateur": {"nested": "Jeanne Martin"},
                "commune": "33063",
                "annee": 2020,
                "valeur": 1,
            }
        )
    ).dead
    assert dead.reason == "invalid_schema"
    assert "Jeanne" not in dead.detail


def test_bare_record_from_a_kafka_native_producer() -> None:
    value = json.dumps(
        {"indicateur": "x", "commune": "33063", "annee": 2021, "valeur": 2.5}
    ).encode()
    [obs] = run(value).clean
    assert obs.record_id == "kafka:indicators.raw:2:41:000000"
    assert obs.version == ORIGIN.timestamp_ms * 1000
    assert obs.valeur == Decimal("2.5")


def test_producer_version_wins_over_the_default() -> None:
    [obs] = run(
        envelope({"indicateur": "x", "commune": "33063", "annee": 2021, "valeur": 1, "version": 7})
    ).clean
    assert obs.version == 7


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "invalid_message"),
        (b"\xff\xfe", "invalid_message"),
        (b'{"batch_id": 1, "records": []}', "invalid_message"),
        (b"[1, 2]", "invalid_schema"),
    ],  # a JSON array is one bare record, not an object
)
def test_unreadable_message_is_dead_lettered(value: bytes, reason: str) -> None:
    result = run(value)
    assert result.clean == []
    assert [d.reason for d in result.dead] == [reason]


GOOD_RECORD = {"indicateur": "x", "commune": "33063", "annee": 2020, "valeur": "1,5"}


def test_each_record_of_an_envelope_with_a_bad_header_is_dead_lettered_with_its_payload() -> None:
    value = json.dumps(
        {
            "batch_id": "b\u0000",  # a NUL: not a batch id
            "received_at": RECEIVED.isoformat(),
            "records": [GOOD_RECORD, {"indicateur": "x", "email": "jean@example.org"}, 3],
        }
    ).encode()
    result = run(value)
    assert result.clean == []
    assert [(d.record_id, d.reason) for d in result.dead] == [
        (f"kafka:indicators.raw:2:41:{i:06d}", "invalid_message") for i in range(3)
    ]
    assert all("batch_id" in d.detail and "source" in d.detail for d in result.dead)
    assert result.dead[0].payload == GOOD_RECORD
    assert result.dead[1].payload is not None
    assert result.dead[1].payload["email"].startswith("hmac-sha256:")  # never in clear
    assert result.dead[2].payload is None


def test_parse_value_is_exact() -> None:
    assert parse_value("0,1")[0] == Decimal("0.1")
    assert parse_value(Decimal("12345678901234567890.123"))[0] == Decimal(
        "12345678901234567890.123"
    )
    assert parse_value("1\u202f234")[0] == Decimal(1234)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            {"indicateur": "inconnu", "commune": "33063", "annee": 2020, "valeur": 1},
            "unknown_indicator",
        ),
        (
            {"indicateur": "population", "commune": "33063", "annee": 2020, "valeur": -1},
            "out_of_bounds",
        ),
        (
            {"indicateur": "temperature", "commune": "33063", "annee": 2020, "valeur": "61,5"},
            "out_of_bounds",
        ),
        (
            {"indicateur": "densite", "commune": "33063", "annee": 2020, "valeur": 3},
            "derived_indicator",
        ),
        # A sub-field the catalogue does not list, for an indicator that lists them.
        (
            {
                "indicateur": "taux",
                "commune": "33063",
                "annee": 2020,
                "valeur": 3,
                "sous_champ": "moins_25_ans",
            },
            "unknown_sous_champ",
        ),
        # A maximum cannot be combined across the parts of a merged commune.
        (
            {"indicateur": "temperature", "commune": "01340", "annee": 2020, "valeur": 30},
            "ambiguous_code",
        ),
    ],
)
def test_catalogue_rules(record: dict, reason: str) -> None:
    [dead] = run(envelope(record)).dead
    assert dead.reason == reason


def test_bounds_and_kinds_accept_what_they_should() -> None:
    records = [
        {"indicateur": "temperature", "commune": "01015", "annee": 2020, "valeur": 60},
        {"indicateur": "population", "commune": "01340", "annee": 2020, "valeur": 0},
        {"indicateur": "temperature", "commune": "33063", "annee": 2020, "valeur": "s"},
    ]
    assert len(run(envelope(*records)).clean) == 3


def test_listed_sub_fields_and_total_by_default_are_accepted() -> None:
    records = [
        {"indicateur": "taux", "commune": "33063", "annee": 2020, "valeur": 14},
        {"indicateur": "taux", "commune": "33063", "annee": 2020, "valeur": 22,
         "sous_champ": " moins_30_ans "},
        # Indicators that list no sub-field take any.
        {"indicateur": "x", "commune": "33063", "annee": 2020, "valeur": 1, "sous_champ": "€\t"},
    ]  # fmt: skip
    assert [o.sous_champ for o in run(envelope(*records)).clean] == ["total", "moins_30_ans", "€"]


@given(st.text(max_size=100).filter(lambda t: "\x00" not in t))
def test_any_unlisted_sub_field_is_refused_with_its_name_and_the_list(sous_champ: str) -> None:
    record = {"indicateur": "taux", "commune": "33063", "annee": 2020, "valeur": 1,
              "sous_champ": sous_champ}  # fmt: skip
    result = run(envelope(record))
    if " ".join(sous_champ.split()) in ("", "total", "moins_30_ans"):
        assert len(result.clean) == 1
        return
    [dead] = result.dead
    assert dead.reason in ("unknown_sous_champ", "invalid_schema")
    if dead.reason == "unknown_sous_champ":
        assert dead.detail.endswith("it has: moins_30_ans, total")


def test_unknown_indicators_can_be_kept_as_not_aggregable() -> None:
    rules = Rules(ref=load(), hasher=HASHER, catalogue=CATALOGUE, accept_unknown=True)
    [obs] = run(
        envelope({"indicateur": "inconnu", "commune": "33063", "annee": 2020, "valeur": 1}), rules
    ).clean
    assert obs.indicateur == "inconnu"


def test_a_sub_field_alias_is_read_as_its_sub_field() -> None:
    [obs] = run(
        envelope({"indicateur": "taux", "commune": "33063", "annee": 2024,
                  "sous_champ": " moins30 ", "valeur": 12})
    ).clean  # fmt: skip
    assert obs.sous_champ == "moins_30_ans"
    refused = run(
        envelope({"indicateur": "taux", "commune": "33063", "annee": 2024,
                  "sous_champ": "moins31", "valeur": 12})
    )  # fmt: skip
    assert [d.reason for d in refused.dead] == ["unknown_sous_champ"]


def test_an_alias_must_name_a_listed_sub_field_and_not_be_one() -> None:
    for aliases in ({"m30": "absent"}, {"total": "moins_30_ans"}):
        with pytest.raises(ValueError, match="alias"):
            Indicator(
                id="t", libelle="t", agregation="somme",
                sous_champs={"total": "Ensemble", "moins_30_ans": "-30"},
                alias_sous_champs=aliases,
            )  # fmt: skip


def test_only_values_that_add_up_may_be_summed_from_their_epcis() -> None:
    for agregation in ("somme", "nombre"):
        assert Indicator(id="t", libelle="t", agregation=agregation, somme_epci=True).somme_epci
    for agregation in ("min", "max", "non_agregeable"):
        with pytest.raises(ValueError, match="somme_epci"):
            Indicator(id="t", libelle="t", agregation=agregation, somme_epci=True)
