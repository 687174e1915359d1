"""``itte typology`` and ``itte compare``: the API's comparisons of
territories (``GET /typologies``, ``/territoires/{niveau}/{code}/comparaison``)
printed as tables an analyst reads."""

from __future__ import annotations

import urllib.parse

from rich.console import Console
from rich.table import Table

from itte.http import get
from services.api.models import Comparaison, Typologie

NIVEAUX = {
    "commune": "communes",
    "epci": "EPCI",
    "departement": "départements",
    "region": "régions",
    "france": "France",
}
SHOWN_MEMBERS = 4


def typologie(api: str, params: dict[str, object]) -> Typologie:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return Typologie.model_validate_json(get(f"{api.rstrip('/')}/typologies?{query}"))


def comparaison(api: str, niveau: str, code: str, params: dict[str, object]) -> Comparaison:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    path = f"/territoires/{niveau}/{urllib.parse.quote(code, safe='')}/comparaison"
    return Comparaison.model_validate_json(get(f"{api.rstrip('/')}{path}?{query}"))


def number(value: float | int | None) -> str:
    if value is None:
        return "—"
    return (
        f"{value:,.4g}".replace(",", " ") if abs(value) < 1e4 else f"{value:,.0f}".replace(",", " ")
    )


def print_typologie(t: Typologie, console: Console) -> None:
    how = f"chosen by silhouette ({t.silhouette:.2f})" if t.k_choisi else "as asked"
    grouped = sum(g.taille for g in t.groupes)
    console.print(
        f"{NIVEAUX[t.niveau]} in {t.annee}: {t.k} groups, {how}; "
        f"{grouped} grouped, {len(t.exclus)} left out (incomplete values)"
    )
    table = Table()
    table.add_column("groupe", justify="right")
    table.add_column("taille", justify="right")
    for ind in t.indicateurs:
        unit = f" ({ind.unite})" if ind.unite else ""
        table.add_column(f"{ind.indicateur}{unit}", justify="right")
    table.add_column("membres")
    for g in t.groupes:
        names = ", ".join(m.nom for m in g.membres[:SHOWN_MEMBERS])
        more = f" … (+{g.taille - SHOWN_MEMBERS})" if g.taille > SHOWN_MEMBERS else ""
        table.add_row(
            str(g.groupe), str(g.taille), *(number(v) for v in g.centre.values()), names + more
        )
    console.print(table)


def print_comparaison(c: Comparaison, console: Console) -> None:
    t = c.territoire
    console.print(f"{t.nom} ({t.niveau} {t.code}) in {c.annee}")
    if c.groupe is None:
        console.print(f"no group: {c.raison}")
    else:
        console.print(f"group {c.groupe.groupe} of {c.k}, with {c.groupe.taille - 1} others")
    ranks = Table(title="ranks")
    for column in ("indicateur", "valeur", "rang", "mieux que"):
        ranks.add_column(column, justify="left" if column == "indicateur" else "right")
    for r in c.rangs:
        name = r.indicateur if r.sous_champ == "total" else f"{r.indicateur}:{r.sous_champ}"
        if r.rang is None:
            ranks.add_row(name, "—", f"— of {r.sur}", r.raison or "")
            continue
        better = "—" if r.meilleur_que is None else f"{r.meilleur_que:.0%} of {NIVEAUX[t.niveau]}"
        ranks.add_row(name, number(r.valeur), f"{r.rang} of {r.sur}", better)
    console.print(ranks)
    if c.pairs:
        peers = Table(title="nearest peers")
        peers.add_column("territoire")
        peers.add_column("distance", justify="right")
        for label in c.pairs[0].valeurs:
            peers.add_column(label, justify="right")
        for p in c.pairs:
            peers.add_row(
                f"{p.nom} ({p.code})", f"{p.distance:.2f}", *(number(v) for v in p.valeurs.values())
            )
        console.print(peers)
