"""Prometheus metrics, the same names in every service (label ``service``).

Labels never carry data values: only service names, topics and fixed reasons.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECORDS_IN = Counter("itte_records_in_total", "Records received", ["service"])
RECORDS_OUT = Counter("itte_records_out_total", "Records passed on", ["service", "topic"])
DEAD_LETTERS = Counter(
    "itte_dead_letters_total", "Records refused, by reason", ["service", "reason"]
)
REFUSED = Counter(
    "itte_requests_refused_total",
    "Requests refused whole (nothing published), by reason",
    ["service", "reason"],
)
UNTRACKED = Counter(
    "itte_untracked_batches_total",
    "Batches published while Postgres was away: their status is not kept",
    ["service"],
)
STALE = Counter(
    "itte_stale_observations_total",
    "Observations ignored: an equal or newer version won",
    ["service"],
)
AGGREGATES_PUBLISHED = Counter(
    "itte_aggregates_published_total", "Aggregate changes published", ["service"]
)
BATCH_SECONDS = Histogram(
    "itte_batch_seconds",
    "Time to process one batch",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
