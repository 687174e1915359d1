from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import metrics
from common.referential import load
from services.ingestor.auth import Producers, ProducersFile, hash_token, new_token
from tests.editions import next_edition


def test_tokens_identify_their_producer() -> None:
    token = new_token()
    producers = Producers.parse(
        json.dumps({"ademe": hash_token(token), "dreal": hash_token(new_token())})
    )
    assert producers.required
    assert producers.identify(f"Bearer {token}") == "ademe"
    assert producers.identify(f"bearer   {token} ") == "ademe"
    assert producers.identify("Bearer nope") is None
    assert producers.identify(token) is None  # no scheme
    assert producers.identify(None) is None


def test_configuration_holds_hashes_only() -> None:
    with pytest.raises(ValueError, match="sha256"):
        Producers.parse(json.dumps({"ademe": "a-clear-token"}))
    assert not Producers.parse(None).required


def table(**producers: object) -> Producers:
    return Producers.of(producers, where="test")


def test_a_producer_may_hold_two_tokens_during_a_rotation() -> None:
    old, new = new_token(), new_token()
    producers = table(ademe=[hash_token(old), hash_token(new)])
    assert producers.identify(f"Bearer {old}") == producers.identify(f"Bearer {new}") == "ademe"
    revoked = table(ademe={"jetons": [hash_token(new)]})
    assert revoked.identify(f"Bearer {old}") is None
    assert revoked.identify(f"Bearer {new}") == "ademe"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"a": {"jetons": []}}, "at least 1"),
        ({"a": {"jetons": [hash_token("x")], "indicateur": ["p"]}}, "Extra inputs"),
        ({"a": {"jetons": [hash_token("x")], "indicateurs": []}}, "at least 1"),
        ({"a": {"jetons": [hash_token("x")], "territoires": ["canton:1"]}}, "level:code"),
        ({"a": {"jetons": [hash_token("x")], "territoires": ["departement:999"]}}, "no depart"),
        ({"a": hash_token("x"), "b": [hash_token("x")]}, "listed for a and b"),
        ({"": hash_token("x")}, "at least 1 character"),
        ({"a": hash_token("x").upper()}, "should match pattern"),
        (["a"], "valid dictionary"),
    ],
)
def test_a_mistaken_table_is_refused_whole_with_its_entry_named(
    config: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Producers.of(config, where="test")


def scope_of(**entry: object) -> Producers:
    return table(ademe={"jetons": [hash_token("t")], **entry})


def record(indicateur: object = "conso_elec", commune: object = "33063") -> dict[str, object]:
    return {"indicateur": indicateur, "commune": commune, "annee": 2022, "valeur": 1}


def test_a_producer_writes_only_the_indicators_it_is_given() -> None:
    producers = scope_of(indicateurs=["conso_*", "population"])
    lines = [(1, record("conso_elec")), (2, record("population")), (3, record("emissions"))]
    assert producers.refusals("ademe", lines) == [
        (3, "indicator 'emissions' is not among this producer's")
    ]
    # The name as the cleaner will store it (spaces folded), not as sent.
    assert producers.refusals("ademe", [(1, record(" conso_elec "))]) == []
    assert producers.refusals("ademe", [(1, record("conso elec"))]) != []
    assert producers.refusals("ademe", [(1, record("Population"))]) != []  # case counts


def test_a_producer_writes_only_in_its_territories_whatever_the_code_edition() -> None:
    producers = scope_of(territoires=["departement:33", "commune:2A004"])
    allowed = ["33063", 33063, "33 063".replace(" ", ""), "2A004", "2a004", "20004"]
    assert (
        producers.refusals("ademe", [(n, record(commune=c)) for n, c in enumerate(allowed)]) == []
    )
    refused = producers.refusals(
        "ademe",
        [(1, record(commune="75056")), (2, record(commune="99999")), (3, record(commune=""))],
    )
    assert [line for line, _ in refused] == [1, 2, 3]
    assert "outside this producer's territories" in refused[0][1]


def test_a_commune_named_by_its_label_is_placed_for_the_scope_as_the_cleaner_places_it() -> None:
    producers = scope_of(territoires=["departement:33"])

    def named(label: str, **more: object) -> dict[str, object]:
        return {"indicateur": "x", "libelle_territoire": label, "annee": 2022, **more}

    lines = [
        (1, named("Bordeaux")),
        (2, named("Sainte-Colombe", departement="33")),
        (3, named("Annecy")),
        (4, named("Sainte-Colombe", departement="17")),
        (5, named("Sainte-Colombe")),  # ambiguous: no one territory, nothing it may write
    ]
    refused = producers.refusals("ademe", lines)
    assert [line for line, _ in refused] == [3, 4, 5]
    assert "outside this producer's territories" in refused[0][1]


def test_a_value_published_for_a_territory_is_in_scope_where_a_scope_holds_it_whole() -> None:
    grand_annecy, bordeaux_metropole = "200066793", "243300316"

    def published(niveau: str, code: str) -> dict[str, object]:
        return {"indicateur": "x", "niveau": niveau, "code": code, "annee": 2022, "valeur": 1}

    lines = [
        (1, published("epci", bordeaux_metropole)),  # within the Gironde
        (2, published("departement", "33")),
        (3, published("epci", grand_annecy)),
        (4, published("region", "75")),  # holds the Gironde, not held by it
        (5, published("france", "FR")),
        (6, {"indicateur": "x", "niveau": "EPCI", "commune": bordeaux_metropole, "annee": 2022}),
    ]
    refused = scope_of(territoires=["departement:33"]).refusals("ademe", lines)
    assert [line for line, _ in refused] == [3, 4, 5]
    whole = scope_of(territoires=["region:75"]).refusals("ademe", lines)
    assert [line for line, _ in whole] == [3, 5]


def test_a_region_or_an_epci_covers_its_communes() -> None:
    assert scope_of(territoires=["region:75"]).refusals("ademe", [(1, record())]) == []
    assert scope_of(territoires=["region:11"]).refusals("ademe", [(1, record())]) != []
    bordeaux_metropole = "243300316"
    assert (
        scope_of(territoires=[f"epci:{bordeaux_metropole}"]).refusals("ademe", [(1, record())])
        == []
    )


def test_without_a_table_anyone_writes_anything_and_a_revoked_producer_nothing() -> None:
    assert Producers.parse(None).refusals("anonyme", [(1, record())]) == []
    assert table(ademe=hash_token("t")).refusals("gone", [(1, record()), (2, record())]) == [
        (1, "this producer's tokens were revoked"),
        (2, "this producer's tokens were revoked"),
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_file_is_read_again_when_it_changes_and_a_broken_one_keeps_the_last(
    tmp_path: Path,
) -> None:
    old, new = new_token(), new_token()
    path = tmp_path / "producteurs.toml"
    path.write_text(f'[ademe]\njetons = ["{hash_token(old)}"]\n')
    clock = Clock()
    producers = ProducersFile(path, clock=clock)
    assert producers.current().identify(f"Bearer {old}") == "ademe"

    # Rotation: the new token is added, both work, then the old one goes.
    path.write_text(f'# rotation\n[ademe]\njetons = ["{hash_token(old)}", "{hash_token(new)}"]\n')
    assert producers.current().identify(f"Bearer {new}") is None  # not checked again yet
    clock.now += 1
    assert producers.current().identify(f"Bearer {new}") == "ademe"
    assert producers.current().identify(f"Bearer {old}") == "ademe"
    path.write_text(f'[ademe]\njetons = ["{hash_token(new)}"]\n')
    clock.now += 1
    assert producers.current().identify(f"Bearer {old}") is None

    errors = metrics.PRODUCERS_FILE_ERRORS.labels("ingestor")
    before = errors._value.get()
    path.write_text('[ademe]\njetons = ["not a hash"]\n')
    clock.now += 1
    assert producers.current().identify(f"Bearer {new}") == "ademe"  # the last good table
    assert errors._value.get() == before + 1
    clock.now += 1
    producers.current()
    assert errors._value.get() == before + 1  # reported once per broken version


def test_a_file_that_does_not_read_at_start_stops_the_ingestor(tmp_path: Path) -> None:
    path = tmp_path / "producteurs.toml"
    path.write_text("[ademe\n")
    with pytest.raises(ValueError, match=r"producteurs\.toml"):
        ProducersFile(path)
    json_path = tmp_path / "producteurs.json"
    json_path.write_text(json.dumps({"ademe": {"jetons": [hash_token("t")]}}))
    assert ProducersFile(json_path).current().producers["ademe"].tokens == (hash_token("t"),)
    with pytest.raises(FileNotFoundError):
        ProducersFile(tmp_path / "absent.toml")


def test_a_producer_s_territories_follow_the_edition_the_ingestor_is_on() -> None:
    """A commune nouvelle of a later edition (loaded while the ingestor
    runs, followed from the editions topic) is within its EPCI's scope
    from then on; before, its code names no commune."""
    edition, names = next_edition()
    current = [load()]
    producers = Producers.of(
        {"ademe": {"jetons": [hash_token("t")], "territoires": [f"epci:{names['e5']}"]}},
        where="test",
        edition=lambda: current[0],
    )
    lines = [(1, record(commune=names["born"])), (2, record(commune=names["a"]))]
    assert [line for line, _ in producers.refusals("ademe", lines)] == [1]
    current[0] = edition
    assert producers.refusals("ademe", lines) == []
