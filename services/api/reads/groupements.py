"""What ``/groupements`` reads: the groupings users defined
(``services/api/groupements.py``) and every indicator aggregated over one.

A grouping's values are computed when asked, from its communes' rows of
``aggregates``, by the rules that make an EPCI's (``verify.RECOMPUTE``
states them over the observations): a sum, a count of communes with a
non-zero value, an extreme, or the sums of a ratio's or a weighted mean's
terms over the communes that have both. A grouping is at most a few
thousand communes, and each is found by the aggregates' territory index.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, text

from common.db import communes, groupement_communes, groupements
from services.api.models import (
    Groupement,
    GroupementFiche,
    Membre,
    ValeurGroupement,
    coverage,
    exact_text,
    number,
)

FILTERS = ("indicateur", "annee", "sous_champ")

VALUES = """
WITH members AS (
    SELECT a.indicateur, a.sous_champ, a.annee, a.valeur, a.numerateur, a.denominateur,
           a.repli_annees AS lag, -- a commune's years back to its ratio's denominator
           coalesce(i.unite, a.unite) AS unite, a.updated_at, i.agregation, i.facteur,
           -- A weighted mean counts the communes that have a weight too.
           i.agregation <> 'moyenne_ponderee' OR EXISTS (
               SELECT 1 FROM aggregates w
               WHERE (w.indicateur, w.sous_champ, w.annee, w.niveau, w.code)
                   = (i.poids, a.sous_champ, a.annee, 'commune', a.code)
                 AND w.nb_valeurs > 0
           ) AS compte
    FROM groupement_communes g
    JOIN aggregates a ON a.niveau = 'commune' AND a.code = g.commune
    JOIN indicators i ON i.id = a.indicateur AND i.agregation <> 'non_agregeable'
    WHERE g.groupement = :groupement AND a.nb_valeurs > 0 {filters}
)
SELECT indicateur, sous_champ, annee, agregation,
       CASE agregation
           WHEN 'somme' THEN sum(valeur)
           WHEN 'nombre' THEN count(*) FILTER (WHERE valeur <> 0)
           WHEN 'min' THEN min(valeur)
           WHEN 'max' THEN max(valeur)
           WHEN 'ratio' THEN sum(numerateur) / NULLIF(sum(denominateur), 0) * min(facteur)
           ELSE sum(numerateur) FILTER (WHERE compte)
                / NULLIF(sum(denominateur) FILTER (WHERE compte), 0)
       END AS valeur,
       min(unite) AS unite,
       (count(*) FILTER (WHERE compte))::int AS communes_renseignees,
       max(updated_at) AS updated_at,
       CASE WHEN agregation = 'ratio' AND min(lag) = max(lag) THEN annee - min(lag) END
           AS annee_denominateur,
       CASE WHEN agregation = 'ratio' THEN count(*) FILTER (WHERE lag > 0) END::int
           AS communes_repli,
       (SELECT millesime FROM referential_meta) AS millesime
FROM members
GROUP BY indicateur, sous_champ, annee, agregation
HAVING count(*) FILTER (WHERE compte) > 0
ORDER BY indicateur, annee, sous_champ
"""


# A grouping as listed (Groupement's fields).
g = groupements.c
SUMMARY = select(g.code, g.nom, g.communes_total, g.updated_at.label("mis_a_jour"))


def listed(engine: Engine) -> list[Groupement]:
    with engine.connect() as conn:
        return [
            Groupement.model_validate(r._mapping) for r in conn.execute(SUMMARY.order_by(g.code))
        ]


def fiche(engine: Engine, code: str) -> GroupementFiche | None:
    m, c = groupement_communes.c, communes.c
    with engine.connect() as conn:
        found = conn.execute(SUMMARY.where(g.code == code)).first()
        if found is None:
            return None
        members = conn.execute(
            select(c.code, c.nom)
            .join(groupement_communes, m.commune == c.code)
            .where(m.groupement == code)
            .order_by(c.code)
        )
        return GroupementFiche(
            **found._mapping, communes=[Membre.model_validate(r._mapping) for r in members]
        )


def values(
    engine: Engine, found: Groupement, exact: bool, **filters: Any
) -> list[ValeurGroupement]:
    """Every indicator over the grouping ``found``; ``filters``: FILTERS, None for any."""
    given = {k: v for k, v in filters.items() if k in FILTERS and v is not None}
    where = "".join(f" AND a.{k} = :{k}" for k in given)
    with engine.connect() as conn:
        rows = conn.execute(text(VALUES.format(filters=where)), {"groupement": found.code, **given})
        return [public(row, found.communes_total, exact) for row in rows]


def public(
    row: Any,
    total: int,
    exact: bool,
    millesime: int | None = None,
    estimee: bool = False,
) -> ValeurGroupement:
    """``millesime``: an older edition's; None for the current one, which the row says."""
    return ValeurGroupement(
        indicateur=row.indicateur,
        sous_champ=row.sous_champ,
        annee=row.annee,
        agregation=row.agregation,
        valeur=exact_text(row.valeur) if exact else number(row.valeur),
        unite=row.unite,
        **coverage(row.communes_renseignees, total),
        mis_a_jour=row.updated_at,
        annee_denominateur=row.annee_denominateur,
        communes_repli=row.communes_repli,
        millesime=row.millesime if millesime is None else millesime,
        estimee=estimee,
    )
