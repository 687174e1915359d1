"""The change feed read by cursor: every committed change once, oldest first,
at once (the relay publishing to Kafka is not waited for); corrections come
again with a new cursor; filters skip the others without reading them again;
a page size of 2 misses nothing."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app, read_only_engine
from services.api.event_stream import Refusal, Slot, Streams
from services.api.routes.changements import resume_at

FEED = "/indicateurs/changements"


@pytest.fixture
def api(database_url: str) -> TestClient:
    return TestClient(create_app(read_only_engine(database_url, 2)))


def read_all(api: TestClient, after: int, **params: object) -> tuple[list[dict], int]:
    page = api.get(FEED, params={"depuis": after, **params}).json()
    return page["changements"], page["curseur"]


def read_in_pages(api: TestClient, limit: int) -> tuple[list[dict], int]:
    """Every change from 0, ``limit`` a page, until a page comes back empty."""
    pages, at = [], 0
    while True:
        page, at = read_all(api, at, limit=limit)
        if not page:
            return pages, at
        pages += page


def test_each_change_comes_once_in_order_and_a_correction_comes_again(
    store, obs, api: TestClient
) -> None:
    store.apply([obs("33063", "5"), obs("74010", "2")])
    changes, cursor = read_all(api, 0)
    keys = [(c["niveau"], c["code"]) for c in changes]
    assert len(keys) == len(set(keys)) == 9  # 2 communes, EPCI, départements, régions; France
    assert [c["curseur"] for c in changes] == sorted(c["curseur"] for c in changes)
    assert next(c for c in changes if c["niveau"] == "france")["valeur"] == 7
    assert read_all(api, cursor) == ([], cursor)  # nothing new: same cursor

    store.apply([obs("33063", "8", 2)])  # a correction in the Gironde: in the feed at once
    again, after = read_all(api, cursor)
    assert {(c["niveau"], c["code"], c["valeur"]) for c in again} == {
        ("commune", "33063", 8),
        ("epci", "243300316", 8),
        ("departement", "33", 8),
        ("region", "75", 8),
        ("france", "FR", 10),
    }
    assert min(c["curseur"] for c in again) > cursor and after == max(c["curseur"] for c in again)


def test_filters_skip_the_other_changes_once_and_small_pages_miss_nothing(
    store, obs, api: TestClient
) -> None:
    store.apply([obs(code, "1") for code in ("33063", "33281", "74010", "01015", "75056")])
    mine, cursor = read_all(api, 0, departement="33")
    assert [(c["niveau"], c["code"]) for c in mine] == [("departement", "33")]
    everything, last = read_all(api, 0)
    assert cursor == last  # past every change, those of other places too
    pages, _ = read_in_pages(api, 2)
    assert pages == everything


def test_a_row_deleted_by_hand_neither_shows_nor_stops_small_pages(
    store, obs, api: TestClient, database_url: str
) -> None:
    """Its entry stays in the change log (until ``itte rebuild``): a page
    holding it counts it, so the cursor moves on and nothing after it is
    skipped; as a short page, it would have sent the reader past the rest."""
    store.apply([obs(code, "1") for code in ("33063", "33281", "74010")])
    everything, last = read_all(api, 0)
    gone = everything[1]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "DELETE FROM aggregates WHERE niveau = %s AND code = %s",
            (gone["niveau"], gone["code"]),
        )
    pages, at = read_in_pages(api, 2)
    assert pages == [c for c in everything if c != gone] and len(pages) == len(everything) - 1
    assert at == last


def test_a_bad_cursor_is_422(api: TestClient) -> None:
    for bad in ("-1", "x", str(2**63)):
        assert api.get(FEED, params={"depuis": bad}).status_code == 422


def test_streams_beyond_the_limit_are_503_and_each_end_frees_its_place(database_url: str) -> None:
    full = TestClient(create_app(read_only_engine(database_url, 2), max_streams=0))
    refused = full.get("/indicateurs/flux")
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "10")
    streams = Streams(2)
    second = [streams.admit("a"), streams.admit("b")][1]
    assert streams.admit("c") is Refusal.FULL
    assert isinstance(second, Slot)
    streams.done(second)
    assert isinstance(streams.admit("c"), Slot) and streams.open == 2


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def test_stream_places_are_shared_between_addresses_the_idlest_giving_way() -> None:
    streams = Streams(4, per_client=3, clock=Clock())
    greedy = [streams.admit("10.0.0.1") for _ in range(3)]
    assert streams.admit("10.0.0.1") is Refusal.CLIENT_FULL  # its own cap
    assert all(isinstance(s, Slot) for s in greedy)
    streams.sent(greedy[0])  # the first carried an event since: the second is the idlest
    assert isinstance(streams.admit("10.0.0.2"), Slot)  # the fourth place, free
    third = streams.admit("10.0.0.3")  # full: the busiest gives way
    assert isinstance(third, Slot) and [s.dropped for s in greedy] == [False, True, False]
    assert streams.open == 4
    assert isinstance(streams.admit("10.0.0.4"), Slot)  # 2, 1, 1, 0: once more
    assert sum(s.dropped for s in greedy) == 2 and streams.open == 4
    # One each: taking a place would not be fairer, nobody gives way.
    assert streams.admit("10.0.0.5") is Refusal.FULL
    assert streams.admit("10.0.0.1") is Refusal.FULL  # the reconnect of a dropped one


def test_a_reconnect_resumes_after_its_last_event_id() -> None:
    assert resume_at("42", None) == 42 and resume_at("42", 7) == 42
    assert resume_at(None, 7) == 7 and resume_at(None, None) is None
    for junk in ("", "-1", "4 2", "١٢", "x" * 50):
        assert resume_at(junk, 7) == 7  # not a cursor: ignored
    assert resume_at("0" * 100_000 + "42", None) == 42
    assert resume_at(str(2**63 - 1), None) == 2**63 - 1
    for past in (str(2**63), "9" * 40, "9" * 5_000, "1" * 1_000_000):
        with pytest.raises(ValueError, match="past any cursor"):
            resume_at(past, 7)


def test_a_last_event_id_of_any_length_is_a_400_not_a_500(api: TestClient) -> None:
    for past in (str(2**63), "9" * 5_000, "7" * 200_000):
        answer = api.get("/indicateurs/flux", headers={"Last-Event-ID": past})
        assert answer.status_code == 400, answer.text
        assert "past any cursor" in answer.json()["detail"]
