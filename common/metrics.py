"""Prometheus metrics, the same names in every service (label ``service``).

Labels never carry data values: only service names, topics and fixed reasons.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram

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
PRODUCERS_FILE_ERRORS = Counter(
    "itte_producers_file_errors_total",
    "Times the producers file changed but could not be read (the previous table stays)",
    ["service"],
)
UNTRACKED = Counter(
    "itte_untracked_batches_total",
    "Batches published while Postgres was away: their status is not kept",
    ["service"],
)
STALE = Counter(
    "itte_stale_observations_total",
    "PushHandler ignored: an equal or newer version won",
    ["service"],
)
AGGREGATES_PUBLISHED = Counter(
    "itte_aggregates_published_total", "Aggregate changes published", ["service"]
)
LOG_READS = Counter(
    "itte_relay_log_reads_total",
    "Times the relay read the change log (after a restart, on its timer, or when an older "
    "change was pending) instead of publishing changes as their transaction wrote them",
    ["service"],
)
BATCH_SECONDS = Histogram(
    "itte_batch_seconds",
    "Time to process one batch",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Operations (docs/operations.md).
CONSUMER_LAG = Gauge(
    "itte_consumer_lag_messages",
    "Messages between the group's committed offset and the end of the partition",
    ["service", "topic", "partition"],
)
FRESHNESS = Histogram(
    "itte_freshness_seconds",
    "From the ingestor's acceptance of a batch's oldest record to its commit in Postgres "
    "(stage=stored) and to the publication of the changes (stage=published)",
    ["service", "stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
OUTBOX_PENDING = Gauge(
    "itte_outbox_pending_rows", "Aggregate changes committed, not yet published", ["service"]
)
OUTBOX_OLDEST = Gauge(
    "itte_outbox_oldest_seconds",
    "Age of the oldest aggregate change not yet published (0: none)",
    ["service"],
)
RETRIES = Counter("itte_retries_total", "Batches retried after a transient failure", ["service"])
FAILING = Gauge(
    "itte_failing_seconds",
    "For how long the batch loop has been retrying a transient failure (0: healthy)",
    ["service"],
)
# A gauge, not an Info: Info is lost in multiprocess mode (API workers).
BUILD = Gauge(
    "itte_build_info", "The running itte (always 1)", ["version"], multiprocess_mode="max"
)
try:
    BUILD.labels(version("itte")).set(1)
except PackageNotFoundError:  # run from a source tree without installing
    BUILD.labels("unknown").set(1)
