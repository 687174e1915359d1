"""Change numbers become visible in order, with two aggregators writing at
once: a reader that has seen number N never later finds a row numbered at or
below N that it has not seen. Were it not so, a subscriber following the
feed by cursor, and the outbox relay with its own cursor, would skip it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import closing

import psycopg

from common import catalogue, referential
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from tests.conftest import TEST_CATALOGUE
from tests.integration.test_relay_beside_batches import COMMUNES

# Two aggregators on disjoint communes; their département, EPCI and région
# differ, France is shared: every pair of batches meets on its row.
GIRONDE, HAUTE_SAVOIE = COMMUNES[:4], COMMUNES[4:]
Key = tuple[str, str, int, str, str]


def test_two_writers_never_make_a_number_visible_after_a_higher_one(
    obs: Callable[..., CleanObservation], database_url: str
) -> None:
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    ref = referential.load()
    failures: list[BaseException] = []

    def write(communes: list[str]) -> None:
        try:
            with closing(AggregateStore(database_url, ref, rules)) as store:
                for version in range(1, 151):
                    store.apply(
                        [
                            obs(c, str(version + i), version, rid=f"{version}:{c}")
                            for i, c in enumerate(communes)
                        ]
                    )
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(c,)) for c in (GIRONDE, HAUTE_SAVOIE)]
    seen: set[tuple[Key, int]] = set()
    late: list[tuple[Key, int, int]] = []  # key, its number, the cursor already past it
    cursor = reads = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        for writer in writers:
            writer.start()
        while True:
            finished = not any(writer.is_alive() for writer in writers)
            # As the relay and the change feed read: through the log.
            for *key, seq in conn.execute(
                "SELECT l.indicateur, l.sous_champ, l.annee, l.niveau, l.code, l.change_seq"
                " FROM aggregate_change_log l JOIN aggregates a"
                " ON (a.indicateur, a.sous_champ, a.annee, a.niveau, a.code)"
                " = (l.indicateur, l.sous_champ, l.annee, l.niveau, l.code)"
                " AND a.change_seq = l.change_seq"
                " WHERE l.change_seq > %s ORDER BY l.change_seq",
                [cursor],
            ):
                seen.add((tuple(key), seq))
                cursor = seq
            reads += 1
            for *key, seq in conn.execute(
                "SELECT indicateur, sous_champ, annee, niveau, code, change_seq FROM aggregates"
                " WHERE change_seq <= %s",
                [cursor],
            ):
                if (tuple(key), seq) not in seen:
                    late.append((tuple(key), seq, cursor))
            if finished:  # and read once more after the last commit
                break
    for writer in writers:
        writer.join()
    assert failures == []
    assert reads > 10  # the reader ran while the writers wrote
    assert late == []
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT change_seq) FROM aggregates"
        ).fetchone()
    assert rows == (len(GIRONDE) + len(HAUTE_SAVOIE) + 2 + 2 + 2 + 1,) * 2
    assert_log_matches(database_url)


def assert_log_matches(database_url: str) -> None:
    """The change log holds one entry for each numbered aggregate, with its
    number, and nothing else (migration 0010): each change deleted the entry
    of the number it replaced."""
    with psycopg.connect(database_url) as conn:
        numbered = conn.execute(
            "SELECT change_seq, indicateur, sous_champ, annee, niveau, code FROM aggregates"
            " WHERE change_seq IS NOT NULL ORDER BY change_seq"
        ).fetchall()
        logged = conn.execute(
            "SELECT change_seq, indicateur, sous_champ, annee, niveau, code"
            " FROM aggregate_change_log ORDER BY change_seq"
        ).fetchall()
    assert numbered, "nothing numbered: nothing checked"
    assert logged == numbered
