"""Reading the indicator catalogue (TOML) shipped with itte or named by ITTE_CATALOGUE."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path

from schemas.catalogue import Catalogue, Indicator


def parse(text: str) -> Catalogue:
    entries = [Indicator.model_validate(e) for e in tomllib.loads(text).get("indicateur", [])]
    ids = [e.id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"indicators declared twice: {', '.join(duplicates)}")
    return Catalogue(indicateurs={e.id: e for e in entries})


@cache
def load(path: Path | None = None) -> Catalogue:
    if path is None:
        text = resources.files("common").joinpath("data", "catalogue.toml").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return parse(text)
