from __future__ import annotations

import asyncio
import logging

import pytest

from common.retry import Health, retry_transient

log = logging.getLogger("test")


def test_transient_failures_are_retried_until_success() -> None:
    calls: list[int] = []
    resets: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("database away")
        return "done"

    result = asyncio.run(
        retry_transient(
            flaky,
            transient=(ConnectionError,),
            log=log,
            first_delay=0.001,
            on_failure=lambda: resets.append(1),
        )
    )
    assert (result, len(calls), len(resets)) == ("done", 3, 2)


def test_other_errors_propagate_at_once() -> None:
    calls: list[int] = []

    async def broken() -> None:
        calls.append(1)
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        asyncio.run(retry_transient(broken, transient=(ConnectionError,), log=log))
    assert len(calls) == 1


def test_health_reports_the_failure_until_recovery() -> None:
    health = Health()
    seen: list[str | None] = []

    async def flaky() -> None:
        seen.append(health.last_error)
        if len(seen) < 2:
            raise ConnectionError("database away")

    asyncio.run(
        retry_transient(
            flaky, transient=(ConnectionError,), log=log, first_delay=0.001, health=health
        )
    )
    assert seen == [None, "ConnectionError (the log says more)"]  # no address, no user
    assert health.failing_since is None and health.last_error is None
