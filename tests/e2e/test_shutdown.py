"""A clean stop (SIGTERM, as compose or Kubernetes send) of each service
during a load with corrections and duplicates: it exits within 10 s, and once
it is started again nothing is lost or counted twice."""

from __future__ import annotations

import random

import pytest

from itte.processes import SERVICES
from tests.chaos import run_round
from tests.e2e.stack import Stack


@pytest.mark.parametrize("service", SERVICES)
def test_sigterm_under_load_stops_quickly_and_loses_nothing(stack: Stack, service: str) -> None:
    number = 80 + SERVICES.index(service)
    result = run_round(stack, number, f"sigterm:{service}", random.Random(number))
    print(result)  # pytest -s shows the figures
    assert (result.lost, result.doubled, result.exact) == (0, 0, True), result
    assert result.stop_seconds is not None and result.stop_seconds < 10, result
