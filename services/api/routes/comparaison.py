"""Comparing territories: ``GET /typologies`` (the territories of a level in
groups) and ``GET /territoires/{niveau}/{code}/comparaison`` (one
territory's group, nearest peers and ranks). What they compute is in
``comparisons.py``."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from schemas import limits
from schemas.aggregates import Niveau
from services.api import comparisons
from services.api.comparisons import Question, territory_lines, typologie
from services.api.deps import EngineDep, StudiesDep, TerritoryDep, current_edition_only
from services.api.formats import MEDIA, Format, csv_lines
from services.api.models import Comparaison, Refus, Typologie
from services.api.reads.comparaison import label, parse_wanted
from services.api.streaming import TimedStreamingResponse

router = APIRouter()

MAX_INDICATORS = 8
# `population` or `taux_pvt:moins_30_ans` (a sub-field other than `total`).
ONE = r"[A-Za-z0-9_.-]{1,100}(:[^,:\x00]{1,100})?"
IndicateursParam = Annotated[
    str,
    Query(
        pattern=rf"^{ONE}(,{ONE}){{0,{MAX_INDICATORS - 1}}}$",
        description="Indicator ids, comma-separated (at most 8); `id:sous_champ` for a "
        "sub-field other than `total`.",
        examples=["nb_pdc,emissions_co2_par_hab"],
    ),
]
AnneeParam = Annotated[int, Query(ge=limits.YEAR_MIN, le=limits.YEAR_MAX)]
KParam = Annotated[
    int | None,
    Query(ge=2, le=20, description="Number of groups; without it, chosen by silhouette (2-10)."),
]
# Three decimal places at most: each value is a study of its own, so a
# float drawn at random would compute one k-means per request (issue #30).
CouvertureParam = Annotated[
    Decimal,
    Query(
        gt=0,
        le=1,
        decimal_places=3,
        description="The least coverage a territory's value needs to count (1: every "
        "commune reported), three decimal places at most. Below 1, a sum covers only "
        "the communes that reported: fit for ratios and means, misleading for stocks.",
    ),
]
UNANSWERABLE: dict[int | str, dict[str, Any]] = {
    422: {"model": Refus, "description": "Why it cannot be answered"},
    503: {"model": Refus, "description": "Too many comparisons being computed: retry later"},
}


@router.get(
    "/typologies",
    response_model=Typologie,
    dependencies=[Depends(current_edition_only)],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **UNANSWERABLE},
)
def typologies(
    request: Request,
    engine: EngineDep,
    studies: StudiesDep,
    niveau: Niveau,
    indicateurs: IndicateursParam,
    annee: AnneeParam,
    k: KParam = None,
    couverture_min: CouvertureParam = Decimal(1),
    fmt: Annotated[
        Format,
        Query(
            alias="format",
            description="`csv` (`csv-fr` for a French Excel): one line per territory, "
            "its group (empty when left out) and its values, exact.",
        ),
    ] = "json",
) -> Any:
    """The territories of a level in k groups (k-means on standardized
    values of the chosen indicators), over the territories whose values
    have the coverage asked (complete, by default); the others are listed
    apart. The same values always give the same groups."""
    wanted = parse_wanted(indicateurs)
    question = Question(niveau, annee, tuple(wanted), k, float(couverture_min))
    study = studies.get(engine, question)
    if study.typology is None:
        raise HTTPException(422, study.why_not)
    if fmt == "json":
        return typologie(study, question)
    columns = ["code", "nom", "groupe", *map(label, wanted), "raison"]
    return TimedStreamingResponse(
        csv_lines(territory_lines(study, wanted), columns, fmt, frozenset(columns[3:-1])),
        send_timeout=request.app.state.send_timeout,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": 'attachment; filename="typologie.csv"'},
    )


@router.get(
    "/territoires/{niveau}/{code}/comparaison",
    response_model=Comparaison,
    dependencies=[Depends(current_edition_only)],
    responses={404: {"description": "No such territory"}, **UNANSWERABLE},
)
def comparaison(
    engine: EngineDep,
    studies: StudiesDep,
    territoire: TerritoryDep,
    indicateurs: IndicateursParam,
    annee: AnneeParam,
    k: KParam = None,
    pairs: Annotated[int, Query(ge=0, le=50, description="Nearest peers shown.")] = 5,
    couverture_min: CouvertureParam = Decimal(1),
    grouper: Annotated[
        bool, Query(description="false: the ranks only, no typology (quicker).")
    ] = True,
) -> Comparaison:
    """One territory among those of its level: its group in the typology
    of the chosen indicators, its nearest peers (on the same standardized
    values), and its rank for each indicator, the best first by the
    catalogue's direction ("better than 73 % of EPCI")."""
    wanted = tuple(parse_wanted(indicateurs))
    question = Question(territoire.niveau, annee, wanted, k, float(couverture_min), grouper)
    return comparisons.comparaison(studies.get(engine, question), question, territoire, pairs)
