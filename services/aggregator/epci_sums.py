"""A département served the sum of its EPCIs' published values (issue #29).

Where every commune of a département belongs to an EPCI lying wholly within
it (``referential.epci_coverage``), the values published for those EPCIs add
up to the département's, for the indicators whose catalogue entry says
``somme_epci``. Each time one of those values is written, the département's
aggregates row gets the sum again (``valeur_epci``), with how many of its
EPCIs have a value (``epci_renseignes``) and how many it has
(``epci_total``); the view serves the sum when every one has
(changes.SUMMED). A ratio whose catalogue entry says ``somme_epci`` (its
two terms do too) is served the quotient of its terms' sums, over the
EPCIs that published both, times its factor. Run inside the store's
transaction, under the lock of the département's place (the one of a value
published for the département).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from common import db, referential
from services.aggregator.changes import PUBLISHED, Change, changes_of
from services.aggregator.rules import AggregationRules

DepartementKey = tuple[str, str, int, str]  # indicateur, sous_champ, annee, département

# A département's sum written where it moved (the row made if need be).
UPSERTED = f"""ORDER BY k.i, k.s, k.y, k.d
ON CONFLICT (indicateur, sous_champ, annee, niveau, code) DO UPDATE SET
    valeur_epci = EXCLUDED.valeur_epci, epci_renseignes = EXCLUDED.epci_renseignes,
    epci_total = EXCLUDED.epci_total, unite = coalesce(a.unite, EXCLUDED.unite),
    {db.RENUMBER_UPSERTED}
WHERE (a.valeur_epci, a.epci_renseignes, a.epci_total)
      IS DISTINCT FROM (EXCLUDED.valeur_epci, EXCLUDED.epci_renseignes, EXCLUDED.epci_total)"""

# The sum read from what is stored (the values this transaction wrote
# included); a département whose sum did not move is left as it is.
SUM = db.logged(
    f"""
INSERT INTO aggregates AS a (indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs,
    numerateur, denominateur, unite, valeur_epci, epci_renseignes, epci_total, revision,
    change_seq)
SELECT k.i, k.s, k.y, 'departement', k.d, 0, 0, 0, 0, e.u, e.v, e.n, k.t, 1, {db.NEXT_CHANGE}
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::int[])
    AS k(i, s, y, d, e, t)
CROSS JOIN LATERAL (
    SELECT sum(p.valeur) AS v, count(p.valeur)::int AS n, max(p.unite) AS u
    FROM published_values p
    WHERE (p.indicateur, p.sous_champ, p.annee, p.niveau) = (k.i, k.s, k.y, 'epci')
      AND p.code = ANY (string_to_array(k.e, ','))
) e
{UPSERTED}""",
    select=PUBLISHED,
)


# A ratio's: its terms' sums over the EPCIs that published both.
RATIO = db.logged(
    f"""
INSERT INTO aggregates AS a (indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs,
    numerateur, denominateur, unite, valeur_epci, epci_renseignes, epci_total, revision,
    change_seq)
SELECT k.i, k.s, k.y, 'departement', k.d, 0, 0, 0, 0, i.unite, e.v, e.n, k.t, 1,
       {db.NEXT_CHANGE}
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::int[])
    AS k(i, s, y, d, e, t)
JOIN indicators i ON i.id = k.i
CROSS JOIN LATERAL (
    SELECT sum(num.valeur) FILTER (WHERE den.valeur IS NOT NULL)
               / NULLIF(sum(den.valeur) FILTER (WHERE num.valeur IS NOT NULL), 0)
               * i.facteur AS v,
           (count(*) FILTER (WHERE num.valeur IS NOT NULL AND den.valeur IS NOT NULL))::int
               AS n
    FROM unnest(string_to_array(k.e, ',')) AS epci(code)
    LEFT JOIN published_values num
        ON (num.indicateur, num.sous_champ, num.annee, num.niveau, num.code)
         = (i.numerateur, k.s, k.y, 'epci', epci.code)
    LEFT JOIN published_values den
        ON (den.indicateur, den.sous_champ, den.annee, den.niveau, den.code)
         = (i.denominateur, k.s, k.y, 'epci', epci.code)
) e
{UPSERTED}""",
    select=PUBLISHED,
)


@dataclass(frozen=True)
class EpciSums:
    indicators: frozenset[str]  # the catalogue's somme_epci (ratios included)
    coverage: Mapping[str, tuple[str, ...]]  # covered département -> its EPCIs
    departement_of: Mapping[str, str]  # EPCI of a covered département -> it
    # A term -> the somme_epci ratios it is a term of.
    ratios: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: AggregationRules, ref: referential.Referential) -> EpciSums:
        coverage = referential.epci_coverage(ref)
        ratios = {
            term: found
            for term in rules.somme_epci
            if (found := tuple(r for r in rules.ratios_of(term) if r in rules.somme_epci))
        }
        return cls(
            rules.somme_epci, coverage, {e: d for d, es in coverage.items() for e in es}, ratios
        )

    def moved(self, keys: Iterable[tuple[str, str, int, str, str]]) -> list[DepartementKey]:
        """The départements whose sum the published values of ``keys``
        (indicateur, sous_champ, annee, niveau, code) may move, and the
        ratios of those terms (sorted)."""
        found: set[DepartementKey] = set()
        for i, s, y, niveau, code in keys:
            if niveau == "epci" and i in self.indicators and code in self.departement_of:
                departement = self.departement_of[code]
                found.add((i, s, y, departement))
                found.update((r, s, y, departement) for r in self.ratios.get(i, ()))
        return sorted(found)

    def write(self, cur: psycopg.Cursor[Any], moved: list[DepartementKey]) -> list[Change]:
        """Each département's sum again (the caller holds the numbering lock
        and the départements' places), the ratios after their terms; the
        changes it numbered."""
        ratios = {r for rs in self.ratios.values() for r in rs}
        changes: list[Change] = []
        for statement, keys in (
            (SUM, [k for k in moved if k[0] not in ratios]),
            (RATIO, [k for k in moved if k[0] in ratios]),
        ):
            if keys:
                columns: list[list[Any]] = [[k[n] for k in keys] for n in range(4)]
                columns.append([",".join(self.coverage[k[3]]) for k in keys])
                columns.append([len(self.coverage[k[3]]) for k in keys])
                changes += changes_of(cur.execute(statement, columns).fetchall())
        return changes
