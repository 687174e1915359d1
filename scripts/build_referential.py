"""Rebuild itte's compact referential from the Code Officiel Géographique.

Source: the npm package ``@etalab/decoupage-administratif`` (Etalab, data under
the Licence Ouverte / Open Licence 2.0, code under MIT); version 6.0.0 is the
2026 edition of the COG. Run from the repository root:

    python scripts/build_referential.py [--version 6.0.0]

It needs ``npm`` on the PATH and writes ``itte/referential/data/*.csv.gz``
(byte-for-byte reproducible: sorted rows, gzip without timestamps).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@etalab/decoupage-administratif"
OUT = Path(__file__).resolve().parent.parent / "itte" / "referential" / "data"


def fetch(version: str, workdir: Path) -> Path:
    subprocess.run(["npm", "pack", f"{PACKAGE}@{version}", "--silent"], cwd=workdir, check=True)
    tgz = next(workdir.glob("*.tgz"))
    with tarfile.open(tgz) as archive:
        archive.extractall(workdir, filter="data")
    return workdir / "package" / "data"


def write(name: str, header: list[str], rows: list[list[object]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(sorted(rows, key=lambda r: [str(c) for c in r]))
    with (
        open(OUT / f"{name}.csv.gz", "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
    ):
        gz.write(text.getvalue().encode("utf-8"))
    print(f"{name}: {len(rows)} rows")


def build(data: Path, version: str) -> None:
    communes = json.loads((data / "communes.json").read_text("utf-8"))
    epcis = json.loads((data / "epci.json").read_text("utf-8"))
    departements = json.loads((data / "departements.json").read_text("utf-8"))
    regions = json.loads((data / "regions.json").read_text("utf-8"))

    epci_of = {m["code"]: e["code"] for e in epcis for m in e["membres"]}
    current = [c for c in communes if c["type"] == "commune-actuelle"]
    OUT.mkdir(parents=True, exist_ok=True)
    write(
        "communes",
        ["code", "nom", "departement", "region", "epci", "population"],
        [
            [
                c["code"],
                c["nom"],
                c["departement"],
                c["region"],
                epci_of.get(c["code"], ""),
                c.get("population", ""),
            ]
            for c in current
        ],
    )
    write(
        "anciens_codes",
        ["ancien", "actuel"],
        [[old, c["code"]] for c in current for old in c.get("anciensCodes", [])],
    )
    write("epci", ["code", "nom", "type"], [[e["code"], e["nom"], e["type"]] for e in epcis])
    write(
        "departements",
        ["code", "nom", "region"],
        [[d["code"], d["nom"], d["region"]] for d in departements],
    )
    write("regions", ["code", "nom"], [[r["code"], r["nom"]] for r in regions])
    (OUT / "VERSION").write_text(f"{PACKAGE}@{version}\n", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="6.0.0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build(fetch(args.version, Path(tmp)), args.version)


if __name__ == "__main__":
    main()
