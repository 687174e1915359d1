from __future__ import annotations

import pytest

from common.kafka import MessageTooLarge
from services.ingestor.batching import (
    BodyError,
    Parsed,
    batches,
    parse_json_body,
    parse_ndjson_body,
    validate,
)


def records(parsed: Parsed) -> list:
    return [r for _, r in parsed.records]


def test_json_object_or_array() -> None:
    assert records(parse_json_body(b'{"a": 1}')) == [{"a": 1}]
    assert records(parse_json_body(b'[{"a": 1}, {"b": 2}]')) == [{"a": 1}, {"b": 2}]


def test_fractions_keep_their_exact_decimal_text() -> None:
    assert records(parse_json_body(b'{"valeur": 0.1000000000000000055511}')) == [
        {"valeur": "0.1000000000000000055511"}
    ]


def test_unreadable_json_names_the_line() -> None:
    with pytest.raises(BodyError) as caught:
        parse_json_body(b'[{"a": 1},\n{"b": }]')
    assert caught.value.errors[0].line == 2


def test_json_array_items_must_be_objects() -> None:
    parsed = parse_json_body(b'[{"a": 1}, 3, "x"]')
    assert [e.line for e in parsed.errors] == [2, 3]
    assert records(parsed) == [{"a": 1}]


def test_ndjson_lists_every_bad_line() -> None:
    parsed = parse_ndjson_body(b'{"a": 1}\n\n{"b": \n[1]\n{"c": 3}\n')
    assert [(e.line, e.error.split(":")[0]) for e in parsed.errors] == [
        (3, "invalid JSON"),
        (4, "not a JSON object"),
    ]
    assert parsed.records == [(1, {"a": 1}), (5, {"c": 3})]


def test_schema_errors_name_line_and_field_without_the_value() -> None:
    parsed = validate(
        parse_ndjson_body(
            b'{"indicateur": "x", "commune": "33063"}\n{"commune": "Jeanne"}\n'
            b'{"indicateur": ["Jeanne"], "commune": "33063"}'
        )
    )
    assert [r for r, _ in parsed.records] == [1]
    assert [e.line for e in parsed.errors] == [2, 3]
    assert "indicateur" in parsed.errors[0].error
    assert all("Jeanne" not in e.error for e in parsed.errors)


def test_batches_cut_records_into_envelopes() -> None:
    cut = list(batches(({"i": i} for i in range(7)), source="t", size=3))
    assert [len(b.records) for b in cut] == [3, 3, 1]
    assert len({b.batch_id for b in cut}) == 3


def test_an_envelope_too_large_for_one_message_is_halved_unless_it_must_be_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.ingestor import publisher
    from services.ingestor.batching import batches

    monkeypatch.setattr(publisher, "MAX_MESSAGE_BYTES", 2_000)
    records = [{"indicateur": "x", "commune": "33063", "libelle_indicateur": "y" * 300}] * 10
    [batch] = batches(records, source="t", size=10)
    parts = publisher.encoded(batch, split=True)
    assert all(len(value) <= 2_000 for _, value in parts) and len(parts) > 1
    assert [r for b, _ in parts for r in b.records] == records
    assert len({b.batch_id for b, _ in parts}) == len(parts)
    with pytest.raises(MessageTooLarge):
        publisher.encoded(batch, split=False)
