"""Where a value stands on the path to an objective, against cases computed
by hand: ahead, on track, behind, either direction, a straight and a
geometric path, the target year passed, a year before the baseline."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.api.models import SANS_POSITION, SansPosition
from services.api.reads.objectifs import Latest
from services.api.routes.objectifs import where
from services.api.trajectories import BEFORE_BASELINE, Path, stand

D = Decimal
# 100,000 charging points in 2023, 400,000 in 2030: 42,857.14… more a year.
POINTS = Path(2023, D(100_000), 2030, D(400_000))
# Emissions from 540 in 1990 to 270 in 2030: halved, straight or at a constant rate.
EMISSIONS = Path(1990, D(540), 2030, D(270))
EMISSIONS_RATE = Path(1990, D(540), 2030, D(270), "geometrique")
TOLERANCE = D("0.02")


def test_a_straight_path_expects_its_share_of_the_way() -> None:
    # 2026: 3/7 of the way: 100,000 + 300,000 × 3/7 = 228,571.428…
    assert POINTS.expected(2026).quantize(D("0.001")) == D("228571.429")
    assert POINTS.expected(2023) == 100_000 and POINTS.expected(2030) == 400_000
    assert POINTS.expected(2035) == 400_000  # the target, once its year is passed


def test_a_geometric_path_keeps_one_rate_each_year() -> None:
    # Halved in 40 years: × 0.5^(1/40) a year; in 2010, 540 × 0.5^0.5 = 381.837…
    assert EMISSIONS_RATE.expected(2010).quantize(D("0.001")) == D("381.838")
    rates = [EMISSIONS_RATE.expected(y + 1) / EMISSIONS_RATE.expected(y) for y in range(1990, 2029)]
    assert max(rates) - min(rates) < D("1e-30")
    assert EMISSIONS.expected(2010) == 405  # straight: halfway


@pytest.mark.parametrize(
    ("path", "year", "value", "sens", "position", "ecart"),
    [
        # 2026, expected 228,571.43: 250,000 is 9.375 % above, and higher is better.
        (POINTS, 2026, D(250_000), "hausse", "en_avance", D("21428.571")),
        (POINTS, 2026, D(200_000), "hausse", "en_retard", D("-28571.429")),
        # Within 2 % (4,571.43) of the path: on track, either side.
        (POINTS, 2026, D(232_000), "hausse", "sur_la_trajectoire", D("3428.571")),
        (POINTS, 2026, D(225_000), "hausse", "sur_la_trajectoire", D("-3571.429")),
        # Lower is better: 380 against 405 is ahead; 420 behind.
        (EMISSIONS, 2010, D(380), "baisse", "en_avance", D(-25)),
        (EMISSIONS, 2010, D(420), "baisse", "en_retard", D(15)),
        # The target's year passed: measured against the target (2 % is 8,000).
        (POINTS, 2031, D(395_000), "hausse", "sur_la_trajectoire", D(-5_000)),
        (POINTS, 2031, D(300_000), "hausse", "en_retard", D(-100_000)),
        # The baseline's own year: measured against the baseline.
        (POINTS, 2023, D(100_000), "hausse", "sur_la_trajectoire", D(0)),
    ],
)
def test_a_value_stands_ahead_on_track_or_behind_as_computed_by_hand(
    path: Path, year: int, value: Decimal, sens: str, position: str, ecart: Decimal
) -> None:
    found = stand(path, year, value, sens, TOLERANCE)  # type: ignore[arg-type]
    assert found.position == position
    assert found.ecart.quantize(D("0.001")) == ecart.quantize(D("0.001"))
    assert found.annee == year and found.echeance_passee == (year >= path.annee)
    assert float(found.ecart_relatif or 0) == pytest.approx(float(found.ecart / abs(found.attendu)))


def test_a_year_before_the_baseline_has_no_position() -> None:
    with pytest.raises(ValueError, match=BEFORE_BASELINE):
        stand(POINTS, 2022, D(90_000), "hausse", TOLERANCE)


def test_a_path_to_zero_has_no_relative_gap_at_its_end() -> None:
    found = stand(Path(2020, D(10), 2030, D(0)), 2030, D(1), "baisse", TOLERANCE)
    assert found.ecart_relatif is None and found.position == "en_retard"


@given(
    start=st.integers(1900, 2099),
    span=st.integers(1, 200),
    reference=st.decimals(-(10**20), 10**20, places=6, allow_nan=False),
    target=st.decimals(-(10**20), 10**20, places=6, allow_nan=False),
    offset=st.integers(0, 300),
)
def test_a_straight_path_stays_between_its_ends(
    start: int, span: int, reference: Decimal, target: Decimal, offset: int
) -> None:
    path = Path(start, reference, start + span, target)
    expected = path.expected(start + offset)
    assert min(reference, target) <= expected <= max(reference, target)
    on_it = stand(path, start + offset, expected, "hausse", D(0))
    assert on_it.position == "sur_la_trajectoire" and on_it.ecart == 0


def test_an_answer_says_why_it_has_no_position_by_a_code_and_in_words() -> None:
    """Each reason, from the first that holds: no baseline, no value, an
    incomplete one, one older than the baseline (the page reads the code)."""
    row = SimpleNamespace(
        annee_reference=2023, annee=2030, trajectoire="lineaire", sens="hausse", tolerance=TOLERANCE
    )
    cases = [
        (None, Latest(2026, D(1), True), "sans_reference"),
        (D(100_000), None, "sans_valeur"),
        (D(100_000), Latest(2026, None, True), "sans_valeur"),
        (D(100_000), Latest(2026, D(1), False), "couverture_incomplete"),
        (D(100_000), Latest(2022, D(1), True), "avant_reference"),
    ]
    for reference, latest, code in cases:
        assert where(row, latest, D(400_000), reference) == (None, code)
    assert set(SANS_POSITION) == set(get_args(SansPosition))
    assert SANS_POSITION["avant_reference"] == BEFORE_BASELINE
    position, why = where(row, Latest(2026, D(228_571), True), D(400_000), D(100_000))
    assert (why, position and position.position) == (None, "sur_la_trajectoire")
