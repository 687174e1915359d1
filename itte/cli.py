"""The ``itte`` command: one subcommand per service, plus operator tools."""

from __future__ import annotations

import copy
import logging
import logging.config
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from common import lean

if TYPE_CHECKING:
    from pydantic import BaseModel

    from common.servers import Servers
    from common.settings import CommonSettings

T = TypeVar("T", bound="BaseModel")


def _servers(settings: CommonSettings, service: str, log_level: str | None = None) -> Servers:
    """Logging set up, and the servers' addresses: the configured ones, else
    the embedded servers (started if needed)."""
    from itte.embedded import servers_for

    _logging(settings, service, log_level)
    return servers_for(settings)


def _logging(settings: CommonSettings, service: str, level: str | None = None) -> None:
    from common import logs

    logging.config.dictConfig(
        logs.config(level or settings.log_level, settings.log_format, service)
    )


@click.group()
def main() -> None:
    """itte: streaming hub for territorial ecological-transition indicators."""
    # Every command, `itte ingest` too, reads columns with pyarrow.
    lean.arrow_from_the_system_allocator()
    # A shell's `&`, nohup and CI runners start commands with SIGINT ignored,
    # and Python leaves it so: Ctrl-C (or `kill -INT`) would do nothing.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@main.command()
def ingestor() -> None:
    """HTTP ingestion service (POST /observations)."""
    lean.service_process()
    from services.ingestor import bootstrap
    from services.ingestor.settings import IngestorSettings

    settings = IngestorSettings()
    bootstrap.serve(settings, _servers(settings, "ingestor"))


@main.command()
def cleaner() -> None:
    """Cleaning service (faust): indicators.raw → indicators.clean."""
    lean.service_process()
    from common.faust_app import run
    from services.cleaner import bootstrap
    from services.cleaner.settings import CleanerSettings

    settings = CleanerSettings()
    run(bootstrap.build(settings, _servers(settings, "cleaner")), settings, "cleaner")


@main.command()
def aggregator() -> None:
    """Aggregation service (faust): indicators.clean → Postgres → indicators.aggregates."""
    lean.service_process()
    from common.faust_app import run
    from services.aggregator import bootstrap
    from services.aggregator.settings import AggregatorSettings

    settings = AggregatorSettings()
    run(bootstrap.build(settings, _servers(settings, "aggregator")), settings, "aggregator")


@main.command()
def api() -> None:
    """Query API (GET /indicateurs)."""
    lean.service_process()
    from services.api import bootstrap
    from services.api.settings import ApiSettings

    settings = ApiSettings()
    bootstrap.serve(settings, _servers(settings, "api"))


@main.command()
def migrate() -> None:
    """Bring the database to the schema of this version, load the referential,
    and give each service whose password is set its own login."""
    from common import db, migrations
    from itte.embedded import database_address
    from itte.up import MigrateSettings

    settings = MigrateSettings()
    _logging(settings, "migrate")
    engine = db.make_engine(database_address(settings))
    migrations.upgrade(engine)
    passwords = settings.passwords()
    migrations.grant_logins(engine, passwords)
    click.echo(f"the database is at revision {migrations.HEAD}")
    for login in passwords:
        click.echo(f"login {login}: role {migrations.LOGINS[login]}")


@main.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["long", "wide", "communes"]),
    help="Table layout (default: detected from the header).",
)
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file naming the columns of another layout.",
)
@click.option("--producer", help="Who the records come from (kept with each record).")
def ingest(
    paths: tuple[Path, ...], fmt: str | None, mapping: Path | None, producer: str | None
) -> None:
    """Publish files (CSV, .xlsx, JSON or NDJSON) on the bulk lane.

    Exit status 1 when records were rejected (they are in <file>.rejets.ndjson).
    """
    from services.ingestor import bootstrap
    from services.ingestor.file_ingest import ingest_files
    from services.ingestor.files import Mapping
    from services.ingestor.settings import IngestorSettings

    settings = IngestorSettings()
    servers = _servers(settings, "ingest", "WARNING")  # the progress bars tell
    summaries = list(
        ingest_files(
            bootstrap.block_handler(settings, servers),
            list(paths),
            producer=producer,
            fmt=fmt,
            mapping=Mapping.load(mapping) if mapping else None,
            show_progress=True,
        )
    )
    for summary in summaries:
        click.echo(str(summary))
    raise SystemExit(1 if any(s.rejected for s in summaries) else 0)


@main.command()
@click.option("--url", required=True, help="SQLAlchemy URL of the source database.")
@click.option(
    "--query", required=True, help="SELECT with a :cursor parameter, ordered by the cursor column."
)
@click.option("--cursor-column", required=True, help="Column whose highest value is kept.")
@click.option(
    "--since", default="1970-01-01", show_default=True, help="The cursor's value for the first run."
)
@click.option(
    "--name",
    default="pull",
    show_default=True,
    help="Names the saved cursor (<state dir>/pull-<name>.json).",
)
@click.option("--every", type=float, help="Seconds between pulls (default: pull once).")
@click.option("--producer", help="Who the records come from (kept with each record).")
def pull(
    url: str,
    query: str,
    cursor_column: str,
    since: str,
    name: str,
    every: float | None,
    producer: str | None,
) -> None:
    """Read observations from a SQL database, incrementally, onto the bulk lane."""
    from services.ingestor import bootstrap
    from services.ingestor.pull import pull as run_pull
    from services.ingestor.settings import IngestorSettings

    settings = IngestorSettings()
    servers = _servers(settings, "pull")
    state = settings.state_dir / f"pull-{name}.json"
    for result in run_pull(
        bootstrap.block_handler(settings, servers),
        every=every,
        url=url,
        query=query,
        cursor_column=cursor_column,
        state=state,
        since=since,
        producer=producer,
    ):
        click.echo(
            f"{result.read} read, {result.published} published, {result.rejected} "
            f"rejected; cursor {result.cursor}"
        )


@main.command()
@click.option("--demo/--no-demo", default=True, help="Ingest the bundled demo data.")
def up(demo: bool) -> None:
    """Run broker, Postgres and the four services until Ctrl-C."""
    from itte.up import UpSettings
    from itte.up import up as run_up

    settings = UpSettings()
    _logging(settings, "up")
    run_up(settings, demo=demo)


@main.command()
def status() -> None:
    """The pipeline on one screen: each service ready or why not, records per
    second, lag, freshness, outbox, the last hour's dead letters. Exit status
    1 when a service is not ready."""
    from rich.console import Console

    from itte.embedded import running_embedded
    from itte.status import StatusSettings, dead_letters, lags, look, render

    settings = StatusSettings()
    _logging(settings, "status", "WARNING")
    broker, database = running_embedded(settings.state_dir)
    services = look(settings.urls())
    render(
        Console(),
        services,
        lags(settings.kafka_bootstrap_servers or broker, settings.kafka_security()),
        dead_letters(settings.database_url or database),
    )
    raise SystemExit(0 if all(s.ready for s in services) else 1)


@main.command()
@click.option("--show", default=20, show_default=True, help="Differences to print.")
def check(show: int) -> None:
    """Compare running aggregates with a recomputation; exit 1 on any difference."""
    from common.settings import CommonSettings
    from itte.embedded import database_address
    from services.aggregator.verify import check as run_check
    from services.aggregator.verify import described

    report = run_check(database_address(CommonSettings()))
    for key, running, truth in report.differences[:show]:
        click.echo(
            f"{'|'.join(map(str, key))}: running ({described(running)})"
            f" recomputed ({described(truth)})"
        )
    click.echo(f"{report.checked} aggregates checked, {len(report.differences)} differences")
    raise SystemExit(1 if report.differences else 0)


@main.command()
def rebuild() -> None:
    """Recompute every aggregate from the stored observations (changes get published)."""
    from common.settings import CommonSettings
    from itte.embedded import database_address
    from services.aggregator.verify import rebuild as run_rebuild

    counts = run_rebuild(database_address(CommonSettings()))
    click.echo(", ".join(f"{n} {what}" for what, n in counts.items()))


@main.command("kafka-access")
def kafka_access() -> None:
    """As the broker's administrator: create the topics, one SASL/SCRAM login
    a service (passwords from ITTE_KAFKA_PASSWORD_*), and the ACLs that let
    each do only its part (docs/operations.md, "Kafka with identities")."""
    from confluent_kafka.admin import AdminClient

    from common.kafka import ensure_topics_for
    from itte import kafka_access as access

    settings = access.AccessSettings()
    passwords = settings.passwords()
    servers = _servers(settings, "kafka-access", "WARNING")
    ensure_topics_for(settings, servers)
    admin = AdminClient(
        {"bootstrap.servers": servers.kafka_bootstrap_servers, **servers.kafka_security}
    )
    for line in access.grant(admin, passwords):
        click.echo(line)


@main.command()
@click.argument("fichier", type=click.Path(dir_okay=False, path_type=Path))
def sauvegarde(fichier: Path) -> None:
    """Back the database up into FICHIER, with the aggregator's offsets, so
    that a restore loses nothing (docs/operations.md, "Backups")."""
    from common.settings import CommonSettings
    from itte import backup

    settings = CommonSettings()
    servers = _servers(settings, "sauvegarde", "WARNING")
    try:
        offsets = backup.take(
            servers.database_url, servers.kafka_bootstrap_servers, servers.kafka_security, fichier
        )
    except backup.BackupError as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(f"{fichier}: {fichier.stat().st_size} bytes; offsets {backup.summary(offsets)}")


@main.command()
@click.argument("fichier", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restauration(fichier: Path) -> None:
    """Restore FICHIER (from itte sauvegarde) into the empty database of
    DATABASE_URL, and set the aggregator back to the backup's offsets: stop
    the aggregator first, start it on the restored database after."""
    from common.settings import CommonSettings
    from itte import backup

    settings = CommonSettings()
    servers = _servers(settings, "restauration", "WARNING")
    try:
        restored = backup.restore(
            servers.database_url, servers.kafka_bootstrap_servers, servers.kafka_security, fichier
        )
    except backup.BackupError as failed:
        raise click.ClickException(str(failed)) from None
    click.echo(
        f"restored the backup of {restored.taken_at}; the aggregator resumes at "
        f"{backup.summary(restored.offsets)}"
    )
    for group in restored.from_start:
        click.echo(
            f"group {group}: the broker would not move its offsets; deleted, it reads "
            "the topics from their start (what it applied again changes nothing)"
        )


@main.command()
@click.argument("batch_id")
@click.option("--url", help="The ingestor (default: ITTE_INGESTOR_URL, else this machine's port).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def batch(batch_id: str, url: str | None, as_json: bool) -> None:
    """What became of BATCH_ID (an id of a 202): counts, and each rejected
    line with its reason. The producer's token is read from ITTE_TOKEN.

    Exit status 0: no line rejected; 1: some were; 2: no answer (unknown batch,
    another producer's, wrong token, ingestor away)."""

    from itte.batch import Unavailable, fetch, render

    try:
        status = fetch(_url_of("ingestor", url), batch_id, os.environ.get("ITTE_TOKEN"))
    except Unavailable as exc:
        click.echo(f"batch {batch_id}: {exc}", err=True)
        raise SystemExit(2) from None
    click.echo(status.model_dump_json(indent=2) if as_json else "\n".join(render(status)))
    raise SystemExit(1 if status.rejected else 0)


def _show(
    command: str, fetch: Callable[[], T], show: Callable[[T, Any], None], as_json: bool
) -> None:
    """Print the API's answer (as JSON or as tables), or why there is none (exit 2)."""
    from rich.console import Console

    from itte.http import Unavailable

    try:
        answer = fetch()
    except Unavailable as exc:
        click.echo(f"{command}: {exc}", err=True)
        raise SystemExit(2) from None
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
    else:
        show(answer, Console(width=160))


def _url_of(service: str, given: str | None) -> str:
    """``given``, else where ``itte status`` looks: ITTE_<SERVICE>_URL, else this machine's port."""
    if given is not None:
        return given
    from itte.status import StatusSettings

    return StatusSettings().urls()[service]


API_URL = click.option(
    "--api", "url", help="The API (default: ITTE_API_URL, else this machine's port)."
)
INDICATEURS = click.option(
    "--indicateurs",
    required=True,
    help="Indicator ids, comma-separated; id:sous_champ for a sub-field.",
)
ANNEE = click.option("--annee", type=int, required=True, help="The year compared.")
K = click.option("--k", type=int, help="Number of groups (default: chosen by silhouette).")
COVERAGE = click.option(
    "--couverture-min",
    type=float,
    default=1.0,
    show_default=True,
    help="The least coverage a value needs to count (1: every commune reported).",
)


@main.command()
@click.option(
    "--niveau",
    type=click.Choice(["commune", "epci", "departement", "region"]),
    required=True,
)
@INDICATEURS
@ANNEE
@K
@COVERAGE
@API_URL
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def typology(
    niveau: str,
    indicateurs: str,
    annee: int,
    k: int | None,
    couverture_min: float,
    url: str | None,
    as_json: bool,
) -> None:
    """Group the territories of a level by k-means on the chosen indicators:
    each group's size, mean values and first members. Exit status 2: no answer."""
    from itte.compare import print_typologie, typologie

    params = {
        "niveau": niveau,
        "indicateurs": indicateurs,
        "annee": annee,
        "k": k,
        "couverture_min": couverture_min,
    }
    _show("typology", lambda: typologie(_url_of("api", url), params), print_typologie, as_json)


@main.command()
@click.argument("niveau", type=click.Choice(["commune", "epci", "departement", "region"]))
@click.argument("code")
@INDICATEURS
@ANNEE
@K
@click.option("--pairs", type=int, default=5, show_default=True, help="Nearest peers shown.")
@COVERAGE
@API_URL
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def compare(
    niveau: str,
    code: str,
    indicateurs: str,
    annee: int,
    k: int | None,
    pairs: int,
    couverture_min: float,
    url: str | None,
    as_json: bool,
) -> None:
    """One territory among those of its level: its group, its rank for each
    indicator ("better than 73 % of EPCI") and its nearest peers.
    Exit status 2: no answer."""
    from itte.compare import comparaison, print_comparaison

    params = {
        "indicateurs": indicateurs,
        "annee": annee,
        "k": k,
        "pairs": pairs,
        "couverture_min": couverture_min,
    }
    _show(
        "compare",
        lambda: comparaison(_url_of("api", url), niveau, code, params),
        print_comparaison,
        as_json,
    )


@main.command()
@click.argument("producer")
def token(producer: str) -> None:
    """Make a bearer token for PRODUCER; only its hash goes in the producers
    file (ITTE_PRODUCERS_FILE) or ITTE_PRODUCER_TOKENS. To rotate, add the
    new hash beside the old one, then remove the old one."""
    import json

    from services.ingestor.auth import hash_token, new_token

    secret = new_token()
    hashed = hash_token(secret)
    click.echo(f"token (give it to {producer}, it is shown once): {secret}")
    click.echo(f"producers file entry:\n[{json.dumps(producer)}]\njetons = [{json.dumps(hashed)}]")
    click.echo(f"ITTE_PRODUCER_TOKENS entry: {json.dumps({producer: hashed})}")


@main.command()
@click.argument("indicateur")
@click.option("--de", "ancien", required=True, help="Its owner now ('-': no producer).")
@click.option("--a", "nouveau", required=True, help="Its owner to be ('-': no producer).")
@click.option("--annee", type=int, help="Only this year.")
@click.option("--territoire", help="Only there: commune:, epci:, departement: or region:CODE.")
@click.option("--essai", is_flag=True, help="Say how many would move; change nothing.")
def proprietaire(
    indicateur: str,
    ancien: str,
    nouveau: str,
    annee: int | None,
    territoire: str | None,
    essai: bool,
) -> None:
    """Hand INDICATEUR's observations over from one producer to another: the
    new owner's corrections are then accepted, the old one's dead-lettered
    other_producer. Values and aggregates do not change; each hand-over is
    kept in the table ownership_transfers."""
    from common.settings import CommonSettings
    from itte.embedded import database_address
    from services.aggregator.ownership import Transfer, count, hand_over

    try:
        place = None
        if territoire is not None:
            niveau, _, code = territoire.partition(":")
            place = (niveau, code.strip().upper())
        transfer = Transfer(
            indicateur,
            None if ancien == "-" else ancien,
            None if nouveau == "-" else nouveau,
            annee,
            place,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    url = database_address(CommonSettings())
    if essai:
        click.echo(f"{count(url, transfer)} observations of {indicateur} would move")
        return
    moved = hand_over(url, transfer)
    click.echo(f"{moved} observations of {indicateur} handed over from {ancien} to {nouveau}")


@main.group()
def servers() -> None:
    """The embedded broker and Postgres (used when no address is configured)."""


@servers.command("start")
def servers_start() -> None:
    """Start them (or find them running) and print their addresses."""
    from common.settings import CommonSettings
    from itte.embedded import ensure_servers

    s = CommonSettings()
    found = ensure_servers(
        kafka_bootstrap_servers=s.kafka_bootstrap_servers,
        database_url=s.database_url,
        state_dir=s.state_dir,
    )
    click.echo(f"KAFKA_BOOTSTRAP_SERVERS={found.kafka_bootstrap_servers}")
    click.echo(f"DATABASE_URL={found.database_url}")


@servers.command("stop")
def servers_stop() -> None:
    """Stop them, and first the `itte up` of this state folder (or what it
    left running if it was killed)."""
    from common.settings import CommonSettings
    from itte.embedded import stop_embedded
    from itte.started import stop_leftovers, stop_up

    state_dir = CommonSettings().state_dir
    if stop_up(state_dir):
        click.echo("itte up stopped")
    if left := stop_leftovers(state_dir):
        click.echo(f"stopped {left} process(es) left by an itte up that was killed")
    stop_embedded(state_dir)


@main.group()
def referentiel() -> None:
    """The editions of the map (the Code officiel géographique): a later one
    than the release ships, loaded while the services run."""


@referentiel.command("charger")
@click.argument("millesime", type=click.IntRange(1900, 2100))
@click.argument("fichier", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--paquet", metavar="VERSION", help="Read it from the registry package, e.g. 7.0.0.")
@click.option(
    "--registre",
    default="https://registry.npmjs.org",
    show_default=True,
    help="The npm registry (or a mirror) --paquet reads from.",
)
def referentiel_charger(
    millesime: int, fichier: Path | None, paquet: str | None, registre: str
) -> None:
    """Load the edition MILLESIME of the map as the current one, from FICHIER
    (a folder, or a tar archive, of the files `itte referentiel exporter`
    writes) or from the version --paquet of @etalab/decoupage-administratif:
    every stored value is placed on it, every aggregate that moves
    recomputed and published once; the aggregators take it at their next batch, the
    cleaners place on it from their next record. Checked whole first: on
    any error nothing changes."""
    from common import referential
    from common.settings import CommonSettings
    from itte.editions import Unreadable, from_package, load, read_files
    from services.aggregator.charge import Refused

    if (fichier is None) == (paquet is None):
        raise click.UsageError("give FICHIER or --paquet, one of them")
    settings = CommonSettings()
    servers = _servers(settings, "referentiel", "WARNING")
    try:
        files = read_files(fichier) if fichier is not None else from_package(paquet or "", registre)
        charged = load(settings, servers, millesime, files)
    except (Unreadable, referential.BadEdition, Refused) as refused:
        raise click.ClickException(str(refused)) from None
    if (placed := charged.placed) is None:
        click.echo(f"the database was on the edition {millesime} ({charged.version}) already")
    else:
        click.echo(
            f"edition {millesime} ({charged.version}) loaded; stored values placed on it: "
            + ", ".join(f"{n} {what}" for what, n in placed.counts.items())
        )
        click.echo(
            f"{charged.loading_seconds:.1f} s loading the editions, then the aggregators "
            f"waited {charged.switch_seconds:.1f} s for the switch"
        )
    click.echo("published: the cleaners and the aggregators place on it from their next records")


@referentiel.command("exporter")
@click.argument("millesime", type=click.IntRange(1900, 2100))
@click.argument("dossier", type=click.Path(file_okay=False, path_type=Path))
def referentiel_exporter(millesime: int, dossier: Path) -> None:
    """Write the files of a shipped edition of the map into DOSSIER."""
    from itte.editions import Unreadable, export

    try:
        for path in export(millesime, dossier):
            click.echo(str(path))
    except Unreadable as refused:
        raise click.ClickException(str(refused)) from None


@main.group()
def grouping() -> None:
    """Groupings of communes (a SCoT, a PETR, a watershed, an EPT), served by
    the API at /groupements/{code}/indicateurs."""


@grouping.command("load")
@click.argument("code")
@click.argument("file", type=click.File("r", encoding="utf-8-sig", errors="replace"))
@click.option("--name", required=True, help="Its name, as the API shows it (`nom`).")
def grouping_load(code: str, file: Any, name: str) -> None:
    """Create or replace the grouping CODE (a-z, 0-9, - and _) of the communes
    FILE lists ('-': standard input): one code a line, or a CSV whose
    first column holds them. Stored whole or not at all: exit 1 naming
    every line that names no commune."""
    from common import db
    from common.settings import CommonSettings
    from itte.embedded import database_address
    from services.api.groupements import Refused, groupement, store

    url = database_address(CommonSettings())
    engine = db.make_engine(url)
    with engine.connect() as conn:  # the database's edition: shipped, or loaded since
        ref = db.current_referential(conn)
    engine.dispose()
    try:
        found = groupement(code, name, file, ref)
    except Refused as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise SystemExit(1) from None
    store(url, found)
    click.echo(f"{found.code}: {len(found.communes)} communes")


@grouping.command("delete")
@click.argument("code")
def grouping_delete(code: str) -> None:
    """Delete the grouping CODE (its communes' values stay)."""
    from common.settings import CommonSettings
    from itte.embedded import database_address
    from services.api.groupements import remove

    if not remove(database_address(CommonSettings()), code):
        click.echo(f"no grouping {code}", err=True)
        raise SystemExit(1)
    click.echo(f"{code}: deleted")


@main.group()
def schemas() -> None:
    """The topic contracts."""


@schemas.command("export")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas/json"),
    show_default=True,
)
def schemas_export(out: Path) -> None:
    """Write the JSON Schema of every topic's messages."""
    from schemas.export import export

    for path in export(out):
        click.echo(str(path))


def _alias(command: click.Command, old_name: str) -> None:
    """``old_name`` still runs ``command``, unlisted: the names of earlier
    versions, kept for scripts that call them."""
    kept = copy.copy(command)
    kept.hidden = True
    main.add_command(kept, old_name)


_alias(batch, "rejets")
_alias(typology, "typologie")
_alias(compare, "comparer")
