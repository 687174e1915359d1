"""Fail when schemas/json differs from the models (run `make schemas`)."""

from __future__ import annotations

import sys
from pathlib import Path

from schemas.export import documents

FOLDER = Path(__file__).resolve().parent.parent / "schemas" / "json"


def main() -> int:
    stale = [
        name
        for name, text in documents().items()
        if not (FOLDER / name).exists() or (FOLDER / name).read_text("utf-8") != text
    ]
    if stale:
        print(f"schemas/json is out of date ({', '.join(stale)}): run `make schemas`")
        return 1
    print(f"schemas/json matches the models ({len(documents())} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
