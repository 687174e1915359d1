"""Consumer lag read from the broker: committed offsets against the end of
each partition, for a group that never committed and for one that did."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common.kafka import BlockingProducer
from common.lag import consumer_lag
from common.servers import Servers


def test_lag_counts_the_messages_a_group_has_not_committed(servers: Servers) -> None:
    bootstrap = servers.kafka_bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, group = f"lag.{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result()
    with BlockingProducer(bootstrap) as producer:
        # One write per message: the embedded broker puts the end of a
        # partition at the start of its last write (docs/operations.md).
        for i in range(40):
            producer.send_all(topic, [(f"k{i}".encode(), b"v")])
    lag = consumer_lag(admin, group, (topic, "no.such.topic"))
    assert set(lag) == {(topic, 0), (topic, 1)} and sum(lag.values()) == 40

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    busy = max(lag, key=lambda key: lag[key])
    consumer.commit(offsets=[TopicPartition(topic, busy[1], 5)], asynchronous=False)
    consumer.close()
    after = consumer_lag(admin, group, (topic,))
    assert after[busy] == lag[busy] - 5
    assert sum(after.values()) == 35
