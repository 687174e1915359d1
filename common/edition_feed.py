"""The edition of the map a service without the database places records on
(the cleaner): the shipped one, or the newest that `itte referentiel
charger` published on ``indicators.editions`` (schemas/editions.py).

:meth:`EditionFeed.latest` reads the topic to its end at start, before any
record; :meth:`EditionFeed.follow` then reads on in a thread and hands each
later edition to the service, which uses it from its next record on. No
consumer group: every process reads the whole topic (one message a year).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from common import referential
from common.kafka import CONSUMER_DEFAULTS, LIBRDKAFKA_LOG, MAX_MESSAGE_BYTES
from common.servers import Servers
from schemas import editions

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
DRAIN_SECONDS = 0.5


class EditionFeed:
    def __init__(
        self, servers: Servers, shipped: referential.Referential, topic: str = editions.TOPIC
    ) -> None:
        self.servers = servers
        self.current = shipped
        self.topic = topic
        self._consumer: Consumer | None = None
        self._stop = threading.Event()

    def _connect(self) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": self.servers.kafka_bootstrap_servers,
                **self.servers.kafka_security,
                **CONSUMER_DEFAULTS,
                "group.id": "itte-editions",  # never joined nor committed: assigned
                "fetch.max.bytes": MAX_MESSAGE_BYTES,
                "logger": LIBRDKAFKA_LOG,
            }
        )
        found = consumer.list_topics(self.topic, timeout=30).topics.get(self.topic)
        partitions = sorted(found.partitions) if found and not found.error else []
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        return consumer

    def latest(self, timeout: float = 30.0) -> referential.Referential:
        """The newest edition of the topic (read to its end), or the shipped one."""
        self._consumer = consumer = self._connect()
        ends = {
            p.partition: consumer.get_watermark_offsets(p, timeout=timeout)[1]
            for p in consumer.assignment()
        }
        left = {p for p, end in ends.items() if end > 0}
        while left:
            message = consumer.poll(timeout)
            if message is None:
                raise TimeoutError(f"{self.topic}: not read to its end in {timeout} s")
            if message.error():
                raise KafkaException(message.error())
            self._take(message)
            if (message.offset() or 0) + 1 >= ends[message.partition() or 0]:
                left.discard(message.partition() or 0)
        # A broker may give as the end the first offset of its last batch
        # (the embedded one does): what follows it, if anything, is read too.
        while any(ends.values()) and (message := consumer.poll(DRAIN_SECONDS)) is not None:
            if not message.error():
                self._take(message)
        return self.current

    def follow(
        self, use: Callable[[referential.Referential], None] = lambda _: None
    ) -> threading.Thread:
        """Reads on (after :meth:`latest`): each later edition becomes
        :attr:`current`, and is handed to ``use``."""
        thread = threading.Thread(target=self._follow, args=(use,), name="editions", daemon=True)
        thread.start()
        return thread

    def _follow(self, use: Callable[[referential.Referential], None]) -> None:
        consumer = self._consumer or self._connect()
        while not self._stop.is_set():
            message = consumer.poll(POLL_SECONDS)
            if message is None:
                continue
            if message.error():
                log.warning("%s: %s", self.topic, message.error())
                continue
            if self._take(message):
                use(self.current)
        consumer.close()

    def stop(self) -> None:
        self._stop.set()

    def _take(self, message: Any) -> bool:
        """Whether the message holds a later edition (then the current one)."""
        try:
            millesime, files = editions.unpack(message.key(), message.value())
            if (millesime, files.get("VERSION", b"").decode("utf-8", "replace").strip()) == (
                self.current.millesime,
                self.current.version,
            ):
                return False
            if millesime < self.current.millesime:
                return False
            edition = referential.from_files(files, millesime)
        except ValueError as bad:  # BadEdition too: written by hand, not by itte
            log.error("%s: offset %s is no edition: %s", self.topic, message.offset(), bad)
            return False
        self.current = edition
        log.info("now placing on the edition %s of the map (%s)", millesime, edition.version)
        return True
