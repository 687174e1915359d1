"""Comparing territories: typologies (``GET /typologies``) and one
territory's group, nearest peers and ranks
(``GET /territoires/{niveau}/{code}/comparaison``). What is read is in
studies.py, the arithmetic in analysis.py, the answers in comparison_rows.py;
here, the parameters and how they are answered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from schemas import limits
from schemas.aggregates import Niveau
from services.api import analysis
from services.api.comparison_rows import (
    Comparaison,
    Exclu,
    Groupe,
    GroupeMembres,
    IndicateurCompare,
    Membre,
    Pair,
    Rang,
    Refus,
    Typologie,
)
from services.api.formats import MEDIA, Format, csv_lines
from services.api.rows import exact_text, number
from services.api.studies import (
    LevelValues,
    Question,
    Studies,
    Study,
    Wanted,
    label,
    parse_wanted,
)
from services.api.territories import CodeParam, find_territory

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
CouvertureParam = Annotated[
    float,
    Query(
        gt=0,
        le=1,
        description="The least coverage a territory's value needs to count (1: every "
        "commune reported). Below 1, a sum covers only the communes that reported: fit "
        "for ratios and means, misleading for stocks.",
    ),
]


def centre(typology: analysis.Typology, number: int, wanted: list[Wanted]) -> dict[str, float]:
    return {label(w): float(typology.centres[number - 1][j]) for j, w in enumerate(wanted)}


def territory_lines(study: Study, wanted: list[Wanted]) -> Iterator[dict[str, Any]]:
    """A typology's CSV: the grouped territories, then those left out."""
    assert study.typology is not None
    values, names = study.values, study.values.names
    for code, group in zip(study.codes, study.typology.groups, strict=True):
        exact = {label(w): exact_text(values.complete[w][code]) for w in wanted}
        yield {"code": code, "nom": names[code], "groupe": group, **exact, "raison": None}
    for code in sorted(set(names) - set(study.codes)):
        known = {label(w): exact_text(values.complete[w].get(code)) for w in wanted}
        yield {"code": code, "nom": names[code], "groupe": None, **known,
               "raison": values.why(code, wanted)}  # fmt: skip


def ranks(
    values: LevelValues, wanted: list[Wanted], described_: list[IndicateurCompare], code: str
) -> list[Rang]:
    """The territory's rank for each indicator, among the territories of its
    level with a complete value of that indicator."""
    rangs = []
    for w, d in zip(wanted, described_, strict=True):
        ranked = values.complete[w]  # the territories with a value to rank
        if code not in ranked:
            rangs.append(
                Rang(
                    indicateur=w[0], sous_champ=w[1], valeur=None, rang=None,
                    sur=len(ranked), meilleur_que=None,
                    raison=values.incomplete.get((code, w), "no value"),
                )
            )  # fmt: skip
            continue
        r = analysis.rank(list(ranked.values()), list(ranked).index(code), d.sens)
        rangs.append(
            Rang(
                indicateur=w[0], sous_champ=w[1], valeur=number(ranked[code]),
                rang=r.rang, sur=r.sur, meilleur_que=r.meilleur_que,
            )
        )  # fmt: skip
    return rangs


def router(engine: Engine, changed: Callable[[], int | None]) -> APIRouter:
    api = APIRouter()
    studies = Studies(changed)

    @api.get(
        "/typologies",
        response_model=Typologie,
        responses={
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
            422: {"model": Refus, "description": "Why it cannot be answered"},
        },
    )
    def typologies(
        niveau: Niveau,
        indicateurs: IndicateursParam,
        annee: AnneeParam,
        k: KParam = None,
        couverture_min: CouvertureParam = 1.0,
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
        question = Question(niveau, annee, tuple(wanted), k, couverture_min)
        study, described_ = studies.get(engine, question)
        if study.typology is None:
            raise HTTPException(422, study.why_not)
        if fmt != "json":
            columns = ["code", "nom", "groupe", *map(label, wanted), "raison"]
            return StreamingResponse(
                csv_lines(territory_lines(study, wanted), columns, fmt, frozenset(columns[3:-1])),
                media_type=MEDIA[fmt],
                headers={"Content-Disposition": 'attachment; filename="typologie.csv"'},
            )
        t, names = study.typology, study.values.names
        return Typologie(
            niveau=niveau,
            annee=annee,
            indicateurs=described_,
            k=t.k,
            k_choisi=t.chosen,
            silhouette=round(t.silhouette, 4),
            groupes=[
                GroupeMembres(
                    groupe=n,
                    taille=t.groups.count(n),
                    centre=centre(t, n, wanted),
                    membres=[
                        Membre(code=c, nom=names[c])
                        for c, g in zip(study.codes, t.groups, strict=True)
                        if g == n
                    ],
                )
                for n in range(1, t.k + 1)
            ],
            exclus=[
                Exclu(code=c, nom=names[c], raison=study.values.why(c, wanted))
                for c in sorted(set(names) - set(study.codes))
            ],
        )

    @api.get(
        "/territoires/{niveau}/{code}/comparaison",
        response_model=Comparaison,
        responses={
            404: {"description": "No such territory"},
            422: {"model": Refus, "description": "Why it cannot be answered"},
        },
    )
    def comparaison(
        niveau: Niveau,
        code: CodeParam,
        indicateurs: IndicateursParam,
        annee: AnneeParam,
        k: KParam = None,
        pairs: Annotated[int, Query(ge=0, le=50, description="Nearest peers shown.")] = 5,
        couverture_min: CouvertureParam = 1.0,
        grouper: Annotated[
            bool, Query(description="false: the ranks only, no typology (quicker).")
        ] = True,
    ) -> Comparaison:
        """One territory among those of its level: its group in the typology
        of the chosen indicators, its nearest peers (on the same standardized
        values), and its rank for each indicator, the best first by the
        catalogue's direction ("better than 73 % of EPCI")."""
        with engine.connect() as conn:
            territoire = find_territory(conn, niveau, code)
        wanted = parse_wanted(indicateurs)
        question = Question(niveau, annee, tuple(wanted), k, couverture_min, grouper)
        study, described_ = studies.get(engine, question)
        rangs = ranks(study.values, wanted, described_, territoire.code)
        complete = study.values.complete
        t, codes = study.typology, study.codes
        if t is None or territoire.code not in codes:
            why = study.why_not or study.values.why(territoire.code, wanted)
            return Comparaison(
                territoire=territoire, annee=annee, indicateurs=described_, groupe=None,
                k=t.k if t else None, pairs=[], rangs=rangs, raison=why or "no value",
            )  # fmt: skip
        i = codes.index(territoire.code)
        number_ = t.groups[i]
        return Comparaison(
            territoire=territoire,
            annee=annee,
            indicateurs=described_,
            groupe=Groupe(
                groupe=number_, taille=t.groups.count(number_), centre=centre(t, number_, wanted)
            ),
            k=t.k,
            pairs=[
                Pair(
                    code=codes[j],
                    nom=study.values.names[codes[j]],
                    distance=round(d, 6),
                    valeurs={label(w): number(complete[w][codes[j]]) for w in wanted},
                )
                for j, d in analysis.nearest(t.standardized, i, pairs)
            ],
            rangs=rangs,
        )

    return api
