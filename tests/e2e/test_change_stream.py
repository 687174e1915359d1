"""Following the changes live (Server-Sent Events) across an API restart: the
client reconnects with Last-Event-ID and gets every change published while
the API was down, none twice, and ends with exactly the API's rows."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from tests.e2e.stack import Stack, get_json, push_values

IND = "e2e_flux"
LEVELS = ("commune", "epci", "departement", "region", "france")


def events(stack: Stack, last_id: str | None, seconds: float = 60) -> Iterator[dict[str, Any]]:
    """Events of /indicateurs/flux for IND, from the start or after ``last_id``."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports["api"], timeout=seconds)
    headers = {"Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    connection.request(
        "GET", "/indicateurs/flux?" + urlencode({"indicateur": IND, "depuis": 0}), headers=headers
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()
    event: dict[str, Any] = {}
    try:
        while line := response.readline():
            text = line.decode().rstrip("\r\n")
            if not text:
                if "id" in event:
                    yield event
                event = {}
            elif not text.startswith(":"):
                field, _, value = text.partition(": ")
                event[field] = value
    finally:
        connection.close()


def read_until(
    stack: Stack, stream: Iterator[dict[str, Any]], seen: list[dict], france: int
) -> None:
    """Read events into ``seen`` until France is at ``france``, then on to
    the feed's cursor at that moment (the other levels of the same change
    may be numbered after France)."""
    deadline, target = time.monotonic() + 60, None
    for event in stream:
        seen.append(event)
        if event["event"] == "changement":
            row = json.loads(event["data"])
            if row["niveau"] == "france" and row["valeur"] == france:
                feed = get_json(stack.url("api", f"/indicateurs/changements?indicateur={IND}"))
                target = feed["curseur"]
        if target is not None and int(event["id"]) >= target:
            return
        assert time.monotonic() < deadline, "France never reached its value"


def test_a_reconnecting_subscriber_misses_nothing_and_sees_nothing_twice(stack: Stack) -> None:
    first = {"33063": 10, "33281": 20, "74010": 30}
    second = {"33063": 11, "01015": 40, "2A004": 50}  # a correction and two new communes
    seen: list[dict] = []
    stream = events(stack, None)
    push_values(stack, IND, first, 1)
    read_until(stack, stream, seen, sum(first.values()))
    stream.close()

    stack.kill("api")
    push_values(stack, IND, second, 2)  # published while no API runs
    stack.start("api")
    stack.ready("api", timeout=120)
    read_until(stack, events(stack, seen[-1]["id"]), seen, sum({**first, **second}.values()))

    ids = [int(e["id"]) for e in seen]
    assert ids == sorted(set(ids)), "a change came twice or out of order"
    latest: dict[tuple[str, str], Any] = {}
    for event in seen:
        if event["event"] == "changement":
            row = json.loads(event["data"])
            latest[(row["niveau"], row["code"])] = row["valeur"]
    served = {
        (row["niveau"], row["code"]): row["valeur"]
        for level in LEVELS
        for row in get_json(stack.url("api", f"/indicateurs?niveau={level}&indicateur={IND}"))
    }
    assert latest == served
