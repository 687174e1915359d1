"""Who writes and who reads each topic: the one statement of what each
service may do on the broker. ``itte kafka-access`` grants exactly this to
one principal a service (``itte-ingestor``…), and tests/unit/test_topology.py
holds it to the code: the topics the schemas name, the groups common.lag
reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.lag import BULK_GROUPS, GROUPS

RAW, RAW_BULK = "indicators.raw", "indicators.raw.bulk"
CLEAN, CLEAN_BULK = "indicators.clean", "indicators.clean.bulk"
DEADLETTER, AGGREGATES = "indicators.deadletter", "indicators.aggregates"
EDITIONS = "indicators.editions"  # written by `itte referentiel charger`, an operator's
TOPICS = (RAW, CLEAN, RAW_BULK, CLEAN_BULK, DEADLETTER, AGGREGATES, EDITIONS)


@dataclass(frozen=True)
class Access:
    """A service's rights: the topics it writes, the consumer groups it reads
    in (each with its topics), the topics it reads whole without a group,
    and whether it is a faust app (which keeps topics of its own, named
    after its group)."""

    writes: tuple[str, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    faust: bool = False
    follows: tuple[str, ...] = ()

    def reads(self) -> set[str]:
        return {t for topics in self.groups.values() for t in topics} | set(self.follows)


def _groups(service: str) -> dict[str, tuple[str, ...]]:
    return dict((GROUPS[service], BULK_GROUPS[service]))


ACCESS = {
    # `POST /observations`, `itte ingest`, `itte pull`: raw records only.
    "ingestor": Access(writes=(RAW, RAW_BULK), follows=(EDITIONS,)),
    # The editions of the map it places records on (common/edition_feed.py).
    "cleaner": Access(
        writes=(CLEAN, CLEAN_BULK, DEADLETTER),
        groups=_groups("cleaner"),
        faust=True,
        follows=(EDITIONS,),
    ),
    # The aggregator's own dead letters (a commune outside its map) and
    # every change of an aggregate.
    "aggregator": Access(writes=(DEADLETTER, AGGREGATES), groups=_groups("aggregator"), faust=True),
}


def principal(service: str) -> str:
    """The broker's name for a service's login (SASL/SCRAM user)."""
    return f"itte-{service}"
