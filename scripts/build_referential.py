"""Rebuild itte's compact referential from the Code Officiel Géographique.

Source: the npm package ``@etalab/decoupage-administratif`` (Etalab, data under
the Licence Ouverte / Open Licence 2.0, code under MIT); version 6.0.0 is the
2026 edition of the COG. Run from the repository root:

    python scripts/build_referential.py [--version 6.0.0] [--editions]

It needs ``npm`` on the PATH and writes ``common/referential/data/*.csv.gz``
(byte-for-byte reproducible: sorted rows, gzip without timestamps). With
``--editions`` it also writes the older editions of the map the API serves
(``millesime``), one folder a year under ``data/editions/``: the package has
one version per edition of the COG, as ``EDITIONS`` lists them (no version
holds 2020's communes: 0.8.0 keeps 2019's, 0.9.0 has 2021's).
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
# The last version of each major: one edition of the COG, its latest populations.
EDITIONS = {
    2019: "0.7.0",
    2021: "1.1.1",
    2022: "2.3.1",
    2023: "3.1.1",
    2024: "4.1.0",
    2025: "5.3.0",
}


def fetch(version: str, workdir: Path) -> Path:
    subprocess.run(["npm", "pack", f"{PACKAGE}@{version}", "--silent"], cwd=workdir, check=True)
    tgz = next(workdir.glob("*.tgz"))
    with tarfile.open(tgz) as archive:
        archive.extractall(workdir, filter="data")
    return workdir / "package" / "data"


def write(name: str, header: list[str], rows: list[list[object]], out: Path = OUT) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(sorted(rows, key=lambda r: [str(c) for c in r]))
    with (
        open(out / f"{name}.csv.gz", "wb") as raw,
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


def build(data: Path, version: str, out: Path = OUT) -> None:
    communes = json.loads((data / "communes.json").read_text("utf-8"))
    epcis = json.loads((data / "epci.json").read_text("utf-8"))
    departements = json.loads((data / "departements.json").read_text("utf-8"))
    regions = json.loads((data / "regions.json").read_text("utf-8"))

    epci_of = {m["code"]: e["code"] for e in epcis for m in e["membres"]}
    current = [c for c in communes if c["type"] == "commune-actuelle"]
    # Before 2.0.0 the overseas collectivités' communes (975, 977, 978…) name
    # their collectivité, not a département: it is their département and
    # région, as the later versions list them.
    overseas = {
        c["collectiviteOutremer"]["code"]: c["collectiviteOutremer"]["nom"]
        for c in current
        if "departement" not in c
    }
    for c in current:
        if "departement" not in c:
            c["departement"] = c["region"] = c["collectiviteOutremer"]["code"]
    known = {d["code"] for d in departements}
    departements += [
        {"code": code, "nom": nom, "region": code}
        for code, nom in overseas.items()
        if code not in known
    ]
    regions += [
        {"code": code, "nom": nom}
        for code, nom in overseas.items()
        if code not in {r["code"] for r in regions}
    ]
    out.mkdir(parents=True, exist_ok=True)
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
        out,
    )
    write("anciens_codes", ["ancien", "actuel"], sorted(former_pairs(communes)), out)
    write("epci", ["code", "nom", "type"], [[e["code"], e["nom"], e["type"]] for e in epcis], out)
    write(
        "departements",
        ["code", "nom", "region"],
        [[d["code"], d["nom"], d["region"]] for d in departements],
        out,
    )
    write("regions", ["code", "nom"], [[r["code"], r["nom"]] for r in regions], out)
    (out / "VERSION").write_text(f"{PACKAGE}@{version}\n", "utf-8")


def build_editions() -> None:
    """Each older edition of ``EDITIONS`` in ``data/editions/YEAR``, then
    how every code lands on each (``data/editions/passage.csv.gz``, which
    ``itte migrate`` copies as it is)."""
    for year, version in EDITIONS.items():
        with tempfile.TemporaryDirectory() as tmp:
            build(fetch(version, Path(tmp)), version, OUT / "editions" / str(year))
    write(
        "passage",
        ["millesime", "cle", "code", "commune", "part", "total"],
        [list(row) for row in passages()],
        OUT / "editions",
    )


def passages() -> list[tuple[int, int, str, str, int, int]]:
    """(millesime, cle, code, commune, part, total) of every older edition."""
    from common import referential
    from common.referential.editions import passages

    return list(passages({year: referential.edition(year) for year in referential.EDITIONS}))


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
    parser.add_argument("--editions", action="store_true", help="write EDITIONS too")
    args = parser.parse_args()
    if args.editions:
        build_editions()
    with tempfile.TemporaryDirectory() as tmp:
        data = fetch(args.version, Path(tmp))
        build(data, args.version)
        communes = json.loads((data / "communes.json").read_text("utf-8"))
    current = {c["code"] for c in communes if c["type"] == "commune-actuelle"}
    check_editions(args.check_editions, former_pairs(communes), current)


if __name__ == "__main__":
    main()
