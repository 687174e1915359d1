"""JSON Schema of every topic payload, for producers in other languages."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas import aggregates, clean, deadletter, raw

MODELS: dict[str, type[BaseModel]] = {
    f"{raw.TOPIC}.observation": raw.RawObservation,
    f"{raw.TOPIC}.batch": raw.RawBatch,
    f"{clean.TOPIC}.batch": clean.CleanBatch,
    f"{deadletter.TOPIC}": deadletter.DeadLetter,
    f"{aggregates.TOPIC}": aggregates.AggregateChange,
}


# Topics we write are described as written (computed fields included,
# decimals as text); those producers write, as we read them.
WRITTEN_BY_ITTE = {f"{aggregates.TOPIC}", f"{deadletter.TOPIC}", f"{clean.TOPIC}.batch"}


def documents() -> dict[str, str]:
    """File name → JSON text (stable, so the committed files can be compared)."""
    return {
        f"{name}.schema.json": json.dumps(
            model.model_json_schema(
                mode="serialization" if name in WRITTEN_BY_ITTE else "validation"
            ),
            indent=2,
            ensure_ascii=False,
            sort_keys=True,
        )
        + "\n"
        for name, model in MODELS.items()
    }


def export(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in documents().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
