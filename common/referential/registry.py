"""An edition of the map from the registry package it comes from
(``@etalab/decoupage-administratif``: Etalab, data under the Licence Ouverte
2.0; one version per edition of the COG), as the files itte reads
(:data:`common.referential.FILES`): ``scripts/build_referential.py`` writes
the shipped ones with it, ``itte referentiel charger --paquet`` loads a
later one. Byte for byte reproducible: sorted rows, gzip without a date."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tarfile
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

PACKAGE = "@etalab/decoupage-administratif"
REGISTRY = "https://registry.npmjs.org"
DOCUMENTS = ("communes", "epci", "departements", "regions")


def fetch(version: str, registry: str = REGISTRY, timeout: float = 120) -> dict[str, Any]:
    """The package's data documents (``communes``, ``epci``…), read from its
    tarball on the npm registry (no npm needed)."""
    url = f"{registry.rstrip('/')}/{PACKAGE}/-/{PACKAGE.split('/')[1]}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        archive = answer.read()
    documents: dict[str, Any] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tgz:
        for name in DOCUMENTS:
            member = tgz.extractfile(f"package/data/{name}.json")
            if member is None:
                raise ValueError(f"{PACKAGE}@{version} has no data/{name}.json")
            documents[name] = json.loads(member.read())
    return documents


def table(header: list[str], rows: Iterable[list[object]]) -> bytes:
    """A gzipped CSV, its rows sorted, with no date in its header."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(sorted(rows, key=lambda r: [str(c) for c in r]))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return out.getvalue()


def former_pairs(communes: list[dict[str, Any]]) -> set[tuple[str, str]]:
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


def edition_files(documents: Mapping[str, Any], version: str) -> dict[str, bytes]:
    """The edition's files from the package's documents."""
    communes = documents["communes"]
    epcis = documents["epci"]
    departements = list(documents["departements"])
    regions = list(documents["regions"])
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
    current = [
        c
        if "departement" in c
        else {
            **c,
            "departement": c["collectiviteOutremer"]["code"],
            "region": c["collectiviteOutremer"]["code"],
        }
        for c in current
    ]
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
    return {
        "communes.csv.gz": table(
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
        ),
        "anciens_codes.csv.gz": table(
            ["ancien", "actuel"], [list(p) for p in former_pairs(communes)]
        ),
        "epci.csv.gz": table(
            ["code", "nom", "type"], [[e["code"], e["nom"], e["type"]] for e in epcis]
        ),
        "departements.csv.gz": table(
            ["code", "nom", "region"], [[d["code"], d["nom"], d["region"]] for d in departements]
        ),
        "regions.csv.gz": table(["code", "nom"], [[r["code"], r["nom"]] for r in regions]),
        "VERSION": f"{PACKAGE}@{version}\n".encode(),
    }
