from __future__ import annotations

from pathlib import Path

from schemas.export import documents

FOLDER = Path(__file__).resolve().parents[2] / "schemas" / "json"


def test_committed_json_schemas_match_the_models() -> None:
    for name, text in documents().items():
        assert (FOLDER / name).read_text("utf-8") == text, f"run `make schemas` ({name})"


def test_raw_observation_schema_names_the_required_fields() -> None:
    import json

    schema = json.loads((FOLDER / "indicators.raw.observation.schema.json").read_text())
    assert set(schema["required"]) == {"indicateur", "commune"}
