"""Every aggregator replaces the catalogue at its start; several started at
once (``ITTE_WORKERS``) must all start, and leave the catalogue whole."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from common import catalogue, db
from tests.conftest import TEST_CATALOGUE

STARTS = 8


def test_aggregators_starting_together_all_load_the_catalogue(database_url: str) -> None:
    shipped = catalogue.load(TEST_CATALOGUE)
    engine = db.make_engine(database_url, pool_size=STARTS)
    together = threading.Barrier(STARTS)

    def start(_: int) -> None:
        together.wait()
        db.load_catalogue(engine, shipped)

    with ThreadPoolExecutor(STARTS) as pool:
        list(pool.map(start, range(STARTS)))  # re-raises the first failure

    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM indicators ORDER BY id")).scalars().all()
        objectives = conn.execute(text("SELECT count(*) FROM objectives")).scalar_one()
    engine.dispose()
    assert ids == sorted(shipped.indicateurs)
    assert objectives == len(shipped.objectifs)


def test_the_shipped_catalogue_serves_its_sub_field_aliases(database_url: str) -> None:
    from fastapi.testclient import TestClient

    from services.api.app import create_app, read_only_engine

    engine = db.make_engine(database_url)
    db.load_catalogue(engine, catalogue.load())  # the shipped one
    engine.dispose()
    listed = TestClient(create_app(read_only_engine(database_url, 1))).get("/indicateurs/catalogue")
    taux = next(i for i in listed.json() if i["id"] == "taux_pvt")
    assert taux["alias_sous_champs"]["75plus"] == "75_ans_et_plus"
    assert set(taux["alias_sous_champs"].values()) <= set(taux["sous_champs"])
