"""How a commune code of any edition lands on each edition of the map.

A value is kept under its code as sent (``observations.commune_source``).
To serve it on an edition's map (``millesime``), each code reads as one or
more (commune of the edition, part, total):

- a commune of the edition: itself, whole;
- an arrondissement municipal: its city, whole;
- a code merged into a commune by then (the edition's own former codes):
  that commune, whole;
- a later code (a commune made after the edition out of several of its
  communes, read on the first edition that has it): split among those
  communes by their population in the edition, ``part / total`` each: an
  estimate, and served as one.

A code that is none of these on the edition (a former code split since)
has no place on it. A commune's code always reads as the commune it names
on the edition asked for: data keyed on 2019 codes sum by 2019's map
exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

from common.referential import Referential


class Passage(NamedTuple):
    code: str  # as sent, normalized
    commune: str  # of the edition
    part: int  # of total: the commune's share of the code's value
    total: int


def passage(
    edition: Referential,
    later: Sequence[Referential],
    groups: Sequence[dict[str, list[str]]] | None = None,
) -> Iterator[Passage]:
    """Every code of ``edition`` and of the ``later`` editions (oldest first)
    placed on ``edition``'s communes (``groups``: :func:`_groups` of each
    later edition, when the caller has them)."""
    codes: set[str] = set()
    for ref in (edition, *later):
        codes |= ref.communes.keys() | ref.former_codes.keys() | ref.arrondissements.keys()
    made_of: dict[str, list[str]] = {}
    for grouped in groups if groups is not None else [_groups(edition, r) for r in later]:
        for code, members in grouped.items():
            made_of.setdefault(code, members)  # the nearest later edition's
    for code in sorted(codes):
        whole = (
            code
            if code in edition.communes
            else edition.arrondissements.get(code) or edition.former_codes.get(code)
        )
        if whole is not None:
            yield Passage(code, whole, 1, 1)
        elif parts := made_of.get(code):
            yield from _split(code, parts, edition)


def _groups(edition: Referential, ref: Referential) -> dict[str, list[str]]:
    """Each commune of the later edition ``ref`` and the communes of
    ``edition`` it was made of."""
    groups: dict[str, list[str]] = {}
    for code in edition.communes:
        became = code if code in ref.communes else ref.former_codes.get(code)
        if became is not None:
            groups.setdefault(became, []).append(code)
    return groups


def _split(code: str, parts: list[str], edition: Referential) -> Iterator[Passage]:
    """Shares by population; equal shares when no part has one."""
    people = [edition.communes[p].population or 0 for p in parts]
    total = sum(people)
    for part, n in zip(parts, people, strict=True):
        yield Passage(code, part, n, total) if total else Passage(code, part, 1, len(parts))


def splits(
    edition: Referential, keyed: Referential, groups: dict[str, list[str]] | None = None
) -> Iterator[Passage]:
    """How the communes of a later edition ``keyed`` land on ``edition``
    where they do not read as there (a commune grown by merging others
    since: split among them; a commune renumbered: whole on its old code).
    These rows win over :func:`passage`'s for values keyed on ``keyed``."""
    made_of = _groups(edition, keyed) if groups is None else groups
    for code in sorted(keyed.communes):
        parts = made_of.get(code)
        if parts and parts != [code]:
            yield from _split(code, parts, edition)


def passages(every: Mapping[int, Referential]) -> Iterator[tuple[int, int, str, str, int, int]]:
    """(millesime, cle, code, commune, part, total) of every edition of
    ``every`` but the latest: its passage (cle = millesime) and the splits of
    each later edition's communes (cle = that edition)."""
    years = sorted(every)
    for index, year in enumerate(years[:-1]):
        ref = every[year]
        later = [every[y] for y in years[index + 1 :]]
        groups = [_groups(ref, keyed) for keyed in later]  # once for both
        yield from ((year, year, *p) for p in passage(ref, later, groups))
        for keyed, grouped in zip(later, groups, strict=True):
            yield from ((year, keyed.millesime, *p) for p in splits(ref, keyed, grouped))
