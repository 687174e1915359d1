"""The editions of the map on the broker (common/edition_feed.py): a service
starting reads the newest one, a running one is handed each later one, and
a message that is no edition is passed over. On a topic of the test's own
(the real one would move every cleaner sharing the broker)."""

from __future__ import annotations

import threading
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from common.edition_feed import EditionFeed
from common.kafka import BlockingProducer
from common.referential import Referential
from common.servers import Servers
from schemas import editions
from tests.e2e.stack import eventually
from tests.editions import REF, files_of, next_edition


def topic_of_its_own(servers: Servers) -> str:
    topic = f"test.editions.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": servers.kafka_bootstrap_servers})
    spec = NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})
    for future in admin.create_topics([spec]).values():
        future.result(30)
    return topic


def test_a_service_reads_the_newest_edition_then_follows_the_later_ones(
    servers: Servers,
) -> None:
    topic = topic_of_its_own(servers)
    assert EditionFeed(servers, REF, topic).latest() is REF  # none loaded yet
    edition, names = next_edition(2027)
    later, _ = next_edition(2028)
    producer = BlockingProducer(servers.kafka_bootstrap_servers)
    producer.send_all(
        topic,
        [
            editions.pack(2027, files_of(edition)),
            (b"2029", b"no tar archive"),  # not written by itte: passed over
            editions.pack(2025, files_of(REF)),  # older than the one read: passed over
        ],
    )
    feed = EditionFeed(servers, REF, topic)
    current = feed.latest()
    assert (current.millesime, current.version) == (2027, "test-2027")
    assert current.former_codes[names["a"]] == names["born"]

    handed: list[Referential] = []
    got = threading.Event()
    feed.follow(lambda ref: (handed.append(ref), got.set()))
    producer.send_all(topic, [editions.pack(2027, files_of(edition))])  # the same again
    producer.send_all(topic, [editions.pack(2028, files_of(later))])
    eventually(got.is_set, 30, "the later edition to be handed over")
    feed.stop()
    assert [(r.millesime, r.version) for r in handed] == [(2028, "test-2028")]
    assert feed.current is handed[0]
    producer.close()
