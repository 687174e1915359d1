"""Hypothesis strategies shared by the tiers."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from schemas import limits

_LARGEST = 10 ** (limits.MAX_INTEGER_DIGITS + limits.MAX_DECIMAL_PLACES) - 1

# Any value the bounds accept, up to the largest ones, negative too. Built
# from integers (st.decimals(places=...) may round one step past its bounds),
# as text: Decimal arithmetic would round to the context's 28 digits.
values_within_bounds = st.one_of(
    st.integers(-_LARGEST, _LARGEST),
    st.sampled_from([_LARGEST, -_LARGEST, 1, -1, 0]),
).map(lambda n: Decimal(f"{n}E-{limits.MAX_DECIMAL_PLACES}"))  # exact, no context
