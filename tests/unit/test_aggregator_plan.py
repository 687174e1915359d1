from __future__ import annotations

import random
from decimal import Decimal, Inexact

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.catalogue import parse
from common.referential import ancestors, load
from schemas import limits
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.transform import CommuneState, ExtremeChange
from tests.strategies import values_within_bounds
from tests.unit.fakes import MemoryAggregates

RULES = AggregationRules.from_catalogue(
    parse("""
[[indicateur]]
id = "pop"
libelle = "population"
agregation = "somme"
[[indicateur]]
id = "co2"
libelle = "tonnes"
agregation = "somme"
[[indicateur]]
id = "equipee"
libelle = "communes équipées"
agregation = "nombre"
[[indicateur]]
id = "tmax"
libelle = "température maximale"
agregation = "max"
[[indicateur]]
id = "tmin"
libelle = "température minimale"
agregation = "min"
[[indicateur]]
id = "part"
libelle = "part pondérée par la population"
agregation = "moyenne_ponderee"
poids = "pop"
[[indicateur]]
id = "co2_par_hab"
libelle = "tonnes par habitant"
agregation = "ratio"
numerateur = "co2"
denominateur = "pop"
[[indicateur]]
id = "co2_par_hab_repli"
libelle = "tonnes par habitant, population d'une année antérieure au besoin"
agregation = "ratio"
numerateur = "co2"
denominateur = "pop"
repli_denominateur = 2
[[indicateur]]
id = "local"
libelle = "non agrégeable"
agregation = "non_agregeable"
""")
)
KINDS = ["pop", "co2", "equipee", "tmax", "tmin", "part", "local"]

ANCESTORS = ancestors(load())
# Communes of two EPCI of Haute-Savoie, Bordeaux, an island with no EPCI (22016,
# Île-de-Bréhat), and a merged commune (01015, which absorbed 01340).
COMMUNES = ["74010", "74042", "74164", "33063", "22016", "01015"]


def obs(
    commune: str,
    valeur: str | None,
    version: int = 1,
    *,
    source: str | None = None,
    indicateur: str = "pop",
    rid: str | None = None,
    explicit: bool = False,
    recu: int = 0,
    producteur: str | None = None,
) -> CleanObservation:
    return CleanObservation(
        record_id=rid or f"r{version}",
        indicateur=indicateur,
        annee=2024,
        commune=commune,
        commune_source=source or commune,
        valeur=None if valeur is None else Decimal(valeur),
        version=version,
        version_explicite=explicit,
        recu=recu,
        producteur=producteur,
    )


def store() -> MemoryAggregates:
    return MemoryAggregates(ANCESTORS, RULES)


def test_sums_every_level_from_communes() -> None:
    s = store()
    s.apply([obs("74010", "10", 1), obs("74042", "5", 1)])
    epci = load().communes["74010"].epci
    assert s.aggregates[("pop", "total", 2024, "departement", "74")][:2] == (Decimal(15), 2)
    assert s.aggregates[("pop", "total", 2024, "france", "FR")][:2] == (Decimal(15), 2)
    assert s.aggregates[("pop", "total", 2024, "epci", epci)][1] >= 1


def test_correction_replaces_the_value() -> None:
    s = store()
    s.apply([obs("74010", "10", 1)])
    s.apply([obs("74010", "7", 2)])
    assert s.aggregates[("pop", "total", 2024, "region", "84")][:2] == (Decimal(7), 1)


def test_duplicates_and_older_versions_change_nothing() -> None:
    s = store()
    s.apply([obs("74010", "10", 2)])
    before = dict(s.aggregates)
    s.apply([obs("74010", "10", 2), obs("74010", "99", 1)])
    assert s.aggregates == before
    assert s.stale == 2


def test_secret_cell_removes_the_commune_from_coverage() -> None:
    s = store()
    s.apply([obs("74010", "10", 1), obs("74042", "5", 1)])
    s.apply([obs("74010", None, 2)])
    assert s.aggregates[("pop", "total", 2024, "departement", "74")][:2] == (Decimal(5), 1)


def test_island_commune_without_epci_counts_above_it() -> None:
    s = store()
    s.apply([obs("22016", "400", 1)])
    levels = {k[3] for k in s.aggregates}
    assert levels == {"commune", "departement", "region", "france"}


def test_merged_commune_sums_its_former_parts_and_counts_once() -> None:
    s = store()
    s.apply(
        [
            obs("01015", "3", 1, source="01015", rid="a"),
            obs("01015", "4", 1, source="01340", rid="b"),
        ]
    )
    assert s.aggregates[("pop", "total", 2024, "commune", "01015")][:2] == (Decimal(7), 2)
    assert s.aggregates[("pop", "total", 2024, "departement", "01")][:2] == (Decimal(7), 1)


def test_arrondissements_add_up_into_their_commune_which_counts_once() -> None:
    s = store()
    s.apply(
        [
            obs("75056", "3", 1, source="75101", rid="a"),
            obs("75056", "4", 1, source="75120", rid="b"),
            obs("75056", "5", 2, source="75101", rid="c"),  # a correction of the 1st
        ]
    )
    assert s.aggregates[("pop", "total", 2024, "commune", "75056")][:2] == (Decimal(9), 2)
    assert s.aggregates[("pop", "total", 2024, "departement", "75")][:2] == (Decimal(9), 1)


def test_max_stays_exact_when_the_extreme_is_corrected_down() -> None:
    s = store()
    s.apply([obs("74010", "31", 1, indicateur="tmax"), obs("74042", "28", 1, indicateur="tmax")])
    assert s.aggregates[("tmax", "total", 2024, "departement", "74")][:2] == (Decimal(31), 2)
    s.apply([obs("74010", "25", 2, indicateur="tmax")])
    assert s.aggregates[("tmax", "total", 2024, "departement", "74")][:2] == (Decimal(28), 2)
    s.apply([obs("74042", None, 2, indicateur="tmax")])
    assert s.aggregates[("tmax", "total", 2024, "departement", "74")][:2] == (Decimal(25), 1)


def test_ratio_is_recomputed_from_summed_members_not_averaged() -> None:
    s = store()
    s.apply(
        [
            obs("74010", "100", indicateur="co2"),
            obs("74010", "10", indicateur="pop"),
            obs("74042", "30", indicateur="co2"),
            obs("74042", "90", indicateur="pop"),
            obs("74164", "50", indicateur="co2"),
        ]
    )  # no population: not paired
    _, paired, num, den, *_ = s.aggregates[("co2_par_hab", "total", 2024, "departement", "74")]
    assert (paired, num, den) == (2, Decimal(130), Decimal(100))  # 1.3, not mean(10, 1/3)
    s.apply([obs("74164", "20", indicateur="pop")])
    _, paired, num, den, *_ = s.aggregates[("co2_par_hab", "total", 2024, "departement", "74")]
    assert (paired, num, den) == (3, Decimal(180), Decimal(120))


def test_weighted_mean_follows_weight_corrections() -> None:
    s = store()
    s.apply(
        [
            obs("74010", "10", indicateur="part"),
            obs("74010", "100", indicateur="pop"),
            obs("74042", "40", indicateur="part"),
            obs("74042", "300", indicateur="pop"),
        ]
    )
    _, n, num, den, *_ = s.aggregates[("part", "total", 2024, "departement", "74")]
    assert (n, num / den) == (2, Decimal("32.5"))
    s.apply([obs("74042", "100", 2, indicateur="pop")])
    _, n, num, den, *_ = s.aggregates[("part", "total", 2024, "departement", "74")]
    assert num / den == Decimal(25)
    assert s.aggregates[("part", "total", 2024, "commune", "74042")][:2] == (Decimal(40), 1)


def test_nombre_counts_communes_with_a_non_zero_value() -> None:
    s = store()
    s.apply([obs("74010", "1", indicateur="equipee"), obs("74042", "0", indicateur="equipee")])
    assert s.aggregates[("equipee", "total", 2024, "departement", "74")][:2] == (Decimal(1), 2)


def test_not_aggregable_stays_at_commune_level() -> None:
    s = store()
    s.apply([obs("74010", "5", indicateur="local"), obs("74010", "5", indicateur="inconnu")])
    assert {k[3] for k in s.aggregates} == {"commune"}


# Values at the documented bounds (schemas/limits.py), negative ones, equal
# versions and versions at their bounds, explicit and implicit versions,
# record indexes past 9, several years and sub-fields, several producers
# (and none): where a wrong winner, a wrong owner or a rounding would show.
values = st.one_of(
    st.none(),
    st.decimals(-1000, 1000, places=3, allow_nan=False),
    values_within_bounds,
)
events = st.lists(
    st.tuples(
        st.sampled_from(COMMUNES),
        st.sampled_from([None, "01015", "01340"]),  # source code override (merged commune)
        values,
        # version: small range, so ties and reorderings happen; and the bounds
        st.one_of(st.integers(1, 4), st.sampled_from([0, limits.MAX_VERSION])),
        st.booleans(),  # explicit version?
        st.integers(1, 3),  # accepted at (µs): ties too
        st.integers(0, 12),  # index in its batch: b:9 against b:10
        st.sampled_from(KINDS),
        # Years 2 and 3 apart too: a denominator stands in for up to 2 years.
        st.sampled_from(
            [
                ("total", 2024),
                ("total", 2025),
                ("total", 2026),
                ("total", 2027),
                ("18-25 ans", 2024),
            ]
        ),
        st.sampled_from([None, "ademe", "dreal"]),  # producer
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(events, st.integers(1, 8), st.randoms(use_true_random=False))
def test_running_aggregates_equal_a_recomputation(
    drawn: list, batch: int, rng: random.Random
) -> None:
    records = [
        CleanObservation(
            record_id=f"b{i % 2}:{index:06d}",
            indicateur=ind,
            sous_champ=sous_champ,
            annee=annee,
            commune="01015" if source else commune,
            commune_source=source or commune,
            valeur=value,
            version=version,
            version_explicite=explicit,
            recu=recu,
            producteur=producteur,
        )
        for i, (
            commune,
            source,
            value,
            version,
            explicit,
            recu,
            index,
            ind,
            (sous_champ, annee),
            producteur,
        ) in enumerate(drawn)
    ]
    replay = records + rng.sample(records, len(records) // 2)  # duplicates, any order
    rng.shuffle(replay)
    s = store()
    for start in range(0, len(replay), batch):
        s.apply(replay[start : start + batch])
    assert s.nonempty(s.aggregates) == s.recompute()


def test_an_explicit_version_beats_the_acceptance_time_and_then_orders() -> None:
    s = store()
    s.apply([obs("74010", "10", 1_700_000_000_000_000)])  # implicit: the time it was accepted
    s.apply([obs("74010", "12", 3, explicit=True)])  # docs/producers.md's "version": 3
    s.apply([obs("74010", "11", 1_800_000_000_000_000)])  # implicit, later: stale
    s.apply([obs("74010", "9", 2, explicit=True)])  # explicit, lower: stale
    assert s.aggregates[("pop", "total", 2024, "commune", "74010")][:2] == (Decimal(12), 1)
    assert s.stale == 2
    s.apply([obs("74010", "13", 4, explicit=True)])
    assert s.aggregates[("pop", "total", 2024, "commune", "74010")][:2] == (Decimal(13), 1)


def test_equal_versions_the_later_accepted_then_the_later_record_wins() -> None:
    s = store()
    s.apply([obs("74010", "1", 5, explicit=True, recu=2, rid="b:000010")])
    s.apply([obs("74010", "2", 5, explicit=True, recu=1, rid="c:000011")])  # accepted earlier
    assert s.aggregates[("pop", "total", 2024, "commune", "74010")][0] == Decimal(1)
    s.apply(
        [
            obs("74010", "3", 5, explicit=True, recu=2, rid="b:000009"),
            obs("74010", "4", 5, explicit=True, recu=2, rid="b:000011"),
        ]
    )
    assert s.aggregates[("pop", "total", 2024, "commune", "74010")][0] == Decimal(4)


def test_a_producer_cannot_overwrite_nor_freeze_another_producers_value() -> None:
    s = store()
    s.apply([obs("74010", "10", 1, producteur="ademe")])
    s.apply([obs("74010", "99", limits.MAX_VERSION, explicit=True, producteur="intrus")])
    s.apply([obs("74010", "11", 2, producteur="ademe")])
    assert s.aggregates[("pop", "total", 2024, "commune", "74010")][0] == Decimal(11)
    assert s.foreign == 1
    # In one batch, the earliest accepted record's producer owns a new key.
    s.apply(
        [
            obs("74042", "5", 9, recu=20, producteur="intrus", rid="z"),
            obs("74042", "6", 1, recu=10, producteur="ademe", rid="a"),
        ]
    )
    assert s.aggregates[("pop", "total", 2024, "commune", "74042")][0] == Decimal(6)
    assert s.foreign == 2


def test_a_sum_that_would_round_raises_instead() -> None:
    digits = limits.EXACT_PRECISION + 2
    with pytest.raises(Inexact):
        store().apply([obs("74010", "1" + "0" * (digits - 2) + "1")])


def change(kind: str, *members: tuple[str | None, str | None]) -> ExtremeChange:
    """(before, after) of each member commune changed; None: no value."""
    found = ExtremeChange(kind)
    for old, new in members:
        found.member(
            CommuneState(Decimal(old or 0), old is not None),
            CommuneState(Decimal(new or 0), new is not None),
        )
    return found


@pytest.mark.parametrize(
    ("kind", "members", "current", "reporting", "settled"),
    [
        ("max", [(None, "5"), (None, "9")], "0", False, "9"),  # a first load: no recomputation
        ("min", [(None, "5"), (None, "9")], "0", False, "5"),
        ("max", [(None, None)], "0", False, "0"),  # a secret cell alone
        ("max", [("3", "4")], "8", True, "8"),  # below the extreme, staying below
        ("max", [("3", "12")], "8", True, "12"),  # a new extreme
        ("max", [("8", "12")], "8", True, "12"),  # the extreme raised
        ("max", [("8", "7")], "8", True, None),  # the extreme lowered: recompute
        ("max", [("8", None)], "8", True, None),  # the extreme made secret: recompute
        ("max", [("8", "7"), ("2", "9")], "8", True, "9"),  # lowered, but beaten in the batch
        ("max", [("5", None)], "8", True, "8"),  # a lesser value made secret
        ("min", [("2", "3")], "2", True, None),
        ("min", [("4", "1")], "2", True, "1"),
        ("min", [("-1e-9", "-1e-9")], "-1e-9", True, "-1e-9"),
    ],
)
def test_an_extreme_is_settled_unless_the_batch_took_it_away(
    kind: str,
    members: list[tuple[str | None, str | None]],
    current: str,
    reporting: bool,
    settled: str | None,
) -> None:
    found = change(kind, *members).settle(Decimal(current), reporting)
    assert found == (None if settled is None else Decimal(settled))
