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
    assert set(schema["required"]) == {"indicateur"}
    # and the territory: a commune code, its name, or a code at its niveau
    assert schema["anyOf"] == [
        {"required": ["commune"]},
        {"required": ["libelle_territoire"]},
        {"required": ["code"]},
    ]


def test_the_readme_producer_example_validates_against_the_json_schema() -> None:
    import json

    import jsonschema

    schema = json.loads((FOLDER / "indicators.raw.observation.schema.json").read_text())
    jsonschema.validate(
        {"indicateur": "co2_tonnes", "commune": "74010", "annee": 2024, "valeur": 1520.5}, schema
    )
    jsonschema.validate(
        {
            "indicateur": "x",
            "commune": "2A004",
            "date": "31/12/2024",
            "valeur": "12,5",
            "nom_declarant": "extra fields are allowed",
        },
        schema,
    )
    try:
        jsonschema.validate({"commune": "74010"}, schema)
    except jsonschema.ValidationError as error:
        assert "indicateur" in error.message
    else:
        raise AssertionError("a record without indicateur must not validate")
