"""W2: freshness under a steady stream of corrections.

On a stack loaded with one indicator for every commune, sends corrections
over HTTP at a steady rate (a request every 100 ms) and measures, for each
acknowledged record, the time from its acknowledgement to its change being
visible (1) in the API and (2) on ``indicators.aggregates``.

How a record is followed: each request ends with probe records, one on
each partition of ``indicators.clean`` (the cleaner routes a record by its
place), each on a commune no other request uses, of a probe indicator
shared by ``GROUP`` requests. A request is one message of the raw topic; on
each clean partition its records keep their order and the aggregator
commits them in that order, so the probe of a partition visible means the
request's records there are. The request is visible when every one of its
probes is, and each of its records takes that time (the latest of its
probes'). A record is credited only by its own request's probes: a later
request seen first proves nothing about an earlier one. A sample seen
before its send, or never acknowledged, is impossible and fails the run;
one seen between its send and its 202's arrival counts 0 from the
acknowledgement (``before_ack``).
"""

from __future__ import annotations

import functools
import json
import random
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from confluent_kafka import OFFSET_END, Consumer, Message, TopicPartition

from bench.api import wrk
from bench.data import YEARS, communes, indicators_for, write_catalogue, write_long_csv
from bench.stack import COUNTED_AT_FRANCE, Stack, named, running_stack, wait_until_counted
from bench.stats import percentile
from bench.w1 import by_file
from common.settings import CommonSettings
from schemas import aggregates
from schemas.clean import place_hash

TICK = 0.1  # seconds between requests
PROBE = "probe"
GROUP = 50  # requests per probe indicator: the API watcher reads a probe per partition of each
SETTLE = 30.0  # seconds allowed after the last request for the pipeline to catch up
# Seconds between two rounds of reads of the API by the watcher. Every 5 ms,
# the watcher and the API answering it took about 0.15 of the 2 cores the
# pipeline under test runs on (30 s at 5,000 records/s: 8.5 and 2.3 CPU
# seconds, against 4.8 and 1.4 every 20 ms). A sample is then late by up to
# this much, never early.
API_POLL = 0.02


class ImpossibleSample(RuntimeError):
    """A measurement that cannot be true: the run is wrong, not slow."""


@functools.cache
def probe_communes() -> tuple[tuple[str, ...], ...]:
    """The communes whose records the cleaner sends to each partition of
    ``indicators.clean`` (the W2 stack has the default partitions)."""
    partitions = CommonSettings.model_fields["topic_partitions"].default
    pools: list[list[str]] = [[] for _ in range(partitions)]
    for commune in communes():
        pools[place_hash("total", YEARS[0], commune) % partitions].append(commune)
    return tuple(tuple(pool) for pool in pools)


def probes_of(k: int) -> list[tuple[str, str]]:
    """Request ``k``'s probes, one by clean partition: (indicator, commune)."""
    return [(f"{PROBE}_{k // GROUP}", pool[k]) for pool in probe_communes()]


Probes = Callable[[int], list[tuple[str, str]]]


@dataclass
class Visibility:
    """When each request was first seen whole: each of its probes seen."""

    parts: int = field(default_factory=lambda: len(probe_communes()))
    seen: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _probes: dict[int, dict[int, float]] = field(default_factory=dict)

    def saw(self, k: int, part: int, at: float) -> None:
        with self.lock:
            probes = self._probes.setdefault(k, {})
            probes.setdefault(part, at)
            if len(probes) == self.parts:
                self.seen.setdefault(k, max(probes.values()))


@dataclass
class Requests:
    """Requests ``first`` to ``last`` of one rate: when each was sent and acknowledged."""

    first: int
    last: int
    sent: dict[int, float] = field(default_factory=dict)
    acked: dict[int, float] = field(default_factory=dict)

    def groups(self) -> range:
        return range(self.first // GROUP, self.last // GROUP + 1)


def watch_api(
    stack: Stack,
    requests: Requests,
    seen: Visibility,
    stop: threading.Event,
    probes: Probes = probes_of,
    prefix: str = PROBE,
) -> None:
    """Reads the commune rows of the probe groups with requests still unseen."""
    by_commune = {
        probe: (k, part)
        for k in range(requests.first, requests.last + 1)
        for part, probe in enumerate(probes(k))
    }
    annee = YEARS[0]
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            for group in requests.groups():
                ks = range(
                    max(requests.first, group * GROUP), min(requests.last + 1, (group + 1) * GROUP)
                )
                if all(k in seen.seen for k in ks) or not any(k in requests.sent for k in ks):
                    continue
                url = stack.url(
                    "api", f"/indicateurs?niveau=commune&indicateur={prefix}_{group}&annee={annee}"
                )
                at = time.monotonic()
                for row in client.get(url).json():
                    found = by_commune.get((row["indicateur"], row["code"]))
                    if found is not None and row["valeur"] is not None:
                        seen.saw(*found, at)
            time.sleep(API_POLL)


def tail_topic(
    consumer: Consumer,
    requests: Requests,
    seen: Visibility,
    stop: threading.Event,
    probes: Probes = probes_of,
) -> None:
    keys = {
        f"{indicateur}|total|{YEARS[0]}|commune|{commune}".encode(): (k, part)
        for k in range(requests.first, requests.last + 1)
        for part, (indicateur, commune) in enumerate(probes(k))
    }
    while not stop.is_set():
        for message in arrived(consumer):
            if message.error() is None and (found := keys.get(message.key() or b"")) is not None:
                seen.saw(*found, time.monotonic())


def arrived(consumer: Consumer) -> list[Message]:
    """What the consumer holds, as soon as it holds anything. Not
    ``consume(1000, timeout=0.1)``: that waits for a thousand messages or the
    timeout, and added 60-70 ms to the median message's time to be seen at
    W2's rates (docs/measurements.md)."""
    first = consumer.poll(0.1)
    return [] if first is None else [first, *consumer.consume(1000, timeout=0)]


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


def settle(
    api_seen: Visibility,
    topic_seen: Visibility,
    count: int,
    stop: threading.Event,
    watchers: list[threading.Thread],
    consumer: Consumer,
) -> None:
    """Until ``count`` requests are seen in the API and on the topic, or
    SETTLE seconds; then the watchers stop."""
    deadline = time.monotonic() + SETTLE
    while min(len(api_seen.seen), len(topic_seen.seen)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for w in watchers:
        w.join()
    consumer.close()


def summary(requests: Requests, seen: Visibility, per_request: int) -> dict[str, object]:
    """Latencies per acknowledged record (each record of a request takes the
    time it was seen whole), from the request's acknowledgement and from
    its send; raises on an impossible sample (seen before it was sent, or
    never acknowledged). A request seen before its 202 reached the sender
    is possible (the broker had acknowledged it; the pipeline was quicker
    than the answer's way back, as with two workers): its latency from the
    acknowledgement counts as 0, and ``before_ack`` says how many.
    Percentiles are over the records seen: ``unseen`` says how many were not."""
    latencies, from_send, before_ack = [], [], 0
    for k, at in sorted(seen.seen.items()):
        acked, sent = requests.acked.get(k), requests.sent.get(k)
        if acked is None or sent is None or at < sent:
            raise ImpossibleSample(
                f"request {k} seen at {at:.3f}, sent {sent}, acknowledged {acked}"
            )
        before_ack += at < acked
        latencies.append(round(max(0.0, at - acked) * 1000, 1))
        from_send.append(round((at - sent) * 1000, 1))
    if not latencies:
        return {"samples": 0, "unseen": len(requests.acked) * per_request, "latencies_ms": []}
    return {
        "samples": len(latencies) * per_request,
        "unseen": (len(requests.acked) - len(latencies)) * per_request,
        "before_ack": before_ack * per_request,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "sent_p50_ms": percentile(from_send, 0.50),
        "sent_p99_ms": percentile(from_send, 0.99),
        "sent_max_ms": max(from_send),
        "latencies_ms": latencies,  # one per request: each stands for its per_request records
        "sent_latencies_ms": from_send,
    }


def stream_corrections(stack: Stack, rate: int, seconds: float, first: int) -> dict[str, object]:
    """Sends ``rate`` records/s for ``seconds``; requests numbered from ``first``."""
    every = communes()
    probes = len(probe_communes())
    per_request = max(probes + 1, round(rate * TICK))
    rng = random.Random(rate)
    url = stack.url("ingestor", "/observations")
    count = int(seconds / TICK)
    requests = Requests(first, first + count - 1)
    api_seen, topic_seen = Visibility(), Visibility()
    stop = threading.Event()
    consumer = aggregates_consumer(stack.servers.kafka_bootstrap_servers)
    watchers = [
        threading.Thread(target=watch_api, args=(stack, requests, api_seen, stop)),
        threading.Thread(target=tail_topic, args=(consumer, requests, topic_seen, stop)),
    ]
    for w in watchers:
        w.start()

    def body(k: int) -> bytes:
        lines: list[dict[str, object]] = [
            {
                "indicateur": "w2_0",
                "commune": rng.choice(every),
                "annee": YEARS[0],
                "valeur": f"{rng.randrange(10_000_000) / 100:.2f}",
            }
            for _ in range(per_request - probes)
        ]
        lines += [
            {"indicateur": indicateur, "commune": commune, "annee": YEARS[0], "valeur": 1}
            for indicateur, commune in probes_of(k)
        ]
        return "\n".join(json.dumps(line) for line in lines).encode()

    bodies = [body(first + i) for i in range(count)]
    cpu_before, own_before = stack.cpu_seconds(), own_cpu()
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:

        def send(k: int, content: bytes) -> None:
            requests.sent[k] = time.monotonic()
            client.post(
                url, content=content, headers={"Content-Type": "application/x-ndjson"}
            ).raise_for_status()
            requests.acked[k] = time.monotonic()

        started = time.monotonic()
        futures = []
        for i, content in enumerate(bodies):
            time.sleep(max(0.0, started + i * TICK - time.monotonic()))
            futures.append(pool.submit(send, first + i, content))
        for future in futures:
            future.result()
        sent_in = time.monotonic() - started
    settle(api_seen, topic_seen, count, stop, watchers, consumer)
    records = per_request * count
    used = {n: s - cpu_before.get(n, 0) for n, s in stack.cpu_seconds().items()}
    used["bench (senders, readers)"] = own_cpu() - own_before
    achieved = records / sent_in
    api = summary(requests, api_seen, per_request)
    topic = summary(requests, topic_seen, per_request)
    return {
        "target_records_per_second": rate,
        "achieved_records_per_second": round(achieved),
        "records_per_request": per_request,
        "sustained": achieved >= 0.95 * rate and api["unseen"] == 0 and topic["unseen"] == 0,
        "api": api,
        "topic": topic,
        # Until every record was seen: what each process spent per record
        # sent, on the machine's two shared cores (the budget of a rate).
        "cpu_us_per_record": {n: round(1e6 * s / records, 1) for n, s in used.items()},
    }


def own_cpu() -> float:
    """CPU seconds of this process (the senders and the watchers), all threads."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


# W3 while W2 runs: the cached département query of an indicator the stream
# leaves alone, and of the one it corrects (every commit drops that one).
READ_RATE = 5_000
READ_CONNECTIONS = 64


def with_reads(
    stack: Stack, seconds: float, first: int, years: tuple[int, ...]
) -> dict[str, object]:
    """The stream at ``READ_RATE`` while wrk reads the API through its cache,
    each query for half of the stream (after 2 s, the stream under way)."""

    queries = {
        "untouched": f"/indicateurs?departement=33&indicateur=w2_0&annee={years[-1]}",
        "corrected": f"/indicateurs?departement=33&indicateur=w2_0&annee={years[0]}",
    }
    reads: dict[str, object] = {}
    each = max(1, int((seconds - 4) / len(queries)))

    def read() -> None:
        time.sleep(2)
        for name, path in queries.items():
            reads[name] = {"path": path, **wrk(stack.url("api", path), each, READ_CONNECTIONS)}

    reader = threading.Thread(target=read)
    reader.start()
    stream = stream_corrections(stack, READ_RATE, seconds, first)
    reader.join()
    return {"stream": stream, "reads": reads, "read_seconds": each}


def run(
    rates: list[int],
    seconds: float,
    workdir: Path,
    workers: int = 1,
    base: int = 0,
    reads: bool = False,
    **settings: str,
) -> dict[str, object]:
    """One stack (``workers`` cleaners and aggregators): the base data once
    (``base`` records, W1's; at least one indicator for every commune), then
    each rate in turn, correcting the first indicator (its first year); with
    ``reads``, once more at ``READ_RATE`` while the API is read (W3 during W2)."""
    base = max(base, len(communes()))
    requests = (len(rates) + reads) * int(seconds / TICK)
    catalogue = write_catalogue(workdir / "w2.toml", "w2", indicators_for(base))
    catalogue.write_text(
        catalogue.read_text()
        + "".join(
            f'[[indicateur]]\nid = "{PROBE}_{g}"\nlibelle = "sonde {g}"\nagregation = "somme"\n\n'
            for g in range(-(-requests // GROUP))
        )
    )
    with running_stack(workdir / f"state-w2-{workers}", catalogue, workers, **settings) as stack:
        by_file(stack, base, "w2", workdir)
        wait_until_counted(stack.servers.database_url, base, COUNTED_AT_FRANCE, named("w2"))
        results, first = [], 0
        during = None
        # Right after its own rate's run: a higher rate's backlog would be in it.
        read_after = READ_RATE if READ_RATE in rates else rates[-1]
        for rate in rates:
            results.append(stream_corrections(stack, rate, seconds, first))
            first += int(seconds / TICK)
            if reads and rate == read_after:
                during = with_reads(stack, seconds, first, YEARS)
                first += int(seconds / TICK)
        rss = stack.peak_rss_mb()
    return {
        "seconds": seconds,
        "workers": workers,
        "base_records": base,
        "runs": results,
        "w3_during": during,
        "peak_rss_mb": rss,
    }


LIVE = "live"  # the indicators of W2 during a load (one per GROUP corrections)


def live_probe(k: int) -> list[tuple[str, str]]:
    """Correction ``k`` of W2 during a load: its own record, on a commune of its own."""
    every = communes()
    return [(f"{LIVE}_{k // GROUP}", every[k % len(every)])]


def during_load(records: int, workdir: Path) -> dict[str, object]:
    """While ``records`` records load from a file, one correction (one
    record, its own probe) every TICK by HTTP, each timed from its send to
    its value in the API and on the topic; until the load is counted."""
    limit = int(600 / TICK)  # bounded: at most 10 minutes of corrections
    catalogue = write_catalogue(workdir / "load.toml", "load", indicators_for(records))
    catalogue.write_text(
        catalogue.read_text()
        + "".join(
            f'[[indicateur]]\nid = "{LIVE}_{g}"\nlibelle = "direct {g}"\nagregation = "somme"\n\n'
            for g in range(-(-limit // GROUP))
        )
    )
    source = workdir / "load.csv"
    write_long_csv(source, records, "load")
    with running_stack(workdir / "state-load", catalogue) as stack:
        requests = Requests(0, limit - 1)
        api_seen, topic_seen = Visibility(parts=1), Visibility(parts=1)
        stop = threading.Event()
        consumer = aggregates_consumer(stack.servers.kafka_bootstrap_servers)
        watchers = [
            threading.Thread(
                target=watch_api, args=(stack, requests, api_seen, stop, live_probe, LIVE)
            ),
            threading.Thread(
                target=tail_topic, args=(consumer, requests, topic_seen, stop, live_probe)
            ),
        ]
        for w in watchers:
            w.start()
        loading = subprocess.Popen(
            [sys.executable, "-m", "itte", "ingest", str(source)],
            env=stack.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = stack.url("ingestor", "/observations")
        started = time.monotonic()
        sent = 0
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(4) as pool:

            def send(k: int) -> None:
                [(indicateur, commune)] = live_probe(k)
                body = {
                    "indicateur": indicateur,
                    "commune": commune,
                    "annee": YEARS[0],
                    "valeur": k,
                }
                requests.sent[k] = time.monotonic()
                client.post(url, json=[body]).raise_for_status()
                requests.acked[k] = time.monotonic()

            futures = []
            while sent < limit and not loaded(stack, records):
                time.sleep(max(0.0, started + sent * TICK - time.monotonic()))
                futures.append(pool.submit(send, sent))
                sent += 1
            for future in futures:
                future.result()
        load_seconds = time.monotonic() - started
        if loading.wait(120) != 0:
            raise RuntimeError("itte ingest failed during W2's load")
        requests.last = sent - 1
        settle(api_seen, topic_seen, sent, stop, watchers, consumer)
    return {
        "records_loaded": records,
        "load_seconds": round(load_seconds, 1),
        "corrections": sent,
        "api": summary(requests, api_seen, 1),
        "topic": summary(requests, topic_seen, 1),
    }


def loaded(stack: Stack, records: int) -> bool:
    with psycopg.connect(stack.servers.database_url) as conn:
        row = conn.execute(COUNTED_AT_FRANCE, (named("load"),)).fetchone()
    return row is not None and int(row[0]) >= records
