"""Topics are laid out for the cluster they live on: replicated and durable
on a real cluster, single-copy only on the embedded broker or when asked."""

from __future__ import annotations

from common.kafka import topic_specs
from common.settings import CommonSettings


def test_a_configured_cluster_gets_three_replicas_two_in_sync_by_default() -> None:
    assert CommonSettings(kafka_bootstrap_servers="k1:9092").replication() == (3, 2)


def test_the_embedded_broker_gets_one_copy() -> None:
    assert CommonSettings(kafka_bootstrap_servers=None).replication() == (1, 1)


def test_replication_follows_the_settings() -> None:
    single = CommonSettings(kafka_bootstrap_servers="kafka:9092", replication_factor=1)
    assert single.replication() == (1, 1)
    five = CommonSettings(
        kafka_bootstrap_servers="k:9092", replication_factor=5, min_insync_replicas=3
    )
    assert five.replication() == (5, 3)


def test_every_topic_is_created_with_the_layout() -> None:
    specs = topic_specs(4, replication_factor=3, min_insync_replicas=2)
    assert {t.replication_factor for t in specs} == {3}
    assert all(t.config["min.insync.replicas"] == "2" for t in specs)
    compacted = [t for t in specs if t.config.get("cleanup.policy") == "compact"]
    assert [t.topic for t in compacted] == ["indicators.aggregates", "indicators.editions"]
    # One message an edition of the map, read whole by every cleaner.
    assert [t.num_partitions for t in compacted] == [4, 1]
    assert all("min.insync.replicas" not in t.config for t in topic_specs(4))
