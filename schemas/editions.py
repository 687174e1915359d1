"""``indicators.editions``: the editions of the map loaded by `itte
referentiel charger` (issue #29), for the services that place records
without the database (the cleaner, the ingestor's producer scopes).

One message an edition, compacted: the key is its year (``2027``), the
value a tar archive of its files (``common.referential.FILES``, as
``scripts/build_referential.py`` writes them). The newest year is the
current edition.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping

TOPIC = "indicators.editions"
MAX_FILE_BYTES = 16 * 1024 * 1024  # an edition's files are about 0.5 MB


def pack(millesime: int, files: Mapping[str, bytes]) -> tuple[bytes, bytes]:
    """(key, value) of the edition's message."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, content in sorted(files.items()):
            member = tarfile.TarInfo(name)
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return str(millesime).encode(), out.getvalue()


def unpack(key: bytes | None, value: bytes | None) -> tuple[int, dict[str, bytes]]:
    """(year, files) of a message, else ValueError saying why."""
    try:
        millesime = int((key or b"").decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"the key {key!r:.40} is no year") from None
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(value or b""), mode="r:") as archive:
            for member in archive:
                if not member.isfile() or member.size > MAX_FILE_BYTES:
                    raise ValueError(f"{member.name[:40]!r} is no edition file")
                read = archive.extractfile(member)
                assert read is not None  # a regular file has its content
                files[member.name] = read.read()
    except tarfile.TarError as bad:
        raise ValueError(f"the value is no tar archive: {bad}") from None
    return millesime, files
