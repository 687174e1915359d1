"""Error classes: every failure of a stage is one of three kinds.

- ``transient``: the database or the broker is away, or a transaction lost a
  race. Wait and retry the same work; nothing is skipped.
- ``record``: something about one record made the work fail (Postgres refused
  a value, or code met a case nobody foresaw). Isolate the record (see
  :func:`isolate`) and dead-letter it; its neighbours go on.
- ``fatal``: anything else (a bug in a query, lost permissions). Stop the
  service loudly, so that it is restarted and someone looks, instead of
  looping in silence.

Postgres errors are told apart by SQLSTATE class
(https://www.postgresql.org/docs/current/errcodes-appendix.html).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Literal, TypeVar

import psycopg

from common.kafka import DeliveryError

log = logging.getLogger(__name__)
Kind = Literal["transient", "record", "fatal"]
T = TypeVar("T")
R = TypeVar("R")

# 08 connection, 40 serialization failure or deadlock; too many connections;
# administrator or crash shutdown, server starting.
TRANSIENT_CLASSES = frozenset({"08", "40"})
TRANSIENT_STATES = frozenset({"53300", "57P01", "57P02", "57P03"})
# 22 data exception (out of range, bad encoding, NUL...), 23 integrity
# constraint, 54 program limit (an index row over its size limit...).
RECORD_CLASSES = frozenset({"22", "23", "54"})


class Fatal(Exception):
    """Raised where going on would be wrong, whatever the record: the
    service stops (to be restarted, or looked at)."""


def classify(exc: BaseException) -> Kind:
    if isinstance(exc, Fatal):
        return "fatal"
    if isinstance(exc, DeliveryError):
        return "transient"
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:  # raised by the client library itself
            if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                return "transient"  # connection lost or closed
            return "record" if isinstance(exc, psycopg.DataError) else "fatal"
        if state[:2] in TRANSIENT_CLASSES or state in TRANSIENT_STATES:
            return "transient"
        return "record" if state[:2] in RECORD_CLASSES else "fatal"
    if isinstance(exc, MemoryError | SystemError):
        return "fatal"
    return "record"


def is_transient(exc: BaseException) -> bool:
    return classify(exc) == "transient"


def isolate(
    apply: Callable[[list[T]], R], items: list[T]
) -> tuple[list[R], list[tuple[T, Exception]]]:
    """``apply(items)``; if that fails because of some item, halve until each
    such item stands alone: returns the results of every call that succeeded
    and each refused item with its error. Transient and fatal errors propagate.

    Only sound when ``apply`` is atomic and idempotent (one transaction whose
    replay changes nothing), as the aggregator's store is: the halves already
    committed stay, and a retry after a transient error replays them as no-ops.
    k bad items among n cost about 2·k·log2(n) calls; good batches cost one.
    """
    try:
        return [apply(items)], []
    except Exception as exc:
        if classify(exc) != "record":
            raise
        if len(items) == 1:
            return [], [(items[0], exc)]
    middle = len(items) // 2
    done_left, refused_left = isolate(apply, items[:middle])
    done_right, refused_right = isolate(apply, items[middle:])
    return done_left + done_right, refused_left + refused_right


def unexpected(exc: BaseException, where: str) -> str:
    """Detail of an ``internal_error`` dead letter: the type only (its message
    may echo the input, personal data included); the code path goes to the log."""
    log.error(
        "unexpected %s while %s:\n%s",
        type(exc).__name__,
        where,
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    return f"unexpected {type(exc).__name__} while {where}; the operators have the trace"
