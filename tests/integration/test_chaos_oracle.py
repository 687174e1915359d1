"""The chaos run's verifier (tests/chaos.py) compares every commune and
every aggregate with the independent oracle, and sees a wrong one."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from tests.chaos import INDICATOR, unlike_the_oracle


def test_the_chaos_verifier_finds_any_row_unlike_the_oracle(store, obs, database_url) -> None:
    final = {"33063": Decimal("1.5"), "33281": Decimal(2), "74010": Decimal("0.25")}
    store.apply(
        [obs(code, str(v), indicateur=INDICATOR, annee=1999, rid=code) for code, v in final.items()]
    )
    assert unlike_the_oracle(database_url, 1999, final) == []
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE aggregates SET valeur = valeur + 1 WHERE indicateur = %s "
            "AND niveau = 'departement' AND code = '33'",
            (INDICATOR,),
        )
    assert unlike_the_oracle(database_url, 1999, final) == [
        (INDICATOR, "total", 1999, "departement", "33")
    ]
    # A commune the producer meant, missing from the results, is seen too.
    assert (INDICATOR, "total", 1999, "commune", "29019") in unlike_the_oracle(
        database_url, 1999, {**final, "29019": Decimal(7)}
    )
