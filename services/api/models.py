"""What the API answers, as response models (OpenAPI is made of them), and
how a row of ``aggregate_values`` becomes one. The CLI reads some back
(``itte compare``, ``itte typology``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from common.referential import CURRENT_EDITION
from schemas.aggregates import Niveau, Origine
from schemas.catalogue import Sens, Trajectoire
from services.api.trajectories import BEFORE_BASELINE, Position

# ---------------------------------------------------------------- indicateurs

DENOMINATOR_YEAR = Field(
    None,
    description="A ratio's: the year of the denominators it divides by, the row's own or, by "
    "the indicator's `repli_denominateur`, an earlier one where its communes had none for the "
    "row's (a population not yet published); null when its communes used different years "
    "(see `communes_repli`), or not a ratio.",
)
FALLBACKS = Field(
    None,
    description="A ratio's: how many of its communes divide by a denominator of an earlier "
    "year than the row's (0: none); null when not a ratio.",
)


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
    origine: Origine = Field(
        description="`agregee`: `valeur` is aggregated from the communes; `publiee`: it is the "
        "value a source published for the territory itself (its communes then count as "
        "reported); `somme_epci`: a département's, the sum of the values published for its "
        "EPCIs, which lie within it and hold all its communes (the indicator's `somme_epci`). "
        "Which one a row shows is the indicator's `priorite` (the catalogue)."
    )
    valeur_publiee: float | int | str | None = Field(
        description="The value a source published for the territory, if any, beside the "
        "aggregated one (as `valeur`: exact text with `exact=true`)."
    )
    annee_denominateur: int | None = DENOMINATOR_YEAR
    communes_repli: int | None = FALLBACKS
    millesime: int = Field(
        description="The edition of the map (Code officiel géographique) the territory and "
        "its communes are taken from: the current one unless `millesime` asked for another."
    )
    estimee: bool = Field(
        description="On an older edition: part of `valeur` comes from a value keyed on a "
        "commune made since out of several of the edition's communes, split among them by "
        "their population. Always false on the current edition."
    )


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


def coverage(reporting: int, total: int) -> dict[str, Any]:
    """The fields that say how many of a territory's communes reported."""
    return {
        "communes_renseignees": reporting,
        "communes_total": total,
        "couverture": reporting / total if total else 0.0,
        "complet": reporting == total,
    }


def to_public(
    row: Any, exact: bool = False, millesime: int | None = None, estimee: bool = False
) -> IndicateurPublic:
    """``millesime``: an older edition's; None for the current one, which
    the row says (read with it: ``reads.indicateurs.ROW``)."""
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
        **coverage(row.communes_renseignees, row.communes_total),
        mis_a_jour=row.updated_at,
        origine=row.origine,
        valeur_publiee=exact_text(row.valeur_publiee) if exact else number(row.valeur_publiee),
        annee_denominateur=row.annee_denominateur,
        communes_repli=row.communes_repli,
        millesime=row.millesime if millesime is None else millesime,
        estimee=estimee,
    )


def public_row(row: Any, exact: bool) -> dict[str, Any]:
    return to_public(row, exact).model_dump(mode="json")


# ---------------------------------------------------------------- territoires


class Territoire(BaseModel):
    niveau: Niveau
    code: str
    nom: str


class Fiche(Territoire):
    parent: Territoire | None = Field(
        description="Where it belongs: a commune's EPCI (else its département), an EPCI's "
        "main département, a département's région, a région's France."
    )
    departement: Territoire | None = Field(
        description="The département a commune lies in, or an EPCI mostly (as its parent); "
        "none above."
    )
    membres: Niveau | None = Field(description="The level of its members, for comparison.")


# ---------------------------------------------------------------- objectifs

SansPosition = Literal["sans_reference", "sans_valeur", "couverture_incomplete", "avant_reference"]
# Each as words, in the API's language.
SANS_POSITION: dict[SansPosition, str] = {
    "sans_reference": "no baseline in the catalogue",
    "sans_valeur": "no value",
    "couverture_incomplete": "incomplete coverage",
    "avant_reference": BEFORE_BASELINE,
}


class PositionTrajectoire(BaseModel):
    """Where the territory stands on the path, in its latest year with a value."""

    annee: int = Field(description="The latest year with a value (`annee_valeur`).")
    attendu: float | int = Field(description="The path's value that year.")
    ecart: float | int = Field(description="valeur − attendu.")
    ecart_relatif: float | None = Field(description="ecart / |attendu|.")
    position: Position = Field(
        description="On track: within the objective's tolerance of the path; else ahead "
        "or behind by the indicator's direction."
    )
    echeance_passee: bool = Field(description="That year is the target's or later.")


class ObjectifTerritoire(BaseModel):
    indicateur: str
    sous_champ: str
    libelle: str = Field(description="The objective, as its source words it.")
    unite: str | None
    sens: str = Field(description="hausse: reached at or above; baisse: at or below.")
    source: str
    echelle: str = Field(
        description="population: the national objective × the territory's share of the "
        "population; identique: the national value itself."
    )
    annee_objectif: int
    objectif_national: float | int | None = Field(
        description="The national value; none for a territory's own objective."
    )
    objectif: float | int = Field(description="The objective at the territory's scale.")
    annee_valeur: int | None = Field(description="The latest year with a value (≤ `annee`).")
    valeur: float | int | None
    complet: bool | None = Field(description="Every commune of the territory reported.")
    ecart: float | int | None = Field(description="valeur − objectif.")
    ecart_relatif: float | None = Field(description="ecart / objectif.")
    atteint: bool | None = Field(
        description="By the direction; none when the value is missing or incomplete "
        "(a partial sum says nothing of the whole)."
    )
    portee: Literal["nationale", "locale"] = Field(
        description="nationale: brought to the territory by `echelle`; locale: the "
        "territory's own (a PCAET's), at its own scale."
    )
    annee_reference: int | None = Field(description="The baseline's year.")
    reference: float | int | None = Field(
        description="The baseline's value at the territory's scale (as `objectif`)."
    )
    trajectoire: Trajectoire = Field(description="The path's shape.")
    tolerance: float = Field(description="How far from the path is on it (a share).")
    position: PositionTrajectoire | None = Field(
        description="Where the latest value stands on the path; none as `sans_position` says."
    )
    sans_position: str | None = Field(description="Why there is no position, in words.")
    sans_position_code: SansPosition | None = Field(
        description="Why there is no position: `sans_reference` (no baseline in the "
        "catalogue), `sans_valeur`, `couverture_incomplete`, `avant_reference` (the latest "
        "value is older than the baseline)."
    )


class Objectifs(BaseModel):
    territoire: Territoire
    population: int = Field(description="Population municipale of the referential's edition.")
    population_france: int
    objectifs: list[ObjectifTerritoire]


# ---------------------------------------------------------------- comparaison


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


# Why a territory has no rank: no row, a secret value, too few communes.
RaisonCode = Literal["sans_valeur", "secret", "couverture_incomplete"]


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
    raison: str | None = Field(None, description="Why no rank, in words.")
    raison_code: RaisonCode | None = Field(
        None,
        description="Why no rank: `sans_valeur` (no row), `secret` (secret or not reported), "
        "`couverture_incomplete` (fewer communes reported than asked: "
        "`communes_renseignees` of `communes_total`).",
    )
    communes_renseignees: int | None = Field(None, description="With couverture_incomplete.")
    communes_total: int | None = Field(None, description="With couverture_incomplete.")


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


# ---------------------------------------------------------------- groupements


class Groupement(BaseModel):
    code: str
    nom: str
    communes_total: int
    mis_a_jour: datetime


class GroupementFiche(Groupement):
    communes: list[Membre] = Field(description="Its communes, on the referential's edition.")


class ValeurGroupement(BaseModel):
    """An indicator aggregated over a grouping's communes, by the rule that
    makes an EPCI's (``agregation``), at the time of the request."""

    indicateur: str
    sous_champ: str
    annee: int
    agregation: str
    valeur: float | int | str | None = Field(
        description="As in /indicateurs: exact decimal text with `exact=true`."
    )
    unite: str | None
    communes_renseignees: int
    communes_total: int
    couverture: float = Field(description="communes_renseignees / communes_total")
    complet: bool
    mis_a_jour: datetime = Field(description="The latest change of a member's value.")
    annee_denominateur: int | None = DENOMINATOR_YEAR
    communes_repli: int | None = FALLBACKS
    millesime: int = Field(
        CURRENT_EDITION, description="The edition of the map its communes are taken from."
    )
    estimee: bool = Field(
        False, description="Part of `valeur` split by population (see /indicateurs)."
    )
