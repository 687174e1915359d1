"""``itte referentiel``: an edition of the map no release ships, loaded
while the services run (services/aggregator/charge.py does the database's
part), then published for the cleaners (schemas/editions.py)."""

from __future__ import annotations

import tarfile
from pathlib import Path

from common import referential
from common.kafka import BlockingProducer, ensure_topics_for
from common.referential.registry import PACKAGE, edition_files, fetch
from common.servers import Servers
from common.settings import CommonSettings
from schemas import editions
from services.aggregator.charge import Charged, charge


class Unreadable(ValueError):
    """Files that cannot be read as an edition: says why."""


def read_files(path: Path) -> dict[str, bytes]:
    """An edition's :data:`referential.FILES` from a folder or a tar archive
    (gzipped or not), as ``itte referentiel exporter`` writes them."""
    if path.is_dir():
        return {
            name: (path / name).read_bytes()
            for name in referential.FILES
            if (path / name).is_file()
        }
    try:
        with tarfile.open(path) as archive:
            found: dict[str, bytes] = {}
            for member in archive:
                name = Path(member.name).name
                if member.isfile() and name in referential.FILES:
                    read = archive.extractfile(member)
                    assert read is not None  # a regular file has its content
                    found[name] = read.read()
            return found
    except (OSError, tarfile.TarError) as bad:
        raise Unreadable(f"{path}: neither a folder nor a tar archive ({bad})") from None


def export(millesime: int, out: Path) -> list[Path]:
    """A shipped edition's files into the folder ``out``: to read, or to
    change into an edition to load."""
    try:
        files = referential.shipped_files(millesime)
    except ValueError as none:
        raise Unreadable(str(none)) from None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        (out / name).write_bytes(content)
        written.append(out / name)
    return written


def from_package(version: str, registry: str) -> dict[str, bytes]:
    """An edition's files from the registry package's ``version``."""
    if not registry.startswith(("https://", "http://")):
        raise Unreadable(f"{registry[:80]!r}: the registry is an http(s) address")
    try:
        return edition_files(fetch(version, registry), version)
    except (OSError, ValueError, KeyError, tarfile.TarError) as bad:
        raise Unreadable(f"{PACKAGE}@{version} from {registry}: {bad}") from None


def load(
    settings: CommonSettings, servers: Servers, millesime: int, files: dict[str, bytes]
) -> Charged:
    """Check, load into the database, then publish: a run that stops
    between the two is run again (the database part is then a no-op)."""
    ref = referential.from_files(files, millesime)
    charged = charge(servers.database_url, ref, files)
    ensure_topics_for(settings, servers)
    with BlockingProducer(servers.kafka_bootstrap_servers, **servers.kafka_security) as producer:
        producer.send_all(editions.TOPIC, [editions.pack(millesime, files)])
    return charged
