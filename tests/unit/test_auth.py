from __future__ import annotations

import json

import pytest

from services.ingestor.auth import Producers, hash_token, new_token


def test_tokens_identify_their_producer() -> None:
    token = new_token()
    producers = Producers.parse(
        json.dumps({"ademe": hash_token(token), "dreal": hash_token(new_token())})
    )
    assert producers.required
    assert producers.identify(f"Bearer {token}") == "ademe"
    assert producers.identify(f"bearer   {token} ") == "ademe"
    assert producers.identify("Bearer nope") is None
    assert producers.identify(token) is None  # no scheme
    assert producers.identify(None) is None


def test_configuration_holds_hashes_only() -> None:
    with pytest.raises(ValueError, match="sha256"):
        Producers.parse(json.dumps({"ademe": "a-clear-token"}))
    assert not Producers.parse(None).required
