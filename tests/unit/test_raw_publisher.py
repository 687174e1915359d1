"""RawPublisher.publish streams: envelopes leave as they are cut, and the
acknowledgements are awaited once a round."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from services.ingestor.publisher import RawPublisher


class RoundsProducer:
    """Consumes each round's messages as the real producer does (one by one,
    then a flush), noting how many records had been read at each message."""

    def __init__(self, read: list[int]) -> None:
        self.read = read
        self.rounds: list[list[bytes]] = []
        self.read_at_message: list[int] = []

    def send_all(self, topic: str, messages: Iterable[tuple[Any, bytes]], timeout: float = 30.0):
        sent = []
        for _, value in messages:
            self.read_at_message.append(self.read[0])
            sent.append(value)
        self.rounds.append(sent)  # the flush: every message of the round acknowledged
        return len(sent)


def test_envelopes_leave_while_the_input_is_read_and_rounds_bound_the_wait() -> None:
    read = [0]

    def records() -> Iterator[dict[str, Any]]:
        for i in range(2_550):
            read[0] += 1
            yield {"indicateur": "co2", "commune": "33063", "annee": 2020, "valeur": i}

    producer = RoundsProducer(read)
    publisher = RawPublisher(producer, 100)  # type: ignore[arg-type]
    published = publisher.publish(records(), source="test", records_per_flush=1_000)
    messages = [value for round_ in producer.rounds for value in round_]
    values = [r["valeur"] for value in messages for r in json.loads(value)["records"]]
    assert values == list(range(2_550))  # each record once, in order
    assert (published.records, len(published.batch_ids)) == (2_550, 26)
    assert [len(r) for r in producer.rounds[:3]] == [10, 10, 6]  # rounds of 1,000 records
    # The first envelope left once its 100 records were read, not the round's 1,000.
    assert producer.read_at_message[0] <= 101
