"""The Code Officiel Géographique shipped with itte (see ``data/VERSION``).

Rebuilt by ``scripts/build_referential.py`` from ``@etalab/decoupage-administratif``
(Etalab; data under the Licence Ouverte 2.0).
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

FRANCE = "FR"
COMMUNE_CODE = re.compile(r"^(\d{5}|2[AB]\d{3})$")


# The edition of the map the services place every record on, and the older
# ones shipped beside it (data/editions/YEAR) that the API can serve
# aggregates on (``millesime``). The registry has no version with 2020's
# communes (scripts/build_referential.py).
CURRENT_EDITION = 2026
OLDER_EDITIONS = (2019, 2021, 2022, 2023, 2024, 2025)
EDITIONS = (*OLDER_EDITIONS, CURRENT_EDITION)


# An edition as files: VERSION, then each table as a gzipped CSV with its
# header (scripts/build_referential.py writes them; `itte referentiel
# charger` loads a set of them that no release ships).
TABLES = {
    "communes": ("code", "nom", "departement", "region", "epci", "population"),
    "anciens_codes": ("ancien", "actuel"),
    "epci": ("code", "nom"),
    "departements": ("code", "nom"),
    "regions": ("code", "nom"),
}
FILES = ("VERSION", *(f"{name}.csv.gz" for name in TABLES))
# The communes' table is 3.6 MB as text: a file that inflates beyond this is
# no table of the map (a gzip bomb is refused before it fills the memory).
MAX_TABLE_BYTES = 64 * 1024 * 1024


class BadEdition(ValueError):
    """Files that are not an edition of the map: says which and why."""


def _rows(files: Mapping[str, bytes], name: str) -> Iterator[dict[str, str]]:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(files[f"{name}.csv.gz"])) as packed:
            inflated = packed.read(MAX_TABLE_BYTES + 1)
        text = inflated.decode("utf-8")
    except KeyError:
        raise BadEdition(f"{name}.csv.gz is missing") from None
    except (OSError, EOFError, UnicodeDecodeError) as bad:
        raise BadEdition(f"{name}.csv.gz is not gzipped UTF-8 text: {bad}") from None
    if len(inflated) > MAX_TABLE_BYTES:
        raise BadEdition(f"{name}.csv.gz inflates beyond {MAX_TABLE_BYTES >> 20} MB")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in TABLES[name] if c not in (reader.fieldnames or ())]
    if missing:
        raise BadEdition(f"{name}.csv.gz lacks the column(s) {', '.join(missing)}")
    for row in reader:
        if None in row or None in row.values():
            raise BadEdition(
                f"{name}.csv.gz: line {reader.line_num} has not as many fields as its header"
            )
        yield row


def is_renumbering(former: str, current: str) -> bool:
    """Corsica's communes were renumbered in 1976 (20xxx → 2Axxx or 2Bxxx): the
    same commune under a new code, not a merge of several."""
    return former[:2] == "20" and current[:2] in ("2A", "2B") and former[2:] == current[2:]


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    nom: str
    departement: str
    region: str
    epci: str | None
    population: int | None


# The arrondissements municipaux of Paris, Lyon and Marseille (COG codes
# 75101–75120, 69381–69389, 13201–13216): sources publish by them, and each
# is a part of its commune, as a former commune is of the one it merged into.
ARRONDISSEMENTS = {
    "75056": [f"751{n:02d}" for n in range(1, 21)],
    "69123": [f"6938{n}" for n in range(1, 10)],
    "13055": [f"132{n:02d}" for n in range(1, 17)],
}


# Compared and hashed as the object itself (eq=False): the tables made from a
# referential (ancestors, covering…) are cached per object by functools.cache.
@dataclass(frozen=True, eq=False)
class Referential:
    version: str
    communes: dict[str, Commune]
    former_codes: dict[str, str]  # former code -> the one current commune it became
    ambiguous_codes: dict[str, tuple[str, ...]]  # former code -> several candidates
    epci: dict[str, str]
    departements: dict[str, str]
    regions: dict[str, str]
    # arrondissement municipal -> its commune (ARRONDISSEMENTS)
    arrondissements: dict[str, str] = field(default_factory=dict)
    millesime: int = CURRENT_EDITION  # the year of the COG it is


Chain = tuple[tuple[str, str], ...]  # (niveau, code) of each territory above a commune


# Each referential's table, made once: a service's stores share it. Its
# 35,000 communes share about 1,300 chains (as many as there are EPCI and
# départements crossed): one tuple a chain, not a list a commune (12 MB).
@cache
def ancestors(ref: Referential) -> dict[str, Chain]:
    """Every commune's territories above it, as (niveau, code): départements and
    régions come from the commune itself, never from its EPCI (89 EPCI span
    several départements)."""
    chains: dict[Chain, Chain] = {}
    table: dict[str, Chain] = {}
    for c in ref.communes.values():
        chain: Chain = (("epci", c.epci),) if c.epci else ()
        chain += (("departement", c.departement), ("region", c.region), ("france", FRANCE))
        table[c.code] = chains.setdefault(chain, chain)
    return table


@cache
def load() -> Referential:
    """Parse the shipped files once per process."""
    return from_files(shipped_files(CURRENT_EDITION), CURRENT_EDITION)


def no_edition(millesime: int, editions: tuple[int, ...] = EDITIONS) -> str:
    """What to answer for a year with no edition of the map among ``editions``."""
    return (
        f"no edition {millesime} of the map: {', '.join(map(str, editions))} "
        "(the registry holds none for 2020)"
    )


def edition(millesime: int) -> Referential:
    """An edition of the map (:data:`EDITIONS`), read anew: only the load of
    the editions into the database needs the older ones."""
    if millesime == CURRENT_EDITION:
        return load()
    return from_files(shipped_files(millesime), millesime)


def shipped_files(millesime: int) -> dict[str, bytes]:
    """The files of an edition of :data:`EDITIONS`, else ValueError."""
    if millesime not in EDITIONS:
        raise ValueError(no_edition(millesime))
    folder = "data" if millesime == CURRENT_EDITION else f"data/editions/{millesime}"
    base = resources.files(__name__).joinpath(folder)
    return {name: base.joinpath(name).read_bytes() for name in FILES}


def from_files(files: Mapping[str, bytes], millesime: int) -> Referential:
    """The edition ``millesime`` of the map from its :data:`FILES`, else
    :class:`BadEdition` naming the file and what is wrong with it."""
    try:
        version = files["VERSION"].decode("utf-8").strip()
    except KeyError:
        raise BadEdition("VERSION is missing") from None
    except UnicodeDecodeError:
        raise BadEdition("VERSION is not UTF-8 text") from None
    if not version or len(version) > 200 or not version.isprintable():
        raise BadEdition("VERSION must hold one line of text, at most 200 characters")
    try:
        ref = _parsed(files, version, millesime)
    except ValueError as bad:  # a population that is no integer…
        raise BadEdition(str(bad)) from None
    _check(ref)
    return ref


def _parsed(files: Mapping[str, bytes], version: str, millesime: int) -> Referential:
    # A département's, région's or EPCI's code is one string, not one a
    # commune (5 MB of the 35,000 rows' strings).
    communes = {
        r["code"]: Commune(
            code=r["code"],
            nom=r["nom"],
            departement=sys.intern(r["departement"]),
            region=sys.intern(r["region"]),
            epci=sys.intern(r["epci"]) if r["epci"] else None,
            population=int(r["population"]) if r["population"] else None,
        )
        for r in _rows(files, "communes")
    }
    candidates: dict[str, set[str]] = {}
    for r in _rows(files, "anciens_codes"):
        candidates.setdefault(r["ancien"], set()).add(r["actuel"])
    return Referential(
        version=version,
        communes=communes,
        former_codes={old: next(iter(cur)) for old, cur in candidates.items() if len(cur) == 1},
        ambiguous_codes={
            old: tuple(sorted(cur)) for old, cur in candidates.items() if len(cur) > 1
        },
        epci={r["code"]: r["nom"] for r in _rows(files, "epci")},
        departements={r["code"]: r["nom"] for r in _rows(files, "departements")},
        regions={r["code"]: r["nom"] for r in _rows(files, "regions")},
        arrondissements={
            part: commune
            for commune, parts in ARRONDISSEMENTS.items()
            if commune in communes
            for part in parts
        },
        millesime=millesime,
    )


def _check(ref: Referential) -> None:
    """What every service takes for granted of an edition."""
    if not ref.communes:
        raise BadEdition("communes.csv.gz holds no commune")
    for c in ref.communes.values():
        if not COMMUNE_CODE.match(c.code):
            raise BadEdition(f"communes.csv.gz: {c.code[:16]!r} is not a commune code")
        if c.departement not in ref.departements or c.region not in ref.regions:
            raise BadEdition(
                f"communes.csv.gz: commune {c.code}'s département {c.departement[:16]!r} "
                f"or région {c.region[:16]!r} is not in departements.csv.gz / regions.csv.gz"
            )
    for former, current in ref.former_codes.items():
        if not COMMUNE_CODE.match(former) or current not in ref.communes:
            raise BadEdition(
                f"anciens_codes.csv.gz: {former[:16]!r} → {current[:16]!r} is not a former "
                "commune code leading to a commune of the edition"
            )


class Unplaced(ValueError):
    """A code that names no one commune of the referential: ``reason`` names
    the rule (``invalid_commune``, ``ambiguous_code``, ``unknown_code``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def locate(code: str, ref: Referential) -> tuple[str, str]:
    """(the code as sent, normalized; the current commune it is part of).
    The cleaner places every record by it, and the ingestor checks a
    producer's territories by it, so both read a code alike."""
    normalized = code.strip().upper()
    if normalized.isdigit() and len(normalized) < 5:
        normalized = normalized.zfill(5)  # spreadsheets drop the leading zero
    if not COMMUNE_CODE.match(normalized):
        raise Unplaced("invalid_commune", "not a commune code (5 digits, or 2A/2B and 3 digits)")
    if normalized in ref.communes:
        return normalized, normalized
    current = ref.former_codes.get(normalized)
    if current is not None and is_renumbering(normalized, current):
        return current, current  # the same commune under its new number: not a merge
    if current is not None:
        return normalized, current
    if normalized in ref.arrondissements:  # a part of Paris, Lyon or Marseille
        return normalized, ref.arrondissements[normalized]
    if normalized in ref.ambiguous_codes:
        raise Unplaced(
            "ambiguous_code",
            f"former code {normalized} now belongs to several "
            f"communes: {', '.join(ref.ambiguous_codes[normalized])}",
        )
    raise Unplaced(
        "unknown_code",
        f"{normalized} is neither a commune, a former code nor an arrondissement municipal "
        f"in {ref.version}",
    )


# Territory names as sources write them: ``Rochelle (La)`` (the COG's old
# form), ``St-Émilion``, ``SAINT EMILION``.
LEADING_ARTICLE = re.compile(r"^(.*?)\s*\((l'|le|la|les)\)$")
ABBREVIATIONS = {"st": "saint", "ste": "sainte", "sts": "saints", "stes": "saintes"}
MAX_CANDIDATES_NAMED = 10


def name_key(name: str) -> str:
    """A name as labels are compared: case, accents, punctuation, the
    article put last in parentheses and Saint abbreviated set aside."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    plain = plain.strip()
    if article := LEADING_ARTICLE.match(plain):
        plain = f"{article.group(2)} {article.group(1)}"
    words = re.findall(r"[a-z0-9]+", plain)
    return " ".join(ABBREVIATIONS.get(word, word) for word in words)


@cache
def territory_names(ref: Referential, niveau: str = "commune") -> dict[str, tuple[str, ...]]:
    """Each name key (:func:`name_key`) at ``niveau`` and the territories
    bearing it, made once per referential and level."""
    named: dict[str, str] = (
        {c.code: c.nom for c in ref.communes.values()}
        if niveau == "commune"
        else {FRANCE: "France"}
        if niveau == "france"
        else dict(levels(ref)[niveau])
    )
    found: dict[str, list[str]] = {}
    for code, nom in named.items():
        found.setdefault(name_key(nom), []).append(code)
    return {key: tuple(sorted(codes)) for key, codes in found.items()}


def levels(ref: Referential) -> dict[str, dict[str, str]]:
    """The territories above the commune, by level: code → name."""
    return {"epci": ref.epci, "departement": ref.departements, "region": ref.regions}


def locate_label(
    label: str, ref: Referential, departement: str | None = None, niveau: str = "commune"
) -> str:
    """The one territory of ``niveau`` named ``label`` (a commune: in
    ``departement`` when given), else :class:`Unplaced`: ``unknown_label``
    or ``ambiguous_label`` naming the candidates, so that the producer can
    give the code."""
    key = name_key(label)
    if not key:
        raise Unplaced("unknown_label", "the territory's label holds no letter nor digit")
    found = territory_names(ref, niveau).get(key, ())
    where = ""
    if niveau == "commune" and departement is not None and departement.strip():
        dep = departement.strip().upper()
        dep = dep.zfill(2) if dep.isdigit() else dep
        found = tuple(c for c in found if ref.communes[c].departement == dep)
        where = f" in département {dep}"
    what = "commune" if niveau == "commune" else f"territory of level {niveau}"
    if len(found) == 1:
        return found[0]
    if not found:
        raise Unplaced("unknown_label", f"no {what} is named {label!r}{where} in {ref.version}")
    named = ", ".join(
        f"{code} ({ref.departements.get(ref.communes[code].departement, '?')})"
        if niveau == "commune"
        else code
        for code in found[:MAX_CANDIDATES_NAMED]
    )
    more = (
        f" and {len(found) - MAX_CANDIDATES_NAMED} more"
        if len(found) > MAX_CANDIDATES_NAMED
        else ""
    )
    raise Unplaced(
        "ambiguous_label",
        f"{len(found)} {'communes are' if niveau == 'commune' else 'territories are'} named "
        f"{label!r}{where}: {named}{more}; give the code"
        + (", or the département" if niveau == "commune" else ""),
    )


# A territory's level as sources write it.
LEVEL_NAMES = {
    "commune": "commune",
    "com": "commune",
    "arrondissement_municipal": "commune",
    "arm": "commune",
    "epci": "epci",
    "departement": "departement",
    "dep": "departement",
    "region": "region",
    "reg": "region",
    "france": "france",
    "fr": "france",
    "pays": "france",
}


def level_of(text: str | None) -> str:
    """The level a producer names (any case or accent, ``dep``, ``reg``);
    absent or blank: ``commune``. Else :class:`Unplaced` (``invalid_niveau``)."""
    if text is None or not text.strip():
        return "commune"
    found = LEVEL_NAMES.get(name_key(text).replace(" ", "_"))
    if found is None:
        raise Unplaced(
            "invalid_niveau", "niveau is none of commune, epci, departement, region, france"
        )
    return found


def locate_territory(niveau: str, code: str, ref: Referential) -> str:
    """A territory's code above the commune, normalized (``1`` → ``01``,
    ``2a`` → ``2A``, ``fr`` → ``FR``), else :class:`Unplaced` (``unknown_code``)."""
    normalized = code.strip().upper()
    if niveau == "france":
        if normalized in (FRANCE, "FRA", "FRANCE"):
            return FRANCE
    else:
        if niveau in ("departement", "region") and normalized.isdigit() and len(normalized) < 2:
            normalized = normalized.zfill(2)
        if normalized in levels(ref)[niveau]:
            return normalized
    raise Unplaced("unknown_code", f"{normalized[:16]!r} is no {niveau} code in {ref.version}")


def place(
    ref: Referential,
    *,
    commune: str | None = None,
    code: str | None = None,
    niveau: str | None = None,
    label: str | None = None,
    departement: str | None = None,
) -> tuple[str, str, str]:
    """(level; code as sent, normalized; current code) of a record's
    territory, as the cleaner places every record and the ingestor checks a
    producer's territories: a commune by its code, or by its name alone
    (narrowed by ``departement``); a territory above by ``niveau`` and its
    code (``code``, else ``commune``) or its name. A blank field counts as
    absent. Else :class:`Unplaced`."""
    level = level_of(niveau)
    given = next((c for c in (code, commune) if c is not None and c.strip()), None)
    named = label if label is not None and label.strip() else None
    if level == "commune":
        if given is not None or named is None:
            return level, *locate(given or commune or "", ref)
        found = locate_label(named, ref, departement)
    elif given is not None:
        found = locate_territory(level, given, ref)
    elif named is not None:
        found = locate_label(named, ref, niveau=level)
    else:
        raise Unplaced("invalid_code", f"no code nor name for the {level}")
    return level, found, found


@cache
def covering(ref: Referential) -> dict[tuple[str, str], frozenset[tuple[str, str]]]:
    """Each territory above the commune and the territories that hold every
    one of its communes, itself included (an EPCI within one département: its
    département and région; one across two: neither). Made once."""
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for levels_above in ancestors(ref).values():
        above = set(levels_above)
        for territory in levels_above:
            if territory in found:
                found[territory] &= above
            else:
                found[territory] = set(above)
    return {t: frozenset(holding) for t, holding in found.items()}


@cache
def epci_coverage(ref: Referential) -> dict[str, tuple[str, ...]]:
    """Each département whose every commune belongs to an EPCI lying wholly
    within it, and those EPCIs (sorted): their values add up to the
    département's. The others are absent: a commune without an EPCI, or an
    EPCI across a border (its value cannot be split), leaves a département
    uncovered (21 of 109 are covered on the 2026 map). Made once."""
    holding = covering(ref)
    members: dict[str, set[str]] = {}
    uncovered: set[str] = set()
    for c in ref.communes.values():
        if c.epci is None or ("departement", c.departement) not in holding[("epci", c.epci)]:
            uncovered.add(c.departement)
        else:
            members.setdefault(c.departement, set()).add(c.epci)
    return {d: tuple(sorted(e)) for d, e in members.items() if d not in uncovered}
