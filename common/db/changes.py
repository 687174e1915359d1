"""The rules of the change feed, shared by every writer of aggregates and by
its readers: how a change is numbered and logged (``logged``), the lock that
makes numbers visible in order, and the channel that tells caches.

Every aggregate a transaction inserts or updates takes the next change
number and an entry in ``aggregate_change_log``; the relay publishes the
entries after its cursor, the API's change feed reads them (migrations 0009,
0010)."""

from __future__ import annotations

import json
from collections.abc import Collection

# A transaction that changes aggregates numbers its rows (NEXT_CHANGE) under
# this lock, held to its commit, so that change numbers become visible in the
# order they were taken: a reader that saw N has seen every number below it.
# Writers take it after their other locks and before they touch an aggregates
# row (the rebuild, before locking the table); readers and the relay never
# take it. So its holder never waits for another writer, and it adds no
# deadlock.
NUMBERING_LOCK = "SELECT pg_advisory_xact_lock(7277413)"
NEXT_CHANGE = "nextval('aggregate_changes')"
AGGREGATE_KEY_COLUMNS = ("indicateur", "sous_champ", "annee", "niveau", "code")
AGGREGATE_KEY = ", ".join(AGGREGATE_KEY_COLUMNS)
# How an update numbers the row it changes, for ``logged``: the replaced
# number is kept so that its log entry can go.
RENUMBER = f"change_seq = {NEXT_CHANGE}, previous_seq = a.change_seq"
# The same for the update of an upsert whose insert took the number.
RENUMBER_UPSERTED = (
    "revision = a.revision + 1, change_seq = EXCLUDED.change_seq,"
    " previous_seq = a.change_seq, updated_at = now()"
)


def key_of(alias: str) -> str:
    """AGGREGATE_KEY's columns of the table named ``alias``."""
    return ", ".join(f"{alias}.{column}" for column in AGGREGATE_KEY_COLUMNS)


def same_change(row: str, entry: str) -> str:
    """SQL: the aggregate ``row`` holds the change of log ``entry`` (aliases)."""
    return f"({key_of(row)}) = ({key_of(entry)}) AND {row}.change_seq = {entry}.change_seq"


def logged(statement: str, *, select: str | None = None) -> str:
    """``statement``, which numbers the aggregates it inserts or updates
    (``change_seq = NEXT_CHANGE``, ``previous_seq`` = the number replaced)
    and names their table ``a``, with its changes written to
    ``aggregate_change_log`` and the entries of the numbers they replace
    deleted. Its row count is the rows it changed.

    ``select``: a query over ``changed`` (the rows as the statement left
    them) whose rows the whole statement returns instead: how the aggregator
    reads back what it wrote (services/aggregator/changes.py)."""
    if "UPDATE" in statement and "previous_seq = a.change_seq" not in statement:
        # The replaced entry would stay in the log for ever.
        raise ValueError("an update logged must keep the number it replaces")
    entries = f"""INSERT INTO aggregate_change_log (change_seq, {AGGREGATE_KEY})
SELECT change_seq, {AGGREGATE_KEY} FROM changed"""
    head = f"""
WITH changed AS (
{statement}
RETURNING a.*
), superseded AS (
    -- An array, probed through the primary key: as a join, Postgres scanned
    -- the whole log for every batch.
    DELETE FROM aggregate_change_log
    WHERE change_seq = ANY (ARRAY(SELECT previous_seq FROM changed WHERE previous_seq IS NOT NULL))
)"""
    if select is None:
        return f"{head}\n{entries}\n"
    # A data-modifying WITH runs to completion whether or not it is read.
    return f"{head}, entries AS (\n{entries}\n)\n{select}"


# Readers that cache (the API) learn of every change to aggregates,
# indicators and territories on this channel (a statement trigger, see
# migrations/versions/0001_baseline.py), when the writing transaction commits.
# The payload is the table's name: anything in it may have changed. The
# aggregator says more (migration 0013): it silences the trigger for its
# transaction (ANNOUNCING) and notifies, instead, each indicator and year it
# wrote, ``["indicateur", annee]`` (announce): a cache then drops only what
# shows them (issue #27).
CHANGES_CHANNEL = "itte_changes"
ANNOUNCING = "SELECT set_config('itte.announced', 'on', true)"
ANNOUNCED_AT_MOST = 100  # beyond, the whole table is announced
ANNOUNCE = "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p"


def announcements(pairs: Collection[tuple[str, int]]) -> list[str]:
    """The payloads that tell caches a transaction changed the aggregates of
    these (indicateur, annee): one each, or the table's name when many."""
    if len(pairs) > ANNOUNCED_AT_MOST:
        return ["aggregates"]
    return [json.dumps([indicateur, annee]) for indicateur, annee in sorted(pairs)]
