"""Random histories of values, corrections, duplicates and reorderings, pushed
through the real services: the aggregates equal a recomputation from scratch
by tests/oracle.py (not by the aggregator's code), for every aggregation kind."""

from __future__ import annotations

import itertools
import json
import random
from decimal import Decimal

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from common import catalogue
from common.referential import ancestors, load
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.verify import check
from tests import oracle
from tests.conftest import TEST_CATALOGUE
from tests.e2e.stack import Stack, eventually, post
from tests.strategies import values_within_bounds

# 01340 is a former code of 01015 (merged): additive kinds only.
COMMUNES = ["74010", "74042", "74164", "01010", "74029", "22016", "33063", "01015", "01340"]
KINDS = ["pop", "co2", "equipee", "tmax", "tmin", "part", "local"]
ADDITIVE = {"pop", "co2", "equipee"}
SOUS_CHAMPS = ["total", "moins de 25 ans"]
# Each example uses two years of its own, then skips two: a population stands
# in for up to two later years (co2_par_hab_repli), never another example's.
YEARS = itertools.count(1900, 4)
RULES = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
ANCESTORS = ancestors(load())

histories = st.lists(
    st.tuples(
        st.sampled_from(COMMUNES),
        st.sampled_from(KINDS),
        st.one_of(
            st.none(),
            st.decimals(-999, 999, places=1, allow_nan=False),
            values_within_bounds,
        ),
        st.sampled_from(SOUS_CHAMPS),
        st.integers(0, 1),  # which of the example's two years
    ),
    min_size=1,
    max_size=50,
).map(lambda h: [e for e in h if e[0] != "01340" or e[1] in ADDITIVE])


def records_of(history: list[tuple], years: tuple[int, int], rng: random.Random) -> list[dict]:
    """The history's records, in ``years``, each with a distinct version (a total order)."""
    versions = rng.sample(range(1, 10 * len(history) + 2), len(history))
    return [
        {
            "indicateur": ind,
            "commune": c,
            "sous_champ": sous_champ,
            "annee": years[which],
            "version": v,
            "valeur": None if value is None else str(value),
        }
        for (c, ind, value, sous_champ, which), v in zip(history, versions, strict=True)
    ]


def expected(events: list[dict]) -> dict:
    """Every record was sent with a distinct explicit version by one producer."""
    ref = load()
    received = [
        CleanObservation(
            record_id=str(e["version"]),
            indicateur=e["indicateur"],
            sous_champ=e["sous_champ"],
            annee=e["annee"],
            commune=ref.former_codes.get(e["commune"], e["commune"]),
            commune_source=e["commune"],
            valeur=None if e["valeur"] is None else Decimal(e["valeur"]),
            version=e["version"],
            version_explicite=True,
            producteur="e2e",
        )
        for e in events
    ]
    kept = oracle.winners([received])
    return oracle.aggregates(kept.values(), ANCESTORS.__getitem__, RULES)


def held(database_url: str, years: tuple[int, int]) -> dict:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, valeur, nb_valeurs, numerateur,"
            " denominateur, replis, repli_annees, repli_carres FROM aggregates"
            " WHERE annee = ANY(%s)",
            (list(years),),
        )
        return {tuple(r[:5]): tuple(r[5:]) for r in rows if any(r[5:])}


def converge(database_url: str, years: tuple[int, int], truth: dict, timeout: float) -> None:
    """Until the aggregates of ``years`` are ``truth``; else fail saying which
    rows are missing, extra or different (a lost record and a slow one look
    alike from outside)."""
    try:
        eventually(lambda: held(database_url, years) == truth or None, timeout, f"{years}")
    except AssertionError:
        now = held(database_url, years)
        missing = sorted(k for k in truth if k not in now)
        extra = sorted(k for k in now if k not in truth)
        wrong = sorted((k, truth[k], now[k]) for k in truth if k in now and now[k] != truth[k])
        raise AssertionError(
            f"aggregates of {years} after {timeout:.0f} s: {len(truth)} expected rows, "
            f"{len(missing)} missing {missing[:5]}, {len(extra)} extra {extra[:5]}, "
            f"{len(wrong)} different (key, expected, held) {wrong[:5]}"
        ) from None


@settings(max_examples=6, deadline=None)
@given(histories, st.integers(1, 5), st.randoms(use_true_random=False))
def test_random_histories_through_the_services(stack: Stack, history, posts, rng: random.Random):
    year = next(YEARS)
    years = (year, year + 1)
    events = records_of(history, years, rng)
    if not events:
        return
    sent = events + rng.sample(events, len(events) // 2)  # duplicates
    rng.shuffle(sent)  # any arrival order
    size = -(-len(sent) // posts)
    for start in range(0, len(sent), size):
        status, answer = post(
            stack.url("ingestor", "/observations"), json.dumps(sent[start : start + size]).encode()
        )
        assert status == 202, answer
    truth = expected(events)
    url = stack.env["DATABASE_URL"]
    converge(url, years, truth, 60)
    assert check(url).differences == []
