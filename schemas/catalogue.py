"""The indicator catalogue: what each indicator is, how it aggregates, which
way is better, and the national objectives set for it.

Served by the API at ``/indicateurs/catalogue``; read by the cleaner (unknown
indicators and sub-fields, bounds), the aggregator (aggregation rules) and the
API's comparisons (direction, objectives).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas import limits

Agregation = Literal["somme", "nombre", "min", "max", "moyenne_ponderee", "ratio", "non_agregeable"]
ADDITIVE: frozenset[str] = frozenset({"somme", "nombre"})
# hausse: the higher the better (charging points); baisse: the lower (emissions).
Sens = Literal["hausse", "baisse"]
# How a national objective becomes a territory's: population: its share of the
# national total by inhabitants (a stock, e.g. 400,000 charging points);
# identique: the same value everywhere (a rate, a share, a per-inhabitant figure).
Echelle = Literal["population", "identique"]
# The path from an objective's baseline to its target: a straight line, or a
# constant rate each year (as the carbon budgets are cut).
Trajectoire = Literal["lineaire", "geometrique"]
Portee = Literal["france", "epci", "departement", "region", "commune"]
# Which value a territory's row shows when a source published one for it.
Priorite = Literal["publiee", "agregee"]


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
    repli_denominateur: int = Field(
        0,
        ge=0,
        le=limits.REPLI_MAX,
        description="ratio: how many years back a commune's denominator may come from when "
        "it has none for the value's year (its latest earlier one within them; 0: the same "
        "year only). Each row says which year it used (`annee_denominateur`).",
    )
    poids: str | None = Field(None, description="moyenne_ponderee: weight (additive).")
    sens: Sens | None = Field(
        None,
        description="hausse: the higher the better; baisse: the lower the better. "
        "Orders ranks and objectives; none: ranks by value, no 'better than'.",
    )
    sous_champs: dict[str, str] = Field(
        {},
        description="The sub-fields it is published by (code → label), e.g. age bands; "
        "empty: `total` or any. When given, any other sub-field is dead-lettered.",
    )

    alias_sous_champs: dict[str, str] = Field(
        {},
        description="Other codes sources use for a sub-field (alias → a code of "
        '`sous_champs`), e.g. `moins30 = "moins_30_ans"`: read as that code.',
    )
    priorite: Priorite = Field(
        "publiee",
        description="A territory with a value published for it and one aggregated from its "
        "communes: `publiee`, its row's `valeur` is the published one; `agregee`, the "
        "aggregated one, the published only where no commune reported. Both are served "
        "(`valeur_publiee` beside `valeur`, `origine` says which `valeur` is).",
    )

    somme_epci: bool = Field(
        False,
        description="somme or nombre: a département whose communes all belong to EPCIs lying "
        "wholly within it, each with a value published for it, is served the sum of those "
        "values (`origine`: `somme_epci`) where no value is published for the département "
        "itself, by `priorite` as a published value. Never added further up. A ratio whose "
        "terms both say it: the quotient of their sums, once every EPCI published both.",
    )

    @model_validator(mode="after")
    def _aliases(self) -> Indicator:
        for alias, code in self.alias_sous_champs.items():
            if code not in self.sous_champs or alias in self.sous_champs:
                raise ValueError(
                    f"{self.id}: alias {alias!r} must name a sub-field of sous_champs, "
                    f"and not be one ({code!r})"
                )
        return self

    def sous_champ_of(self, code: str) -> str:
        """``code`` as the catalogue names it (an alias read as its sub-field)."""
        return self.alias_sous_champs.get(code, code)

    @model_validator(mode="after")
    def _rule_fields(self) -> Indicator:
        if self.agregation == "ratio" and not (self.numerateur and self.denominateur):
            raise ValueError(f"{self.id}: a ratio needs numerateur and denominateur")
        if self.repli_denominateur and self.agregation != "ratio":
            raise ValueError(f"{self.id}: repli_denominateur is a ratio's")
        if self.somme_epci and self.agregation not in ("somme", "nombre", "ratio"):
            raise ValueError(f"{self.id}: somme_epci adds values up: somme, nombre or ratio")
        if self.agregation == "moyenne_ponderee" and not self.poids:
            object.__setattr__(self, "poids", "population")
        return self

    @property
    def derived(self) -> bool:
        """Computed from other indicators, never observed directly."""
        return self.agregation == "ratio"


class Objective(BaseModel):
    """A national objective for one indicator and year (``[[objectif]]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indicateur: str
    sous_champ: str = "total"
    annee: int = Field(ge=limits.YEAR_MIN, le=limits.YEAR_MAX)
    valeur: Decimal = Field(description="The national value to reach.")
    echelle: Echelle = Field(
        description="population: a territory's share by inhabitants (stocks only); "
        "identique: the same value for every territory (rates, shares)."
    )
    libelle: str = ""
    source: str = Field(min_length=1, description="The text that sets it.")
    annee_reference: int | None = Field(
        None, ge=limits.YEAR_MIN, le=limits.YEAR_MAX, description="The baseline's year."
    )
    valeur_reference: Decimal | None = Field(
        None, description="The baseline's value, at the objective's scale (national or local)."
    )
    trajectoire: Trajectoire = "lineaire"
    tolerance: Decimal = Field(
        Decimal("0.02"),
        ge=0,
        le=1,
        description="How far from the path (a share of the expected value) is still on it.",
    )
    niveau: Portee = Field(
        "france", description="france: a national objective; else a territory's own (a PCAET's)."
    )
    code: str = Field("FR", min_length=1, max_length=9, pattern=r"^[0-9A-Za-z]+$")

    @field_validator("valeur", "valeur_reference")
    @classmethod
    def _within_bounds(cls, value: Decimal | None) -> Decimal | None:
        """Within the bounds of an observation's value: finite, and fit for
        a JSON number once scaled."""
        if value is None:
            return None
        try:
            return limits.check_number(value)
        except limits.OutOfBounds as exc:
            raise ValueError(f"objective value: {exc}") from None

    @field_validator("code")
    @classmethod
    def _upper(cls, code: str) -> str:
        return code.upper()  # 2a is 2A

    @model_validator(mode="after")
    def _path(self) -> Objective:
        where = f"objective for {self.indicateur} {self.annee}"
        if (self.annee_reference is None) != (self.valeur_reference is None):
            raise ValueError(f"{where}: annee_reference and valeur_reference go together")
        if self.annee_reference is not None and self.annee_reference >= self.annee:
            raise ValueError(f"{where}: annee_reference must come before annee")
        reference = self.valeur_reference
        if (
            self.trajectoire == "geometrique"
            and reference is not None
            and reference * self.valeur <= 0
        ):
            raise ValueError(
                f"{where}: a geometric path needs a baseline and a target of one sign, neither zero"
            )
        if (self.niveau == "france") != (self.code == "FR"):
            raise ValueError(f"{where}: code FR is France's, and only France's")
        if self.niveau != "france" and self.echelle != "identique":
            raise ValueError(
                f"{where}: a territory's own objective is at its own scale: echelle = identique"
            )
        return self

    @property
    def national(self) -> bool:
        return self.niveau == "france"


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True)

    indicateurs: dict[str, Indicator]
    objectifs: tuple[Objective, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> Catalogue:
        for ind in self.indicateurs.values():
            for ref in (ind.numerateur, ind.denominateur, ind.poids):
                if ref is None:
                    continue
                target = self.indicateurs.get(ref)
                if target is None or target.agregation not in ADDITIVE:
                    raise ValueError(f"{ind.id}: {ref} must be an additive catalogue indicator")
                if ind.somme_epci and ind.agregation == "ratio" and not target.somme_epci:
                    raise ValueError(f"{ind.id}: somme_epci on a ratio needs it on {ref} too")
        seen: set[tuple[str, str, int, str, str]] = set()
        for objective in self.objectifs:
            key = (
                objective.indicateur,
                objective.sous_champ,
                objective.annee,
                objective.niveau,
                objective.code,
            )
            target = self.indicateurs.get(objective.indicateur)
            if target is None:
                raise ValueError(f"objective for {objective.indicateur}: not in the catalogue")
            if target.sens is None:
                raise ValueError(f"objective for {target.id}: the indicator needs a `sens`")
            if objective.echelle == "population" and target.agregation != "somme":
                raise ValueError(
                    f"objective for {target.id}: only a sum (a stock) is shared by population; "
                    f"a {target.agregation} objective is `identique`"
                )
            if key in seen:
                raise ValueError(
                    f"objective for {target.id} {objective.annee} given twice "
                    f"({objective.niveau} {objective.code})"
                )
            seen.add(key)
        return self

    def get(self, indicator_id: str) -> Indicator | None:
        return self.indicateurs.get(indicator_id)
