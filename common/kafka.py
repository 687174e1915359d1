"""Kafka client configuration and topic creation, shared by the services."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import aggregates, clean, deadletter, editions, raw

if TYPE_CHECKING:
    from common.servers import Servers
    from common.settings import CommonSettings

log = logging.getLogger(__name__)
# librdkafka's own messages (a session timed out, a broker away) through
# Python's logging: as JSON lines with ITTE_LOG_FORMAT=json, not as raw text
# on stderr. Served by the clients' poll and flush calls.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")

# Faster group joins than librdkafka's defaults (about 3 s instead of 23 s on
# the embedded broker, see docs/measurements.md); still safe for long batches because
# processing never blocks the heartbeat thread.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
}

# The largest Kafka message itte writes or reads. One HTTP request is one
# message (so that the broker takes all of it or nothing): the ingestor's body
# limit is at most half of this, since records re-encoded in their envelope
# grow by at most a quarter (a JSON number becomes decimal text). Brokers must
# accept it: topics are created with it, compose sets it on Kafka.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    # send_all needs to hear of failures only: no Python callback for each
    # delivered message (the relay sends one per aggregate change).
    "delivery.report.only.error": True,
    # Uncompressed: every client we ship must read every topic, and aiokafka
    # (under faust) reads lz4 only when the lz4 package is installed.
    "compression.type": "none",
    "message.max.bytes": MAX_MESSAGE_BYTES + 64 * 1024,  # room for the protocol's headers
}


def topic_specs(
    partitions: int, replication_factor: int = 1, min_insync_replicas: int = 1
) -> list[NewTopic]:
    # Here, not at the top: the bulk lane's module brings pyarrow, which
    # processes that never touch a topic (the API) need not load.
    from schemas import bulk

    durable = {"min.insync.replicas": str(min_insync_replicas)} if replication_factor > 1 else {}
    large = {"max.message.bytes": str(MAX_MESSAGE_BYTES), **durable}
    return [
        NewTopic(raw.TOPIC, partitions, replication_factor, config=large),
        NewTopic(clean.TOPIC, partitions, replication_factor, config=durable),
        # The bulk lane (schemas/bulk.py): messages of thousands of records.
        NewTopic(bulk.RAW_TOPIC, partitions, replication_factor, config=large),
        NewTopic(bulk.CLEAN_TOPIC, partitions, replication_factor, config=large),
        NewTopic(deadletter.TOPIC, 1, replication_factor, config=durable),
        NewTopic(
            aggregates.TOPIC,
            partitions,
            replication_factor,
            config={"cleanup.policy": "compact", **durable},
        ),
        # One message an edition of the map (schemas/editions.py), kept.
        NewTopic(
            editions.TOPIC, 1, replication_factor, config={"cleanup.policy": "compact", **large}
        ),
    ]


def ensure_topics(
    bootstrap: str,
    partitions: int,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    security: dict[str, str] | None = None,
) -> dict[str, int]:
    """Create itte's topics if missing; safe to call from every service.
    Returns each topic's partition count as the broker has it (a topic made
    before with another count keeps its own)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **(security or {})})
    existing = admin.list_topics(timeout=30).topics
    specs = topic_specs(partitions, replication_factor, min_insync_replicas)
    layout = {
        t.topic: len(existing[t.topic].partitions) if t.topic in existing else t.num_partitions
        for t in specs
    }
    missing = [t for t in specs if t.topic not in existing]
    if not missing:
        return layout
    for name, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
            log.info("created topic %s", name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return layout


def ensure_topics_for(settings: CommonSettings, servers: Servers) -> dict[str, int]:
    """The topics as the settings lay them out (partitions, replication);
    returns each one's partition count on the broker."""
    factor, insync = settings.replication()
    return ensure_topics(
        servers.kafka_bootstrap_servers,
        settings.topic_partitions,
        replication_factor=factor,
        min_insync_replicas=insync,
        security=servers.kafka_security,
    )


class DeliveryError(RuntimeError):
    """The broker did not acknowledge every message."""


class MessageTooLarge(ValueError):
    """One message over MAX_MESSAGE_BYTES: no broker would take it."""


class BlockingProducer:
    """confluent-kafka producer (idempotent, acks=all) that sends and waits.

    ``send_all`` returns only once the broker acknowledged every message, and
    raises :class:`DeliveryError` otherwise: callers can then retry the whole
    lot, duplicates being harmless downstream.

    The client is created at the first send (nothing connects in ``__init__``);
    as a context manager, it flushes what is left on the way out.
    """

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._config = {
            "bootstrap.servers": bootstrap,
            **PRODUCER_DEFAULTS,
            "logger": LIBRDKAFKA_LOG,
            **overrides,
        }
        self._client: Producer | None = None

    @property
    def _producer(self) -> Producer:
        if self._client is None:
            self._client = Producer(self._config)
        return self._client

    def __enter__(self) -> BlockingProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_all(
        self,
        topic: str,
        messages: Iterable[tuple[str | bytes | None, bytes | None]],
        timeout: float = 30.0,
    ) -> int:
        return self.send_to_partitions(
            topic, ((key, value, None) for key, value in messages), timeout
        )

    def send_to_partitions(
        self,
        topic: str,
        messages: Iterable[tuple[str | bytes | None, bytes | None, int | None]],
        timeout: float = 30.0,
    ) -> int:
        """As :meth:`send_all`, each message to its partition (None: by key)."""
        errors: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        sent = 0
        for key, value, partition in messages:
            while True:
                try:
                    if partition is None:
                        self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                    else:
                        self._producer.produce(
                            topic,
                            value=value,
                            key=key,
                            partition=partition,
                            on_delivery=on_delivery,
                        )
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self._producer.poll(0.1)
            sent += 1
        remaining = self._producer.flush(timeout)
        if remaining or errors:
            raise DeliveryError(
                f"{remaining} message(s) unacknowledged, {len(errors)} failed: {errors[:3]}"
            )
        return sent

    def reachable(self, timeout: float = 2.0) -> str | None:
        """None if the broker answers a metadata request in time, else why not."""
        try:
            self._producer.list_topics(timeout=timeout)
        except KafkaException as exc:
            return f"broker unreachable: {exc.args[0].str() if exc.args else exc}"
        return None

    def close(self, timeout: float = 10.0) -> None:
        if self._client is not None:
            self._client.flush(timeout)
            self._client = None
