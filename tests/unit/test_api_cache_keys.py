"""What a cached answer shows, read from its query string: too much is safe
(the answer is computed again sooner), too little would serve stale data."""

from __future__ import annotations

import pytest

from services.api.cache import CATALOGUE, ResponseCache, what_it_shows


@pytest.mark.parametrize(
    ("path", "query", "shows"),
    [
        ("/indicateurs", "indicateur=pop&annee=2024&departement=33", {("pop", 2024)}),
        ("/indicateurs", "indicateur=pop", {("pop", None)}),
        ("/indicateurs", "indicateur=conso%20%C3%A9lec&annee=2024", {("conso élec", 2024)}),
        ("/indicateurs", "departement=33&annee=2024", None),  # every indicator
        ("/indicateurs", "indicateur=pop&annee=2023&annee=2024", None),  # which year wins?
        ("/indicateurs", "indicateur=pop&annee=02024", None),
        ("/indicateurs", "indicateur=pop&annee=x", None),
        ("/indicateurs", "indicateur=", None),
        ("/indicateurs", "indicateur=a&indicateur=b", None),
        (
            "/typologies",
            "indicateurs=pop,co2:moins_30_ans&annee=2024&niveau=epci",
            {("pop", 2024), ("co2", 2024)},
        ),
        ("/indicateurs/catalogue", "", CATALOGUE),
    ],
)
def test_what_an_answer_shows(path: str, query: str, shows: set | None) -> None:
    assert what_it_shows(path, query) == (None if shows is None else frozenset(shows))


def test_a_change_moves_the_stamps_of_what_shows_it_only() -> None:
    cache = ResponseCache(1 << 20)
    pop_2024, pop, co2 = (
        frozenset({("pop", 2024)}),
        frozenset({("pop", None)}),
        frozenset({("co2", 2024)}),
    )
    before = {s: cache.stamp(s) for s in (pop_2024, pop, co2, None, CATALOGUE)}
    cache.changed("pop", 2024)
    moved = {s for s in before if cache.stamp(s) != before[s]}
    assert moved == {pop_2024, pop, None}
    before = {s: cache.stamp(s) for s in (pop_2024, pop, co2, None, CATALOGUE)}
    cache.changed("pop", 2023)
    assert {s for s in before if cache.stamp(s) != before[s]} == {pop, None}
    before = {s: cache.stamp(s) for s in (pop_2024, co2, CATALOGUE)}
    cache.invalidate()  # a table named: anything
    assert all(cache.stamp(s) != before[s] for s in before)
