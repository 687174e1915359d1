"""What a row of the API is, in JSON and CSV, and in the change feed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from schemas.aggregates import Niveau


class IndicateurPublic(BaseModel):
    indicateur: str
    sous_champ: str
    annee: int
    niveau: Niveau
    code: str
    nom: str
    agregation: str = Field(description="How it aggregates (see /indicateurs/catalogue).")
    valeur: float | int | str | None = Field(
        description="None when no member reported a value; with `exact=true`, a decimal text "
        "with every digit (sums are exact; a ratio or a mean has at least 16 significant "
        "digits)."
    )
    unite: str | None
    communes_renseignees: int
    communes_total: int
    couverture: float = Field(description="communes_renseignees / communes_total")
    complet: bool
    mis_a_jour: datetime


ROWS = TypeAdapter(list[IndicateurPublic])
CSV_COLUMNS = tuple(IndicateurPublic.model_fields)  # the JSON row's fields, in its order


class Changement(IndicateurPublic):
    curseur: int = Field(description="Its place in the change feed: ask from here next time.")


class ChangesPage(BaseModel):
    changements: list[Changement]
    curseur: int = Field(description="Pass it as `depuis` next time.")


def number(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def exact_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def to_public(row: Any, exact: bool = False) -> IndicateurPublic:
    reporting, total = row.communes_renseignees, row.communes_total
    return IndicateurPublic(
        indicateur=row.indicateur,
        sous_champ=row.sous_champ,
        annee=row.annee,
        niveau=row.niveau,
        code=row.code,
        nom=row.nom,
        agregation=row.agregation,
        valeur=exact_text(row.valeur) if exact else number(row.valeur),
        unite=row.unite,
        communes_renseignees=reporting,
        communes_total=total,
        couverture=reporting / total if total else 0.0,
        complet=reporting == total,
        mis_a_jour=row.updated_at,
    )


def public_row(row: Any, exact: bool) -> dict[str, Any]:
    return to_public(row, exact).model_dump(mode="json")
