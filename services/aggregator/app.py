"""Faust entrypoint of the aggregator: batches of clean messages to the
handler, dead letters to their archive, and a timer that relays the outbox."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import faust

from common import metrics
from common.errors import is_transient
from common.faust_app import raw_topic, stop_on_unexpected
from common.retry import Health, retry_transient
from schemas import clean, deadletter
from services.aggregator.handlers import SERVICE, Archive, Batches
from services.aggregator.ports import Outbox
from services.aggregator.settings import AggregatorSettings

log = logging.getLogger(__name__)


def attach(
    app: faust.App,
    batches: Batches,
    settings: AggregatorSettings,
    *,
    outbox: Outbox,
    archive: Archive,
    health: Health,
) -> None:
    @app.agent(raw_topic(app, clean.TOPIC))
    async def aggregate(stream: Any) -> None:
        # Offsets are acknowledged after the batch is yielded back, i.e. after
        # its transaction committed: a crash replays, and replays are no-ops.
        # A fatal error (common/errors.py) stops the process before that.
        async with stop_on_unexpected(SERVICE):
            async for values in stream.take(settings.batch_messages, within=settings.batch_seconds):
                await retry_transient(
                    functools.partial(asyncio.to_thread, batches.handle, values),
                    transient=is_transient,
                    log=log,
                    on_failure=batches.close,
                    health=health,
                )

    @app.agent(raw_topic(app, deadletter.TOPIC))
    async def archive_letters(stream: Any) -> None:
        # Acknowledged once kept (a replay is kept once: the record id is the key).
        async with stop_on_unexpected(SERVICE):
            async for values in stream.take(500, within=1.0):
                await retry_transient(
                    functools.partial(asyncio.to_thread, archive.handle, values),
                    transient=is_transient,
                    log=log,
                    health=health,
                )

    @app.timer(interval=settings.publish_interval)
    async def relay_outbox() -> None:
        try:
            published = await asyncio.to_thread(outbox.publish_pending)
            pending, oldest = await asyncio.to_thread(outbox.backlog)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("outbox relay: %s; next tick retries", exc)
            return
        metrics.AGGREGATES_PUBLISHED.labels(SERVICE).inc(published)
        metrics.OUTBOX_PENDING.labels(SERVICE).set(pending)
        metrics.OUTBOX_OLDEST.labels(SERVICE).set(oldest)
