from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from common import catalogue
from common.referential import load
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.store import AggregateStore
from tests.conftest import TEST_CATALOGUE

pytestmark = pytest.mark.integration


@pytest.fixture
def store(database_url: str) -> AggregateStore:
    rules = AggregationRules.from_catalogue(catalogue.load(TEST_CATALOGUE))
    s = AggregateStore(database_url, load(), rules)
    yield s
    s.close()


@pytest.fixture
def obs() -> Callable[..., CleanObservation]:
    def make(
        commune: str,
        valeur: str | None,
        version: int = 1,
        *,
        source: str | None = None,
        indicateur: str = "pop",
        annee: int = 2024,
        rid: str = "r",
    ) -> CleanObservation:
        return CleanObservation(
            record_id=rid,
            indicateur=indicateur,
            annee=annee,
            commune=commune,
            commune_source=source or commune,
            valeur=None if valeur is None else Decimal(valeur),
            marqueur="s" if valeur is None else None,
            version=version,
            unite="u",
        )

    return make
