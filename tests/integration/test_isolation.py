"""A record Postgres refuses costs only itself: the batch around it commits."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import isolate
from schemas import limits
from schemas.clean import CleanObservation
from services.aggregator.handlers import BatchHandler
from services.aggregator.store import AggregateStore
from tests.strategies import values_within_bounds
from tests.unit.fakes import MemoryDeadLetters, MemoryProgress

# 3,000 characters that do not compress (a repeated one would fit once compressed).
INCOMPRESSIBLE = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))


def record(i: int, *, checked: bool = True, **overrides: object) -> CleanObservation:
    """``checked=False``: built past the schema's bounds, which refuse such a
    record at decoding now; the store's isolation is the line behind them."""
    fields: dict = {
        "record_id": f"b:{i:06d}",
        "indicateur": "pop",
        "annee": 2024,
        "commune": "33063",
        "commune_source": "33063",
        "valeur": Decimal(i),
        "version": 1,
        "sous_champ": f"s{i}",
    }
    build = CleanObservation if checked else CleanObservation.model_construct
    return build(**{**fields, **overrides})


def test_poison_records_are_isolated_and_the_others_commit(
    store: AggregateStore, database_url: str
) -> None:
    poison = {
        3: record(3, checked=False, sous_champ=INCOMPRESSIBLE),  # an index row too big: 54000
        7: record(7, checked=False, unite="kg\x00"),  # a NUL: psycopg refuses it
        11: record(11, valeur=Decimal("1e999999")),  # beyond NUMERIC: 22003
    }
    batch = [poison.get(i, record(i)) for i in range(16)]
    done, refused = isolate(store.apply, batch)
    assert sorted(r.record_id for r, _ in refused) == sorted(p.record_id for p in poison.values())
    assert all(isinstance(exc, psycopg.Error | ArithmeticError) for _, exc in refused)
    with psycopg.connect(database_url) as conn:
        stored = {
            r[0] for r in conn.execute("SELECT record_id FROM observations WHERE commune = '33063'")
        }
        total = conn.execute(
            "SELECT sum(valeur) FROM aggregates WHERE niveau = 'france' AND indicateur = 'pop'"
        ).fetchone()
    assert stored == {f"b:{i:06d}" for i in range(16) if i not in poison}
    assert total == (Decimal(sum(i for i in range(16) if i not in poison)),)
    assert sum(result.written for result in done) == 13
    # A replay of the whole batch changes nothing and refuses the same records.
    _, again = isolate(store.apply, batch)
    assert len(again) == 3


# Any record the clean schema accepts, at its bounds: Postgres and the
# aggregator's arithmetic must refuse it alone (a dead letter) or take it,
# never stop the batch. Texts are any Unicode Postgres holds (4-byte
# characters at the longest), numbers at every magnitude a Decimal takes.
def _text(most: int) -> st.SearchStrategy[str]:
    any_char = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
    return st.text(any_char, max_size=most) | st.just("\U0001d518" * most)


BIGINT = st.integers(limits.BIGINT_MIN, limits.BIGINT_MAX) | st.sampled_from(
    [limits.BIGINT_MIN, limits.BIGINT_MAX, 0, -1]
)
clean_fields = st.fixed_dictionaries(
    {},
    optional={
        "indicateur": _text(limits.MAX_KEY_CHARS).filter(str.strip),
        "sous_champ": _text(limits.MAX_KEY_CHARS),
        "annee": st.integers(limits.YEAR_MIN, limits.YEAR_MAX),
        "commune": st.sampled_from(["33063", "2A004", "97411", "99999"]) | _text(10),
        "valeur": st.none()
        | st.decimals(allow_nan=False, allow_infinity=False).map(str)
        | values_within_bounds.map(str),
        "unite": st.none() | _text(limits.MAX_TEXT_CHARS),
        "libelle_indicateur": st.none() | _text(limits.MAX_TEXT_CHARS),
        "version": BIGINT,
        "version_explicite": st.booleans(),
        "recu": BIGINT,
        "pii": st.dictionaries(  # keyed hashes only (schemas/clean.py PiiHash)
            _text(limits.MAX_KEY_CHARS),
            st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
            max_size=2,
        ),
        "producteur": st.none() | _text(limits.MAX_KEY_CHARS),
    },
)
EXAMPLES = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(clean_fields, min_size=1, max_size=4))
def test_any_record_the_clean_schema_accepts_costs_at_most_itself(
    store: AggregateStore, database_url: str, overrides: list[dict[str, Any]]
) -> None:
    n = next(EXAMPLES)
    good = record(0, sous_champ=f"good-{n}", valeur=Decimal(n)).model_dump(mode="json")
    odd = [
        {**record(i + 1, sous_champ=f"odd-{n}").model_dump(mode="json"), **o}
        for i, o in enumerate(overrides)
    ]
    letters = MemoryDeadLetters()
    batches = BatchHandler(store, letters, MemoryProgress())
    value = json.dumps({"batch_id": f"h{n}", "records": [*odd, good]}).encode()
    outcome = batches.handle([value])  # never raises for a record's sake
    assert outcome.records + outcome.dead.get("invalid_schema", 0) == len(odd) + 1
    assert all(letter.reason and letter.detail for letter in letters.sent)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT valeur FROM observations WHERE sous_champ = %s", (f"good-{n}",)
        ).fetchone()
    assert row == (Decimal(n),)
