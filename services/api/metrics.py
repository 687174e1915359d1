"""The API's Prometheus metrics (requests served from the cache included)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter("itte_api_requests_total", "API requests", ["endpoint"])
LATENCY = Histogram(
    "itte_api_request_seconds",
    "API request time",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
CACHE = Counter("itte_api_cache_lookups_total", "Response cache lookups", ["result"])
