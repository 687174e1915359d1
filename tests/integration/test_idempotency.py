"""Idempotency keys against the real table: replayed while they live, free
again once expired, and expired rows cleared by later claims."""

from __future__ import annotations

import time

import psycopg

from services.ingestor.idempotency import IdempotencyStore


def keys_held(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {key for (key,) in conn.execute("SELECT key FROM ingest_requests")}


def test_a_key_is_replayed_until_it_expires_then_free_for_any_body(database_url: str) -> None:
    keys = IdempotencyStore(database_url, stale_after_seconds=60, ttl_seconds=0.5)
    assert keys.claim("ademe", "k", b"first") is None
    keys.complete("ademe", "k", 202, {"accepted": 1})
    previous = keys.claim("ademe", "k", b"first")
    assert previous is not None and (previous.status, previous.same_body) == (202, True)
    assert keys.claim("ademe", "old", b"x") is None
    time.sleep(0.7)
    assert keys.claim("ademe", "k", b"another body") is None  # expired: ours again
    assert keys_held(database_url) == {"k"}  # "old" expired and was cleared


def test_a_live_key_is_not_taken_by_another_body(database_url: str) -> None:
    keys = IdempotencyStore(database_url, stale_after_seconds=0.1, ttl_seconds=3600)
    assert keys.claim("ademe", "k", b"first") is None
    time.sleep(0.3)  # stale, never answered: the same body may take it over, no other
    other = keys.claim("ademe", "k", b"second")
    assert other is not None and not other.same_body
    assert keys.claim("ademe", "k", b"first") is None
