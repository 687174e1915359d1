from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

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


# Bodies are read a record at a time, stopping past the limit (issue #30):
# what is read must be what one json.loads (or bytes.splitlines) reads.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
blank = st.sampled_from(["", " ", "\n", "\r\n\t", "\u00a0"])


def as_json_loads(body: bytes) -> Parsed:
    """The reading before: the whole body at once."""
    document = json.loads(body, parse_float=str)
    parsed = Parsed()
    for position, record in enumerate(document if isinstance(document, list) else [document], 1):
        parsed.add(position, record)
    return parsed


def same_reading(body: bytes) -> None:
    try:
        expected = as_json_loads(body)
    except (ValueError, RecursionError):
        with pytest.raises(BodyError):
            parse_json_body(body)
        return
    assert parse_json_body(body) == expected


@given(st.lists(json_values, max_size=6), blank, blank, st.sampled_from([",", " ,", ", \n"]))
@example([{"a": 1}, 2], "\n", " ", ",")
def test_an_array_is_read_as_json_loads_reads_it(
    items: list, before: str, after: str, comma: str
) -> None:
    body = before + "[" + comma.join(json.dumps(i) for i in items) + "]" + after
    same_reading(body.encode())
    same_reading(body.encode("utf-16"))


@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
@example(b"\xef\xbb\xbf[{}]")
@example(b"[{}] x")
@example(b"[{},]")
@example(b"[{} {}]")
@example(b"[" * 5000)
def test_any_bytes_are_read_as_json_loads_reads_them(body: bytes) -> None:
    same_reading(body)


@given(st.binary(max_size=64), st.integers(0, 5))
@example(b"{}\r\n\r{}\r{}\n\n", 2)
def test_ndjson_lines_are_cut_as_splitlines_cuts_them(body: bytes, limit: int) -> None:
    whole = parse_ndjson_body(body)
    lines = [line for line in body.splitlines() if line.strip()]
    assert len(whole.records) + len(whole.errors) == len(lines) and not whole.over
    limited = parse_ndjson_body(body, limit)
    assert limited.over == (len(lines) > limit)
    if not limited.over:
        assert limited == whole


@given(st.integers(0, 30), st.integers(0, 30))
def test_reading_stops_past_the_limit(count: int, limit: int) -> None:
    for body in (
        ("[" + ",".join(["{}"] * count) + "]").encode(),
        "\n".join(["{}"] * count).encode(),
    ):
        parse = parse_json_body if body.startswith(b"[") else parse_ndjson_body
        parsed = parse(body, limit)
        assert parsed.over == (count > limit)
        assert len(parsed.records) == (limit if count > limit else count)


def test_a_body_of_millions_of_empty_objects_is_refused_without_reading_them() -> None:
    body = b"[" + b",".join([b"{}"] * 5_000_000) + b"]"  # 15 MB
    parsed = parse_json_body(body, 20_000)  # json.loads: 5 million dicts, about 1.5 GB
    assert parsed.over and len(parsed.records) == 20_000
