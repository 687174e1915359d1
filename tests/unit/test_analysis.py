"""The comparison arithmetic (services/api/analysis.py) and the catalogue's
objectives: known groups recovered, ranks against a count made another way,
any finite values grouped or refused with a reason, never a crash."""

from __future__ import annotations

import subprocess
import sys
from bisect import bisect_left, bisect_right
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from common.catalogue import parse
from services.api import analysis

BOUND = 10.0**21  # |valeur| < 10**21 (schemas/limits.py)


def blobs(sizes: list[int], centres: list[list[float]], seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack(
        [rng.normal(c, 0.3, size=(n, len(c))) for n, c in zip(sizes, centres, strict=True)]
    )


def test_k_means_recovers_known_groups_whatever_the_units() -> None:
    # Three groups; the second indicator is in units a million times larger.
    values = blobs([12, 7, 20], [[0, 0], [5, 5], [10, 0]])
    values[:, 1] *= 1e6
    typology = analysis.typology(values)
    assert (typology.k, typology.chosen) == (3, True)
    assert typology.groups == tuple([1] * 12 + [2] * 7 + [3] * 20)  # numbered by first member
    assert typology.centres[1] == pytest.approx(values[12:19].mean(axis=0))
    assert analysis.typology(values, k=3).groups == typology.groups
    assert not analysis.typology(values, k=3).chosen


def test_silhouette_is_sampled_above_a_bound_and_stays_deterministic() -> None:
    values = blobs([2500, 2500], [[0], [4]])
    first, second = analysis.typology(values), analysis.typology(values)
    assert first.k == 2 and first.groups == second.groups
    assert first.silhouette == second.silhouette


@pytest.mark.parametrize(
    ("values", "k", "why"),
    [
        (np.ones((10, 2)), None, "same values"),
        (np.array([[1.0], [2.0]]), None, "at least 3"),
        (np.empty((0, 2)), None, "at least 3"),
        (np.array([[1.0], [1.0], [2.0], [2.0]]), 3, "2 distinct"),
        (np.array([[1.0], [2.0], [3.0]]), 3, "3 territories"),
    ],
)
def test_what_cannot_be_grouped_says_why(values: np.ndarray, k: int | None, why: str) -> None:
    with pytest.raises(analysis.NotComparable, match=why):
        analysis.typology(values, k)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        float,
        st.tuples(st.integers(0, 25), st.integers(1, 4)),
        elements=st.floats(-BOUND, BOUND, allow_nan=False, allow_subnormal=False),
    ),
    st.none() | st.integers(2, 6),
)
def test_any_finite_values_are_grouped_or_refused_with_a_reason(
    values: np.ndarray, k: int | None
) -> None:
    try:
        typology = analysis.typology(values, k)
    except analysis.NotComparable as exc:
        assert str(exc)
        return
    assert len(typology.groups) == len(values)
    assert set(typology.groups) == set(range(1, typology.k + 1))
    firsts = [typology.groups.index(g) for g in range(1, typology.k + 1)]
    assert firsts == sorted(firsts)  # numbered in the territories' order
    assert np.isfinite(typology.centres).all()
    assert analysis.typology(values, k).groups == typology.groups


def slow_rank(values: list[Decimal], i: int, sens: str | None) -> tuple[int, float | None]:
    """Another way: positions in the sorted values."""
    ordered = sorted(values)
    below, above = bisect_left(ordered, values[i]), len(ordered) - bisect_right(ordered, values[i])
    if sens == "baisse":
        rang, worse = 1 + below, above
    else:
        rang, worse = 1 + above, below
    return rang, (worse / (len(values) - 1) if sens and len(values) > 1 else None)


values_within_bounds = st.decimals(
    min_value=Decimal(-(10**21)) + 1, max_value=Decimal(10**21) - 1, places=9, allow_nan=False
)


@given(
    st.lists(values_within_bounds, min_size=1, max_size=40),
    st.data(),
    st.sampled_from(["hausse", "baisse", None]),
)
def test_rank_and_percentile_agree_with_sorted_positions(
    values: list[Decimal], data: st.DataObject, sens: str | None
) -> None:
    i = data.draw(st.integers(0, len(values) - 1))
    r = analysis.rank(values, i, sens)  # type: ignore[arg-type]
    assert (r.rang, r.meilleur_que) == slow_rank(values, i, sens)
    assert r.sur == len(values)


def test_ties_share_the_better_rank() -> None:
    values = [Decimal(5), Decimal(9), Decimal(9), Decimal(1)]
    assert analysis.rank(values, 1, "hausse") == analysis.Rank(1, 4, 2 / 3)
    assert analysis.rank(values, 2, "hausse") == analysis.Rank(1, 4, 2 / 3)
    assert analysis.rank(values, 3, "baisse") == analysis.Rank(1, 4, 1.0)
    assert analysis.rank([Decimal(1)], 0, "hausse") == analysis.Rank(1, 1, None)


def test_nearest_is_by_distance_then_order() -> None:
    z = np.array([[0.0], [2.0], [-1.0], [1.0], [-2.0]])
    assert analysis.nearest(z, 0, 3) == [(2, 1.0), (3, 1.0), (1, 2.0)]
    assert analysis.nearest(z, 0, 0) == []


def test_objectives_scale_by_population_exactly_or_stay_the_same() -> None:
    # 400,000 charging points for 68,952,941 inhabitants; a town of 1,234.
    share = analysis.territory_objective(Decimal(400_000), "population", 1_234, 68_952_941)
    with localcontext() as exact:
        exact.prec = 34
        assert share == Decimal(400_000 * 1_234) / Decimal(68_952_941)
    assert str(share).startswith("7.158505")  # 493,600,000 / 68,952,941
    assert analysis.territory_objective(Decimal("2.5"), "identique", 1_234, 68_952_941) == 2.5
    assert analysis.territory_objective(Decimal(10**21 - 1), "population", 0, 1) == 0
    assert analysis.reached(Decimal(3), Decimal(3), "hausse")
    assert analysis.reached(Decimal(3), Decimal(3), "baisse")
    assert not analysis.reached(Decimal(4), Decimal(3), "baisse")


BASE = """
[[indicateur]]
id = "stock"
libelle = "Stock"
agregation = "somme"
sens = "hausse"
[[indicateur]]
id = "plain"
libelle = "Sans sens"
agregation = "somme"
[[indicateur]]
id = "taux"
libelle = "Taux"
agregation = "ratio"
numerateur = "stock"
denominateur = "plain"
sens = "baisse"
"""


def objective(**fields: object) -> str:
    entry = {"indicateur": "stock", "annee": 2030, "valeur": 10, "echelle": "population",
             "source": "loi", **fields}  # fmt: skip
    return "\n[[objectif]]\n" + "\n".join(
        f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in entry.items()
    )


def test_a_catalogue_with_objectives_reads_back() -> None:
    catalogue = parse(BASE + objective() + objective(indicateur="taux", echelle="identique"))
    assert [(o.indicateur, o.echelle, o.sous_champ) for o in catalogue.objectifs] == [
        ("stock", "population", "total"),
        ("taux", "identique", "total"),
    ]


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (objective(indicateur="absent"), "not in the catalogue"),
        (objective(indicateur="plain"), "needs a `sens`"),
        (objective(indicateur="taux"), "only a sum"),
        (objective() + objective(), "given twice"),
        (objective(valeur="inf"), "finite"),
        (objective(valeur="nan"), "finite"),
        (objective(valeur=10**21), "digits before the decimal point"),
        (objective(valeur=1e-10), "decimal places"),
        (objective(annee=2101), "less than or equal"),
        (objective(echelle="par_km2"), "population"),
        (objective(source=""), "at least 1"),
        (objective(annee_reference=2020), "go together"),
        (objective(annee_reference=2030, valeur_reference=5), "before annee"),
        (
            objective(annee_reference=2020, valeur_reference=-5, trajectoire="geometrique"),
            "one sign",
        ),
        (
            objective(annee_reference=2020, valeur_reference=0, trajectoire="geometrique"),
            "one sign",
        ),
        (objective(trajectoire="en_s"), "lineaire"),
        (objective(tolerance=2), "less than or equal"),
        (objective(niveau="epci", code="200066793"), "echelle = identique"),
        (objective(niveau="epci", code="FR", echelle="identique"), "only France"),
        (objective(niveau="france", code="33"), "only France"),
        (objective(niveau="epci", code="999999999", echelle="identique"), "no epci code"),
        (objective(niveau="commune", code="99999", echelle="identique"), "no commune"),
        (objective(niveau="departement", code="3\u0000", echelle="identique"), "pattern"),
    ],
)
def test_a_wrong_objective_is_refused_with_the_reason(extra: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse(
            BASE
            + extra.replace("valeur = 'inf'", "valeur = inf").replace(
                "valeur = 'nan'", "valeur = nan"
            )
        )


def test_a_territorys_own_objective_reads_back_with_its_path() -> None:
    local = objective(niveau="departement", code="2a", echelle="identique", annee_reference=2020,
                      valeur_reference=4, trajectoire="geometrique", tolerance=0.1)  # fmt: skip
    [own] = parse(BASE + local).objectifs
    assert (own.niveau, own.code, own.trajectoire) == ("departement", "2A", "geometrique")
    assert (own.annee_reference, own.valeur_reference, own.tolerance) == (2020, 4, Decimal("0.1"))
    # The same objective, nationally and for a territory: two objectives.
    assert len(parse(BASE + objective() + local.replace("identique", "identique")).objectifs) == 2


def test_the_shipped_catalogue_has_the_seeds_indicators_and_objectives() -> None:
    from common.catalogue import load

    shipped = load()
    for seed in ("nb_stations", "nb_pdc", "taux_pvt", "emissions_co2", "longueur_pistes_cyclables"):
        assert seed in shipped.indicateurs
    assert shipped.indicateurs["taux_pvt"].agregation == "non_agregeable"  # a rate alone
    assert "moins_30_ans" in shipped.indicateurs["taux_pvt"].sous_champs
    assert {o.indicateur for o in shipped.objectifs} >= {"nb_pdc", "emissions_co2"}


def test_the_api_starts_without_scikit_learn() -> None:
    """It is loaded at the first typology: at start it would double every
    API worker's memory (about 80 → 200 MB)."""
    probe = "import sys, services.api.app; print(sorted({'sklearn', 'scipy'} & set(sys.modules)))"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "[]"
