"""Groupings of communes that users define (a SCoT, a PETR, a watershed, an
EPT): a named list of communes, read from a file, checked whole against
the referential and stored by ``itte grouping load``. The API
aggregates every indicator over a grouping as over an EPCI
(``reads/groupements.py``).

A grouping is stored whole or not at all: one line that names no commune
would leave its aggregates short of a member without anyone knowing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from common.referential import Referential, Unplaced, locate

CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_NAME_CHARS = 200
FIELD_SEPARATORS = re.compile(r"[,;\t]")
SHOWN_CHARS = 40  # of a refused field, in its error


class Refused(ValueError):
    """What makes a grouping unusable, every problem named."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Groupement:
    code: str
    nom: str
    communes: frozenset[str]  # current communes (the referential's edition)


def groupement(code: str, nom: str, lines: Iterable[str], ref: Referential) -> Groupement:
    """The grouping ``code`` named ``nom`` of the communes ``lines`` list: one
    code a line, or the first field of each line of a CSV (`,`, `;` or tab);
    a first line without a digit is a header. A former code stands for the
    current commune it is part of, an arrondissement municipal for its
    commune. Raises :class:`Refused` naming every line that names none."""
    problems = []
    if not CODE.match(code):
        problems.append(f"code {code[:SHOWN_CHARS]!r}: 1 to 40 of a-z, 0-9, - and _")
    if not nom.strip() or len(nom) > MAX_NAME_CHARS or "\x00" in nom:
        problems.append(f"nom: 1 to {MAX_NAME_CHARS} characters, no NUL")
    members: set[str] = set()
    for number, line in enumerate(lines, 1):
        field = FIELD_SEPARATORS.split(line, maxsplit=1)[0].strip().strip('"').strip()
        if not field or (number == 1 and not any(c.isdigit() for c in field)):
            continue
        try:
            members.add(locate(field, ref)[1])
        except Unplaced as exc:
            problems.append(f"line {number}: {field[:SHOWN_CHARS]!r}: {exc.reason} ({exc})")
    if not members and not problems:
        problems.append("no commune")
    if problems:
        raise Refused(problems)
    return Groupement(code, nom.strip(), frozenset(members))


def store(database_url: str, found: Groupement) -> None:
    """Creates or replaces the grouping, in one transaction."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO groupements (code, nom, communes_total) VALUES (%s, %s, %s)"
            " ON CONFLICT (code) DO UPDATE SET nom = EXCLUDED.nom,"
            " communes_total = EXCLUDED.communes_total, updated_at = now()",
            (found.code, found.nom, len(found.communes)),
        )
        conn.execute("DELETE FROM groupement_communes WHERE groupement = %s", (found.code,))
        with conn.cursor().copy(
            "COPY groupement_communes (groupement, commune) FROM STDIN"
        ) as copy:
            for commune in sorted(found.communes):
                copy.write_row((found.code, commune))


def remove(database_url: str, code: str) -> bool:
    """Deletes the grouping; False if there was none."""
    with psycopg.connect(database_url) as conn:
        return conn.execute("DELETE FROM groupements WHERE code = %s", (code,)).rowcount > 0
