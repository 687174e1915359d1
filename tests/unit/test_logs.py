"""ITTE_LOG_FORMAT=json: one JSON object per line, with the service's name."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator

import pytest

from common import logs


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_logs_are_one_object_per_line_with_the_service(
    restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(logs.config("info", "json", "aggregator"))
    logging.getLogger("services.aggregator").info(
        "batch %s: %d records", "b-1", 3, extra={"batch_id": "b-1", "records": 3}
    )
    logging.getLogger("uvicorn.access").info("GET /readyz 200")
    logging.getLogger("noisy").debug("below the level")
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["service"], r["level"], r["logger"], r["message"]) for r in records] == [
        ("aggregator", "INFO", "services.aggregator", "batch b-1: 3 records"),
        ("aggregator", "INFO", "uvicorn.access", "GET /readyz 200"),
    ]
    assert all(r["time"] for r in records)
    assert (records[0]["batch_id"], records[0]["records"]) == ("b-1", 3)  # fields, not text


def test_text_logs_stay_readable(restored: None, capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(logs.config("warning", "text", "api"))
    logging.getLogger("services.api").warning("database unavailable")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("WARNING services.api: database unavailable")
