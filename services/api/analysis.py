"""Comparing the territories of one level (pure): typologies by k-means on
standardized values, nearest peers, ranks and percentiles, and national
objectives brought to a territory. The routes (services/api/routes/comparaison.py)
read the values; nothing here touches a database.

Values are compared as they are: exact decimals for ranks and objectives,
floats only where k-means and distances need them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

import numpy as np

from schemas.catalogue import Echelle, Sens

MAX_K = 10  # the silhouette's search, when k is not given
# Silhouette is quadratic in the territories: above this many (communes), it
# is computed on a fixed sample of them, the same at every call.
SILHOUETTE_SAMPLE = 2000
SEED = 0  # k-means and the sample: the same values always give the same groups


class NotComparable(ValueError):
    """The values cannot be grouped as asked; the message says why."""


def standardized(values: np.ndarray) -> np.ndarray:
    """Each column centred and divided by its standard deviation, so that no
    indicator weighs more for its unit; a constant column becomes 0. Each
    column is first divided by its largest magnitude: the variance of values
    near 1e21 or 1e-9 then neither overflows nor underflows."""
    largest = np.abs(values).max(axis=0) if len(values) else np.ones(values.shape[1])
    scaled = values / np.where(largest == 0, 1.0, largest)
    spread = scaled.std(axis=0)
    return (scaled - scaled.mean(axis=0)) / np.where(spread == 0, 1.0, spread)


@dataclass(frozen=True)
class Typology:
    groups: tuple[int, ...]  # each territory's group, 1..k
    centres: np.ndarray  # k × indicators, in the indicators' own units
    k: int
    chosen: bool  # k chosen by silhouette, not given
    silhouette: float
    standardized: np.ndarray  # what k-means grouped, for the distances to peers


def typology(values: np.ndarray, k: int | None = None) -> Typology:
    """k-means on the standardized values (rows: territories, in a fixed
    order). Groups are numbered by their first territory, so the same values
    give the same numbers. Without ``k``, the k of 2..10 with the best
    silhouette (the smaller on a tie)."""
    n = len(values)
    if n < 3:
        raise NotComparable(f"grouping needs at least 3 territories with complete values; {n}")
    z = standardized(values)
    distinct = len(np.unique(z, axis=0))
    if distinct < 2:
        raise NotComparable("every territory has the same values: there is nothing to group")
    if k is not None:
        if not 2 <= k < min(n, distinct + 1):
            raise NotComparable(
                f"k={k} groups need more territories with distinct complete values "
                f"than k: {n} territories, {distinct} distinct"
            )
        labels = _kmeans(z, k)
        if len(set(labels.tolist())) < k:
            raise NotComparable(f"the values are too close together to be told apart in {k} groups")
        return _typology(values, z, labels, k, False)
    candidates = range(2, min(MAX_K, n - 1, distinct) + 1)
    best: tuple[float, int, np.ndarray] | None = None
    for candidate in candidates:  # a quicker fit to compare the ks, the full one for the best
        labels = _kmeans(z, candidate, tries=3)
        if len(set(labels.tolist())) < candidate:
            continue  # fewer groups than asked: too close together to tell apart
        score = _silhouette(z, labels)
        if best is None or score > best[0]:
            best = (score, candidate, labels)
    if best is None:
        raise NotComparable("the values are too close together to be told apart in groups")
    k = best[1]
    labels = _kmeans(z, k)
    return _typology(values, z, labels, k, True)


# scikit-learn (and the SciPy and pandas it loads) is imported at the first
# typology, not at start: it doubled every API worker's memory (80 → 200 MB)
# for an endpoint most deployments call rarely.
def _kmeans(z: np.ndarray, k: int, tries: int = 10) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # fewer distinct points than k is refused above
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=k, n_init=tries, random_state=SEED).fit(z)
    return np.asarray(model.labels_)


def _silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    if len(set(labels.tolist())) < 2:
        return -1.0
    sample = SILHOUETTE_SAMPLE if len(z) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(z, labels, sample_size=sample, random_state=SEED))


def _typology(
    values: np.ndarray, z: np.ndarray, labels: np.ndarray, k: int, chosen: bool
) -> Typology:
    numbers: dict[int, int] = {}
    for label in labels.tolist():  # in the territories' order
        numbers.setdefault(label, len(numbers) + 1)
    groups = tuple(numbers[label] for label in labels.tolist())
    centres = np.array(
        [values[[g == number for g in groups]].mean(axis=0) for number in range(1, k + 1)]
    )
    return Typology(groups, centres, k, chosen, _silhouette(z, labels), z)


def nearest(z: np.ndarray, i: int, count: int) -> list[tuple[int, float]]:
    """The ``count`` territories closest to territory ``i`` on standardized
    values (Euclidean), closest first, ties in the territories' order."""
    distances = np.linalg.norm(z - z[i], axis=1)
    order = sorted((float(d), j) for j, d in enumerate(distances) if j != i)
    return [(j, d) for d, j in order[:count]]


@dataclass(frozen=True)
class Rank:
    rang: int  # 1: the best (or the highest, without a direction)
    sur: int  # territories ranked
    meilleur_que: float | None  # share of the others strictly worse; None without a direction


def rank(values: Sequence[Decimal], i: int, sens: Sens | None) -> Rank:
    """Territory ``i``'s place among ``values``, ties sharing the better rank."""
    mine = values[i]
    higher = sum(1 for v in values if v > mine)
    lower = sum(1 for v in values if v < mine)
    better, worse = (lower, higher) if sens == "baisse" else (higher, lower)
    share = worse / (len(values) - 1) if sens is not None and len(values) > 1 else None
    return Rank(rang=1 + better, sur=len(values), meilleur_que=share)


def territory_objective(
    national: Decimal, echelle: Echelle, population: int, national_population: int
) -> Decimal:
    """The national objective brought to a territory: its share by inhabitants
    for a stock, the same value for a rate or a share."""
    if echelle == "identique":
        return national
    with localcontext() as context:
        context.prec = 34
        return national * population / national_population


def reached(valeur: Decimal, objectif: Decimal, sens: Sens) -> bool:
    return valeur >= objectif if sens == "hausse" else valeur <= objectif
