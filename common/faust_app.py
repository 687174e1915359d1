"""What the two faust services share: app settings, health and metrics pages."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import ssl
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import faust
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from faust.transport.drivers import aiokafka as faust_aiokafka
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common import logs, metrics
from common.errors import Fatal
from common.kafka import MAX_MESSAGE_BYTES
from common.lag import GROUPS, consumer_lag, every_group
from common.retry import Health
from common.servers import Servers
from common.settings import CommonSettings

# faust asks the broker to hold each fetch up to 1.5 s (hard-coded). A broker
# that does not answer a held fetch as soon as data arrives (the embedded one,
# with several partitions) then adds up to that much latency at every hop:
# about 1 s from acknowledgement to aggregate (bench/freshness.py). Under load
# fetches return full at once, so a short wait costs only idle polls.
FETCH_MAX_WAIT_MS = 50
# What our faust producers may send in one request; the cleaner's messages and
# every dead letter are far smaller (bounded records, see schemas/limits.py).
PRODUCER_MAX_REQUEST_BYTES = 4 * 1024 * 1024
# sysexits' EX_SOFTWARE: the supervisor (compose, itte up) sees a crash.
EXIT_UNEXPECTED = 70
log = logging.getLogger(__name__)


@asynccontextmanager
async def stop_on_unexpected(service: str) -> AsyncIterator[None]:
    """Around an agent's loop: an exception that escaped the per-record
    handling ends the process at once.

    faust would restart the agent and acknowledge the messages it held,
    losing them; exiting before any further acknowledgement replays them
    from the last committed offset instead.
    """
    try:
        yield
    except Fatal as exc:  # its message is ours, never a record's: said in full
        log.critical("%s: stopping so that nothing is acknowledged: %s", service, exc)
        logging.shutdown()
        os._exit(EXIT_UNEXPECTED)
    except Exception as exc:
        log.critical(
            "%s: unexpected %s outside any record; stopping so that nothing is acknowledged:\n%s",
            service,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        logging.shutdown()
        os._exit(EXIT_UNEXPECTED)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts (right after this).
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_start(self) -> None:
        # The app's web server listens by now (started before the consumer):
        # a connection opened earlier could take the port it was given.
        await super().on_start()
        for begin in getattr(self.app, "beginnings", ()):
            await begin()


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """faust.App with a short fetch wait (see FETCH_MAX_WAIT_MS), and what
    must begin as it starts (``begin_with``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beginnings: list[Callable[[], Awaitable[None]]] = []

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def begin_with(app: faust.App, begin: Callable[[], Awaitable[None]]) -> None:
    """``begin`` awaited as ``app``'s consumer starts, before it joins its
    group (the app's tasks and agents start after that join)."""
    if not isinstance(app, App):
        raise TypeError(f"{app!r} is not made by make_app")
    app.beginnings.append(begin)


def credentials(security: dict[str, str]) -> Any:
    """librdkafka's security settings (Servers.kafka_security) as faust's."""
    protocol = security.get("security.protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=security.get("ssl.ca.location"))
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=security.get("sasl.username"),
            password=security.get("sasl.password"),
            mechanism=security.get("sasl.mechanism", "PLAIN"),
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def make_app(
    service: str,
    servers: Servers,
    *,
    web_host: str,
    web_port: int,
    partitions: int,
    buffered_messages: int,
    state: Health | None = None,
) -> faust.App:
    """The faust app of ``service`` (``cleaner`` or ``aggregator``): its
    consumer group and topics are those of ``common.lag.GROUPS``.

    ``buffered_messages``: how many messages a stream may fetch ahead of its
    agent. faust's default (4,096) holds a backlog of envelopes of hundreds of
    records each in memory: over 400 MB in the aggregator on a 1M-record load."""
    app_id, _ = GROUPS[service]
    state = state or Health(service)
    app = App(
        app_id,
        broker=";".join(
            f"kafka://{server}" for server in servers.kafka_bootstrap_servers.split(",")
        ),
        broker_credentials=credentials(servers.kafka_security),
        # Fast group joins on the embedded broker (docs/measurements.md: ~3 s, not 23 s).
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_partitions=partitions,
        topic_allow_declare=False,  # common.kafka.ensure_topics creates them
        web_host=web_host,
        web_port=web_port,
        web_in_thread=False,
        store="memory://",
        # One HTTP request is one message (up to MAX_MESSAGE_BYTES): fetch it whole.
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        stream_buffer_maxsize=buffered_messages,
        producer_max_request_size=PRODUCER_MAX_REQUEST_BYTES,
    )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type: pass it as a header.
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/livez")
    async def livez(web: Any, request: Any) -> Any:
        """The process runs and answers."""
        return web.json({"status": "ok", "service": service})

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        """503 while batches fail (database or broker away): operators see it."""
        body, status = readiness(app, service, state, require_partitions=False)
        return web.json(body, status=status)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        """Ready: in the consumer group with partitions, and not retrying."""
        body, status = readiness(app, service, state, require_partitions=True)
        return web.json(body, status=status)

    watch_lag(app, servers)
    return app


def readiness(
    app: faust.App, service: str, state: Health, *, require_partitions: bool
) -> tuple[dict[str, Any], int]:
    """(body, status) of a health page: 503 with the reason when not ready."""
    assigned = app.consumer.assignment() if app.consumer else set()
    body: dict[str, Any] = {
        "status": "ok",
        "service": service,
        "partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
    }
    if state.failing_since is not None:
        body |= {"status": "failing", "failing_since": state.failing_since}
        body["error"] = body["reason"] = state.last_error
    elif require_partitions and not assigned:
        body |= {"status": "waiting", "reason": "no partition assigned yet"}
    elif require_partitions and (
        reason := next((r for check in state.waiting if (r := check()) is not None), None)
    ):
        body |= {"status": "waiting", "reason": reason}
    return body, 200 if body["status"] == "ok" else 503


def watch_lag(app: faust.App, servers: Servers, interval: float = 5.0) -> None:
    """Every ``interval`` seconds, the lag of every itte consumer group per
    partition into ``itte_consumer_lag_messages{service}`` (read from the
    broker, common/lag.py). Each faust service reports every group, its own
    and the other's: the lag of a stopped service is the one that matters,
    and a stopped service reports nothing. Read them with ``max by``."""
    admin: list[AdminClient] = []

    @app.timer(interval=interval)
    async def report_lag() -> None:
        if not admin:
            admin.append(
                AdminClient(
                    {"bootstrap.servers": servers.kafka_bootstrap_servers, **servers.kafka_security}
                )
            )
        for service, group, topics in every_group():
            try:
                lags = await asyncio.to_thread(consumer_lag, admin[0], group, topics, interval)
            except KafkaException as exc:
                log.info("consumer lag of %s not read: %s", group, exc)
                continue
            for (topic, partition), lag in lags.items():
                metrics.CONSUMER_LAG.labels(service, topic, str(partition)).set(lag)


def raw_topic(app: faust.App, name: str) -> Any:
    """A topic of JSON documents we (de)serialize ourselves with pydantic."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def run(app: faust.App, settings: CommonSettings, service: str) -> None:
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        logging_config=logs.config(settings.log_level, settings.log_format, service),
        quiet=True,
    )
    # What the service built to start (the referential's 35,000 communes, the
    # catalogue, faust) lives as long as it: out of the collector's sight, its
    # full collections no longer walk it after every few batches. W1: the
    # aggregator's CPU fell by a fifth (docs/measurements.md).
    gc.collect()
    gc.freeze()
    worker.execute_from_commandline()
