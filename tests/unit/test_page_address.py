"""A territory's address (``/?niveau=…&code=…``): the page comes titled and
described for it, whatever its name holds."""

from __future__ import annotations

from html.parser import HTMLParser

from services.api.models import Territoire
from services.api.routes.page import PAGE, TITLE, described


class Head(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title, self.meta, self._in_title = "", {}, False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self._in_title = tag == "title"
        if tag == "meta" and (key := found.get("property") or found.get("name")):
            self.meta[key] = found.get("content")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def test_the_page_is_titled_and_described_for_the_territory() -> None:
    assert PAGE.count(TITLE) == 1  # what is replaced is there, once
    head = Head()
    head.feed(described(Territoire(niveau="epci", code="200066793", nom="CA du Grand Annecy")))
    assert head.title.startswith("CA du Grand Annecy (EPCI) — ")
    assert head.meta["og:title"] == head.title
    assert "CA du Grand Annecy (EPCI)" in head.meta["description"]
    assert head.meta["og:description"] == head.meta["description"]


def test_a_name_cannot_write_markup() -> None:
    hostile = 'A"><script>alert(1)</script>&'
    page = described(Territoire(niveau="commune", code="01001", nom=hostile))
    assert "<script>alert" not in page
    head = Head()
    head.feed(page)
    assert head.title.startswith(hostile) and head.meta["og:title"].startswith(hostile)
