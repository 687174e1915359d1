"""A bad record costs only itself: the cleaner's pure functions over any JSON
value in any field and any bytes as a Kafka message, and the bounds they keep."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import limits
from schemas.clean import CleanBatch, encode_batches
from schemas.deadletter import DeadLetter
from schemas.raw import RawObservation, schema_problem
from services.cleaner.transform import clean_message
from tests.strategies import values_within_bounds
from tests.unit.test_cleaner_transform import ORIGIN, RULES, envelope

GOOD = {"indicateur": "x", "commune": "33063", "annee": 2020, "valeur": "12,5"}
FIELDS = [*RawObservation.model_fields, "nom_declarant", "email", "autre"]

# Any JSON value, hostile texts and numbers weighted in.
hostile_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(["\x00", "\ud800", "²", "٣", "1", "e", ",", "-", " "])),
    st.integers(0, 6000).map(lambda n: "9" * n),
    st.sampled_from(["1e999999999", "-1e-999999999", "NaN", "Infinity", "sNaN", "²", "", "s"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, -1, 2**53, 2**53 - 1, 10**4299]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
records = st.dictionaries(st.sampled_from(FIELDS), json_values).map(lambda r: {**GOOD, **r})


def dumps(value: Any) -> bytes:
    return json.dumps(value, default=str).encode("utf-8", "surrogatepass")


def accounted(value: bytes, expected_records: int) -> None:
    result = clean_message(value, ORIGIN, RULES)
    assert len(result.clean) + len(result.dead) == expected_records
    assert len(result.encoded) == len(result.clean)
    ids = [o.record_id for o in result.clean] + [d.record_id for d in result.dead]
    assert len(set(ids)) == len(ids)
    for dead in result.dead:  # every dead letter can be sent and read back
        DeadLetter.model_validate_json(dead.model_dump_json())
    for _, message in encode_batches("b", result.encoded, max_records=2, max_bytes=10_000):
        CleanBatch.model_validate_json(message)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=4), st.integers(0, 3))
def test_any_json_in_any_field_costs_only_its_record(batch: list[Any], good_at: int) -> None:
    batch.insert(min(good_at, len(batch)), GOOD)
    result = clean_message(dumps_envelope(*batch), ORIGIN, RULES)
    assert len(result.clean) + len(result.dead) == len(batch)
    assert any(o.record_id == f"b1:{min(good_at, len(batch) - 1):06d}" for o in result.clean)
    accounted(dumps_envelope(*batch), len(batch))


@settings(max_examples=200)
@given(st.lists(json_values, max_size=4))
def test_any_json_value_as_a_record(batch: list[Any]) -> None:
    accounted(dumps_envelope(*batch), len(batch))


@settings(max_examples=200)
@given(st.binary(max_size=300) | json_values.map(dumps))
def test_any_bytes_as_a_kafka_message(value: bytes) -> None:
    result = clean_message(value, ORIGIN, RULES)
    assert len(result.clean) + len(result.dead) >= 1


def test_a_message_nested_beyond_any_parser_is_one_dead_letter() -> None:
    [dead] = clean_message(b"[" * 100_000 + b"]" * 100_000, ORIGIN, RULES).dead
    assert dead.reason == "invalid_message"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("annee", "²", "invalid_year"),
        ("annee", "5" * 5000, "invalid_schema"),
        ("annee", "٢٠٢٠", "invalid_year"),
        ("unite", "kg\x00", "invalid_schema"),
        ("sous_champ", "a\x00b", "invalid_schema"),
        ("sous_champ", "x" * 3000, "invalid_schema"),
        ("version", 2**63, "invalid_schema"),
        ("version", -1, "invalid_schema"),
        ("valeur", "1e999999999", "invalid_schema"),
        ("valeur", "0.0000000001", "invalid_schema"),
        ("valeur", float("nan"), "invalid_schema"),
        ("valeur", "NaN", "invalid_value"),
        ("nom_declarant", "\ud800", "invalid_schema"),
        ("autre", {"nested": [1]}, "invalid_schema"),
        ("indicateur", " \t\u3000", "invalid_schema"),  # blank once its spaces are folded
    ],
)
def test_the_issues_odd_records_are_dead_lettered(field: str, value: Any, reason: str) -> None:
    result = clean_message(dumps_envelope({**GOOD, field: value}, GOOD), ORIGIN, RULES)
    [dead] = result.dead
    [good] = result.clean
    assert (dead.reason, dead.record_id, good.record_id) == (reason, "b1:000000", "b1:000001")
    assert "\x00" not in dead.model_dump_json() and "Jeanne" not in dead.detail


def dumps_envelope(*batch: Any) -> bytes:
    document = {"batch_id": "b1", "source": "t", "received_at": "2026-01-01T00:00:00Z"}
    return dumps({**document, "records": list(batch)})


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (Decimal("-1" + "0" * 21), False),
        (Decimal("-" + "9" * 21), True),
        (Decimal("9" * 21), True),
        (Decimal("9" * 21 + ".123456789"), True),
        (Decimal("1.1234567891"), False),
        (Decimal("1.1234567890000"), True),  # trailing zeros are no precision
        (Decimal("0E-40"), True),
        (Decimal("1E+20"), True),
        (Decimal("1E+21"), False),
    ],
)
def test_number_bounds_at_their_edges(value: Decimal, ok: bool) -> None:
    if ok:
        assert limits.check_number(value) == value
    else:
        with pytest.raises(limits.OutOfBounds):
            limits.check_number(value)


def test_versions_at_their_bounds() -> None:
    assert schema_problem({**GOOD, "version": limits.MAX_VERSION}) is None
    assert schema_problem({**GOOD, "version": 0}) is None
    assert schema_problem({**GOOD, "version": limits.MAX_VERSION + 1}) is not None


def test_the_former_corsican_number_is_the_same_commune_not_a_merge() -> None:
    result = clean_message(envelope({**GOOD, "commune": "20004"}), ORIGIN, RULES)
    [obs] = result.clean
    assert (obs.commune_source, obs.commune) == ("2A004", "2A004")
    merged = clean_message(envelope({**GOOD, "commune": "20237"}), ORIGIN, RULES)
    assert (merged.clean[0].commune_source, merged.clean[0].commune) == ("20237", "2A308")


@given(
    st.lists(st.integers(0, 300), max_size=40),
    st.integers(1, 6),
    st.integers(1, 2_000),
)
@example(lengths=[0, 0], max_records=2, max_bytes=59)  # the comma between two records
def test_clean_messages_are_bounded_in_records_and_bytes(
    lengths: list[int], max_records: int, max_bytes: int
) -> None:
    records = [b'{"r":%d,"x":"%s"}' % (i, b"x" * n) for i, n in enumerate(lengths)]
    messages = list(encode_batches("b", records, max_records=max_records, max_bytes=max_bytes))
    assert [bid for bid, _ in messages] == [f"b/{i}" for i in range(len(messages))]
    decoded = [json.loads(m) for _, m in messages]
    assert [r["r"] for d in decoded for r in d["records"]] == list(range(len(records)))
    for d, (_, m) in zip(decoded, messages, strict=True):
        assert len(d["records"]) <= max_records
        assert len(m) <= max_bytes or len(d["records"]) == 1  # a record alone may be larger


def test_an_unforeseen_error_costs_its_record_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.cleaner import transform

    real = transform.parse_value

    def fragile(valeur: object) -> Any:
        if valeur == "boom":
            raise RuntimeError("Jeanne Martin, 3 rue des Lilas")  # a message echoing input
        return real(valeur)

    monkeypatch.setattr(transform, "parse_value", fragile)
    result = clean_message(envelope(GOOD, {**GOOD, "valeur": "boom"}, GOOD), ORIGIN, RULES)
    [dead] = result.dead
    assert [o.record_id for o in result.clean] == ["b1:000000", "b1:000002"]
    assert (dead.record_id, dead.reason) == ("b1:000001", "internal_error")
    assert "RuntimeError" in dead.detail and "Jeanne" not in dead.model_dump_json()


@given(values_within_bounds)
def test_every_value_the_tests_call_within_bounds_is_accepted(value: Decimal) -> None:
    assert schema_problem({**GOOD, "valeur": str(value)}) is None
    assert schema_problem({**GOOD, "valeur": value}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("999999999999999999999,999999999", Decimal("999999999999999999999.999999999")),
        ("-1 234,5", Decimal("-1234.5")),
        ("0000000000000000000000000001.5", Decimal("1.5")),  # past the fast path, in bounds
        ("1.5000000000000", Decimal("1.5")),
        ("1e20", Decimal("1e20")),
        ("douze", None),
        ("1.2.3", None),
    ],
)
def test_numbers_as_text(text: str, expected: Decimal | None) -> None:
    assert limits.number_from_text(text) == expected


@pytest.mark.parametrize("text", ["1e21", "1000000000000000000000", "0.0000000001", "9" * 65])
def test_numbers_as_text_out_of_bounds(text: str) -> None:
    with pytest.raises(limits.OutOfBounds):
        limits.number_from_text(text)
