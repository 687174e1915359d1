from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from itte.referential import load
from schemas.clean import CleanObservation
from services.aggregator.store import ancestors_from
from tests.unit.fakes import MemoryAggregates

ANCESTORS = ancestors_from(load())
# Communes of two EPCI of Haute-Savoie, Bordeaux, an island with no EPCI (22016,
# Île-de-Bréhat), and a merged commune (01015, which absorbed 01340).
COMMUNES = ["74010", "74042", "74164", "33063", "22016", "01015"]


def obs(
    commune: str,
    valeur: str | None,
    version: int,
    *,
    source: str | None = None,
    indicateur: str = "pop",
    rid: str | None = None,
) -> CleanObservation:
    return CleanObservation(
        record_id=rid or f"r{version}",
        indicateur=indicateur,
        annee=2024,
        commune=commune,
        commune_source=source or commune,
        valeur=None if valeur is None else Decimal(valeur),
        version=version,
    )


def store() -> MemoryAggregates:
    return MemoryAggregates(ANCESTORS.__getitem__)


def test_sums_every_level_from_communes() -> None:
    s = store()
    s.apply([obs("74010", "10", 1), obs("74042", "5", 1)])
    epci = load().communes["74010"].epci
    assert s.aggregates[("pop", "total", 2024, "departement", "74")] == (Decimal(15), 2)
    assert s.aggregates[("pop", "total", 2024, "france", "FR")] == (Decimal(15), 2)
    assert s.aggregates[("pop", "total", 2024, "epci", epci)][1] >= 1


def test_correction_replaces_the_value() -> None:
    s = store()
    s.apply([obs("74010", "10", 1)])
    s.apply([obs("74010", "7", 2)])
    assert s.aggregates[("pop", "total", 2024, "region", "84")] == (Decimal(7), 1)


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
    assert s.aggregates[("pop", "total", 2024, "departement", "74")] == (Decimal(5), 1)


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
    assert s.aggregates[("pop", "total", 2024, "commune", "01015")] == (Decimal(7), 2)
    assert s.aggregates[("pop", "total", 2024, "departement", "01")] == (Decimal(7), 1)


events = st.lists(
    st.tuples(
        st.sampled_from(COMMUNES),
        st.sampled_from([None, "01015", "01340"]),  # source code override (merged commune)
        st.one_of(st.none(), st.decimals(-1000, 1000, places=3, allow_nan=False)),
        st.integers(1, 6),  # version: small range, so ties and reorderings happen
        st.sampled_from(["pop", "co2"]),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(events, st.integers(1, 8), st.randoms(use_true_random=False))
def test_running_aggregates_equal_a_recomputation(
    drawn: list, batch: int, rng: random.Random
) -> None:
    records = [
        obs(
            "01015" if source else commune,
            None if value is None else str(value),
            version,
            source=source,
            indicateur=ind,
            rid=f"{i % 3}",
        )
        for i, (commune, source, value, version, ind) in enumerate(drawn)
    ]
    replay = records + rng.sample(records, len(records) // 2)  # duplicates, any order
    s = store()
    for start in range(0, len(replay), batch):
        s.apply(replay[start : start + batch])
    assert s.nonzero() == s.recompute()
