"""Retry transient failures (database or broker away) instead of skipping data.

A stream stage that gives up on a batch would either lose it or stall its
offsets; waiting and retrying keeps every record, in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from common import metrics

T = TypeVar("T")


@dataclass
class Health:
    """What the health endpoint reports: failing since when, and why; the
    same as metrics (``itte_retries_total``, ``itte_failing_seconds``).
    ``waiting``: what else must hold for the service to be ready (each says
    why not, or None), such as a bulk lane's partitions."""

    service: str = "unknown"
    failing_since: float | None = None
    last_error: str | None = None
    waiting: list[Callable[[], str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        metrics.FAILING.labels(self.service).set_function(self.failing_for)

    def failing_for(self) -> float:
        return time.time() - self.failing_since if self.failing_since is not None else 0.0

    def failed(self, error: BaseException) -> None:
        self.failing_since = self.failing_since or time.time()
        # Its kind only: the message of a driver names the server's host,
        # port and user, and the health pages are anyone's to read (issue
        # #30); the log keeps the message for operators (retry_transient).
        self.last_error = f"{type(error).__name__} (the log says more)"
        metrics.RETRIES.labels(self.service).inc()

    def recovered(self) -> None:
        self.failing_since = self.last_error = None


async def retry_transient(
    attempt: Callable[[], Awaitable[T]],
    *,
    transient: tuple[type[BaseException], ...] | Callable[[BaseException], bool],
    log: logging.Logger,
    first_delay: float = 0.5,
    max_delay: float = 30.0,
    on_failure: Callable[[], None] | None = None,
    health: Health | None = None,
) -> T:
    """Await ``attempt()`` until it succeeds; back off exponentially on a transient error.

    ``transient``: exception types, or a predicate (``common.errors.is_transient``).
    Other exceptions propagate: the process should stop and replay from its
    last committed offsets rather than guess.
    """
    is_transient = transient if callable(transient) else lambda exc: isinstance(exc, transient)
    delay = first_delay
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if health is not None:
                health.failed(exc)
            log.warning(
                "transient failure (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay
            )
            if on_failure is not None:
                on_failure()
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
        else:
            if health is not None:
                health.recovered()
            return result
