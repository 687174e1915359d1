"""A ratio whose denominator may be of an earlier year (catalogue
``repli_denominateur``): a commune's numerator of year Y divides by its
denominator of Y, else of its latest earlier year within the rule, and a
denominator arriving, corrected or made secret moves the ratios of the later
years that use it. Judged against tests/oracle.py (no code of the aggregator)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from common.catalogue import parse
from schemas import limits
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from tests.unit.fakes import MemoryAggregates
from tests.unit.test_aggregator_plan import ANCESTORS, RULES

COMMUNES = ["74010", "74042", "74164"]  # two of one EPCI, one of another; all in 74
YEARS = range(2020, 2027)
RATIO = "co2_par_hab_repli"  # co2 / pop × 1, pop of up to 2 years before


def obs(commune: str, annee: int, valeur: str | None, indicateur: str, version: int = 1):
    return CleanObservation(
        record_id=f"{indicateur}:{commune}:{annee}:{version}",
        indicateur=indicateur,
        annee=annee,
        commune=commune,
        commune_source=commune,
        valeur=None if valeur is None else Decimal(valeur),
        version=version,
    )


def store() -> MemoryAggregates:
    return MemoryAggregates(ANCESTORS, RULES)


def row(s: MemoryAggregates, annee: int, niveau: str = "departement", code: str = "74"):
    """(value, paired communes, fell back, Σ years back, Σ squares) of the ratio."""
    _, n, num, den, replis, years, squares = s.aggregates[(RATIO, "total", annee, niveau, code)]
    return (num / den if den else None), n, replis, years, squares


def test_a_missing_population_is_taken_from_the_latest_earlier_year() -> None:
    s = store()
    s.apply(
        [
            obs("74010", 2024, "100", "co2"),
            obs("74010", 2022, "10", "pop"),
            obs("74010", 2023, "20", "pop"),  # the latest before 2024: used
            obs("74042", 2024, "30", "co2"),
            obs("74042", 2024, "30", "pop"),  # its own year's
        ]
    )
    assert row(s, 2024) == (Decimal(130) / Decimal(50), 2, 1, 1, 1)
    assert row(s, 2024, "commune", "74010") == (Decimal(5), 1, 1, 1, 1)
    # The same-year ratio pairs 74042 only.
    same = s.aggregates[("co2_par_hab", "total", 2024, "departement", "74")]
    assert (same[1], same[2], same[3]) == (1, Decimal(30), Decimal(30))


def test_a_population_arriving_later_moves_the_ratios_that_fell_back() -> None:
    s = store()
    s.apply([obs("74010", 2026, "100", "co2"), obs("74010", 2024, "10", "pop")])
    assert row(s, 2026, "commune", "74010") == (Decimal(10), 1, 1, 2, 4)
    s.apply([obs("74010", 2025, "20", "pop")])  # nearer: replaces 2024's
    assert row(s, 2026, "commune", "74010") == (Decimal(5), 1, 1, 1, 1)
    s.apply([obs("74010", 2026, "25", "pop")])  # its own year's at last
    assert row(s, 2026, "commune", "74010") == (Decimal(4), 1, 0, 0, 0)
    s.apply([obs("74010", 2026, None, "pop", version=2)])  # made secret: back to 2025's
    assert row(s, 2026, "commune", "74010") == (Decimal(5), 1, 1, 1, 1)
    s.apply([obs("74010", 2025, "50", "pop", version=2)])  # 2025's corrected
    assert row(s, 2026) == (Decimal(2), 1, 1, 1, 1)
    assert s.nonempty(s.aggregates) == s.recompute()


def test_never_further_back_than_the_rule() -> None:
    s = store()
    s.apply([obs("74010", 2026, "100", "co2"), obs("74010", 2023, "10", "pop")])
    assert (RATIO, "total", 2026, "commune", "74010") not in s.nonempty(s.aggregates)
    assert s.nonempty(s.aggregates) == s.recompute()


def test_years_at_their_bounds() -> None:
    """The first year falls back to none before it; the last one's
    population stands in for no later year (none can be sent)."""
    s = store()
    first, last = limits.YEAR_MIN, limits.YEAR_MAX
    s.apply(
        [
            obs("74010", first, "10", "co2"),
            obs("74010", first + 2, "30", "co2"),
            obs("74010", first, "5", "pop"),
            obs("74010", last, "9", "co2"),
            obs("74010", last - 1, "3", "pop"),
            obs("74010", last, "4", "pop", version=1),
        ]
    )
    assert row(s, first, "commune", "74010") == (Decimal(2), 1, 0, 0, 0)
    assert row(s, first + 2, "commune", "74010") == (Decimal(6), 1, 1, 2, 4)
    assert row(s, last, "commune", "74010") == (Decimal(9) / 4, 1, 0, 0, 0)
    s.apply([obs("74010", last, None, "pop", version=2)])  # secret: the year before's
    assert row(s, last, "commune", "74010") == (Decimal(3), 1, 1, 1, 1)
    assert s.nonempty(s.aggregates) == s.recompute()


def test_a_catalogue_refuses_a_fallback_outside_a_ratio_or_beyond_the_bound() -> None:
    terms = "".join(
        f'[[indicateur]]\nid = "{t}"\nlibelle = "{t}"\nagregation = "somme"\n' for t in "ab"
    )
    base = terms + '[[indicateur]]\nid = "x"\nlibelle = "x"\n'
    with pytest.raises(ValidationError, match="repli_denominateur is a ratio's"):
        parse(base + 'agregation = "somme"\nrepli_denominateur = 1\n')
    ratio = base + 'agregation = "ratio"\nnumerateur = "a"\ndenominateur = "b"\n'
    with pytest.raises(ValidationError, match="less than or equal to 10"):
        parse(ratio + "repli_denominateur = 11\n")
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        parse(ratio + "repli_denominateur = -1\n")
    rules = AggregationRules.from_catalogue(parse(ratio + "repli_denominateur = 10\n"))
    [rule] = rules.pairs_by_member["b"]
    assert list(rule.years_moved("b", 2000)) == list(range(2000, 2011))
    assert list(rule.years_moved("a", 2000)) == [2000]


# Dense histories of one ratio's terms over a few communes and years, in any
# order and batching, replayed and corrected: where a fallback moves.
events = st.lists(
    st.tuples(
        st.sampled_from(COMMUNES),
        st.sampled_from(YEARS),
        st.sampled_from(["co2", "pop"]),
        st.one_of(st.none(), st.decimals(-50, 1000, places=2, allow_nan=False)),
        st.integers(1, 3),  # version
    ),
    max_size=50,
)


@settings(max_examples=300, deadline=None)
@given(events, st.integers(1, 6), st.randoms(use_true_random=False))
def test_fallbacks_equal_a_recomputation_in_any_order(
    drawn: list, batch: int, rng: random.Random
) -> None:
    records = [
        obs(c, y, None if v is None else str(v), ind, version) for c, y, ind, v, version in drawn
    ]
    replay = records + rng.sample(records, len(records) // 2)
    rng.shuffle(replay)
    s = store()
    for start in range(0, len(replay), batch):
        s.apply(replay[start : start + batch])
    assert s.nonempty(s.aggregates) == s.recompute()
