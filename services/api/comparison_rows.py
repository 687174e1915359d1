"""What the comparisons answer (``GET /typologies``,
``/territoires/{niveau}/{code}/comparaison``), in JSON; read back by
``itte typologie`` and ``itte comparer``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from schemas.aggregates import Niveau
from schemas.catalogue import Sens
from services.api.territories import Territoire


class IndicateurCompare(BaseModel):
    indicateur: str
    sous_champ: str
    libelle: str
    unite: str | None
    sens: Sens | None = Field(description="hausse: higher is better; baisse: lower is better.")


class Membre(BaseModel):
    code: str
    nom: str


class Exclu(Membre):
    raison: str = Field(description="Which indicator is missing or incomplete, and how.")


class Groupe(BaseModel):
    groupe: int
    taille: int
    centre: dict[str, float] = Field(description="The group's mean, in each indicator's unit.")


class GroupeMembres(Groupe):
    membres: list[Membre]


class Typologie(BaseModel):
    niveau: Niveau
    annee: int
    indicateurs: list[IndicateurCompare]
    k: int
    k_choisi: bool = Field(description="True: k chosen by silhouette, not given.")
    silhouette: float
    groupes: list[GroupeMembres]
    exclus: list[Exclu] = Field(
        description="Territories with a value for some indicator but not a complete one "
        "for all: left out of the groups."
    )


class Pair(Membre):
    distance: float = Field(description="Euclidean, on standardized values.")
    valeurs: dict[str, float | int | None]


class Rang(BaseModel):
    indicateur: str
    sous_champ: str
    valeur: float | int | None
    rang: int | None = Field(description="1: the best (the highest without a direction).")
    sur: int = Field(description="Territories of the level with a complete value.")
    meilleur_que: float | None = Field(
        description="Share of the other territories ranked that do strictly worse (0.73: "
        "better than 73 %); none without a direction."
    )
    raison: str | None = None


class Comparaison(BaseModel):
    territoire: Territoire
    annee: int
    indicateurs: list[IndicateurCompare]
    groupe: Groupe | None
    k: int | None
    pairs: list[Pair]
    rangs: list[Rang]
    raison: str | None = Field(None, description="Why the territory has no group.")


class Refus(BaseModel):
    """A 422: why the question cannot be answered (an indicator not in the
    catalogue, too few territories…), or FastAPI's list of invalid parameters."""

    detail: str | list[dict[str, Any]]
