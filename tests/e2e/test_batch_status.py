"""A producer learns what became of its batch after the 202, through the
running services: each line refused in the request, by the cleaner or by the
aggregator, with its request line number and reason; the counts add up; no
other producer can read it (HTTP and ``itte batch``)."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.stack import OTHER_TOKEN, PRODUCER_TOKEN, Stack, eventually, post

IND = "e2e_status"


def line(commune: str, sous_champ: str, **extra: Any) -> str:
    return json.dumps(
        {
            "indicateur": IND,
            "commune": commune,
            "annee": 2026,
            "sous_champ": sous_champ,
            "valeur": 1,
        }
        | extra
    )


def test_a_producer_reads_what_became_of_each_line_of_its_batch(stack: Stack) -> None:
    observations = stack.url("ingestor", "/observations")
    # Producer e2e owns this observation: producer autre may not change it.
    status, owned = post(observations, line("33063", "owned").encode(), token=PRODUCER_TOKEN)
    assert status == 202, owned
    # Stored before the other producer's batch comes: an observation belongs
    # to the record stored first, and two requests may reach the aggregator
    # in either order (their raw messages on different partitions).
    owned_status = f"{observations}/{owned['batch_ids'][0]}"
    eventually(
        lambda: post(owned_status, None, token=PRODUCER_TOKEN)[1]["complete"] or None,
        60,
        "the owned value to be stored",
    )
    body = "\n".join(
        [
            line("33063", "a"),  # 1: clean
            line("33063", "b", unite="kg\u0000"),  # 2: refused in the request (NUL)
            line("33063", "c", annee="²"),  # 3: dead-lettered by the cleaner
            "",  # 4: blank, skipped
            line("33063", "owned"),  # 5: dead-lettered by the aggregator (e2e's)
            line("74010", "d"),  # 6: clean
        ]
    )
    status, answer = post(
        observations + "?mode=partial", body.encode(), "application/x-ndjson", token=OTHER_TOKEN
    )
    assert status == 202 and answer["accepted"] == 4, answer
    [batch_id] = answer["batch_ids"]
    mine = f"{observations}/{batch_id}"

    def complete() -> dict[str, Any] | None:
        code, found = post(mine, None, token=OTHER_TOKEN)
        assert code == 200, found
        return found if found["complete"] else None

    found = eventually(complete, 60, "the batch to be complete")
    counts = {k: found[k] for k in ("accepted", "clean", "dead_lettered", "pending", "refused")}
    assert counts == {"accepted": 4, "clean": 2, "dead_lettered": 2, "pending": 0, "refused": 1}
    assert [(r["line"], r["stage"], r["reason"]) for r in found["rejected"]] == [
        (2, "ingestor", "invalid_record"),
        (3, "cleaner", "invalid_year"),
        (5, "aggregator", "other_producer"),
    ]
    assert "NUL" in found["rejected"][0]["detail"]

    # Nobody else reads it: another producer, no token, a wrong token.
    assert post(mine, None, token=PRODUCER_TOKEN)[0] == 404
    assert post(mine, None, token=None)[0] == 401
    assert post(mine, None, token="itte_wrong")[0] == 401
    assert post(f"{observations}/{owned['batch_ids'][0]}", None, token=OTHER_TOKEN)[0] == 404

    # `itte batch` prints the same, and exits 1 since lines were rejected.
    url = stack.url("ingestor")
    printed = stack.itte("batch", batch_id, "--url", url, env={"ITTE_TOKEN": OTHER_TOKEN})
    assert printed.returncode == 1, printed.stderr
    assert "4 accepted, 2 clean, 2 dead-lettered, complete; 1 refused" in printed.stdout
    assert "line 5 [aggregator] other_producer" in printed.stdout
    as_json = stack.itte("batch", batch_id, "--json", "--url", url, env={"ITTE_TOKEN": OTHER_TOKEN})
    assert json.loads(as_json.stdout) == found
    refused = stack.itte("batch", batch_id, "--url", url, env={"ITTE_TOKEN": PRODUCER_TOKEN})
    assert refused.returncode == 2 and "no batch of yours" in refused.stderr
