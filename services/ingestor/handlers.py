"""What the ingestor does, without HTTP nor a terminal, for its three
entrypoints: :class:`PushHandler` from the producer and the bytes of a
request to the answer (status, body, headers), for ``POST /observations``
(``http.py``); :class:`BlockHandler` from the blocks of records read from a
file (``itte ingest``, ``file_ingest.py``) or a database (``itte pull``,
``pull.py``) to the bulk lane. The unit tests call both with the fakes of
the ports."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa

from common import metrics
from common.errors import is_transient
from common.kafka import DeliveryError, MessageTooLarge
from schemas.raw import schema_problem
from services.ingestor.batching import (
    BodyError,
    LineError,
    Parsed,
    parse_json_body,
    parse_ndjson_body,
    validate,
)
from services.ingestor.columns import check_rows, record_of
from services.ingestor.files import Block, Unreadable
from services.ingestor.models import Accepted, Answer, RejectedLine, Submission
from services.ingestor.ports import (
    BatchLedger,
    BlockPublisher,
    IdempotencyKeys,
    OpenedBatch,
    ProducerDirectory,
    Published,
    RateLimit,
    WholePublisher,
)
from services.ingestor.publisher import SERVICE
from services.ingestor.status import BATCH_ID, batch_status

NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
)
# When authentication is off (local runs), requests share idempotency keys
# under this name, and their records carry no producer, like files and
# Kafka-native records: all of them are one unidentified producer.
ANONYMOUS = "anonyme"
log = logging.getLogger(__name__)


def refuse(
    status: int,
    detail: str,
    reason: str,
    errors: list[LineError] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Refuse a request whole: nothing of it is published (or, for a read,
    nothing is shown)."""
    metrics.REFUSED.labels(SERVICE, reason).inc()
    content: dict[str, Any] = {"detail": detail}
    if errors is not None:
        content["errors"] = [{"line": e.line, "error": e.error} for e in errors]
    return Answer(status, content, headers or {})


class PushHandler:
    """The rules of a push: authentication, limits, validation, idempotency,
    one Kafka message per request."""

    def __init__(
        self,
        publisher: WholePublisher,
        idempotency: IdempotencyKeys,
        *,
        ledger: BatchLedger,
        producers: ProducerDirectory,
        max_body_bytes: int,
        max_records: int,
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.rate_limit = rate_limit
        self.publisher = publisher
        self.idempotency = idempotency
        self.ledger = ledger
        self.producers = producers
        self.max_body_bytes = max_body_bytes
        self.max_records = max_records

    def authenticate(self, authorization: str | None) -> str | Answer:
        """The producer's name, or the 401 to answer before reading the body."""
        producers = self.producers.current()
        if not producers.required:
            return ANONYMOUS
        producer = producers.identify(authorization)
        if producer is None:
            return refuse(
                401,
                "a valid bearer token is required",
                "unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return producer

    def submit(self, request: Submission) -> Answer:
        """Blocking (parsing, the database, the broker): run it off the event loop."""
        try:
            return self._submit(request)
        except Exception as exc:
            if not is_transient(exc):
                raise
            return refuse(
                503,
                f"database unavailable, nothing was published: {type(exc).__name__}",
                "database_unavailable",
                headers={"Retry-After": "5"},
            )

    def readiness(self) -> Answer:
        """200 when the broker answers (pushes need it); Postgres away only
        degrades the service (no idempotency keys, untracked batches)."""
        broker, database = self.publisher.reachable(), self.ledger.reachable()
        body: dict[str, Any] = {
            "status": "ok" if broker is None else "failing",
            "service": SERVICE,
            "database": "ok" if database is None else "unavailable",
        }
        if broker or database:
            body["reason"] = "; ".join(r for r in (broker, database) if r)
        return Answer(200 if broker is None else 503, body)

    def status(self, producer: str, batch_id: str) -> Answer:
        """What became of one of ``producer``'s batches. Another producer's
        batch is unknown, exactly like a batch that never was. Reads count
        against the producer's rate limit, as pushes do: a status poll in a
        tight loop must not cost the database more than its pushes may."""
        if (limited := self._over_limit(producer, "ask again later")) is not None:
            return limited
        try:
            progress = (
                self.ledger.progress(producer, batch_id) if BATCH_ID.fullmatch(batch_id) else None
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            return refuse(
                503,
                f"database unavailable: {type(exc).__name__}",
                "database_unavailable",
                headers={"Retry-After": "5"},
            )
        if progress is None:
            return refuse(404, "no batch of yours has this id", "unknown_batch")
        return Answer(200, batch_status(progress).model_dump(mode="json"))

    def _over_limit(self, producer: str, then: str) -> Answer | None:
        if self.rate_limit and (wait := self.rate_limit.admit(producer)) is not None:
            return refuse(
                429,
                f"too many requests from this producer, {then}",
                "rate_limited",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return None

    def _submit(self, request: Submission) -> Answer:
        if (limited := self._over_limit(request.producer, "nothing was published")) is not None:
            return limited
        parsed = self._parse(request)
        if isinstance(parsed, Answer):
            return parsed
        # One table for the scope and the envelope (a file may change between).
        producers = self.producers.current()
        if refused := producers.refusals(request.producer, parsed.records):
            # Whole, even in partial mode: a token used beyond its scope is a
            # mistake (or worse) to stop and show, not a record to drop.
            return refuse(
                403,
                "records beyond what this token may write, nothing was published",
                "forbidden",
                [LineError(line, why) for line, why in refused],
            )
        key = request.idempotency_key
        if key:
            previous = self.idempotency.claim(request.producer, key, request.body or b"")
            if previous is not None:
                if not previous.same_body:
                    return refuse(
                        422,
                        "this Idempotency-Key was used for another body",
                        "idempotency_conflict",
                    )
                if previous.status is None:
                    return refuse(
                        409,
                        "a request with this Idempotency-Key is in progress",
                        "idempotency_in_progress",
                        headers={"Retry-After": "2"},
                    )
                return Answer(previous.status, previous.response, {"Idempotent-Replayed": "true"})
        try:
            answer = self._publish(request.producer if producers.required else None, parsed)
        except BaseException:
            # Nothing was published: the key is free for the producer's retry.
            if key:
                self.idempotency.release(request.producer, key)
            raise
        if key and answer.status == 202:
            self.idempotency.complete(request.producer, key, answer.status, answer.content)
        elif key:
            self.idempotency.release(request.producer, key)
        return answer

    def _parse(self, request: Submission) -> Parsed | Answer:
        if request.body is None:
            return refuse(413, f"body larger than {self.max_body_bytes} bytes", "too_large")
        parse = parse_ndjson_body if request.content_type in NDJSON_TYPES else parse_json_body
        try:
            read = parse(request.body, self.max_records)
        except BodyError as exc:
            return refuse(
                400, "unreadable body, nothing was published", "unreadable_body", exc.errors
            )
        if read.over:  # reading stopped there: memory stays bounded
            return refuse(
                413, f"more than {self.max_records} records per request", "too_many_records"
            )
        parsed = validate(read)
        if not parsed.records and not parsed.errors:
            return refuse(422, "the body holds no record, nothing was published", "no_records")
        if parsed.errors and (request.mode == "atomic" or not parsed.records):
            return refuse(
                422, "invalid records, nothing was published", "invalid_records", parsed.errors
            )
        return parsed

    def _publish(self, producer: str | None, parsed: Parsed) -> Answer:
        """``producer``: None when no table of producers is in force."""
        records = [record for _, record in parsed.records]
        lines = [line for line, _ in parsed.records]
        metrics.RECORDS_IN.labels(SERVICE).inc(len(records))
        batch = OpenedBatch(
            batch_id=uuid.uuid4().hex,
            producer=producer or ANONYMOUS,
            accepted=len(records),
            lines=None if lines == list(range(1, len(lines) + 1)) else lines,
            refused=[(e.line, e.error) for e in parsed.errors],
        )
        tracked = self._track(batch)
        try:
            published = self.publisher.publish_whole(
                records,
                batch_id=batch.batch_id,
                source="http",
                producer=producer,
            )
        except BaseException as exc:
            if tracked:
                self.ledger.drop(batch.batch_id)  # never published: nobody will ask
            if isinstance(exc, MessageTooLarge):
                return refuse(413, f"too large for one Kafka message: {exc}", "too_large")
            if isinstance(exc, DeliveryError):
                return refuse(
                    503,
                    f"broker unavailable, nothing was published: {exc}",
                    "broker_unavailable",
                    headers={"Retry-After": "5"},
                )
            raise
        accepted = Accepted(
            accepted=published.records,
            batch_ids=published.batch_ids,
            rejected=[RejectedLine(line=e.line, error=e.error) for e in parsed.errors],
            tracked=tracked,
        )
        log.info(
            "batch %s from %s: %d accepted, %d refused",
            batch.batch_id,
            batch.producer,
            accepted.accepted,
            len(parsed.errors),
            extra={
                "batch_id": batch.batch_id,
                "producer": batch.producer,
                "accepted": accepted.accepted,
                "refused": len(parsed.errors),
            },
        )
        return Answer(202, accepted.model_dump(mode="json"))

    def _track(self, batch: OpenedBatch) -> bool:
        """Record the batch for its producer, before it is published (the
        aggregator may be done with it before the broker answers). Postgres
        away does not stop a push, the broker is the buffer: the batch is
        published untracked (False)."""
        try:
            self.ledger.open(batch)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("batch %s published untracked: %s", batch.batch_id, type(exc).__name__)
            metrics.UNTRACKED.labels(SERVICE).inc()
            return False
        return True


Rejects = Callable[[Any, int, str, str], None]  # (record, line, reason, detail)


class BlockHandler:
    """What ``itte ingest`` and ``itte pull`` do with the records they read,
    a block at a time (``files.py``): check each block at the edge, a
    column at a time, publish what it accepts on the bulk lane, and hand
    each refused record to the caller with its line and reason."""

    def __init__(self, publisher: BlockPublisher) -> None:
        self.publisher = publisher

    def hide(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with its personal fields as keyed hashes (for a rejects file)."""
        return self.publisher.hide(record)

    def is_personal(self, name: str) -> bool:
        """Whether a column of this name holds personal data (never a measure)."""
        return self.publisher.is_personal(name)

    def publish(
        self,
        blocks: Iterable[Block],
        *,
        source: str,
        producer: str | None,
        rejected: Rejects,
        read: Callable[[int], None] = lambda _: None,
    ) -> Published:
        """``read``: told how many records each block held."""
        live: list[dict[str, Any]] = []  # accepted, but not carried by columns

        def accepted() -> Iterator[pa.Table]:
            for block in blocks:
                read(block.table.num_rows + len(block.others))
                ok, others = checked(block, rejected)
                live.extend(others)
                yield block.table if ok is None else block.table.filter(ok)

        published = self.publisher.publish_tables(accepted(), source=source, producer=producer)
        if live:  # the live lane reads any record as it came
            more = self.publisher.publish(live, source=source, producer=producer)
            published = Published(
                published.records + more.records, published.batch_ids + more.batch_ids
            )
        return published


def checked(block: Block, rejected: Rejects) -> tuple[pa.Array | None, list[dict[str, Any]]]:
    """The rows of ``block`` its columns accept (None: every one), and its
    other records, which may go as they came; each refused record handed to
    ``rejected``, in line order."""
    ok, refused = check_rows(block.table)
    reasons = [
        (block.lines[i], record_of(block.table, i), "invalid_schema", detail)
        for i, detail in refused.items()
    ]
    live: list[dict[str, Any]] = []
    for line, record in block.others:
        found = problem(record)
        if found is None:
            live.append(record)
        else:
            reasons.append((line, record, *found))
    for line, record, reason, detail in sorted(reasons, key=lambda r: r[0]):
        rejected(record, line, reason, detail)
    return (ok if refused else None), live


def problem(record: Any) -> tuple[str, str] | None:
    """(reason, detail) when the record cannot be published, else None."""
    if isinstance(record, Unreadable):
        return "invalid_json", str(record)
    if not isinstance(record, dict):
        return "not_an_object", f"a record must be an object, not {type(record).__name__}"
    detail = schema_problem(record)
    return None if detail is None else ("invalid_schema", detail)
