"""The ingestor's push rules, called directly with the fakes of its ports:
every status it answers, and what reaches the broker in each case."""

from __future__ import annotations

import json

import psycopg
import pytest
from limits import parse
from pydantic import ValidationError

from common.kafka import DeliveryError, MessageTooLarge
from services.ingestor.auth import Producers, hash_token
from services.ingestor.handlers import ANONYMOUS, PushHandler
from services.ingestor.models import Answer, Submission
from services.ingestor.ports import Letter, RateLimit
from services.ingestor.ratelimit import MovingWindow
from services.ingestor.settings import PRODUCTION_RATE_LIMIT, IngestorSettings
from tests.unit.fakes import (
    CountingRateLimit,
    MemoryBatchLedger,
    MemoryIdempotencyKeys,
    MemoryPublisher,
)

TOKEN = "itte_unit-test-token"
GOOD = {"indicateur": "pop", "commune": "33063", "annee": 2020, "valeur": 1}
BAD = {"commune": "33063", "annee": 2020}  # no indicateur


def handler(
    publisher: MemoryPublisher | None = None,
    keys: MemoryIdempotencyKeys | None = None,
    *,
    auth: bool = True,
    rate_limit: RateLimit | None = None,
    ledger: MemoryBatchLedger | None = None,
) -> PushHandler:
    tokens = (
        json.dumps({"ademe": hash_token(TOKEN), "autre": hash_token(TOKEN + "-autre")})
        if auth
        else None
    )
    return PushHandler(
        publisher or MemoryPublisher(),
        keys or MemoryIdempotencyKeys(),
        ledger=ledger or MemoryBatchLedger(),
        producers=Producers.parse(tokens),
        max_body_bytes=10_000,
        max_records=3,
        rate_limit=rate_limit,
    )


def push(h: PushHandler, *records: object, **options: object) -> Answer:
    body = json.dumps(list(records)).encode()
    return h.submit(Submission(producer="ademe", body=body, **options))  # type: ignore[arg-type]


def test_only_a_known_token_identifies_a_producer() -> None:
    h = handler()
    assert h.authenticate(f"Bearer {TOKEN}") == "ademe"
    for wrong in (None, "", "Bearer", "Bearer nope", f"Basic {TOKEN}"):
        answer = h.authenticate(wrong)
        assert isinstance(answer, Answer) and answer.status == 401
        assert answer.headers == {"WWW-Authenticate": "Bearer"}
    assert handler(auth=False).authenticate(None) == ANONYMOUS


def test_accepted_records_go_out_in_one_message_with_their_producer() -> None:
    publisher = MemoryPublisher()
    answer = push(handler(publisher), GOOD, {**GOOD, "valeur": 2})
    assert (answer.status, answer.content["accepted"]) == (202, 2)
    assert publisher.published == [([GOOD, {**GOOD, "valeur": 2}], "ademe")]


def test_without_authentication_records_carry_no_producer() -> None:
    publisher = MemoryPublisher()
    h = handler(publisher, auth=False)
    assert h.submit(Submission(ANONYMOUS, json.dumps(GOOD).encode())).status == 202
    assert publisher.published == [([GOOD], None)]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (None, 413, "body larger than 10000 bytes"),
        (b"[1, 2", 400, "unreadable body"),
        (b"[]", 422, "no record"),
        (json.dumps([GOOD] * 4).encode(), 413, "more than 3 records"),
    ],
)
def test_a_refused_body_publishes_nothing(body: bytes | None, status: int, reason: str) -> None:
    publisher = MemoryPublisher()
    answer = handler(publisher).submit(Submission("ademe", body))
    assert answer.status == status and reason in answer.content["detail"]
    assert publisher.published == []


def test_atomic_refuses_all_partial_keeps_the_good_and_names_the_bad() -> None:
    publisher = MemoryPublisher()
    h = handler(publisher)
    atomic = push(h, GOOD, BAD)
    assert atomic.status == 422 and [e["line"] for e in atomic.content["errors"]] == [2]
    assert publisher.published == []
    partial = push(h, GOOD, BAD, mode="partial")
    assert partial.status == 202 and [r["line"] for r in partial.content["rejected"]] == [2]
    assert publisher.published == [([GOOD], "ademe")]
    assert push(h, BAD, mode="partial").status == 422  # nothing left to accept


def test_a_blank_indicator_is_refused_at_the_edge_not_after_its_202() -> None:
    answer = push(handler(), GOOD, {**GOOD, "indicateur": " \u00a0"})
    assert answer.status == 422
    assert answer.content["errors"] == [{"line": 2, "error": "indicateur: is empty"}]


def test_a_retried_request_is_answered_again_and_published_once() -> None:
    publisher, keys = MemoryPublisher(), MemoryIdempotencyKeys()
    h = handler(publisher, keys)
    first = push(h, GOOD, idempotency_key="k")
    again = push(h, GOOD, idempotency_key="k")
    assert (again.status, again.content) == (first.status, first.content)
    assert again.headers == {"Idempotent-Replayed": "true"} and len(publisher.published) == 1
    other = push(h, {**GOOD, "valeur": 9}, idempotency_key="k")
    assert other.status == 422 and "another body" in other.content["detail"]


def test_a_key_still_in_progress_is_409() -> None:
    keys = MemoryIdempotencyKeys()
    body = json.dumps([GOOD]).encode()
    keys.claim("ademe", "k", body)  # another replica is on it
    answer = handler(keys=keys).submit(Submission("ademe", body, idempotency_key="k"))
    assert answer.status == 409 and answer.headers == {"Retry-After": "2"}


@pytest.mark.parametrize(
    ("failure", "status"), [(DeliveryError("away"), 503), (MessageTooLarge("33 MB"), 413)]
)
def test_when_the_broker_takes_nothing_the_key_is_free_for_the_retry(
    failure: Exception, status: int
) -> None:
    keys = MemoryIdempotencyKeys()
    answer = push(handler(MemoryPublisher(failure), keys), GOOD, idempotency_key="k")
    assert answer.status == status and keys.keys == {}
    published = MemoryPublisher()
    assert push(handler(published, keys), GOOD, idempotency_key="k").status == 202
    assert len(published.published) == 1


def test_an_unexpected_failure_frees_the_key_and_propagates() -> None:
    keys, ledger = MemoryIdempotencyKeys(), MemoryBatchLedger()
    with pytest.raises(RuntimeError):
        push(
            handler(MemoryPublisher(RuntimeError("bug")), keys, ledger=ledger),
            GOOD,
            idempotency_key="k",
        )
    assert keys.keys == {} and ledger.batches == {}


def test_without_the_database_a_push_is_published_untracked() -> None:
    """The broker is the buffer: Postgres away stops no push without a key."""
    publisher = MemoryPublisher()
    ledger = MemoryBatchLedger(fail_with=psycopg.OperationalError("connection refused"))
    answer = push(handler(publisher, ledger=ledger), GOOD)
    assert answer.status == 202 and answer.content["tracked"] is False
    assert publisher.published == [([GOOD], "ademe")]
    assert push(handler(ledger=MemoryBatchLedger()), GOOD).content["tracked"] is True


def test_without_the_database_a_keyed_push_is_503_and_a_status_read_too() -> None:
    publisher, keys = MemoryPublisher(), MemoryIdempotencyKeys()
    keys.fail_with = psycopg.OperationalError("connection refused")
    answer = push(handler(publisher, keys), GOOD, idempotency_key="k")
    assert (answer.status, answer.headers) == (503, {"Retry-After": "5"})
    assert "database unavailable" in answer.content["detail"]
    assert publisher.published == []
    ledger = MemoryBatchLedger(fail_with=psycopg.OperationalError("connection refused"))
    assert handler(ledger=ledger).status("ademe", "0" * 32).status == 503


def test_a_bug_in_the_ledger_is_not_mistaken_for_an_outage() -> None:
    ledger = MemoryBatchLedger(fail_with=psycopg.errors.UndefinedTable("no ingest_batches"))
    with pytest.raises(psycopg.errors.UndefinedTable):
        push(handler(ledger=ledger), GOOD)


def lines_of(status: dict) -> list[tuple[int | None, str, str]]:
    return [(r["line"], r["stage"], r["reason"]) for r in status["rejected"]]


def test_a_batch_tells_its_producer_what_became_of_each_line() -> None:
    ledger = MemoryBatchLedger()
    h = handler(ledger=ledger)
    # Lines 1 and 3 published (positions 1 and 2); line 2 refused in the request.
    answer = push(h, GOOD, BAD, {**GOOD, "commune": "99999"}, mode="partial")
    [batch_id] = answer.content["batch_ids"]
    status = h.status("ademe", batch_id)
    assert status.status == 200
    assert {k: status.content[k] for k in ("accepted", "clean", "dead_lettered", "pending")} == {
        "accepted": 2,
        "clean": 0,
        "dead_lettered": 0,
        "pending": 2,
    }
    assert status.content["complete"] is False and status.content["refused"] == 1
    # The pipeline's answer: position 1 in the results, position 2 dead-lettered.
    ledger.clean[batch_id] = {1}
    ledger.letters[batch_id] = [Letter(2, "cleaner", "unknown_code", "commune 99999 inconnue")]
    done = h.status("ademe", batch_id).content
    assert (done["clean"], done["dead_lettered"], done["pending"], done["complete"]) == (
        1,
        1,
        0,
        True,
    )
    assert lines_of(done) == [(2, "ingestor", "invalid_record"), (3, "cleaner", "unknown_code")]


def test_a_producer_never_reads_another_producers_batch() -> None:
    h = handler()
    [batch_id] = push(h, GOOD).content["batch_ids"]
    assert h.status("ademe", batch_id).status == 200
    for producer, asked in (("autre", batch_id), ("ademe", "0" * 32), ("ademe", "../etc")):
        answer = h.status(producer, asked)
        assert answer.status == 404 and answer.content == {
            "detail": "no batch of yours has this id"
        }


@pytest.mark.parametrize("batch_id", ["", "\x00" * 32, "A" * 32, "é" * 32, "0" * 33, "\ud800"])
def test_an_id_the_ingestor_never_makes_is_unknown_without_asking_the_ledger(batch_id: str) -> None:
    ledger = MemoryBatchLedger(fail_with=AssertionError("asked"))
    assert handler(ledger=ledger).status("ademe", batch_id).status == 404


def test_a_batch_the_broker_refused_is_forgotten() -> None:
    ledger = MemoryBatchLedger()
    assert push(handler(MemoryPublisher(DeliveryError("away")), ledger=ledger), GOOD).status == 503
    assert ledger.batches == {}


def test_over_its_rate_limit_a_producer_gets_429_and_when_to_retry() -> None:
    publisher = MemoryPublisher()
    h = handler(publisher, rate_limit=CountingRateLimit(allowed=2, wait=2.5))
    assert [push(h, GOOD).status for _ in range(2)] == [202, 202]
    refused = push(h, GOOD)
    assert (refused.status, refused.headers) == (429, {"Retry-After": "3"})
    assert len(publisher.published) == 2  # the refused request published nothing
    other = h.submit(Submission("autre", json.dumps([GOOD]).encode()))
    assert other.status == 202  # each producer has its own window


def test_status_reads_count_against_the_producers_rate_limit() -> None:
    h = handler(MemoryPublisher(), rate_limit=CountingRateLimit(allowed=2, wait=2.5))
    [batch_id] = push(h, GOOD).content["batch_ids"]
    assert h.status("ademe", batch_id).status == 200
    refused = h.status("ademe", batch_id)
    assert (refused.status, refused.headers) == (429, {"Retry-After": "3"})
    assert h.status("autre", batch_id).status == 404  # its own window; not its batch


def test_the_moving_window_admits_the_limit_then_says_how_long_to_wait() -> None:
    window = MovingWindow("2/minute")
    assert [window.admit("ademe"), window.admit("ademe")] == [None, None]
    wait = window.admit("ademe")
    assert wait is not None and 0 < wait <= 60
    assert window.admit("autre") is None


def test_an_unreadable_rate_limit_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="rate_limit"):
        IngestorSettings(rate_limit="lots")
    assert IngestorSettings(rate_limit="60/minute").rate_limit == "60/minute"


def test_a_production_ingestor_is_rate_limited_unless_its_operator_says_otherwise() -> None:
    assert IngestorSettings(environment="local").producer_rate_limit is None
    production = IngestorSettings(environment="production", pii_key="k" * 32)
    assert production.producer_rate_limit == PRODUCTION_RATE_LIMIT
    assert parse(PRODUCTION_RATE_LIMIT).amount == 600
    given = IngestorSettings(environment="production", pii_key="k" * 32, rate_limit="5/second")
    assert given.producer_rate_limit == "5/second"
    off = IngestorSettings(environment="production", pii_key="k" * 32, rate_limit="unlimited")
    assert off.producer_rate_limit is None


def test_records_beyond_a_token_scope_are_refused_whole_even_in_partial_mode() -> None:
    publisher = MemoryPublisher()
    producers = Producers.of(
        {
            "ademe": {
                "jetons": [hash_token(TOKEN)],
                "indicateurs": ["pop"],
                "territoires": ["departement:33"],
            }
        },
        where="test",
    )
    h = PushHandler(
        publisher,
        MemoryIdempotencyKeys(),
        ledger=MemoryBatchLedger(),
        producers=producers,
        max_body_bytes=10_000,
        max_records=3,
    )
    assert push(h, GOOD).status == 202
    other_indicator = {**GOOD, "indicateur": "emissions"}
    elsewhere = {**GOOD, "commune": "75056"}
    for mode in ("atomic", "partial"):
        answer = push(h, GOOD, other_indicator, elsewhere, mode=mode)
        assert answer.status == 403
        assert answer.content["errors"] == [
            {"line": 2, "error": "indicator 'emissions' is not among this producer's"},
            {"line": 3, "error": "commune '75056' is outside this producer's territories"},
        ]
    assert len(publisher.published) == 1  # only the first push
