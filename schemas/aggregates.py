"""``indicators.aggregates`` (compacted): the latest state of each aggregate,
at every level, with what a row of the API carries.

Keyed by :meth:`AggregateChange.kafka_key`, so a compacted topic keeps the
current value of every (indicator, sub-field, year, level, territory).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, computed_field

TOPIC = "indicators.aggregates"

Niveau = Literal["commune", "epci", "departement", "region", "france"]
# Where a row's valeur comes from: its communes, or a source that published it.
Origine = Literal["agregee", "publiee", "somme_epci"]
NIVEAUX: tuple[Niveau, ...] = ("commune", "epci", "departement", "region", "france")


class AggregateChange(BaseModel):
    """What a row of ``GET /indicateurs`` carries, and the aggregate's revision."""

    indicateur: str
    sous_champ: str
    annee: int
    niveau: Niveau
    code: str = Field(description="Territory code; `FR` for France.")
    nom: str = Field(description="The territory's name.")
    agregation: str = Field(
        description="The indicator's rule: `somme`, `moyenne`, `moyenne_ponderee`, `ratio`, "
        "`min`, `max`, `non_agregeable`..."
    )
    valeur: Decimal | None = Field(
        description="The value by the indicator's rule (a sum, a ratio, a mean, an extreme), "
        "exact as stored; None when no member commune reported one."
    )
    unite: str | None = None
    origine: Origine = Field(
        "agregee",
        description="`agregee`: valeur is aggregated from the communes; `publiee`: it is the "
        "value a source published for the territory (then the communes count as reported); "
        "`somme_epci`: a département's, the sum of the values published for its EPCIs (the "
        "indicator's `somme_epci`).",
    )
    valeur_publiee: Decimal | None = Field(
        None, description="The value published for the territory, if any, whatever `origine`."
    )
    annee_denominateur: int | None = Field(
        None,
        description="A ratio's: the year of the denominators it divides by, the row's own or, "
        "by the indicator's `repli_denominateur`, an earlier one where its communes had none; "
        "null when its communes used different years, or not a ratio.",
    )
    communes_repli: int | None = Field(
        None,
        description="A ratio's: how many of its paired communes divide by a denominator of an "
        "earlier year than the row's (0: none); null when not a ratio.",
    )
    communes_renseignees: int = Field(description="Member communes with a value.")
    communes_total: int = Field(description="Member communes in the territory.")
    revision: int = Field(description="Increases with every change of this aggregate.")
    updated_at: datetime

    @computed_field(description="communes_renseignees / communes_total")  # type: ignore[prop-decorator]
    @property
    def couverture(self) -> float:
        return self.communes_renseignees / self.communes_total if self.communes_total else 0.0

    @computed_field(description="Every member commune reported a value.")  # type: ignore[prop-decorator]
    @property
    def complet(self) -> bool:
        return self.communes_renseignees == self.communes_total

    def kafka_key(self) -> str:
        return f"{self.indicateur}|{self.sous_champ}|{self.annee}|{self.niveau}|{self.code}"
