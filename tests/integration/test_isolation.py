"""A record Postgres refuses costs only itself: the batch around it commits."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from common.errors import isolate
from schemas.clean import CleanObservation
from services.aggregator.store import AggregateStore

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
