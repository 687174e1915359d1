"""Consumer lag, as the broker sees it: for each partition of a group's
topics, the messages between the group's committed offset and the end of the
partition. Read with the admin API, so it works from inside a service (its
``itte_consumer_lag_messages`` gauge) and from outside (``itte status``)."""

from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

# The live lane's consumer groups are the faust app ids (common/faust_app.py
# make_app); the bulk lane's are its own (common/lanes.py).
GROUPS = {
    "cleaner": ("itte-cleaner", ("indicators.raw",)),
    "aggregator": ("itte-aggregator", ("indicators.clean", "indicators.deadletter")),
}
BULK_GROUPS = {
    "cleaner": ("itte-cleaner-bulk", ("indicators.raw.bulk",)),
    "aggregator": ("itte-aggregator-bulk", ("indicators.clean.bulk",)),
}


def every_group() -> list[tuple[str, str, tuple[str, ...]]]:
    """(service, group, topics) of both lanes."""
    return [
        (service, group, topics)
        for groups in (GROUPS, BULK_GROUPS)
        for service, (group, topics) in groups.items()
    ]


def committed(
    admin: AdminClient, group: str, topics: tuple[str, ...], timeout: float = 10.0
) -> dict[tuple[str, int], int]:
    """The group's committed offset on every partition of ``topics`` (a
    negative one: none yet)."""
    known = admin.list_topics(timeout=timeout).topics
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        if topic in known
        for p in known[topic].partitions
    ]
    if not partitions:
        return {}
    [future] = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=timeout
    ).values()
    found = {(tp.topic, tp.partition): tp.offset for tp in future.result().topic_partitions}
    return {(tp.topic, tp.partition): found.get((tp.topic, tp.partition), -1) for tp in partitions}


def consumer_lag(
    admin: AdminClient, group: str, topics: tuple[str, ...], timeout: float = 10.0
) -> dict[tuple[str, int], int]:
    """Messages behind, by (topic, partition). A partition the group never
    committed counts from its first offset (faust starts there: "earliest")."""
    done = committed(admin, group, topics, timeout)
    partitions = [TopicPartition(topic, p) for topic, p in done]
    if not partitions:
        return {}
    ends = offsets(admin, partitions, OffsetSpec.latest(), timeout)
    starts = offsets(admin, partitions, OffsetSpec.earliest(), timeout)
    return {
        key: max(0, end - (done[key] if done[key] >= 0 else starts[key]))
        for key, end in ends.items()
    }


def offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout: float
) -> dict[tuple[str, int], int]:
    """Each partition's offset at ``spec`` (its first, its end)."""
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout)
    return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
