"""The query parameters of the read endpoints, checked before any query runs."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Query

from schemas import limits
from schemas.aggregates import Niveau
from services.api.queries import Filters

CommuneCode = Annotated[str | None, Query(pattern=r"^(\d{5}|2[ABab]\d{3})$")]
# What the aggregator can hold (schemas/limits.py): longer text or a NUL
# cannot match anything, and Postgres refuses a NUL.
KeyText = Annotated[str | None, Query(max_length=limits.MAX_KEY_CHARS, pattern=r"^[^\x00]*$")]
MAX_OFFSET = 2**31 - 1
DEFAULT_LIMIT = 1000


def area_filters(
    commune: CommuneCode = None,
    epci: Annotated[str | None, Query(pattern=r"^\d{9}$")] = None,
    departement: Annotated[str | None, Query(pattern=r"^(\d{2,3}|2[ABab])$")] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{2,3}$")] = None,
    niveau: Niveau | None = None,
    indicateur: KeyText = None,
    annee: Annotated[int | None, Query(ge=1900, le=2100)] = None,
    sous_champ: KeyText = None,
) -> Filters:
    """What to show, without pages (the change feed has its cursor instead)."""
    return Filters(
        commune=commune.upper() if commune else None,
        epci=epci,
        departement=departement.upper() if departement else None,
        region=region,
        niveau=niveau,
        indicateur=indicateur,
        annee=annee,
        sous_champ=sous_champ,
    )


def filters(
    area: Annotated[Filters, Depends(area_filters)],
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=100_000,
            description=f"Rows per page (JSON default {DEFAULT_LIMIT}); "
            "CSV: every matching row unless given.",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Filters:
    return replace(area, limit=limit, offset=offset)
