"""An edition of the map as files (``itte referentiel charger``'s input, the
editions topic's messages): read back as it was written, and any other
bytes refused with a reason naming the file, never another error."""

from __future__ import annotations

import gzip
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import referential
from common.referential import FILES, BadEdition, from_files
from schemas import editions
from tests.editions import REF, files_of, next_edition

EDITION, NAMES = next_edition()


def test_an_edition_reads_back_as_it_was_written() -> None:
    files = files_of(EDITION)
    read = from_files(files, 2027)
    assert (read.version, read.millesime) == ("test-2027", 2027)
    assert read.communes == EDITION.communes
    assert read.former_codes == EDITION.former_codes
    assert read.ambiguous_codes == EDITION.ambiguous_codes
    assert (read.epci, read.departements, read.regions) == (
        EDITION.epci,
        EDITION.departements,
        EDITION.regions,
    )
    assert read.arrondissements == REF.arrondissements
    # A code of the edition before lands on the commune nouvelle.
    assert referential.locate(NAMES["a"], read) == (NAMES["a"], NAMES["born"])


def test_every_shipped_edition_reads_from_its_files() -> None:
    for year in referential.EDITIONS:
        shipped = referential.edition(year)
        assert from_files(files_of(shipped), year).communes == shipped.communes


def bad(files: dict[str, bytes], name: str, content: bytes | None) -> dict[str, bytes]:
    changed = dict(files)
    if content is None:
        del changed[name]
    else:
        changed[name] = content
    return changed


def table(header: str, *rows: str) -> bytes:
    return gzip.compress("\n".join((header, *rows)).encode() + b"\n")


GOOD = files_of(EDITION)
# A few communes: a property's hundreds of examples each read all of it.
FEW = sorted(EDITION.communes)[:20]
SMALL = files_of(
    replace(
        EDITION,
        communes={code: EDITION.communes[code] for code in FEW},
        former_codes={old: new for old, new in EDITION.former_codes.items() if new in FEW},
        ambiguous_codes={},
    )
)
COMMUNES = "code,nom,departement,region,epci,population"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("communes.csv.gz", None, "communes.csv.gz is missing"),
        ("VERSION", None, "VERSION is missing"),
        ("VERSION", b"", "one line of text"),
        ("VERSION", b"a\x00b", "one line of text"),
        ("VERSION", b"x" * 201, "at most 200"),
        ("VERSION", b"\xff\xfe", "not UTF-8"),
        ("epci.csv.gz", b"not gzip", "epci.csv.gz is not gzipped UTF-8"),
        ("regions.csv.gz", gzip.compress(b"\xff\xfe"), "regions.csv.gz is not gzipped UTF-8"),
        ("communes.csv.gz", table("code,nom"), "lacks the column(s) departement"),
        ("communes.csv.gz", table(COMMUNES), "holds no commune"),
        ("epci.csv.gz", gzip.compress(b"\n" * (65 << 20)), "inflates beyond 64 MB"),
        ("communes.csv.gz", table(COMMUNES, "3306,X,33,75,,1"), "'3306' is not a commune code"),
        ("communes.csv.gz", table(COMMUNES, "33063,X,99,75,,1"), "département '99'"),
        ("communes.csv.gz", table(COMMUNES, "33063,X,33,75,,many"), "invalid literal"),
        ("communes.csv.gz", table(COMMUNES, "33063,X"), "line 2 has not as many fields"),
        ("regions.csv.gz", table("code,nom", "75,A,extra"), "line 2 has not as many fields"),
        ("anciens_codes.csv.gz", table("ancien,actuel", "33999,00000"), "'33999' → '00000'"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_files_that_are_no_edition_are_refused_naming_the_file(
    name: str, content: bytes | None, reason: str
) -> None:
    with pytest.raises(BadEdition, match=reason.replace("(", r"\(").replace(")", r"\)")):
        from_files(bad(GOOD, name, content), 2027)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FILES), st.binary(max_size=300))
def test_any_bytes_as_any_file_are_an_edition_or_refused(name: str, content: bytes) -> None:
    try:
        read = from_files(bad(SMALL, name, content), 2027)
    except BadEdition as refused:  # the only refusal there is
        assert str(refused)  # and it says why
    else:
        assert read.millesime == 2027 and read.communes


def test_an_edition_message_carries_its_year_and_files() -> None:
    key, value = editions.pack(2027, GOOD)
    assert key == b"2027"
    assert editions.unpack(key, value) == (2027, GOOD)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=8)), st.one_of(st.none(), st.binary(max_size=2000)))
def test_any_message_unpacks_or_is_refused(key: bytes | None, value: bytes | None) -> None:
    try:
        millesime, files = editions.unpack(key, value)
    except ValueError as refused:  # the only refusal there is
        assert str(refused)  # and it says why
    else:
        assert str(millesime).encode() == (key or b"").strip() or int(key or b"") == millesime
        assert all(isinstance(content, bytes) for content in files.values())
