"""The bulk lane's consumer: a consumer of its own in the cleaner and the
aggregator, beside the faust agents of the live lane.

A bulk message is thousands of records; a correction is one. With one
consumer for both, a file's messages fill the fetches and the buffers
ahead of the correction, which waits behind them (30 s behind a
594,473-record file, issue #27). Each lane has its own consumer group,
topics and fetches, so the live lane's messages never queue behind a file:
the two lanes share only the cores and Postgres.

confluent-kafka (librdkafka, in C) reads the bulk lane: its messages are
few and large, and each is handled whole, then its offset committed; a
crash before the commit handles it again, which changes nothing (versions).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from common.errors import is_transient
from common.kafka import CONSUMER_DEFAULTS, LIBRDKAFKA_LOG
from common.retry import Health, retry_transient
from common.servers import Servers

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
# What librdkafka may hold ahead of the handler: a few bulk messages, not a
# file's worth of them (the default is 64 MB), fetched a few MB at a time (a
# larger message still comes whole).
PREFETCH_KBYTES = 4 * 1024
FETCH_BYTES = 8 * 1024 * 1024
# How long the broker may hold a fetch that finds nothing: librdkafka's
# default (500 ms) would add up to that at each hop (as FETCH_MAX_WAIT_MS,
# common/faust_app.py).
FETCH_WAIT_MS = 50


# The group went on without this consumer (its session expired: a pause, a
# stall): committing again never succeeds, and only a poll rejoins the group.
GROUP_MOVED_ON = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.FENCED_INSTANCE_ID,
    }
)


def moved_on(exc: BaseException) -> bool:
    return isinstance(exc, KafkaException) and exc.args[0].code() in GROUP_MOVED_ON


def transient(exc: BaseException) -> bool:
    """A failure to retry: the database or the broker away (errors.classify),
    or the broker refusing a commit for now (a lost coordinator); not a
    group that went on without this consumer (:func:`moved_on`)."""
    return (is_transient(exc) or isinstance(exc, KafkaException)) and not moved_on(exc)


class BulkLane:
    """Consumes ``topic`` in ``group``, one message at a time: ``handle``
    (blocking, run in a thread; retried while it fails transiently), then
    the offset after it, committed."""

    def __init__(
        self,
        servers: Servers,
        *,
        group: str,
        topic: str,
        handle: Callable[[Message], Any],
        health: Health,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.servers = servers
        self.group = group
        self.topic = topic
        self.handle = handle
        self.health = health
        self.on_failure = on_failure
        self.partitions: set[tuple[str, int]] = set()
        self._consumer: Consumer | None = None
        health.waiting.append(self.unassigned)

    def unassigned(self) -> str | None:
        """Why the lane is not ready, or None: it owns partitions."""
        return None if self.partitions else f"no partition of {self.topic} assigned yet"

    def _assigned(self, _: Consumer, partitions: list[Any]) -> None:
        self.partitions |= {(tp.topic, tp.partition) for tp in partitions}

    def _revoked(self, _: Consumer, partitions: list[Any]) -> None:
        self.partitions -= {(tp.topic, tp.partition) for tp in partitions}

    def consumer(self) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": self.servers.kafka_bootstrap_servers,
                **self.servers.kafka_security,
                **CONSUMER_DEFAULTS,
                "group.id": self.group,
                "max.partition.fetch.bytes": FETCH_BYTES,
                "fetch.max.bytes": FETCH_BYTES,
                "fetch.wait.max.ms": FETCH_WAIT_MS,
                "queued.max.messages.kbytes": PREFETCH_KBYTES,
                "logger": LIBRDKAFKA_LOG,
            }
        )
        consumer.subscribe(
            [self.topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )
        return consumer

    async def subscribe(self) -> None:
        """Joins the lane's group now: librdkafka joins in the background while
        faust joins its own group, instead of after it (faust starts its tasks,
        hence ``run``, only once its partitions are assigned: each join waits
        about 3 s on the embedded broker)."""
        if self._consumer is None:
            self._consumer = await asyncio.to_thread(self.consumer)

    async def run(self, then: Callable[[Any], Awaitable[None]] | None = None) -> None:
        """Until cancelled (the service stops); raises what is neither a
        record's fault nor transient, so that nothing more is committed.
        ``then``: given what ``handle`` returned, awaited before the commit
        (and before the next message: it may hold the lane back)."""
        await self.subscribe()
        consumer, self._consumer = self._consumer, None
        assert consumer is not None
        try:
            while True:
                message = await asyncio.to_thread(consumer.poll, POLL_SECONDS)
                if message is None:
                    continue
                if (error := message.error()) is not None:
                    self._report(error)
                    continue
                done = await self._retried(functools.partial(self.handle, message), self.on_failure)
                if then is not None:
                    await then(done)
                try:
                    await self._retried(
                        functools.partial(consumer.commit, message=message, asynchronous=False)
                    )
                except KafkaException as refused:
                    if not moved_on(refused):
                        raise
                    # Not committed: whoever holds the partition now (this
                    # consumer, once its next poll has rejoined) reads the
                    # message again, and applying it again changes nothing.
                    log.warning(
                        "%s: the group went on without this consumer (%s); "
                        "its last message will be read again",
                        self.topic,
                        refused.args[0].name(),
                    )
        finally:
            await asyncio.to_thread(consumer.close)

    async def _retried(
        self, work: Callable[[], Any], on_failure: Callable[[], None] | None = None
    ) -> Any:
        return await retry_transient(
            functools.partial(asyncio.to_thread, work),
            transient=transient,
            log=log,
            on_failure=on_failure,
            health=self.health,
        )

    def _report(self, error: KafkaError) -> None:
        """librdkafka reconnects by itself; a fatal error stops the lane."""
        if error.fatal():
            raise KafkaException(error)
        log.warning("%s: %s", self.topic, error.str())
