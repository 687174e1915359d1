"""Pure aggregation: which observations to write and how each aggregate moves.

Given a batch of clean observations and what the database holds for their
keys, :func:`plan` returns the observation writes and the exact change
(delta) of every aggregate they touch. The highest (version, record_id) wins
whatever the arrival order; an older or equal one changes nothing, so
duplicates and replays are harmless. Values are Decimals: sums stay exact
under any sequence of corrections.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from schemas.clean import CleanObservation

ObsKey = tuple[str, str, int, str]  # indicateur, sous_champ, annee, commune_source
CommuneKey = tuple[str, str, int, str]  # indicateur, sous_champ, annee, commune
AggKey = tuple[str, str, int, str, str]  # indicateur, sous_champ, annee, niveau, code
Ancestors = Callable[[str], Iterable[tuple[str, str]]]  # commune -> (niveau, code)...

ZERO = Decimal(0)


@dataclass(frozen=True)
class Stored:
    """What the database holds for one observation key."""

    valeur: Decimal | None
    version: int
    record_id: str


@dataclass
class Delta:
    valeur: Decimal = ZERO
    nb_valeurs: int = 0
    unite: str | None = None
    # A commune seen for the first time creates its rows even when it brings
    # no value (a secret cell): the API then shows it as missing, not absent.
    creates_row: bool = False

    def add(
        self, valeur: Decimal, nb_valeurs: int, unite: str | None, creates_row: bool = False
    ) -> None:
        self.valeur += valeur
        self.nb_valeurs += nb_valeurs
        self.unite = unite or self.unite
        self.creates_row = self.creates_row or creates_row

    @property
    def is_zero(self) -> bool:
        return self.valeur == 0 and self.nb_valeurs == 0 and not self.creates_row


@dataclass
class Plan:
    writes: list[CleanObservation] = field(default_factory=list)
    deltas: dict[AggKey, Delta] = field(default_factory=dict)
    stale: int = 0  # older or equal versions: ignored


def rank(version: int, record_id: str) -> tuple[int, str]:
    return (version, record_id)


def latest_per_key(records: Iterable[CleanObservation]) -> dict[ObsKey, CleanObservation]:
    latest: dict[ObsKey, CleanObservation] = {}
    for record in records:
        held = latest.get(record.key)
        if held is None or rank(record.version, record.record_id) > rank(
            held.version, held.record_id
        ):
            latest[record.key] = record
    return latest


def commune_key(record: CleanObservation) -> CommuneKey:
    return (record.indicateur, record.sous_champ, record.annee, record.commune)


def plan(
    records: list[CleanObservation],
    stored: Mapping[ObsKey, Stored],
    commune_counts: Mapping[CommuneKey, int],
    ancestors: Ancestors,
) -> Plan:
    """``commune_counts``: ``nb_valeurs`` of the commune rows that exist."""
    latest = latest_per_key(records)
    result = Plan(stale=len(records) - len(latest))
    by_commune: dict[CommuneKey, Delta] = defaultdict(Delta)
    for key, new in latest.items():
        old = stored.get(key)
        if old is not None and rank(old.version, old.record_id) >= rank(new.version, new.record_id):
            result.stale += 1
            continue
        result.writes.append(new)
        old_value = old.valeur if old is not None else None
        by_commune[commune_key(new)].add(
            (new.valeur or ZERO) - (old_value or ZERO),
            (new.valeur is not None) - (old_value is not None),
            new.unite,
        )

    deltas: dict[AggKey, Delta] = defaultdict(Delta)
    for ck, change in by_commune.items():
        indicateur, sous_champ, annee, commune = ck
        new_row = ck not in commune_counts
        if change.is_zero and not new_row:
            continue
        deltas[(indicateur, sous_champ, annee, "commune", commune)].add(
            change.valeur, change.nb_valeurs, change.unite, new_row
        )
        before = commune_counts.get(ck, 0)
        # Above the commune, nb_valeurs counts reporting communes, not sources.
        reporting = (before + change.nb_valeurs > 0) - (before > 0)
        for niveau, code in ancestors(commune):
            deltas[(indicateur, sous_champ, annee, niveau, code)].add(
                change.valeur, reporting, change.unite, new_row
            )
    result.deltas = {k: d for k, d in sorted(deltas.items()) if not d.is_zero}
    return result
