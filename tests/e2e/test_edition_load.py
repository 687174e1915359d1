"""A new edition of the map loaded while the services run and a producer
corrects values over HTTP all along (issue #29): `itte referentiel
charger` places the stored values on it, the aggregator takes it at its next
batch (done again on it), the cleaner from the editions topic; neither
stops. Nothing is
lost: every correction is in the results, `itte check` finds nothing, and
every aggregate the new map moves is published once."""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from common.referential import load
from schemas import aggregates
from tests.e2e.conftest import own_stack
from tests.e2e.stack import Stack, eventually, get_json, post_with_retry, push_values
from tests.editions import files_of, next_edition
from tests.integration.test_kafka import now_ms, read_all

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
    reason="on a shared broker, the editions topic would move every other test's cleaners",
)

EDITION, C = next_edition()
# Corrected all along: a commune the new map merges into a commune
# nouvelle, one it grows, and communes it leaves alone.
CORRECTED = [C["a"], C["keep"], *sorted(c for c in load().communes if c.startswith("33"))[:20]]


def stored(stack: Stack, indicateur: str) -> dict[tuple, tuple]:
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        return {
            tuple(r[:4]): tuple(r[4:])
            for r in conn.execute(
                "SELECT sous_champ, annee, niveau, code, valeur, nb_valeurs FROM aggregates"
                " WHERE indicateur = %s",
                (indicateur,),
            )
        }


def communes(stack: Stack, indicateur: str, departement: str) -> dict[str, Decimal]:
    rows = get_json(
        stack.url(
            "api",
            f"/indicateurs?indicateur={indicateur}&annee=2026&niveau=commune"
            f"&departement={departement}&exact=true&limit=1000",
        )
    )
    return {r["code"]: Decimal(r["valeur"]) for r in rows}


def test_a_new_edition_under_http_corrections_loses_nothing(
    tmp_path: Path, database_factory, server_state: Path
) -> None:
    folder = tmp_path / "edition-2027"
    folder.mkdir()
    for name, content in files_of(EDITION).items():
        (folder / name).write_bytes(content)
    placed = [C["keep"], C["merged"], C["moved"], C["a"], C["b"]]
    with own_stack(tmp_path / "stack", database_factory(), server_state) as stack:
        push_values(stack, "pop", {code: 10 + i for i, code in enumerate(placed)}, version=1)
        eventually(lambda: len(communes(stack, "pop", "01")) == 5, 60, "the values to land")
        before = stored(stack, "pop")

        last = [0]  # the last version the ingestor acknowledged
        stop = threading.Event()

        def correct() -> None:
            while not stop.is_set():
                v = last[0] + 1
                post_with_retry(
                    stack,
                    [
                        {
                            "indicateur": "co2",
                            "commune": c,
                            "annee": 2026,
                            "valeur": v,
                            "version": v,
                        }
                        for c in CORRECTED
                    ],
                )
                last[0] = v
                stop.wait(0.12)  # under the producers' rate limit (600 a minute)

        producer = threading.Thread(target=correct, daemon=True)
        producer.start()
        eventually(lambda: last[0] >= 3, 60, "corrections to flow")
        since = now_ms()
        done = stack.itte("referentiel", "charger", "2027", str(folder))
        assert done.returncode == 0, done.stderr
        assert "edition 2027 (test-2027) loaded" in done.stdout, done.stdout
        # The aggregator takes it at its next batch, the cleaner from the
        # topic; neither stops.
        aggregator = stack.running["aggregator"]
        for service in ("aggregator", "cleaner"):
            eventually(
                lambda s=service: "now placing on the edition 2027" in stack.log_tail(s, 400),
                60,
                f"the {service} to take the edition",
            )
        assert stack.running["aggregator"] is aggregator and aggregator.poll() is None
        going_on = last[0]
        eventually(lambda: last[0] >= going_on + 2, 60, "corrections to flow on")
        stop.set()
        producer.join(60)
        final = Decimal(last[0])
        # Keyed on the commune nouvelle's code, unknown to the map before.
        push_values(stack, "co2", {C["born"]: 1000}, version=1)

        expected = {c: final for c in CORRECTED if c.startswith("33")}
        eventually(lambda: communes(stack, "co2", "33") == expected, 90, "every correction to land")
        eventually(
            lambda: communes(stack, "co2", "01") == {C["keep"]: final, C["born"]: final + 1000},
            90,
            "the corrections of merged communes to land on the new map",
        )
        check = stack.itte("check")
        assert check.returncode == 0, check.stdout + check.stderr
        assert "0 differences" in check.stdout

        after = stored(stack, "pop")
        moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert after[("total", 2026, "commune", C["born"])] == (Decimal(27), 2)  # a 13, b 14
        # Each once: a message with its revision, or a tombstone (no value)
        # for a row whose territory the new map no longer has.
        told: dict[tuple, set[int | str]] = defaultdict(set)
        for message in read_all(stack.env["KAFKA_BOOTSTRAP_SERVERS"], aggregates.TOPIC, since):
            indicateur, sous_champ, annee, niveau, code = message.key().decode().split("|")
            if indicateur == "pop":
                key = (sous_champ, int(annee), niveau, code)
                value = message.value()
                told[key].add("gone" if value is None else json.loads(value)["revision"])
        assert moved and {k: len(r) for k, r in told.items()} == dict.fromkeys(moved, 1)
        gone = {k[3] for k, r in told.items() if r == {"gone"}}
        assert gone == {C["merged"], C["a"], C["b"]}
