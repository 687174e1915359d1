"""Values published for a territory above the commune (issue #29): an EPCI's,
a département's, a région's or France's own value, as a source gives it.

Each is an observation of its territory, under the same rule as a commune's
(the producer who first wrote it owns it; of one producer's versions the
highest wins, whatever the order they arrive in). The winner is kept in
``published_values`` and copied onto the aggregates row of its territory
as ``valeur_publiee``, which takes a change number and is published like
any other change. It never adds into anything: the values aggregated from
the communes stay what the communes make them. Run inside the store's
transaction, under the lock of each value's place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from common import db
from schemas.clean import CleanObservation
from services.aggregator.changes import PUBLISHED, Change, changes_of

Key = tuple[str, str, int, str, str]  # indicateur, sous_champ, annee, niveau, code

SELECT_STORED = """
SELECT p.indicateur, p.sous_champ, p.annee, p.niveau, p.code,
       p.version_explicite, p.version, p.recu, p.record_id, p.producteur
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[]) AS k(i, s, y, n, c)
CROSS JOIN LATERAL (
    SELECT * FROM published_values p
    WHERE (p.indicateur, p.sous_champ, p.annee, p.niveau, p.code) = (k.i, k.s, k.y, k.n, k.c)
    LIMIT 1
) p
"""

COLUMNS = (
    "indicateur, sous_champ, annee, niveau, code, valeur, marqueur, unite, libelle_indicateur, "
    "libelle_sous_champ, version, version_explicite, recu, record_id, pii, pii_key_id, producteur"
)
# Decided under the place's lock (``choose``): the row is replaced outright.
WRITE = f"""
INSERT INTO published_values ({COLUMNS})
VALUES ({", ".join(["%s"] * 17)})
ON CONFLICT (indicateur, sous_champ, annee, niveau, code) DO UPDATE SET
    valeur = EXCLUDED.valeur, marqueur = EXCLUDED.marqueur, unite = EXCLUDED.unite,
    libelle_indicateur = EXCLUDED.libelle_indicateur,
    libelle_sous_champ = EXCLUDED.libelle_sous_champ, version = EXCLUDED.version,
    version_explicite = EXCLUDED.version_explicite, recu = EXCLUDED.recu,
    record_id = EXCLUDED.record_id, pii = EXCLUDED.pii, pii_key_id = EXCLUDED.pii_key_id,
    producteur = EXCLUDED.producteur, updated_at = now()
"""

# The territory's aggregates row holds the published value beside the
# aggregated one (created empty of communes when none reported yet).
SET_ON_AGGREGATES = db.logged(
    f"""
INSERT INTO aggregates AS a (indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs,
    numerateur, denominateur, unite, valeur_publiee, publiee, revision, change_seq)
SELECT k.i, k.s, k.y, k.n, k.c, 0, 0, 0, 0, k.u, k.v, true, 1, {db.NEXT_CHANGE}
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::numeric[],
            %s::text[]) AS k(i, s, y, n, c, v, u)
ORDER BY k.i, k.s, k.y, k.n, k.c
ON CONFLICT (indicateur, sous_champ, annee, niveau, code) DO UPDATE SET
    valeur_publiee = EXCLUDED.valeur_publiee, publiee = true,
    unite = coalesce(a.unite, EXCLUDED.unite), {db.RENUMBER_UPSERTED}""",
    select=PUBLISHED,
)


# A ratio published by its terms: where a territory has a published value of
# both the numerator and the denominator of a ratio, the ratio's row holds
# their quotient (times its factor) as its published value; secret or zero
# below, none. Read from what is stored (this transaction's winners included).
RATIOS = db.logged(
    f"""
INSERT INTO aggregates AS a (indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs,
    numerateur, denominateur, unite, valeur_publiee, publiee, revision, change_seq)
SELECT k.r, k.s, k.y, k.n, k.c, 0, 0, 0, 0, i.unite,
       num.valeur / NULLIF(den.valeur, 0) * i.facteur, true, 1, {db.NEXT_CHANGE}
FROM unnest(%s::text[], %s::text[], %s::int[], %s::text[], %s::text[]) AS k(r, s, y, n, c)
JOIN indicators i ON i.id = k.r
JOIN published_values num
    ON (num.indicateur, num.sous_champ, num.annee, num.niveau, num.code)
     = (i.numerateur, k.s, k.y, k.n, k.c)
JOIN published_values den
    ON (den.indicateur, den.sous_champ, den.annee, den.niveau, den.code)
     = (i.denominateur, k.s, k.y, k.n, k.c)
ORDER BY k.r, k.s, k.y, k.n, k.c
ON CONFLICT (indicateur, sous_champ, annee, niveau, code) DO UPDATE SET
    valeur_publiee = EXCLUDED.valeur_publiee, publiee = true,
    unite = coalesce(a.unite, EXCLUDED.unite), {db.RENUMBER_UPSERTED}
WHERE (a.publiee, a.valeur_publiee) IS DISTINCT FROM (true, EXCLUDED.valeur_publiee)""",
    select=PUBLISHED,
)


def held(r: CleanObservation) -> tuple[Any, ...]:
    """What a kept observation holds besides its key, in the column order of
    ``observations`` and ``published_values``: its value, labels, version,
    record and personal hashes."""
    return (
        r.valeur,
        r.marqueur,
        r.unite,
        r.libelle_indicateur,
        r.libelle_sous_champ,
        r.version,
        r.version_explicite,
        r.recu,
        r.record_id,
        Jsonb(r.pii) if r.pii else None,
        r.pii_key_id,
        r.producteur,
    )


def key_of(r: CleanObservation) -> Key:
    return (r.indicateur, r.sous_champ, r.annee, r.niveau, r.commune)


@dataclass(frozen=True)
class Stored:
    order: tuple[bool, int, int, str]
    producteur: str | None


@dataclass
class Choice:
    """What a batch's published values do: the winner of each key, the
    records another producer owns, and how many lost to a higher version."""

    winners: dict[Key, CleanObservation] = field(default_factory=dict)
    foreign: list[CleanObservation] = field(default_factory=list)
    stale: int = 0


def choose(records: Iterable[CleanObservation], stored: dict[Key, Stored]) -> Choice:
    """The version rule, in the records' order of precedence (pure)."""
    choice = Choice()
    for r in sorted(records, key=lambda r: r.order):
        key = key_of(r)
        held = choice.winners.get(key)
        current = Stored(held.order, held.producteur) if held is not None else stored.get(key)
        if current is not None and current.producteur != r.producteur:
            choice.foreign.append(r)
        elif current is not None and r.order <= current.order:
            choice.stale += 1
        else:
            choice.stale += held is not None  # the one it replaces in this batch
            choice.winners[key] = r
    return choice


def decide(cur: psycopg.Cursor[Any], records: list[CleanObservation]) -> Choice:
    """What ``records`` do, from what is stored (under their places' locks)."""
    if not records:
        return Choice()
    return choose(records, read_stored(cur, {key_of(r) for r in records}))


def read_stored(cur: psycopg.Cursor[Any], keys: set[Key]) -> dict[Key, Stored]:
    columns = [list(column) for column in zip(*keys, strict=True)] if keys else [[]] * 5
    cur.execute(SELECT_STORED, columns)
    return {
        (i, s, y, n, c): Stored((explicit, version, recu, record_id), producteur)
        for i, s, y, n, c, explicit, version, recu, record_id, producteur in cur.fetchall()
    }


def write(cur: psycopg.Cursor[Any], winners: dict[Key, CleanObservation]) -> list[Change]:
    """The winners stored and set on their territories' rows (the caller
    holds the numbering lock); the changes they numbered."""
    if not winners:
        return []
    rows = sorted(winners.items())
    cur.executemany(WRITE, [(*key, *held(r)) for key, r in rows])
    columns: list[list[Any]] = [[key[i] for key, _ in rows] for i in range(5)]
    columns += [[r.valeur for _, r in rows], [r.unite for _, r in rows]]
    return changes_of(cur.execute(SET_ON_AGGREGATES, columns).fetchall())


def ratios_moved(keys: Iterable[Key], ratios_of: Callable[[str], Iterable[str]]) -> list[Key]:
    """The ratios whose published value the published values of ``keys`` may
    move: ``ratios_of`` names the ratios an indicator is a term of."""
    return sorted({(r, s, y, n, c) for i, s, y, n, c in keys for r in ratios_of(i)})


def write_ratios(cur: psycopg.Cursor[Any], moved: list[Key]) -> list[Change]:
    """Each ratio's published value again, from its stored terms (the caller
    holds the numbering lock and the places); the changes it numbered."""
    if not moved:
        return []
    columns: list[list[Any]] = [[key[i] for key in moved] for i in range(5)]
    return changes_of(cur.execute(RATIOS, columns).fetchall())
