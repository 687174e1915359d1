"""Data pushed by HTTP and by file comes back from the API as exact aggregates,
and every record is accounted for: published clean or dead-lettered."""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from pathlib import Path

import psycopg

from common.referential import load
from schemas import deadletter
from tests.e2e.stack import Stack, eventually, get_json, post
from tests.integration.test_kafka import clean_records, read_all

REF = load()


def communes_of(*departements: str) -> list:
    return sorted(
        (
            c
            for c in REF.communes.values()
            if c.departement in departements and c.population is not None
        ),
        key=lambda c: c.code,
    )


def expected_by_epci(communes: list) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for c in communes:
        if c.epci:
            sums[c.epci] += c.population
    return dict(sums)


def test_http_and_file_reach_the_api_and_the_dead_letters(stack: Stack, workdir: Path) -> None:
    ain_and_savoie = communes_of("01", "74")
    records = [
        {
            "indicateur": "e2e_pop",
            "commune": c.code,
            "annee": 2026,
            "valeur": c.population,
            "unite": "habitants",
        }
        for c in ain_and_savoie
    ]
    half = len(records) // 2
    status, body = post(stack.url("ingestor", "/observations"), json.dumps(records[:half]).encode())
    assert status == 202 and body["accepted"] == half
    ndjson = "\n".join(json.dumps(r) for r in records[half:]).encode()
    status, body = post(stack.url("ingestor", "/observations"), ndjson, "application/x-ndjson")
    assert status == 202 and body["accepted"] == len(records) - half

    gironde = communes_of("33")
    path = workdir / "gironde.csv"
    lines = ["variable;code;annee;valeur;unite;nom_declarant"]
    lines += [f"e2e_file;{c.code};2025;{c.population};habitants;Jeanne Martin" for c in gironde]
    bad = [
        "e2e_file;99999;2025;1;habitants;Jeanne Martin",  # unknown commune
        "e2e_file;33063;2025;douze;habitants;Jeanne Martin",  # not a number
        "e2e_file;33xyz;2025;1;habitants;Jeanne Martin",
    ]  # not a commune code
    path.write_text("\n".join(lines + bad) + "\n", encoding="utf-8")
    n = len(gironde) + 3
    assert f"{n} read, {n} published, 0 rejected" in stack.ingest_file(path)

    expected = expected_by_epci(
        [
            c
            for c in ain_and_savoie
            if REF.communes[c.code].epci in {x.epci for x in communes_of("74")}
        ]
    )

    def epci_figures() -> dict[str, int] | None:
        rows = get_json(
            stack.url(
                "api", "/indicateurs?niveau=epci&departement=74&indicateur=e2e_pop&limit=10000"
            )
        )
        got = {r["code"]: r["valeur"] for r in rows}
        return got if got == expected else None

    eventually(epci_figures, 60, "EPCI sums of département 74")
    [gironde_row] = eventually(
        lambda: get_json(stack.url("api", "/indicateurs?departement=33&indicateur=e2e_file")),
        60,
        "Gironde",
    )
    assert gironde_row["valeur"] == sum(c.population for c in gironde)

    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    ours = {"e2e_pop", "e2e_file"}  # other e2e tests share the topics

    def our_dead_letters() -> list[dict] | None:
        letters = [json.loads(m.value()) for m in read_all(bootstrap, deadletter.TOPIC)]
        mine = [d for d in letters if (d["payload"] or {}).get("indicateur") in ours]
        return mine if len(mine) >= len(bad) else None

    dead = eventually(our_dead_letters, 30, "dead letters")
    assert sorted(d["reason"] for d in dead) == [
        "invalid_commune",
        "invalid_value",
        "unknown_code",
    ]
    assert all(d["payload"]["nom_declarant"].startswith("hmac-sha256:") for d in dead)

    def archived() -> list | None:  # the aggregator keeps them in Postgres
        with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
            rows = conn.execute(
                "SELECT record_id, reason FROM dead_letters WHERE record_id = ANY(%s)",
                ([d["record_id"] for d in dead],),
            ).fetchall()
        return rows if len(rows) == len(dead) else None

    assert sorted(r for _, r in eventually(archived, 30, "the archived dead letters")) == sorted(
        d["reason"] for d in dead
    )

    # Accounting: every record sent is clean or dead-lettered, once.
    clean_ids = {r["record_id"] for r in clean_records(bootstrap, ours)}  # both lanes
    dead_ids = {d["record_id"] for d in dead}
    sent = len(records) + len(gironde) + len(bad)
    assert len(clean_ids) + len(dead_ids) == sent

    # No clear personal data in the database either.
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        leaked = conn.execute(
            "SELECT count(*) FROM observations WHERE pii::text LIKE '%Jeanne%'"
        ).fetchone()[0]
        hashed = conn.execute(
            "SELECT count(*) FROM observations WHERE pii ? 'nom_declarant' "
            "AND indicateur = 'e2e_file'"  # other e2e tests share the database
        ).fetchone()[0]
    assert (leaked, hashed) == (0, len(gironde))


def test_bad_lines_refuse_the_request_whole_with_line_numbers(stack: Stack) -> None:
    body = b'{"indicateur": "x", "commune": "33063", "annee": 2020, "valeur": 1}\n{oops\n[]\n'
    status, answer = post(stack.url("ingestor", "/observations"), body, "application/x-ndjson")
    assert status == 422
    assert [e["line"] for e in answer["errors"]] == [2, 3]
    with urllib.request.urlopen(stack.url("ingestor", "/metrics/")) as response:
        metrics = response.read().decode()
    assert 'itte_requests_refused_total{reason="invalid_records",service="ingestor"}' in metrics


def test_every_service_exposes_metrics_and_health(stack: Stack) -> None:
    for name in ("ingestor", "cleaner", "aggregator", "api"):
        assert get_json(stack.url(name, "/health"))["status"] == "ok"
        path = "/metrics/" if name in ("ingestor", "api") else "/metrics"
        with urllib.request.urlopen(stack.url(name, path)) as response:
            text = response.read().decode()
        assert "itte_" in text, name
