"""What the ingestor accepts, the cleaner accounts for record by record: any
body a producer sends, in partial mode, through the ingestor's real
envelope and personal-data hashing, then the cleaner. Nothing the edge let
through may cost its neighbours: no record vanishes after a 202."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.pii import PiiHasher
from services.cleaner.transform import MessageOrigin, clean_message
from services.ingestor.models import Submission
from services.ingestor.publisher import RawPublisher
from tests.unit.fakes import MemoryProducer
from tests.unit.test_cleaner_transform import RULES
from tests.unit.test_hostile_records import FIELDS, GOOD, json_values
from tests.unit.test_ingestor_handlers import handler

ORIGIN = MessageOrigin("indicators.raw", 0, 0, 1_700_000_000_000)


# A line: a good record with any JSON value in any field, or any JSON value.
lines = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values).map(lambda r: {**GOOD, **r}),
    json_values,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, min_size=1, max_size=6))
def test_every_record_accepted_at_the_edge_is_cleaned_or_dead_lettered_alone(
    body: list[Any],
) -> None:
    producer = MemoryProducer()
    hasher = PiiHasher.create(b"k" * 32, RULES.hasher.fields)
    h = handler(auth=False)
    h.publisher = RawPublisher(producer, batch_records=100, hide=hasher.hide)  # type: ignore[arg-type]
    h.max_records = 10
    ndjson = "\n".join(json.dumps(line, default=str) for line in [GOOD, *body]).encode()
    answer = h.submit(
        Submission(
            producer="anonyme",
            body=ndjson,
            content_type="application/x-ndjson",
            mode="partial",
        )
    )
    assert answer.status == 202, answer.content
    accepted = answer.content["accepted"]
    [message] = producer.messages
    result = clean_message(message, ORIGIN, RULES)
    assert len(result.clean) + len(result.dead) == accepted
    # What the edge validated, the cleaner never refuses for its shape.
    assert not {"invalid_message", "invalid_schema", "internal_error"} & {
        d.reason for d in result.dead
    }
    assert result.clean[0].record_id.endswith(":000000")  # the good first line
