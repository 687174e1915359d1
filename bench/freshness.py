"""W2: freshness under a steady stream of corrections.

On a stack loaded with one indicator for every commune, sends corrections
over HTTP at a steady rate (a request every 100 ms) and measures, for each
request, the time from the ingestor's acknowledgement to the change being
visible (1) in the API and (2) on ``indicators.aggregates``.

How a request is followed: each carries, besides its corrections, one record
of a probe indicator on a single commune whose value is the request's
sequence number. The probe's France aggregate is that number, so seeing the
value ``k`` means requests up to ``k`` are served (a request's records travel
in one Kafka message and are committed together).
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from bench.data import YEARS, communes, write_catalogue
from bench.stack import COUNTED_AT_FRANCE, Stack, named, running_stack, wait_until_counted
from bench.w1 import by_file
from schemas import aggregates

TICK = 0.1  # seconds between requests
PROBE = "probe"
PROBE_KEY = f"{PROBE}_0|total|{YEARS[0]}|france|FR"
SETTLE = 30.0  # seconds allowed after the last request for the pipeline to catch up


@dataclass
class Visibility:
    """When each probe value was first seen; a value ``k`` covers every ``j <= k``."""

    seen: dict[int, float] = field(default_factory=dict)
    highest: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, value: int, at: float) -> None:
        with self.lock:
            for k in range(self.highest + 1, value + 1):
                self.seen[k] = at
            self.highest = max(self.highest, value)


def watch_api(stack: Stack, seen: Visibility, stop: threading.Event) -> None:
    url = stack.url("api", f"/indicateurs?niveau=france&indicateur={PROBE}_0")
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            rows = client.get(url).json()
            if rows and rows[0]["valeur"] is not None:
                seen.saw(int(rows[0]["valeur"]), time.monotonic())
            time.sleep(0.005)


def tail_topic(consumer: Consumer, seen: Visibility, stop: threading.Event) -> None:
    while not stop.is_set():
        for message in consumer.consume(1000, timeout=0.1):
            if message.error() is None and message.key() == PROBE_KEY.encode():
                seen.saw(int(json.loads(message.value() or b"{}")["valeur"]), time.monotonic())


def aggregates_consumer(bootstrap: str) -> Consumer:
    """Reads only what is published from now on."""
    consumer = Consumer(
        # A short fetch wait: the embedded broker holds fetches (see common.faust_app).
        {"bootstrap.servers": bootstrap, "group.id": "bench-freshness", "fetch.wait.max.ms": 10}
    )
    partitions = consumer.list_topics(aggregates.TOPIC, timeout=30).topics[aggregates.TOPIC]
    consumer.assign(
        [TopicPartition(aggregates.TOPIC, p, OFFSET_END) for p in partitions.partitions]
    )
    return consumer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def summary(acked: dict[int, float], seen: Visibility) -> dict[str, float | int]:
    latencies = [(seen.seen[k] - at) * 1000 for k, at in acked.items() if k in seen.seen]
    if not latencies:
        return {"samples": 0}
    return {
        "samples": len(latencies),
        "unseen": len(acked) - len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }


def stream_corrections(stack: Stack, rate: int, seconds: float, first: int) -> dict[str, object]:
    """Sends ``rate`` records/s for ``seconds``; probe values from ``first``."""
    every = communes()
    per_request = max(2, round(rate * TICK))
    rng = random.Random(rate)
    url = stack.url("ingestor", "/observations")
    acked: dict[int, float] = {}
    api_seen, topic_seen = Visibility(highest=first - 1), Visibility(highest=first - 1)
    stop = threading.Event()
    consumer = aggregates_consumer(stack.servers.kafka_bootstrap_servers)
    watchers = [
        threading.Thread(target=watch_api, args=(stack, api_seen, stop)),
        threading.Thread(target=tail_topic, args=(consumer, topic_seen, stop)),
    ]
    for w in watchers:
        w.start()

    def body(k: int) -> bytes:
        lines = [{"indicateur": f"{PROBE}_0", "commune": every[0], "annee": YEARS[0], "valeur": k}]
        lines += [
            {
                "indicateur": "w2_0",
                "commune": rng.choice(every),
                "annee": YEARS[0],
                "valeur": f"{rng.randrange(10_000_000) / 100:.2f}",
            }
            for _ in range(per_request - 1)
        ]
        return "\n".join(json.dumps(line) for line in lines).encode()

    requests = int(seconds / TICK)
    bodies = [body(first + i) for i in range(requests)]
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:

        def send(k: int, content: bytes) -> None:
            client.post(
                url, content=content, headers={"Content-Type": "application/x-ndjson"}
            ).raise_for_status()
            acked[k] = time.monotonic()

        started = time.monotonic()
        futures = []
        for i, content in enumerate(bodies):
            time.sleep(max(0.0, started + i * TICK - time.monotonic()))
            futures.append(pool.submit(send, first + i, content))
        for future in futures:
            future.result()
        sent_in = time.monotonic() - started
    last = first + requests - 1
    deadline = time.monotonic() + SETTLE
    while min(api_seen.highest, topic_seen.highest) < last and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for w in watchers:
        w.join()
    consumer.close()
    achieved = per_request * requests / sent_in
    api, topic = summary(acked, api_seen), summary(acked, topic_seen)
    return {
        "target_records_per_second": rate,
        "achieved_records_per_second": round(achieved),
        "sustained": achieved >= 0.95 * rate
        and api.get("unseen", 1) == 0
        and topic.get("unseen", 1) == 0,
        "api": api,
        "topic": topic,
    }


def run(rates: list[int], seconds: float, workdir: Path) -> dict[str, object]:
    """One stack: the base data once, then each rate in turn."""
    base = len(communes())
    catalogue = write_catalogue(workdir / "w2.toml", "w2", 1)
    catalogue.write_text(
        catalogue.read_text()
        + f'[[indicateur]]\nid = "{PROBE}_0"\nlibelle = "sonde"\nagregation = "somme"\n'
    )
    with running_stack(workdir / "state-w2", catalogue) as stack:
        by_file(stack, base, "w2", workdir)
        wait_until_counted(stack.servers.database_url, base, COUNTED_AT_FRANCE, named("w2"))
        results, first = [], 1
        for rate in rates:
            results.append(stream_corrections(stack, rate, seconds, first))
            first += int(seconds / TICK)
        rss = stack.peak_rss_mb()
    return {"seconds": seconds, "runs": results, "peak_rss_mb": rss}
