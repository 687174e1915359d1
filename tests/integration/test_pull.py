"""`itte pull` from a real SQL database (SQLite here), incrementally."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from common.kafka import BlockingProducer
from common.servers import Servers
from schemas import bulk
from schemas.raw import RawBatchHeader
from services.ingestor.handlers import BlockHandler
from services.ingestor.publisher import RawPublisher
from services.ingestor.pull import pull_once
from tests.integration.test_kafka import read_all

QUERY = "SELECT codgeo, variable, annee, valeur, maj FROM source WHERE maj > :cursor ORDER BY maj"


def test_pull_reads_only_new_rows_and_keeps_its_cursor(servers: Servers, tmp_path: Path):
    source = tmp_path / "source.db"
    with sqlite3.connect(source) as db:
        db.execute(
            "CREATE TABLE source (codgeo TEXT, variable TEXT, annee INT, valeur REAL, maj TEXT)"
        )
        db.executemany(
            "INSERT INTO source VALUES (?, ?, ?, ?, ?)",
            [
                ("33063", "pull_co2", 2024, 1.5, "2026-01-01 10:00:00"),
                ("74010", "pull_co2", 2024, 2.5, "2026-01-02 10:00:00"),
                (None, "pull_co2", 2024, 9.0, "2026-01-02 11:00:00"),
            ],
        )  # no commune: rejected
    publisher = RawPublisher(BlockingProducer(servers.kafka_bootstrap_servers), 500)
    state = tmp_path / "pull-test.json"
    options = {
        "url": f"sqlite:///{source}",
        "query": QUERY,
        "cursor_column": "maj",
        "state": state,
        "since": "1970-01-01",
        "producer": "sgbd",
    }

    first = pull_once(BlockHandler(publisher), **options)
    assert (first.read, first.published, first.rejected) == (3, 2, 1)
    assert json.loads(state.read_text()) == {"cursor": "2026-01-02 11:00:00"}
    assert pull_once(BlockHandler(publisher), **options).read == 0  # nothing new

    with sqlite3.connect(source) as db:
        db.execute(
            "INSERT INTO source VALUES ('2A004', 'pull_co2', 2024, 4, '2026-01-03 08:00:00')"
        )
    third = pull_once(BlockHandler(publisher), **options)
    assert (third.read, third.published) == (1, 1)

    sent = [  # on the bulk lane, as rows of text
        r
        for m in read_all(servers.kafka_bootstrap_servers, bulk.RAW_TOPIC)
        if bulk.header_of(t := bulk.read_table(m.value()), RawBatchHeader).source
        == "pull:pull-test"
        for r in t.to_pylist()
    ]
    assert sorted((r["commune"], r["valeur"]) for r in sent) == [  # partitions: any order
        ("2A004", "4.0"),
        ("33063", "1.5"),
        ("74010", "2.5"),
    ]
