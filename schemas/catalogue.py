"""The indicator catalogue: what each indicator is and how it aggregates.

Served by the API at ``/indicateurs/catalogue``; read by the cleaner (unknown
indicators, bounds) and the aggregator (aggregation rules).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Agregation = Literal["somme", "nombre", "min", "max", "moyenne_ponderee", "ratio", "non_agregeable"]
ADDITIVE: frozenset[str] = frozenset({"somme", "nombre"})


class Indicator(BaseModel):
    """One catalogue entry (``[[indicateur]]`` in the TOML file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    libelle: str
    unite: str | None = None
    description: str = ""
    source: str = ""
    min: Decimal | None = Field(None, description="Values below are dead-lettered.")
    max: Decimal | None = Field(None, description="Values above are dead-lettered.")
    agregation: Agregation = Field(
        description="somme: sum; nombre: communes with a non-zero value; min, max; "
        "moyenne_ponderee: weighted by `poids`; ratio: numerateur / denominateur × facteur, "
        "recomputed at each level; non_agregeable: commune level only."
    )
    numerateur: str | None = Field(None, description="ratio: additive indicator on top.")
    denominateur: str | None = Field(None, description="ratio: additive indicator below.")
    facteur: Decimal = Field(Decimal(1), description="ratio: multiplier, e.g. 100 for a %.")
    poids: str | None = Field(None, description="moyenne_ponderee: weight (additive).")

    @model_validator(mode="after")
    def _rule_fields(self) -> Indicator:
        if self.agregation == "ratio" and not (self.numerateur and self.denominateur):
            raise ValueError(f"{self.id}: a ratio needs numerateur and denominateur")
        if self.agregation == "moyenne_ponderee" and not self.poids:
            object.__setattr__(self, "poids", "population")
        return self

    @property
    def derived(self) -> bool:
        """Computed from other indicators, never observed directly."""
        return self.agregation == "ratio"


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True)

    indicateurs: dict[str, Indicator]

    @model_validator(mode="after")
    def _references(self) -> Catalogue:
        for ind in self.indicateurs.values():
            for ref in (ind.numerateur, ind.denominateur, ind.poids):
                if ref is None:
                    continue
                target = self.indicateurs.get(ref)
                if target is None or target.agregation not in ADDITIVE:
                    raise ValueError(f"{ind.id}: {ref} must be an additive catalogue indicator")
        return self

    def get(self, indicator_id: str) -> Indicator | None:
        return self.indicateurs.get(indicator_id)
