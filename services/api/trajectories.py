"""Where a territory stands on the path to an objective (pure): the value
the path expects in a year, and ahead, on track or behind by how much.

The path runs from the baseline (year, value) to the target (year, value):
a straight line (``lineaire``), or the same rate each year
(``geometrique``: value × (target / baseline) ** share of the way). Before
the baseline there is no path; from the target year on, the path is the
target (``echeance_passee``). "On track" is within ``tolerance`` (a share of
the expected value) of the path; otherwise ahead or behind by the
indicator's direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Literal

from schemas.catalogue import Sens, Trajectoire

Position = Literal["en_avance", "sur_la_trajectoire", "en_retard"]
BEFORE_BASELINE = "the latest value is older than the baseline"


@dataclass(frozen=True)
class Path:
    annee_reference: int
    reference: Decimal
    annee: int
    objectif: Decimal
    forme: Trajectoire = "lineaire"

    def before(self, year: int) -> bool:
        """``year`` comes before the baseline's: no path there."""
        return year < self.annee_reference

    def expected(self, year: int) -> Decimal:
        """The path's value in ``year`` (from the baseline's year on)."""
        if year >= self.annee:
            return self.objectif
        with localcontext() as context:
            context.prec = 34
            share = Decimal(year - self.annee_reference) / (self.annee - self.annee_reference)
            if self.forme == "geometrique":  # one sign, neither zero (the catalogue checks)
                return self.reference * (self.objectif / self.reference) ** share
            return self.reference + (self.objectif - self.reference) * share


@dataclass(frozen=True)
class Standing:
    annee: int
    attendu: Decimal
    ecart: Decimal  # valeur − attendu
    ecart_relatif: Decimal | None  # ecart / |attendu|
    position: Position
    echeance_passee: bool


def stand(path: Path, year: int, valeur: Decimal, sens: Sens, tolerance: Decimal) -> Standing:
    """``valeur`` of ``year`` against the path; ``year`` from the baseline's on."""
    if path.before(year):
        raise ValueError(BEFORE_BASELINE)
    attendu = path.expected(year)
    with localcontext() as context:
        context.prec = 34
        ecart = valeur - attendu
        relatif = ecart / abs(attendu) if attendu else None
        if abs(ecart) <= tolerance * abs(attendu):
            position: Position = "sur_la_trajectoire"
        elif (ecart > 0) == (sens == "hausse"):
            position = "en_avance"
        else:
            position = "en_retard"
    return Standing(year, attendu, ecart, relatif, position, year >= path.annee)
