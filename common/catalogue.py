"""Reading the indicator catalogue (TOML) shipped with itte or named by ITTE_CATALOGUE."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path

from common import referential
from schemas.catalogue import Catalogue, Indicator, Objective


def parse(text: str) -> Catalogue:
    """``[[indicateur]]`` entries, then the ``[[objectif]]`` entries that refer to them."""
    document = tomllib.loads(text)
    entries = [Indicator.model_validate(e) for e in document.get("indicateur", [])]
    ids = [e.id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"indicators declared twice: {', '.join(duplicates)}")
    objectives = tuple(Objective.model_validate(o) for o in document.get("objectif", []))
    for objective in objectives:
        territory(objective)
    return Catalogue(indicateurs={e.id: e for e in entries}, objectifs=objectives)


def territory(objective: Objective) -> None:
    """A territory's own objective names a territory of the current edition:
    a code mistyped would never be shown."""
    ref = referential.load()
    try:
        if objective.niveau == "commune":
            if objective.code not in ref.communes:
                raise referential.Unplaced("unknown_code", f"{objective.code} is no commune")
        else:
            referential.locate_territory(objective.niveau, objective.code, ref)
    except referential.Unplaced as exc:
        raise ValueError(f"objective for {objective.indicateur}: {exc}") from None


@cache
def load(path: Path | None = None) -> Catalogue:
    if path is None:
        text = resources.files("common").joinpath("data", "catalogue.toml").read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    return parse(text)
