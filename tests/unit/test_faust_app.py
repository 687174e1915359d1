"""The faust settings the services depend on are really applied."""

from __future__ import annotations

import asyncio

import aiokafka

from common.faust_app import FETCH_MAX_WAIT_MS, make_app


def test_consumers_ask_for_short_fetch_waits_and_buffer_little() -> None:
    async def check() -> None:
        app = make_app(
            "test",
            "127.0.0.1:1",  # nothing connects: consumers are only built
            web_host="127.0.0.1",
            web_port=1,
            partitions=1,
            buffered_messages=7,
        )
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            # aiokafka's own attribute, read when the consumer starts: if a
            # release renames it, this fails instead of latency silently
            # going back to faust's 1.5 s per hop.
            assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
            assert aiokafka.AIOKafkaConsumer()._fetch_max_wait_ms != FETCH_MAX_WAIT_MS
        finally:
            await consumer.stop()
        assert app.conf.stream_buffer_maxsize == 7

    asyncio.run(check())
