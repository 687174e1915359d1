"""``itte status``: the pipeline on one screen, from what the services, the
broker and Postgres say now: each service ready or why not, records per
second, consumer lag, freshness, outbox backlog, the last hour's dead letters.
The same addresses work against docker-compose (``ITTE_*_URL``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from rich.console import Console
from rich.table import Table

from common.lag import GROUPS, consumer_lag, every_group
from itte.up import UpSettings

DEAD_LAST_HOUR = """
SELECT stage, reason, count(*) FROM dead_letters
WHERE at > now() - interval '1 hour' GROUP BY stage, reason ORDER BY 3 DESC
"""


class StatusSettings(UpSettings):
    """Where to look: each service's URL (default: this machine, its port)."""

    ingestor_url: str | None = None
    cleaner_url: str | None = None
    aggregator_url: str | None = None
    api_url: str | None = None

    def urls(self) -> dict[str, str]:
        given = {
            "ingestor": self.ingestor_url,
            "cleaner": self.cleaner_url,
            "aggregator": self.aggregator_url,
            "api": self.api_url,
        }
        return {
            name: (given[name] or f"http://127.0.0.1:{port}").rstrip("/")
            for name, port in self.ports().items()
        }


@dataclass
class Service:
    name: str
    url: str
    ready: bool = False
    reason: str = ""
    records_per_second: float | None = None
    samples: list[Sample] | None = None


def readiness(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=3):
            return True, ""
    except urllib.error.HTTPError as error:
        try:
            return False, str(json.loads(error.read()).get("reason", error.code))
        except ValueError:
            return False, f"HTTP {error.code}"
    except OSError as error:
        return False, f"does not answer ({getattr(error, 'reason', error)})"


def scrape(url: str) -> list[Sample] | None:
    try:
        # /metrics: faust serves it there, FastAPI redirects it to /metrics/.
        with urllib.request.urlopen(f"{url}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return None
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def picked(samples: Iterable[Sample], name: str, labels: dict[str, str]) -> Iterable[Sample]:
    """The samples of ``name`` that carry every one of ``labels``."""
    return (
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def total(samples: Iterable[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in picked(samples, name, labels))


def quantile(samples: list[Sample], name: str, q: float, **labels: str) -> float | None:
    """From a histogram's cumulative buckets (since the process started)."""
    buckets = sorted(
        (float(s.labels["le"]), s.value) for s in picked(samples, f"{name}_bucket", labels)
    )
    if not buckets or buckets[-1][1] == 0:
        return None
    wanted = q * buckets[-1][1]
    return next(le for le, count in buckets if count >= wanted)


def look(urls: dict[str, str], interval: float = 1.0) -> list[Service]:
    services = [Service(name, url) for name, url in urls.items()]
    before = {s.name: scrape(s.url) for s in services}
    time.sleep(interval)
    for service in services:
        service.ready, service.reason = readiness(service.url)
        service.samples = scrape(service.url)
        first = before[service.name]
        if first is not None and service.samples is not None:
            counted = total(service.samples, "itte_records_in_total")
            service.records_per_second = (
                counted - total(first, "itte_records_in_total")
            ) / interval
    return services


def lags(kafka: str | None, security: dict[str, str]) -> dict[str, int | str]:
    if kafka is None:
        return {name: "broker unknown" for name in GROUPS}
    admin = AdminClient({"bootstrap.servers": kafka, **security})
    found: dict[str, int | str] = {}
    for name, group, topics in every_group():  # a service's lag: both its lanes
        try:
            lag = sum(consumer_lag(admin, group, topics, timeout=5).values())
        except Exception as exc:  # the broker away: say so, the rest still shows
            found[name] = f"unknown ({type(exc).__name__})"
            continue
        held = found.get(name, 0)
        found[name] = held + lag if isinstance(held, int) else held
    return found


def dead_letters(database_url: str | None) -> list[tuple[str, str, int]] | str:
    if database_url is None:
        return "database unknown"
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            return [(stage, reason, n) for stage, reason, n in conn.execute(DEAD_LAST_HOUR)]
    except psycopg.Error as exc:
        return f"unknown ({type(exc).__name__})"


def render(
    console: Console,
    services: list[Service],
    lag: dict[str, int | str],
    dead: list[tuple[str, str, int]] | str,
) -> None:
    table = Table(title="itte")
    for column in ("service", "ready", "records/s", "lag (messages)", "notes"):
        table.add_column(column)
    for s in services:
        notes = s.reason
        if s.name == "aggregator" and s.samples:
            p99 = quantile(s.samples, "itte_freshness_seconds", 0.99, stage="published")
            pending = total(s.samples, "itte_outbox_pending_rows")
            oldest = total(s.samples, "itte_outbox_oldest_seconds")
            notes = (
                f"{notes + '; ' if notes else ''}freshness p99 ≤ "
                f"{'-' if p99 is None else f'{p99:g} s'}; outbox {pending:g} rows, "
                f"oldest {oldest:.0f} s"
            )
        table.add_row(
            s.name,
            "[green]yes[/]" if s.ready else "[red]no[/]",
            "-" if s.records_per_second is None else f"{s.records_per_second:g}",
            str(lag.get(s.name, "")),
            notes,
        )
    console.print(table)
    if isinstance(dead, str):
        console.print(f"dead letters of the last hour: {dead}")
    elif not dead:
        console.print("dead letters of the last hour: none")
    else:
        letters = Table(title="dead letters of the last hour")
        for column in ("stage", "reason", "records"):
            letters.add_column(column)
        for stage, reason, count in dead:
            letters.add_row(stage, reason, str(count))
        console.print(letters)
