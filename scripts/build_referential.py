"""Rebuild itte's compact referential from the Code Officiel Géographique.

Source: the npm package ``@etalab/decoupage-administratif`` (Etalab, data under
the Licence Ouverte / Open Licence 2.0, code under MIT); version 6.0.0 is the
2026 edition of the COG. Run from the repository root:

    python scripts/build_referential.py [--version 6.0.0]

It needs ``npm`` on the PATH and writes ``common/referential/data/*.csv.gz``
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
OUT = Path(__file__).resolve().parent.parent / "common" / "referential" / "data"


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


def former_pairs(communes: list[dict]) -> set[tuple[str, str]]:
    """(former code, current commune) from `anciensCodes` and from the delegated
    or associated communes' chef-lieu. A former code with two current communes
    is ambiguous (itte dead-letters it as `ambiguous_code`)."""
    current = {c["code"] for c in communes if c["type"] == "commune-actuelle"}
    pairs = {
        (old, c["code"])
        for c in communes
        if c["type"] == "commune-actuelle"
        for old in c.get("anciensCodes", [])
    }
    pairs |= {
        (c["code"], c["chefLieu"])
        for c in communes
        if c["type"] != "commune-actuelle" and c.get("chefLieu") and c["code"] not in current
    }
    return pairs


def check_editions(versions: list[str], pairs: set[tuple[str, str]], current: set[str]) -> None:
    """Show that every commune code of older editions lands somewhere."""
    placed = {old for old, _ in pairs} | current
    for version in versions:
        with tempfile.TemporaryDirectory() as tmp:
            data = fetch(version, Path(tmp))
            codes = {
                c["code"]
                for c in json.loads((data / "communes.json").read_text("utf-8"))
                if c.get("type", "commune-actuelle") == "commune-actuelle"
            }
        lost = sorted(codes - placed)
        print(
            f"{PACKAGE}@{version}: {len(codes)} communes, {len(codes - current)} former, "
            f"{len(lost)} unplaced {lost[:10]}"
        )


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
    write("anciens_codes", ["ancien", "actuel"], sorted(former_pairs(communes)))
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
    parser.add_argument(
        "--check-editions",
        nargs="*",
        default=[],
        metavar="VERSION",
        help="older package versions to check, e.g. 0.3.0",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = fetch(args.version, Path(tmp))
        build(data, args.version)
        communes = json.loads((data / "communes.json").read_text("utf-8"))
    current = {c["code"] for c in communes if c["type"] == "commune-actuelle"}
    check_editions(args.check_editions, former_pairs(communes), current)


if __name__ == "__main__":
    main()
