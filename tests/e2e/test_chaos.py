"""The short chaos run of `make test`: a killed aggregator, then Postgres
cutting every connection, each during a load with corrections and
duplicates. The full run (`make chaos`) writes RELIABILITY.md."""

from __future__ import annotations

import random

import pytest

from tests.chaos import run_round
from tests.e2e.stack import Stack


@pytest.mark.parametrize(("number", "fault"), [(90, "aggregator"), (91, "postgres")])
def test_a_fault_during_a_load_loses_nothing_and_doubles_nothing(
    stack: Stack, number: int, fault: str
) -> None:
    result = run_round(stack, number, fault, random.Random(number))
    assert (result.lost, result.doubled, result.exact) == (0, 0, True), result
    assert result.communes > 1000 and result.records > result.communes
