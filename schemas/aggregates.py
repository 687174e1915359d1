"""``indicators.aggregates`` (compacted): the latest state of each aggregate.

Keyed by :meth:`AggregateChange.kafka_key`, so a compacted topic keeps the
current value of every (indicator, sub-field, year, level, territory).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

TOPIC = "indicators.aggregates"

Niveau = Literal["commune", "epci", "departement", "region", "france"]
NIVEAUX: tuple[Niveau, ...] = ("commune", "epci", "departement", "region", "france")


class AggregateChange(BaseModel):
    indicateur: str
    sous_champ: str
    annee: int
    niveau: Niveau
    code: str = Field(description="Territory code; `FR` for France.")
    valeur: Decimal | None = Field(description="Sum of reported values; None if none reported.")
    unite: str | None = None
    communes_renseignees: int = Field(description="Member communes with a value.")
    communes_total: int = Field(description="Member communes in the territory.")
    revision: int = Field(description="Increases with every change of this aggregate.")
    updated_at: datetime

    def kafka_key(self) -> str:
        return f"{self.indicateur}|{self.sous_champ}|{self.annee}|{self.niveau}|{self.code}"
