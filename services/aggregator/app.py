"""Entrypoints of the aggregator: batches of clean messages to the handler
(the live lane: a faust agent; the bulk lane: a consumer of its own,
common/lanes.py), dead letters to their archive, and the outbox relay, woken
after every batch (and at least every ``publish_interval``) but never waited
for."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

import faust

from common.errors import is_transient
from common.faust_app import begin_with, raw_topic, stop_on_unexpected
from common.lanes import BulkLane
from common.retry import Health, retry_transient
from schemas import clean, deadletter
from services.aggregator.handlers import SERVICE, Archive, BatchHandler, BatchOutcome, Relay
from services.aggregator.settings import AggregatorSettings

log = logging.getLogger(__name__)


Committed = Callable[[BatchOutcome], None]


def attach(
    app: faust.App,
    batches: BatchHandler,
    settings: AggregatorSettings,
    *,
    relay: Relay,
    archive: Archive,
    health: Health,
    lane: BulkLane | None = None,
) -> None:
    """One agent or task per entrypoint; each committed batch wakes the relay."""
    relay_due = asyncio.Event()

    def committed(outcome: BatchOutcome) -> None:
        relay.committed(outcome)
        relay_due.set()

    attach_live_lane(app, batches, settings, health, committed)
    if lane is not None:
        attach_bulk_lane(app, lane, relay, settings, committed)
    attach_archive(app, archive, health)
    attach_relay(app, relay, relay_due, settings)


def attach_live_lane(
    app: faust.App,
    batches: BatchHandler,
    settings: AggregatorSettings,
    health: Health,
    committed: Committed,
) -> None:
    @app.agent(raw_topic(app, clean.TOPIC))
    async def aggregate(stream: Any) -> None:
        # Offsets are acknowledged after the batch is yielded back, i.e. after
        # its transaction committed: a crash replays, and replays are no-ops.
        # A fatal error (common/errors.py) stops the process before that.
        async with stop_on_unexpected(SERVICE):
            async for values in stream.take(settings.batch_messages, within=settings.batch_seconds):
                outcome = await retry_transient(
                    functools.partial(asyncio.to_thread, batches.handle, values),
                    transient=is_transient,
                    log=log,
                    on_failure=batches.close,
                    health=health,
                )
                committed(outcome)


def attach_bulk_lane(
    app: faust.App,
    lane: BulkLane,
    relay: Relay,
    settings: AggregatorSettings,
    committed: Committed,
) -> None:
    async def committed_in_bulk(outcome: BatchOutcome) -> None:
        # A file's changes are published as written while the lane waits for
        # the relay, instead of piling up in memory (handlers.BULK_HELD).
        committed(outcome)
        while relay.catching_up():
            await asyncio.sleep(settings.batch_seconds)

    begin_with(app, lane.subscribe)

    @app.task
    async def aggregate_bulk() -> None:
        # Each bulk message applied, then its changes handed to the relay,
        # then its offset committed (common/lanes.py).
        async with stop_on_unexpected(SERVICE):
            await lane.run(then=committed_in_bulk)


def attach_archive(app: faust.App, archive: Archive, health: Health) -> None:
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


def attach_relay(
    app: faust.App, relay: Relay, relay_due: asyncio.Event, settings: AggregatorSettings
) -> None:
    @app.task
    async def relay_outbox() -> None:
        # Off the batches' path: a batch commits, wakes the relay and goes on
        # with the next one while the changes are published.
        async with stop_on_unexpected(SERVICE):
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(relay_due.wait(), settings.publish_interval)
                relay_due.clear()
                await retry_transient(
                    functools.partial(asyncio.to_thread, relay.handle),
                    transient=is_transient,
                    log=log,
                    first_delay=settings.batch_seconds,
                    max_delay=settings.publish_interval,
                )
