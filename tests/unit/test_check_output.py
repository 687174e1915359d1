"""What ``itte check`` prints of a difference: each side's fields by name."""

from __future__ import annotations

from decimal import Decimal

from services.aggregator.verify import described


def test_each_side_of_a_difference_is_told_by_its_fields() -> None:
    row = (Decimal(5), 1, Decimal(100), Decimal(20), 1, 2, 4)
    assert described(row) == (
        "valeur=5 nb_valeurs=1 numerateur=100 denominateur=20 replis=1 repli_annees=2 "
        "repli_carres=4"
    )
    assert described(None) == "none"
    assert described(("publiee", Decimal("2.5"))) == "valeur=2.5"
    assert described(("somme_epci", Decimal(22), 3, 3)) == "valeur=22 renseignes=3 total=3"
