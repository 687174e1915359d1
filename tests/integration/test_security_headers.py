"""Headers for browsers (issue #30, point 8): every answer is ``nosniff``;
the page runs only its own files (a CSP with no inline script, no other
origin, no framing). The page itself is checked in a real browser, with no
CSP violation in its console, by tests/e2e/test_page.py."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.api.app import create_app, read_only_engine


def test_the_page_allows_only_its_own_files_and_no_frame(database_url: str) -> None:
    app = create_app(read_only_engine(database_url, 1), cache_bytes=2**20)
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200
        policy = dict(
            part.strip().split(" ", 1)
            for part in page.headers["content-security-policy"].split(";")
        )
        assert policy["script-src"] == "'self'" and "'unsafe-inline'" not in policy["style-src"]
        assert policy["frame-ancestors"] == "'none'" and page.headers["x-frame-options"] == "DENY"
        for path in ("/", "/static/page.js", "/indicateurs?departement=33", "/livez", "/nope"):
            for _ in range(2):  # the second from the response cache, where it keeps answers
                answer = client.get(path)
                assert answer.headers["x-content-type-options"] == "nosniff", path
        tag = client.get("/indicateurs?departement=33").headers["etag"]
        unchanged = client.get("/indicateurs?departement=33", headers={"If-None-Match": tag})
        assert unchanged.status_code == 304
        assert unchanged.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in client.get("/indicateurs").headers
        assert "content-security-policy" not in client.get("/docs").headers  # FastAPI's own
