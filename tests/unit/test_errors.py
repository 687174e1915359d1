"""Error classes and the isolation of the records a batch fails on."""

from __future__ import annotations

from decimal import Inexact

import psycopg
import pytest
from psycopg import errors as pg

from common.errors import classify, isolate
from common.kafka import DeliveryError


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), "transient"),
        (psycopg.InterfaceError("the connection is closed"), "transient"),
        (pg.SerializationFailure(), "transient"),
        (pg.DeadlockDetected(), "transient"),
        (pg.AdminShutdown(), "transient"),
        (pg.TooManyConnections(), "transient"),
        (DeliveryError("broker away"), "transient"),
        (pg.NumericValueOutOfRange(), "record"),
        (pg.CharacterNotInRepertoire(), "record"),
        (pg.ProgramLimitExceeded(), "record"),  # an index row over its size limit
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), "record"),
        (Inexact(), "record"),
        (KeyError("x"), "record"),
        (pg.UndefinedTable(), "fatal"),
        (pg.InsufficientPrivilege(), "fatal"),
        (pg.DiskFull(), "fatal"),
        (psycopg.ProgrammingError("the query has 2 placeholders but 1 parameters"), "fatal"),
        (MemoryError(), "fatal"),
    ],
)
def test_errors_have_classes(error: BaseException, kind: str) -> None:
    assert classify(error) == kind


def test_isolate_finds_each_bad_item_and_keeps_the_others() -> None:
    applied: list[list[int]] = []

    def apply(items: list[int]) -> int:
        if any(i % 7 == 3 for i in items):
            raise pg.ProgramLimitExceeded()
        applied.append(items)
        return len(items)

    done, refused = isolate(apply, list(range(40)))
    assert sorted(i for batch in applied for i in batch) == [i for i in range(40) if i % 7 != 3]
    assert sum(done) == 34
    assert [i for i, _ in refused] == [3, 10, 17, 24, 31, 38]


def test_a_good_batch_is_one_call_and_other_errors_propagate() -> None:
    calls: list[list[int]] = []
    _, refused = isolate(lambda items: calls.append(items), [1, 2, 3])
    assert (len(calls), refused) == (1, [])

    def away(items: list[int]) -> None:
        raise psycopg.OperationalError("connection refused")

    with pytest.raises(psycopg.OperationalError):
        isolate(away, [1, 2, 3])

    def bug(items: list[int]) -> None:
        raise pg.UndefinedColumn()

    with pytest.raises(pg.UndefinedColumn):
        isolate(bug, [1, 2, 3])
