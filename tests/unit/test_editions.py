"""How a code of any edition lands on an older edition's communes
(common/referential/editions.py), on small maps made here, and the shipped
editions as the registry's versions hold them."""

from __future__ import annotations

import csv
import gzip
import sys
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest

from common import referential
from common.referential import Commune, Referential
from common.referential.editions import Passage, passage, splits


def edition(year: int, communes: dict[str, int | None], former: dict[str, str]) -> Referential:
    return Referential(
        version=f"test@{year}",
        communes={
            code: Commune(code, code, "01", "84", "200000001", people)
            for code, people in communes.items()
        },
        former_codes=former,
        ambiguous_codes={},
        epci={"200000001": "CC"},
        departements={"01": "Ain"},
        regions={"84": "ARA"},
        arrondissements={},
    )


# 2019: A, B, C, D. 2022: A absorbed B (keeping A's code); C and D made E, a
# new code. 2026: E absorbed A.
Y2019 = edition(2019, {"0000A": 300, "0000B": 100, "0000C": 5, "0000D": None}, {"0000Z": "0000A"})
Y2022 = edition(
    2022,
    {"0000A": 400, "0000E": 5},
    {"0000Z": "0000A", "0000B": "0000A", "0000C": "0000E", "0000D": "0000E"},
)
Y2026 = edition(
    2026,
    {"0000E": 405},
    {"0000Z": "0000E", "0000B": "0000E", "0000C": "0000E", "0000D": "0000E", "0000A": "0000E"},
)


def placed(rows) -> dict[str, set[tuple[str, int, int]]]:
    found: dict[str, set[tuple[str, int, int]]] = defaultdict(set)
    for p in rows:
        found[p.code].add((p.commune, p.part, p.total))
    return dict(found)


def test_a_code_reads_whole_where_it_names_a_commune_or_one_merged_into_it() -> None:
    on_2019 = placed(passage(Y2019, [Y2022, Y2026]))
    assert on_2019["0000A"] == {("0000A", 1, 1)}  # a commune of the edition: itself
    assert on_2019["0000Z"] == {("0000A", 1, 1)}  # merged into A before 2019
    on_2022 = placed(passage(Y2022, [Y2026]))
    assert on_2022["0000B"] == {("0000A", 1, 1)}  # merged into A by 2022
    assert on_2022["0000A"] == {("0000A", 1, 1)}


def test_a_new_code_is_split_among_the_communes_it_was_made_of_by_population() -> None:
    on_2019 = placed(passage(Y2019, [Y2022, Y2026]))
    # E (2022) was C (5 people) and D (none known).
    assert on_2019["0000E"] == {("0000C", 5, 5), ("0000D", 0, 5)}


def test_equal_shares_when_no_part_has_a_population() -> None:
    bare = edition(2019, {"0000C": None, "0000D": 0}, {})
    assert placed(passage(bare, [Y2022]))["0000E"] == {("0000C", 1, 2), ("0000D", 1, 2)}


def test_a_code_grown_since_is_split_for_values_keyed_on_the_later_edition() -> None:
    """A in 2022 is A and B of 2019: a 2022 value on A is split 300/100;
    E in 2026 is all four: split by their 2019 people."""
    assert placed(splits(Y2019, Y2022)) == {
        "0000A": {("0000A", 300, 400), ("0000B", 100, 400)},
        "0000E": {("0000C", 5, 5), ("0000D", 0, 5)},
    }
    assert placed(splits(Y2019, Y2026))["0000E"] == {
        ("0000A", 300, 405),
        ("0000B", 100, 405),
        ("0000C", 5, 405),
        ("0000D", 0, 405),
    }
    assert list(splits(Y2022, Y2022)) == []  # on its own edition, nothing moves


def test_every_share_of_a_code_adds_up_to_the_whole() -> None:
    for rows in (passage(Y2019, [Y2022, Y2026]), splits(Y2019, Y2026), splits(Y2022, Y2026)):
        shares: dict[str, int] = defaultdict(int)
        totals: dict[str, int] = {}
        for p in rows:
            assert isinstance(p, Passage) and 0 <= p.part <= p.total
            shares[p.code] += p.part
            totals[p.code] = p.total
        assert shares == totals


def test_the_shipped_editions_as_the_registry_holds_them() -> None:
    counts = {year: len(referential.edition(year).communes) for year in referential.EDITIONS}
    assert counts == {
        2019: 35_064,
        2021: 35_059,
        2022: 35_049,
        2023: 35_039,
        2024: 35_029,
        2025: 34_969,
        2026: 34_969,
    }
    older = referential.edition(2019)
    assert older.version == "@etalab/decoupage-administratif@0.7.0"
    assert older.communes["01039"].nom == "Béon"  # merged into Culoz-Béon since
    assert "01039" not in referential.load().communes
    # Every code of 2026 places on 2019's map, whole or in shares.
    on_2019 = placed(passage(older, [referential.load()]))
    assert referential.load().communes.keys() <= on_2019.keys()
    with pytest.raises(ValueError, match="no edition 2020"):
        referential.edition(2020)


def test_the_shipped_passage_is_the_one_these_rules_make() -> None:
    """``itte migrate`` copies data/editions/passage.csv.gz as it is: it
    must be what common/referential/editions.py makes of the editions."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))
    import build_referential

    shipped = resources.files("common.referential").joinpath("data/editions/passage.csv.gz")
    with shipped.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
        rows = list(csv.reader(text))
    assert rows[0] == ["millesime", "cle", "code", "commune", "part", "total"]
    assert sorted(tuple(r) for r in rows[1:]) == sorted(
        tuple(map(str, r)) for r in build_referential.passages()
    )
