"""What a change of an aggregate looks like on ``indicators.aggregates``,
built by Postgres in one place for both ways it is published.

- From the write: each statement of the store that numbers rows returns,
  for each row it changed, its number, its key and its message
  (``db.logged(…, select=PUBLISHED)``). The aggregator publishes them once
  the transaction has committed, when nothing older is pending: no second
  read of the rows.
- From the change log: after a crash, or when something older is pending
  (another aggregator's batch, ``itte rebuild``), the relay reads the rows
  numbered after its cursor and builds the same message (``publisher.py``).

Postgres builds each message (in C): validating and encoding a pydantic
model per row cost more than the rest of the relay (docs/measurements.md).
The valeur by the indicator's rule is the one of the view
``aggregate_values`` that the API reads (migration 0006);
``tests/integration/test_kafka.py`` checks each message against the
``AggregateChange`` model and a subscriber's table against the API's rows.
"""

from __future__ import annotations

from typing import NamedTuple

from common import db

# Whether the view shows the published value of an aggregates row ``a`` as
# its valeur, by its indicator ``i``'s priority (migration 0014).
SHOWN = "{a}.publiee AND (coalesce({i}.priorite, 'publiee') = 'publiee' OR {a}.nb_valeurs = 0)"
# Else whether it shows the sum of its EPCIs' published values: a
# département they cover, each with its value (migration 0015).
SUMMED = (
    "coalesce({i}.somme_epci, false) AND {a}.epci_total > 0"
    " AND {a}.epci_renseignes = {a}.epci_total"
    " AND (coalesce({i}.priorite, 'publiee') = 'publiee' OR {a}.nb_valeurs = 0)"
)

# The view's valeur (migrations 0006, 0014, 0015), of an aggregates row ``a``
# and its indicator ``i``.
VALEUR = """CASE
    WHEN {shown} THEN {a}.valeur_publiee
    WHEN {summed} THEN {a}.valeur_epci
    WHEN {a}.nb_valeurs = 0 THEN NULL
    WHEN {i}.agregation = 'ratio' THEN {a}.numerateur / NULLIF({a}.denominateur, 0) * {i}.facteur
    WHEN {i}.agregation = 'moyenne_ponderee' AND {a}.niveau <> 'commune'
        THEN {a}.numerateur / NULLIF({a}.denominateur, 0)
    ELSE {a}.valeur
END"""

# A ratio's year of denominator (migration 0021): the row's (also when shown
# from published terms, paired in their year), else the one earlier year all
# its paired communes used (they share it exactly when
# nb_valeurs × repli_carres = repli_annees²), else NULL; and how many used an
# earlier year.
ANNEE_DENOMINATEUR = """CASE
    WHEN {i}.agregation IS DISTINCT FROM 'ratio' THEN NULL
    WHEN ({shown}) OR ({summed}) THEN {a}.annee
    WHEN {a}.nb_valeurs > 0
         AND {a}.nb_valeurs * {a}.repli_carres = {a}.repli_annees * {a}.repli_annees
        THEN {a}.annee - {a}.repli_annees / {a}.nb_valeurs
END"""
COMMUNES_REPLI = """CASE
    WHEN {i}.agregation IS DISTINCT FROM 'ratio' THEN NULL
    WHEN ({shown}) OR ({summed}) THEN 0
    ELSE {a}.replis
END"""

# A published value (or its EPCIs') counts every commune of its territory
# as reported.
RENSEIGNEES = (
    "CASE WHEN ({shown}) OR ({summed}) THEN {t}.communes_total"
    " WHEN {a}.niveau = 'commune' THEN least({a}.nb_valeurs, 1) ELSE {a}.nb_valeurs END"
)


def message(a: str, t: str, i: str) -> str:
    """SQL: the message (JSON text) of the aggregates row ``a``, with its
    territory ``t`` and indicator ``i`` (aliases); NULL without a territory.

    Concatenated rather than ``json_build_object``, which cost 8 µs a row
    against 5 (it looks up every argument's output function at every call),
    and a commune's coverage written without a float division (its total is
    1): docs/measurements.md. Text goes through ``to_json`` (escaped as
    JSON); numbers, booleans and the time print as JSON reads them."""
    shown, summed = SHOWN.format(a=a, i=i), SUMMED.format(a=a, i=i)
    renseignees = RENSEIGNEES.format(a=a, t=t, shown=shown, summed=summed)
    valeur = VALEUR.format(a=a, i=i, shown=shown, summed=summed)
    annee_denominateur = ANNEE_DENOMINATEUR.format(a=a, i=i, shown=shown, summed=summed)
    communes_repli = COMMUNES_REPLI.format(a=a, i=i, shown=shown, summed=summed)
    return f"""CASE WHEN {t}.code IS NOT NULL THEN concat(
    '{{"indicateur":', to_json({a}.indicateur), ',"sous_champ":', to_json({a}.sous_champ),
    ',"annee":', {a}.annee, ',"niveau":', to_json({a}.niveau), ',"code":', to_json({a}.code),
    ',"nom":', to_json({t}.nom),
    ',"agregation":', to_json(coalesce({i}.agregation, 'non_agregeable')),
    ',"valeur":', coalesce(to_json(({valeur})::text)::text, 'null'),
    ',"unite":', coalesce(to_json(coalesce({i}.unite, {a}.unite))::text, 'null'),
    ',"origine":', CASE WHEN {shown} THEN '"publiee"' WHEN {summed} THEN '"somme_epci"'
        ELSE '"agregee"' END,
    ',"valeur_publiee":', coalesce(to_json(({a}.valeur_publiee)::text)::text, 'null'),
    ',"annee_denominateur":', coalesce(({annee_denominateur})::text, 'null'),
    ',"communes_repli":', coalesce(({communes_repli})::text, 'null'),
    ',"communes_renseignees":', {renseignees}, ',"communes_total":', {t}.communes_total,
    ',"revision":', {a}.revision, ',"updated_at":', to_json({a}.updated_at),
    ',"couverture":', CASE
        WHEN {t}.communes_total = 1 THEN ({renseignees})::text
        WHEN {t}.communes_total > 0 THEN (({renseignees})::float8 / {t}.communes_total)::text
        ELSE '0' END,
    ',"complet":', CASE WHEN {renseignees} = {t}.communes_total THEN 'true' ELSE 'false' END,
    '}}') END"""


def joined(a: str, t: str, i: str) -> str:
    """SQL: the territory ``t`` and indicator ``i`` of the aggregates row ``a``."""
    return (
        f"LEFT JOIN territories {t} ON ({t}.niveau, {t}.code) = ({a}.niveau, {a}.code)\n"
        f"LEFT JOIN indicators {i} ON {i}.id = {a}.indicateur"
    )


# The rows a logged statement changed (``changed``, see db.logged), as
# (number, level, Kafka key, message). Each row's territory is probed by its
# primary key: joined, Postgres hashed all 36,360 territories for every
# statement, 15 ms, to name a hundred rows (docs/measurements.md).
PUBLISHED = f"""
SELECT c.change_seq, c.niveau, concat_ws('|', {db.key_of("c")}) AS kafka_key,
       {message("c", "t", "i")} AS message
FROM changed c
LEFT JOIN LATERAL (
    SELECT t.code, t.nom, t.communes_total FROM territories t
    WHERE (t.niveau, t.code) = (c.niveau, c.code)
    LIMIT 1
) t ON true
LEFT JOIN indicators i ON i.id = c.indicateur
"""


class Change(NamedTuple):
    """One numbered change of an aggregate, as its transaction wrote it (a
    tuple: a bulk load makes one for each record)."""

    seq: int
    niveau: str
    key: str  # indicateur|sous_champ|annee|niveau|code
    message: bytes | None  # None: no territory of that code (a tombstone on the topic)


def changes_of(rows: list[tuple[int, str, str, str | None]]) -> list[Change]:
    """The rows of :data:`PUBLISHED` as :class:`Change`."""
    return [
        Change(seq, niveau, key, None if text is None else text.encode())
        for seq, niveau, key, text in rows
    ]


def latest_per_key(changes: list[Change]) -> list[Change]:
    """A transaction that numbered a row twice (its deltas, then its extreme)
    published its state in between, which no reader ever saw: only the last
    number of each row, in number order."""
    latest: dict[str, Change] = {}
    for change in changes:
        held = latest.get(change.key)
        if held is None or change.seq > held.seq:
            latest[change.key] = change
    return sorted(latest.values(), key=lambda c: c.seq)
