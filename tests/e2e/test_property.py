"""Random histories of values, corrections, duplicates and reorderings, pushed
through the real services: the aggregates equal a recomputation from scratch,
for every aggregation kind."""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from itte import catalogue
from itte.referential import load
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import ancestors_from
from services.aggregator.verify import check
from tests.conftest import TEST_CATALOGUE
from tests.e2e.stack import Stack, eventually, post
from tests.unit.fakes import MemoryAggregates

COMMUNES = ["74010", "74042", "74164", "01010", "74029", "22016", "33063"]
KINDS = ["pop", "co2", "equipee", "tmax", "tmin", "part", "local"]
YEARS = itertools.count(1900)
RULES = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
ANCESTORS = ancestors_from(load())

histories = st.lists(
    st.tuples(
        st.sampled_from(COMMUNES),
        st.sampled_from(KINDS),
        st.one_of(st.none(), st.decimals(0, 999, places=1, allow_nan=False)),
    ),
    min_size=1,
    max_size=50,
)


def expected(annee: int, events: list[dict]) -> dict:
    """What the aggregates must be: the in-memory model of the README's rules."""
    model = MemoryAggregates(ANCESTORS.__getitem__, RULES)
    model.apply(
        [
            CleanObservation(
                record_id=str(e["version"]),
                indicateur=e["indicateur"],
                annee=annee,
                commune=e["commune"],
                commune_source=e["commune"],
                valeur=None if e["valeur"] is None else Decimal(e["valeur"]),
                version=e["version"],
            )
            for e in events
        ]
    )
    return model.nonempty(model.recompute())


def held(database_url: str, annee: int) -> dict:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, numerateur,"
            " denominateur FROM aggregates WHERE annee = %s",
            (annee,),
        )
        return {tuple(r[:5]): tuple(r[5:]) for r in rows if any(r[5:])}


@settings(max_examples=6, deadline=None)
@given(histories, st.integers(1, 5), st.randoms(use_true_random=False))
def test_random_histories_through_the_services(stack: Stack, history, posts, rng: random.Random):
    annee = next(YEARS)
    versions = rng.sample(range(1, 10 * len(history) + 1), len(history))  # distinct: a total order
    events = [
        {
            "indicateur": ind,
            "commune": c,
            "annee": annee,
            "version": v,
            "valeur": None if value is None else str(value),
        }
        for (c, ind, value), v in zip(history, versions, strict=True)
    ]
    sent = events + rng.sample(events, len(events) // 2)  # duplicates
    rng.shuffle(sent)  # any arrival order
    size = -(-len(sent) // posts)
    for start in range(0, len(sent), size):
        status, _ = post(
            stack.url("ingestor", "/observations"), json.dumps(sent[start : start + size]).encode()
        )
        assert status == 202
    truth = expected(annee, events)
    url = stack.env["DATABASE_URL"]
    eventually(lambda: held(url, annee) == truth or None, 60, f"aggregates of {annee}")
    assert check(url).differences == []
