"""What ``GET /indicateurs?millesime=…`` reads on an older edition of the map.

The aggregator keeps its rows on the current edition. On an older one, the
values are computed when asked, from the observations under their code as
sent, each placed on the edition's communes by ``edition_passage``
(common/referential/editions.py): a code reads as the commune it names on
the edition of its value's year, and lands whole on the edition asked for
unless that commune was made since of several of the edition's communes;
then it is split among them by population, and the rows it reaches are
``estimee``. Each commune's value, then each territory's, follow the rules
of the aggregator (``verify.RECOMPUTE`` states them over the observations):
a sum, a count of communes with a non-zero value, an extreme, or a ratio's
or a weighted mean's terms summed over the communes that have both. Values
published for a territory are kept on the current map: they are not served
here (``origine`` is ``agregee``).

One indicator at a time: its observations and its terms' are read through
their primary key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, text

from common.referential import CURRENT_EDITION, EDITIONS, FRANCE, no_edition
from schemas.limits import REPLI_MAX
from services.api.models import IndicateurPublic, ValeurGroupement, to_public
from services.api.reads import groupements as groupings
from services.api.reads.changements import Page, last_change
from services.api.reads.indicateurs import Filters

T = TypeVar("T")
VALUES = """
WITH wanted AS (
    SELECT id, agregation, facteur, unite, numerateur, denominateur, poids, repli_denominateur
    FROM indicators WHERE id = :indicateur
), terms AS (
    SELECT CASE WHEN agregation = 'ratio' THEN numerateur ELSE id END AS term FROM wanted
    UNION SELECT denominateur FROM wanted WHERE agregation = 'ratio'
    UNION SELECT poids FROM wanted WHERE agregation = 'moyenne_ponderee'
), placed AS (
    -- Each observation on the edition's communes: the rows of the edition
    -- its year reads on (cle) win over those that hold for any year.
    SELECT o.indicateur, o.sous_champ, o.annee, p.commune, o.valeur, o.unite, o.updated_at,
           p.part, p.total
    FROM observations o
    -- A ratio's denominator stands in for up to repli_denominateur later years.
    LEFT JOIN wanted d ON d.agregation = 'ratio' AND d.denominateur = o.indicateur
    LEFT JOIN (
        SELECT DISTINCT code, cle FROM edition_passage
        WHERE millesime = :millesime AND cle <> :millesime
    ) later ON later.code = o.commune_source AND later.cle = {keyed}
    JOIN edition_passage p ON p.millesime = :millesime AND p.code = o.commune_source
        AND p.cle = coalesce(later.cle, :millesime)
    WHERE o.indicateur IN (SELECT term FROM terms) {filters}
), per_commune AS (
    SELECT indicateur, sous_champ, annee, commune,
           coalesce(sum(CASE WHEN part = total THEN valeur ELSE valeur * part / total END), 0)
               AS v,
           count(valeur) AS n, coalesce(bool_or(part <> total AND valeur IS NOT NULL), false)
               AS estimee,
           max(unite) AS u, max(updated_at) AS t
    FROM placed GROUP BY indicateur, sous_champ, annee, commune
), members AS (
    SELECT w.id AS indicateur, pc.sous_champ, pc.annee, pc.commune, pc.v, pc.n, pc.u, pc.t,
           pc.estimee OR coalesce(b.estimee, false) AS estimee,
           pc.v * b.v AS num, b.v AS den, 0 AS lag
    FROM wanted w
    JOIN per_commune pc ON pc.indicateur = w.id
    -- A weighted mean's weight, where the commune has a value and a weight.
    LEFT JOIN per_commune b ON w.agregation = 'moyenne_ponderee' AND pc.n > 0 AND b.n > 0
        AND (b.indicateur, b.sous_champ, b.annee, b.commune)
          = (w.poids, pc.sous_champ, pc.annee, pc.commune)
    WHERE w.agregation <> 'ratio'
    UNION ALL
    -- A ratio's terms, where the commune has both: the denominator of the
    -- year, else of the latest earlier one within repli_denominateur.
    SELECT * FROM (
        SELECT DISTINCT ON (a.sous_champ, a.annee, a.commune)
               w.id, a.sous_champ, a.annee, a.commune, 0, 1, w.unite, greatest(a.t, b.t),
               a.estimee OR b.estimee, a.v, b.v, a.annee - b.annee
        FROM wanted w
        JOIN per_commune a ON a.indicateur = w.numerateur AND a.n > 0
        JOIN per_commune b ON (b.indicateur, b.sous_champ, b.commune)
                            = (w.denominateur, a.sous_champ, a.commune) AND b.n > 0
            AND b.annee BETWEEN a.annee - w.repli_denominateur AND a.annee
        WHERE w.agregation = 'ratio'
        ORDER BY a.sous_champ, a.annee, a.commune, b.annee DESC
    ) paired
), territories AS (
    SELECT m.*, {level} AS code
    FROM members m
    JOIN edition_communes c ON c.millesime = :millesime AND c.code = m.commune
    WHERE {level} IS NOT NULL {areas}
)
SELECT indicateur, sous_champ, annee, code, agregation, unite, updated_at, estimee,
       CASE WHEN renseignees = 0 THEN NULL ELSE valeur END AS valeur, renseignees,
       CASE WHEN agregation = 'ratio' AND renseignees > 0 AND lag_min = lag_max
           THEN annee - lag_min END AS annee_denominateur,
       CASE WHEN agregation = 'ratio' THEN replis END AS communes_repli
FROM (
    SELECT t.indicateur, t.sous_champ, t.annee, t.code, w.agregation,
           coalesce(w.unite, min(t.u)) AS unite, max(t.t) AS updated_at,
           bool_or(t.estimee) AS estimee,
           CASE
               WHEN w.agregation = 'ratio' THEN sum(t.num) / NULLIF(sum(t.den), 0) * w.facteur
               WHEN {commune_level} OR w.agregation = 'somme' THEN sum(t.v)
               WHEN w.agregation = 'moyenne_ponderee' THEN sum(t.num) / NULLIF(sum(t.den), 0)
               WHEN w.agregation = 'nombre' THEN count(*) FILTER (WHERE t.n > 0 AND t.v <> 0)
               WHEN w.agregation = 'min' THEN min(t.v) FILTER (WHERE t.n > 0)
               ELSE max(t.v) FILTER (WHERE t.n > 0)
           END AS valeur,
           CASE
               WHEN {commune_level} THEN least(count(*) FILTER (WHERE t.n > 0), 1)
               WHEN w.agregation = 'moyenne_ponderee' THEN count(*) FILTER (WHERE t.den IS NOT NULL)
               ELSE count(*) FILTER (WHERE t.n > 0)
           END::int AS renseignees,
           min(t.lag) AS lag_min, max(t.lag) AS lag_max,
           count(*) FILTER (WHERE t.lag > 0)::int AS replis
    FROM territories t JOIN wanted w ON w.id = t.indicateur
    WHERE {commune_level} OR w.agregation <> 'non_agregeable'
    GROUP BY t.indicateur, t.sous_champ, t.annee, t.code, w.agregation, w.facteur, w.unite
) served
ORDER BY indicateur, annee, code, sous_champ
"""


def keyed(editions: tuple[int, ...]) -> str:
    """The edition a value's codes read on: its year's, the first before it
    when there is none (2020: 2019's), the oldest before that, the current after."""
    return (
        "CASE "
        + " ".join(f"WHEN o.annee >= {year:d} THEN {year:d}" for year in reversed(editions))
        + f" ELSE {editions[0]:d} END"
    )


# The editions the database serves: its current one (the shipped one, or
# one `itte referentiel charger` loaded since), and every one, it included.
SERVED = """SELECT (SELECT millesime FROM referential_meta) AS current,
       array(SELECT millesime FROM editions ORDER BY millesime) AS years"""


@dataclass(frozen=True)
class Served:
    current: int
    years: tuple[int, ...]  # every edition, the current one included


def served(engine: Engine) -> Served:
    with engine.connect() as conn:
        return _served_by(conn)


def _served_by(conn: Connection) -> Served:
    found = conn.execute(text(SERVED)).one()
    return Served(found.current or CURRENT_EDITION, tuple(found.years) or EDITIONS)


NAMES = """
SELECT code, nom, 1 AS communes_total FROM edition_communes
WHERE millesime = :millesime AND :niveau = 'commune'
UNION ALL
SELECT code, nom, communes_total FROM edition_territories
WHERE millesime = :millesime AND niveau = :niveau
"""


class EditionRefused(ValueError):
    """A request an older edition cannot answer, and why."""


def check(filters: Filters, millesime: int, editions: Served) -> None:
    if millesime not in editions.years:
        raise EditionRefused(no_edition(millesime, editions.years))
    if filters.indicateur is None:
        raise EditionRefused("an older edition (millesime) is served one indicator at a time")


def rows(engine: Engine, filters: Filters, millesime: int, exact: bool) -> list[IndicateurPublic]:
    """Every row ``filters`` asks for on the edition ``millesime`` (an older
    one: :func:`check`), in the order of the current edition's."""
    level = filters.target_level()
    found = _computed(
        engine, lambda conn: _level_rows(conn, _served_by(conn), filters, millesime, level, exact)
    )
    return latest(found) if filters.derniere else found


def latest(rows: list[IndicateurPublic]) -> list[IndicateurPublic]:
    """``annee=derniere``: each territory's latest year of each indicator."""
    last: dict[tuple[str, str, str], int] = {}
    for r in rows:
        key = (r.indicateur, r.sous_champ, r.code)
        last[key] = max(last.get(key, r.annee), r.annee)
    return [r for r in rows if r.annee == last[(r.indicateur, r.sous_champ, r.code)]]


def _level_rows(
    conn: Connection,
    editions: Served,
    filters: Filters,
    millesime: int,
    level: str,
    exact: bool,
    among: tuple[set[str], set[int]] | None = None,
) -> list[IndicateurPublic]:
    """The rows of ``level``; with ``among``, only those of these
    territories and years (the change feed's)."""
    column = f"'{FRANCE}'" if level == "france" else _column(level)
    named = _named(filters, millesime) | {"niveau": level}
    areas = filters.areas()
    inside, years = "", ""
    if areas and level != "france":
        # Territories of the level that share a commune with every named area.
        conditions = " AND ".join(f"{_column(a)} = :area_{a}" for a in areas)
        inside = (
            f" AND {column} IN (SELECT {column} FROM edition_communes c"
            f" WHERE c.millesime = :millesime AND {conditions})"
        )
        named |= {f"area_{a}": code for a, code in areas.items()}
    if among is not None:
        inside += f" AND {column} = ANY(:among_codes)"
        years = f" AND {AMONG_YEARS}"
        named |= {"among_codes": sorted(among[0]), "among_years": sorted(among[1])}
    sql = _values(editions, filters, column, inside, commune_level=level == "commune", years=years)
    names = {r.code: r for r in conn.execute(text(NAMES), named)}
    return [
        to_public(_served(r, level, names), exact, millesime=millesime, estimee=r.estimee)
        for r in conn.execute(text(sql), named)
        if r.code in names
    ]


# A page of the current edition's change log: the changes of one
# indicator's commune rows (every change of an aggregate starts at one).
ENTRIES = """
SELECT change_seq, annee, code FROM aggregate_change_log
WHERE change_seq > :after AND indicateur = :indicateur AND niveau = 'commune'
ORDER BY change_seq LIMIT :limit
"""
# The edition's communes a current commune's values can land on (those it
# was made of, or the one it was part of), with their territories.
TOUCHED = """
SELECT DISTINCT c.code, c.epci, c.departement, c.region FROM edition_passage p
JOIN edition_communes c ON c.millesime = p.millesime AND c.code = p.commune
WHERE p.millesime = :millesime AND p.code = ANY(:codes)
"""
LEVELS = ("commune", "epci", "departement", "region", "france")


def changes(
    engine: Engine, filters: Filters, millesime: int, after: int, limit: int, exact: bool = False
) -> Page:
    """The change feed on an older edition: after ``after``, the rows of the
    edition that the next ``limit`` changes of the indicator's communes
    reach, at their state now (of every level, or ``filters.niveau``'s).
    Each row says ``curseur`` = ``after``: a client that resumes from there
    gets it again (a state, not a difference: harmless), so a stream cut
    within a page loses nothing; the page's cursor moves past it."""
    found: list[IndicateurPublic] = []

    def read(conn: Connection) -> tuple[list[Row[Any]], int]:
        named = {"after": after, "indicateur": filters.indicateur, "limit": limit}
        entries = list(conn.execute(text(ENTRIES), named))
        highest = int(conn.execute(last_change()).scalar_one())
        if not entries:
            return entries, highest
        touched = list(
            conn.execute(
                text(TOUCHED), {"millesime": millesime, "codes": [e.code for e in entries]}
            )
        )
        reached = {
            "commune": {t.code for t in touched},
            "epci": {t.epci for t in touched if t.epci},
            "departement": {t.departement for t in touched},
            "region": {t.region for t in touched},
            "france": {FRANCE} if touched else set(),
        }
        years = {e.annee for e in entries}
        editions = _served_by(conn)  # once for every level
        for level in (filters.niveau,) if filters.niveau else LEVELS:
            if reached[level]:
                among = (reached[level], years)
                found.extend(_level_rows(conn, editions, filters, millesime, level, exact, among))
        return entries, highest

    entries, highest = _computed(engine, read)
    cursor = int(entries[-1].change_seq) if len(entries) == limit else max(after, highest)
    return Page([{**row.model_dump(mode="json"), "curseur": after} for row in found], cursor)


# The edition's communes inside a grouping of current communes: each one,
# or the one it merged into since, a member.
IN_GROUPING = """c.code IN (
    SELECT e.code FROM edition_communes e LEFT JOIN former_codes f ON f.ancien = e.code
    WHERE e.millesime = :millesime AND coalesce(f.actuel, e.code) IN (
        SELECT commune FROM groupement_communes WHERE groupement = :groupement))"""
COUNTED_IN_GROUPING = (
    f"SELECT count(*) FROM edition_communes c WHERE c.millesime = :millesime AND {IN_GROUPING}"
)


def grouping_values(
    engine: Engine, code: str, filters: Filters, millesime: int, exact: bool
) -> list[ValeurGroupement]:
    """A grouping's values on the edition ``millesime``: over the edition's
    communes that lie within its communes, aggregated as over an EPCI."""
    named = _named(filters, millesime) | {"groupement": code}
    total = 0

    def read(conn: Connection) -> list[Row[Any]]:
        nonlocal total
        total = conn.execute(text(COUNTED_IN_GROUPING), named).scalar_one()
        where = f" AND {IN_GROUPING}"
        sql = _values(_served_by(conn), filters, "CAST(:groupement AS text)", where, False)
        return list(conn.execute(text(sql), named))

    found = _computed(engine, read)
    return [
        groupings.public(
            SimpleNamespace(**r._mapping, communes_renseignees=r.renseignees),
            total,
            exact,
            millesime=millesime,
            estimee=r.estimee,
        )
        for r in found
    ]


def _named(filters: Filters, millesime: int) -> dict[str, Any]:
    named: dict[str, Any] = {"millesime": millesime, "indicateur": filters.indicateur}
    return named | {
        name: value
        for name in ("annee", "sous_champ", "annee_min", "annee_max")
        if (value := getattr(filters, name)) is not None
    }


# The years after its own an observation may serve: a ratio's denominator's
# stand in for up to repli_denominateur later ones (``d``: its ratio).
SPAN = "coalesce(d.repli_denominateur, 0)"
# The observations that may serve a value of the years asked for (each
# bounded by REPLI_MAX first, so that the primary key's range is used).
YEAR_FILTERS = {
    "annee": f"o.annee BETWEEN :annee - {REPLI_MAX} AND :annee AND :annee <= o.annee + {SPAN}",
    "annee_min": f"o.annee >= :annee_min - {REPLI_MAX} AND o.annee + {SPAN} >= :annee_min",
    "annee_max": "o.annee <= :annee_max",
}
AMONG_YEARS = (
    "EXISTS (SELECT FROM unnest(CAST(:among_years AS int[])) AS y"
    f" WHERE y BETWEEN o.annee AND o.annee + {SPAN})"
)


def _values(
    editions: Served,
    filters: Filters,
    level: str,
    areas: str,
    commune_level: bool,
    years: str = "",
) -> str:
    where = years + "".join(
        f" AND {condition}"
        for name, condition in YEAR_FILTERS.items()
        if getattr(filters, name) is not None
    )
    if filters.sous_champ is not None:
        where += " AND o.sous_champ = :sous_champ"
    return VALUES.format(
        keyed=keyed(editions.years),
        filters=where,
        level=level,
        areas=areas,
        commune_level="true" if commune_level else "false",
    )


def _computed(engine: Engine, read: Callable[[Connection], T]) -> T:
    """``read`` in one transaction (the engine's connections autocommit):
    one snapshot for its statements, and room for SET LOCAL."""
    with engine.connect() as connection:
        conn = connection.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # Hash joins whatever the planner thinks: on a table not analyzed
            # since a load, it expects one row where there are 35,000 and
            # nests loops over them (151 s instead of 0.33 for all France's
            # communes).
            conn.execute(text("SET LOCAL enable_nestloop = off"))
            return read(conn)


def _column(level: str) -> str:
    """The column of ``edition_communes c`` that holds a commune's territory at ``level``."""
    return "c.code" if level == "commune" else f"c.{level}"


def _served(row: Any, level: str, names: dict[str, Any]) -> SimpleNamespace:
    """The row as the current edition's view shows one (aggregate_values)."""
    territory = names[row.code]
    return SimpleNamespace(
        **row._mapping,
        niveau=level,
        nom=territory.nom,
        communes_renseignees=row.renseignees,
        communes_total=territory.communes_total,
        origine="agregee",
        valeur_publiee=None,
    )


def exported(engine: Engine, filters: Filters, millesime: int) -> Iterator[dict[str, Any]]:
    """Every row, exact, as CSV lines take them."""
    for row in rows(engine, filters, millesime, exact=True):
        yield row.model_dump(mode="json")
