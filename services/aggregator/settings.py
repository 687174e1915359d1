from __future__ import annotations

from pydantic import Field

from common.settings import CommonSettings


class AggregatorSettings(CommonSettings):
    aggregator_host: str = "127.0.0.1"
    aggregator_port: int = 6067
    batch_messages: int = Field(20, ge=1, description="Clean messages per transaction.")
    # faust's take() waits this long after each batch before the next one
    # unless batch_messages are in: a fixed wait in every cycle of the live
    # lane (docs/measurements.md, "The live lane's latency").
    batch_seconds: float = Field(0.01, gt=0, description="Longest wait to fill a batch.")
    publish_interval: float = Field(2.0, gt=0, description="Outbox relay timer (seconds).")
    publish_communes: bool = Field(
        True, description="Publish commune-level changes on indicators.aggregates too."
    )
