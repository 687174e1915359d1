"""What became of a pushed batch, across the ingestor's and the aggregator's
tables, each under its own role: counts exact under replays, one producer's
batches out of another's reach, expired batches forgotten."""

from __future__ import annotations

import uuid
from contextlib import closing

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.aggregator.archive import PostgresLetterArchive
from services.aggregator.progress import PostgresProgress, mask
from services.ingestor.auth import Producers
from services.ingestor.handlers import ANONYMOUS, PushHandler
from services.ingestor.ledger import PostgresBatchLedger
from services.ingestor.models import Submission
from services.ingestor.ports import OpenedBatch
from tests.integration.test_archive import letter
from tests.integration.test_roles import as_role, refused
from tests.unit.fakes import MemoryIdempotencyKeys, MemoryPublisher

GOOD = b'{"indicateur": "pop", "commune": "33063", "annee": 2020, "valeur": 1}'


def new_id() -> str:
    return uuid.uuid4().hex


def test_counts_lines_and_letters_come_back_to_the_producer_only(database_url: str) -> None:
    ledger = PostgresBatchLedger(as_role(database_url, "itte_ingest"))
    batch_id = new_id()
    ledger.open(OpenedBatch(batch_id, "ademe", 3, [1, 3, 4], [(2, "no indicateur")]))
    with closing(PostgresProgress(as_role(database_url, "itte_writer"))) as progress:
        progress.mark({batch_id: [1, 3], "file-batch": [1, 2]})  # a file's: not recorded
    with closing(PostgresLetterArchive(as_role(database_url, "itte_writer"))) as archive:
        archive.keep([letter(f"{batch_id}:000001")])  # position 2, request line 3
    found = ledger.progress("ademe", batch_id)
    assert found is not None
    assert (found.batch.accepted, found.clean, found.batch.refused) == (
        3,
        2,
        [(2, "no indicateur")],
    )
    [dead] = found.letters
    assert (found.batch.line(dead.position or 0), dead.stage, dead.reason) == (
        3,
        "cleaner",
        "unknown_code",
    )
    assert ledger.progress("autre", batch_id) is None
    assert ledger.progress("ademe", new_id()) is None
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM batch_progress").fetchone() == (1,)


# Each example uses a batch of its own: sharing the database is sound.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    accepted=st.integers(1, 300),
    rounds=st.lists(st.lists(st.integers(1, 300), max_size=60), min_size=1, max_size=6),
)
def test_marks_count_each_record_once_however_replays_cut_them(
    database_url: str, accepted: int, rounds: list[list[int]]
) -> None:
    ledger = PostgresBatchLedger(as_role(database_url, "itte_ingest"))
    batch_id = new_id()
    ledger.open(OpenedBatch(batch_id, "ademe", accepted))
    with closing(PostgresProgress(as_role(database_url, "itte_writer"))) as progress:
        for positions in rounds:
            progress.mark({batch_id: [p for p in positions if p <= accepted]})
    found = ledger.progress("ademe", batch_id)
    assert found is not None
    assert found.clean == len({p for positions in rounds for p in positions if p <= accepted})


def test_a_mask_has_a_one_at_each_position() -> None:
    assert mask([1, 4]) == "1001" and mask([]) == "" and mask([3, 3]) == "001"


def test_an_unpublished_batch_is_dropped_and_an_expired_one_forgotten(database_url: str) -> None:
    url = as_role(database_url, "itte_ingest")
    dropped, old, fresh = new_id(), new_id(), new_id()
    PostgresBatchLedger(url).open(OpenedBatch(dropped, "ademe", 1))
    PostgresBatchLedger(url).drop(dropped)
    PostgresBatchLedger(url).open(OpenedBatch(old, "ademe", 1))
    with closing(PostgresProgress(as_role(database_url, "itte_writer"))) as progress:
        progress.mark({old: [1]})
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ingest_batches SET received_at = now() - interval '2 days' WHERE batch_id = %s",
            (old,),
        )
    PostgresBatchLedger(url, ttl_seconds=86400).open(OpenedBatch(fresh, "ademe", 1))
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT batch_id FROM ingest_batches").fetchall() == [(fresh,)]
        assert conn.execute("SELECT count(*) FROM batch_progress").fetchone() == (0,)


def test_each_service_touches_only_its_part_of_the_ledger(database_url: str) -> None:
    writer, ingest = as_role(database_url, "itte_writer"), as_role(database_url, "itte_ingest")
    assert refused(writer, "SELECT producer FROM ingest_batches")  # ids only, to filter
    assert refused(writer, "DELETE FROM ingest_batches")
    assert refused(ingest, "INSERT INTO batch_progress VALUES ('x', B'1')")
    assert refused(as_role(database_url, "itte_reader"), "SELECT * FROM ingest_batches")
    assert refused(as_role(database_url, "itte_reader"), "SELECT * FROM batch_progress")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.lists(st.binary(max_size=80) | st.text(max_size=80), min_size=1, max_size=5))
def test_whatever_the_refused_lines_hold_the_batch_is_recorded(
    database_url: str, junk: list[bytes | str]
) -> None:
    """Refused lines' errors go into jsonb, which takes no NUL and no lone
    surrogate: whatever a line holds, the push is answered and recorded."""
    ledger = PostgresBatchLedger(as_role(database_url, "itte_ingest"))
    observations = PushHandler(
        MemoryPublisher(),
        MemoryIdempotencyKeys(),
        ledger=ledger,
        producers=Producers.parse(None),
        max_body_bytes=100_000,
        max_records=100,
    )
    lines = [GOOD] + [
        j if isinstance(j, bytes) else j.encode("utf-8", "surrogatepass") for j in junk
    ]
    body = b"\n".join(line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines)
    answer = observations.submit(
        Submission(ANONYMOUS, body, content_type="application/x-ndjson", mode="partial")
    )
    assert answer.status == 202, answer
    [batch_id] = answer.content["batch_ids"]
    status = observations.status(ANONYMOUS, batch_id)
    assert status.status == 200
    assert status.content["refused"] == len(answer.content["rejected"])
    assert [r["line"] for r in status.content["rejected"]] == [
        r["line"] for r in answer.content["rejected"]
    ]
