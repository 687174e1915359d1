"""A backup taken while producers push, restored into an empty database
after the database is lost: nothing lost, nothing counted twice, `itte
check` clean, and a subscriber's cursor from before the backup reads every
change to the end (issue #31, point 6)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import psycopg
from confluent_kafka.admin import AdminClient
from psycopg import sql

from common.db import with_database
from common.lag import consumer_lag
from itte.backup import AGGREGATOR_GROUPS, SKIPPED_CHANGE_NUMBERS
from services.aggregator.verify import check
from tests.chaos import workload
from tests.e2e.conftest import own_stack
from tests.e2e.stack import Stack, allow_connections, eventually, get_json, post_with_retry

IND = "e2e_backup"
DEPARTEMENTS = ("01", "2A", "74")


def france(stack: Stack, total: Decimal) -> dict | None:
    rows = get_json(stack.url("api", f"/indicateurs?indicateur={IND}"))
    return rows[0] if rows and Decimal(str(rows[0]["valeur"])) == total else None


def feed(stack: Stack, cursor: int) -> list[dict]:
    """Every change after ``cursor``, page by page."""
    changes: list[dict] = []
    while True:
        page = get_json(
            stack.url("api", f"/indicateurs/changements?indicateur={IND}&depuis={cursor}")
        )
        if not page["changements"]:
            return changes
        changes += page["changements"]
        cursor = page["curseur"]


def committed_all(admin: AdminClient) -> bool | None:
    """True once the aggregator has committed every message of its topics."""
    lag = sum(sum(consumer_lag(admin, g, t).values()) for g, t in AGGREGATOR_GROUPS)
    return True if lag == 0 else None


def replace_database(lost: str, restored: str) -> None:
    """The restored database takes the lost one's name (the services'
    DATABASE_URL): what an operator does by pointing them at it."""
    allow_connections(lost, False)
    names = [psycopg.conninfo.conninfo_to_dict(u)["dbname"] for u in (lost, restored)]
    with psycopg.connect(with_database(lost, "postgres"), autocommit=True) as conn:
        for old, new in ((names[0], f"{names[0]}_lost"), (names[1], names[0])):
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(str(old)), sql.Identifier(str(new))
                )
            )


def test_a_backup_taken_under_load_restores_with_nothing_lost(
    tmp_path: Path, database_factory: Callable[[], str], server_state: Path
) -> None:
    posts, final = workload(IND, 2024, random.Random(IND), DEPARTEMENTS, posts=16, duplicated=0)
    total = Decimal(sum(final.values()))
    dump = tmp_path / "itte.dump"
    with own_stack(tmp_path / "stack", database_factory(), server_state) as stack:
        url = stack.env["DATABASE_URL"]
        admin = AdminClient({"bootstrap.servers": stack.env["KAFKA_BOOTSTRAP_SERVERS"]})
        cursor = get_json(stack.url("api", "/indicateurs/changements"))["curseur"]
        third = len(posts) // 3
        for body in posts[:third]:
            post_with_retry(stack, body)
        eventually(lambda: committed_all(admin), 60, "the first posts' offsets committed")
        # The backup while a producer pushes, then more after it.
        middle = posts[third : 2 * third]
        pushing = threading.Thread(target=lambda: [post_with_retry(stack, b) for b in middle])
        pushing.start()
        taken = stack.itte("sauvegarde", str(dump))
        pushing.join()
        for body in posts[2 * third :]:
            post_with_retry(stack, body)
        assert taken.returncode == 0, taken.stderr
        assert '"indicators.clean/0": -1001' not in taken.stdout, taken.stdout  # real offsets
        eventually(lambda: france(stack, total), 120, "every record applied")
        before = {c["curseur"] for c in feed(stack, cursor)}
        # The aggregator's offsets at the topics' ends: it re-reads only what
        # the restore sets it back to.
        eventually(lambda: committed_all(admin), 60, "the aggregator's offsets committed")

        # The database is lost: stop the aggregator, restore, point at it.
        stack.kill("aggregator")
        restored_url = with_database(url, f"{psycopg.conninfo.conninfo_to_dict(url)['dbname']}_r")
        done = stack.itte("restauration", str(dump), env={"DATABASE_URL": restored_url})
        assert done.returncode == 0, done.stderr
        assert "the aggregator resumes at" in done.stdout, done.stdout
        refused = stack.itte("restauration", str(dump), env={"DATABASE_URL": restored_url})
        assert refused.returncode == 1 and "restore into an empty one" in refused.stderr
        replace_database(url, restored_url)
        stack.start("aggregator")
        stack.ready("aggregator")

        # What came after the backup is applied again from the topics.
        row = eventually(lambda: france(stack, total), 120, "the restored totals")
        assert row["communes_renseignees"] == len(final)
        assert check(url).differences == []
        # The subscriber from before: every change in order, the last of each
        # territory what the API serves; none numbered as one it may have read.
        changes = feed(stack, cursor)
        numbers = [c["curseur"] for c in changes]
        assert numbers == sorted(set(numbers))
        last = {(c["niveau"], c["code"]): c for c in changes}
        assert Decimal(str(last[("france", "FR")]["valeur"])) == total
        # Those the restored database gave skip every number the lost one
        # could have given (a subscriber further on misses none of them).
        fresh = [n for n in numbers if n > max(before)]
        assert fresh and min(fresh) > max(before) + SKIPPED_CHANGE_NUMBERS // 2
