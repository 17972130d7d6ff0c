"""The routes that serve the web page: types, caching, security headers, no path escapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ehrqa.api import web_routes
from ehrqa.api.web_routes import STATIC_DIR, static_path
from ehrqa.core.errors import EhrqaError, NotFoundError


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(web_routes.router)

    @app.exception_handler(EhrqaError)
    def _not_found(request: object, exc: EhrqaError) -> object:
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=404)

    return TestClient(app)


@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/static/index.html", "text/html; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/api.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/favicon.svg", "image/svg+xml"),
    ],
)
def test_files_are_served_with_their_type(client: TestClient, url: str, content_type: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_an_unchanged_file_is_not_sent_again(client: TestClient) -> None:
    first = client.get("/static/app.js")
    etag = first.headers["etag"]
    again = client.get("/static/app.js", headers={"If-None-Match": f'"other", W/{etag}'})
    assert again.status_code == 304
    assert again.content == b""
    assert client.get("/static/app.js", headers={"If-None-Match": '"x"'}).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/static/missing.js",
        "/static/../web_routes.py",
        "/static/..%2Fweb_routes.py",
        "/static/%2e%2e/%2e%2e/errors.py",
        "/static/",
        "/static/app.js.map",
    ],
)
def test_nothing_else_is_served(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert "web_routes" not in response.text or response.json()["error"] == "NotFoundError"


@pytest.mark.parametrize(
    "name",
    ["../web_routes.py", "/etc/passwd", "..", "", "sub/../../app.py", "README", "x.exe"],
)
def test_static_path_refuses(name: str) -> None:
    with pytest.raises(NotFoundError, match="no web page file"):
        static_path(name)


def test_static_path_refuses_a_link_out(tmp_path: Path) -> None:
    root = tmp_path / "static"
    root.mkdir()
    (tmp_path / "secret.js").write_text("x")
    (root / "link.js").symlink_to(tmp_path / "secret.js")
    (root / "ok.js").write_text("y")
    assert static_path("ok.js", root) == (root / "ok.js").resolve()
    with pytest.raises(NotFoundError):
        static_path("link.js", root)


def test_every_page_asset_is_served() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    for name in ("app.js", "app.css", "favicon.svg"):
        assert f"/static/{name}" in html
        static_path(name)
    for module in ("api.js", "chart.js", "cite.js", "dom.js"):
        assert f'"./{module}"' in (STATIC_DIR / "app.js").read_text()
        static_path(module)


def test_the_readable_units_come_from_the_one_table(client: TestClient) -> None:
    response = client.get("/static/units.json")
    assert response.status_code == 200
    assert response.json()["mm[Hg]"] == "mmHg"
    assert "Content-Security-Policy" in response.headers
