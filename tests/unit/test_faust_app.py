"""The faust settings the services depend on are really applied."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiokafka
import certifi
import faust
import pytest

from common.faust_app import FETCH_MAX_WAIT_MS, begin_with, make_app
from common.servers import Servers
from common.settings import CommonSettings
from itte.embedded import servers_for


def test_consumers_ask_for_short_fetch_waits_and_buffer_little() -> None:
    async def check() -> None:
        app = make_app(
            "cleaner",
            Servers("127.0.0.1:1", "unused"),  # nothing connects: consumers are only built
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


def test_sasl_and_tls_settings_reach_the_faust_consumers_and_the_librdkafka_clients() -> None:
    cafile = Path(certifi.where())  # any valid CA bundle
    settings = CommonSettings(
        kafka_bootstrap_servers="broker:9093",
        database_url="unused",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="itte",
        kafka_sasl_password="not-a-real-secret",
        kafka_ssl_cafile=cafile,
    )
    servers = servers_for(settings)
    assert servers.kafka_security == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "itte",
        "sasl.password": "not-a-real-secret",
        "ssl.ca.location": str(cafile),
    }

    async def check() -> None:
        app = make_app(
            "cleaner", servers, web_host="127.0.0.1", web_port=1, partitions=1, buffered_messages=1
        )
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            client = consumer._client
            assert (client._security_protocol, client._sasl_mechanism) == (
                "SASL_SSL",
                "SCRAM-SHA-512",
            )
            assert client._sasl_plain_username == "itte" and client._ssl_context is not None
        finally:
            await consumer.stop()

    asyncio.run(check())


def test_what_begins_with_the_app_is_awaited_before_its_consumer_joins() -> None:
    # The bulk lanes join their groups here, while faust joins its own: faust
    # starts its tasks only once its partitions are assigned (3 s more a start).
    began: list[bool] = []

    async def check() -> None:
        app = make_app(
            "aggregator",
            Servers("127.0.0.1:1", "unused"),
            web_host="127.0.0.1",
            web_port=1,
            partitions=1,
            buffered_messages=1,
        )

        async def begin() -> None:
            # Not yet in the group: its thread (aiokafka's consumer) not started.
            began.append(app.consumer._thread.state == "init")

        begin_with(app, begin)
        await app.consumer.on_start()

    asyncio.run(check())
    assert began == [True]
    with pytest.raises(TypeError, match="make_app"):
        begin_with(faust.App("plain"), lambda: asyncio.sleep(0))
