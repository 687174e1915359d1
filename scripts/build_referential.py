"""Rebuild itte's compact referential from the Code Officiel Géographique.

Source: the npm package ``@etalab/decoupage-administratif`` (Etalab, data under
the Licence Ouverte / Open Licence 2.0, code under MIT); version 6.0.0 is the
2026 edition of the COG. Run from the repository root:

    python -m scripts.build_referential [--version 6.0.0] [--editions] [--out DIR]

It reads the package from the npm registry (``common/referential/registry.py``,
no npm needed) and writes ``common/referential/data/*`` (byte-for-byte
reproducible: sorted rows, gzip without timestamps), or the folder ``--out``
(a later edition, for ``itte referentiel charger``). With ``--editions`` it
also writes the older editions of the map the API serves (``millesime``),
one folder a year under ``data/editions/``: the package has one version per
edition of the COG, as ``EDITIONS`` lists them (no version holds 2020's
communes: 0.8.0 keeps 2019's, 0.9.0 has 2021's).
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from common.referential.registry import PACKAGE, edition_files, fetch, former_pairs, table

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


def build(version: str, out: Path = OUT) -> list[dict]:
    """The edition of the package's ``version`` into ``out``: its communes."""
    documents = fetch(version)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in edition_files(documents, version).items():
        (out / name).write_bytes(content)
        if name.endswith(".csv.gz"):
            rows = gzip.decompress(content).count(b"\n") - 1
            print(f"{name}: {rows} rows")
    return documents["communes"]


def check_editions(versions: list[str], pairs: set[tuple[str, str]], current: set[str]) -> None:
    """Show that every commune code of older editions lands somewhere."""
    placed = {old for old, _ in pairs} | current
    for version in versions:
        codes = {
            c["code"]
            for c in fetch(version)["communes"]
            if c.get("type", "commune-actuelle") == "commune-actuelle"
        }
        lost = sorted(codes - placed)
        print(
            f"{PACKAGE}@{version}: {len(codes)} communes, {len(codes - current)} former, "
            f"{len(lost)} unplaced {lost[:10]}"
        )


def build_editions() -> None:
    """Each older edition of ``EDITIONS`` in ``data/editions/YEAR``, then
    how every code lands on each (``data/editions/passage.csv.gz``, which
    ``itte migrate`` copies as it is)."""
    for year, version in EDITIONS.items():
        build(version, OUT / "editions" / str(year))
    rows = passages()
    (OUT / "editions" / "passage.csv.gz").write_bytes(
        table(["millesime", "cle", "code", "commune", "part", "total"], [list(r) for r in rows])
    )
    print(f"passage: {len(rows)} rows")


def passages() -> list[tuple[int, int, str, str, int, int]]:
    """(millesime, cle, code, commune, part, total) of every older edition."""
    from common import referential
    from common.referential.editions import passages

    return list(passages({year: referential.edition(year) for year in referential.EDITIONS}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="6.0.0")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write (default: data/)")
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
    communes = build(args.version, args.out)
    current = {c["code"] for c in communes if c["type"] == "commune-actuelle"}
    check_editions(args.check_editions, former_pairs(communes), current)


if __name__ == "__main__":
    main()
