from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.pii import HASHED, PREFIX, PiiHasher


def test_keyed_hash_is_hmac_sha256_of_the_normalized_value() -> None:
    hasher = PiiHasher.create(b"s" * 32, ["nom"])
    expected = hmac.new(b"s" * 32, b"jeanne martin", hashlib.sha256).hexdigest()
    assert hasher.digest("  Jeanne   MARTIN ") == expected
    assert hasher.digest("Jeanne Martin") != hashlib.sha256(b"jeanne martin").hexdigest()


def test_another_key_gives_other_hashes_and_another_key_id() -> None:
    a = PiiHasher.create(b"a" * 32, ["nom"])
    b = PiiHasher.create(b"b" * 32, ["nom"])
    assert a.digest("x") != b.digest("x")
    assert a.key_id != b.key_id


def test_only_declared_non_empty_fields_are_hashed() -> None:
    hasher = PiiHasher.create(b"a" * 32, ["nom", " email "])
    assert set(hasher.hash_fields({"nom": "x", "email": "", "tel": "06"})) == {"nom"}


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        PiiHasher.create(b"short", ["nom"])


HASHER = PiiHasher.create(b"k" * 32, ["nom_declarant", "email"])


@given(st.dictionaries(st.sampled_from(["nom_declarant", "email", "autre"]), st.text(), min_size=1))
def test_hiding_is_idempotent_and_gives_the_cleaner_the_same_hashes(record: dict) -> None:
    hidden = HASHER.hide(record)
    assert HASHER.hide(hidden) == hidden  # hashed at the edge: not hashed again
    assert HASHER.hash_fields(hidden) == HASHER.hash_fields(record)
    for name, value in record.items():
        if name in HASHER.fields and value:
            assert HASHED.fullmatch(hidden[name])
            assert hidden[name] == f"{PREFIX}{HASHER.digest(value)}"
        else:
            assert hidden[name] == value


def test_a_lone_surrogate_still_hashes() -> None:
    assert HASHED.fullmatch(HASHER.hide({"email": "a\ud800b"})["email"])
