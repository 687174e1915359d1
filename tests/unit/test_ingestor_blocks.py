"""The handler behind ``itte ingest`` and ``itte pull``, on the fake
publisher: every record of a block is published (on the bulk lane, or on
the live lane when columns cannot carry it) or handed back refused, with
its line and reason, in line order."""

from __future__ import annotations

from typing import Any

from services.ingestor.files import Unreadable, record_blocks
from services.ingestor.handlers import BlockHandler
from tests.unit.fakes import MemoryPublisher

GOOD = {"indicateur": "co2", "commune": "33063", "annee": 2020, "valeur": 1}


def test_each_record_is_published_or_refused_with_its_line() -> None:
    publisher = MemoryPublisher()
    refused: list[tuple[int, str]] = []
    seen: list[int] = []

    def rejected(record: Any, line: int, reason: str, detail: str) -> None:
        refused.append((line, reason))

    records: list[tuple[int, Any]] = [
        (1, GOOD),
        (2, {**GOOD, "annee": "deux mille"}),  # no year a column accepts
        (3, [1, 2]),
        (4, Unreadable("not JSON")),
        (5, {**GOOD, "valeur": {"nested": True}}),  # columns cannot carry it
        (6, {**GOOD, "sous_champ": "a\udc80b"}),  # nor a lone surrogate
        (7, {**GOOD, "commune": "2A004"}),
    ]
    published = BlockHandler(publisher).publish(
        record_blocks(records, size=4), source="test", producer=None,
        rejected=rejected, read=seen.append,
    )  # fmt: skip
    assert sum(seen) == len(records)
    assert refused == [
        (3, "not_an_object"),
        (4, "invalid_json"),
        (5, "invalid_schema"),
        (6, "invalid_schema"),
    ]  # in line order, across the two blocks
    assert published.records == 3 and published.records + len(refused) == len(records)
    assert [r["annee"] for r in publisher.tables] == ["2020", "deux mille", "2020"]
    assert publisher.tables[-1]["commune"] == "2A004"


def test_the_rejects_see_records_with_their_personal_fields_hidden() -> None:
    publisher = MemoryPublisher()
    publisher.hide = lambda record: {k: "h" if k == "email" else v for k, v in record.items()}
    assert BlockHandler(publisher).hide({**GOOD, "email": "a@b.fr"})["email"] == "h"
