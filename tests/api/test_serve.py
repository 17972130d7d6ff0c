"""``ehrqa serve`` and the app over a data directory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ehrqa.api.app import create_app, home_app, serve
from ehrqa.api.tokens import TokenStore
from ehrqa.core.config import load_config
from ehrqa.core.errors import ConfigError
from ehrqa.docs import open_library

LOCAL = "http://127.0.0.1"  # without tokens the app answers loopback Host names only


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.org", "::"])
def test_serve_refuses_no_auth_off_the_machine(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="without access control"):
        serve(load_config(overrides={"home": str(tmp_path)}), host=host, no_auth=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"audit_text": True}, "add --audit"),
        ({}, "no active token"),
    ],
)
def test_serve_refuses_unclear_options(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        serve(load_config(overrides={"home": str(tmp_path)}), host="0.0.0.0", **options)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What serve hands uvicorn (uvicorn.run replaced: nothing listens)."""
    calls: list[dict[str, Any]] = []

    def run(app: FastAPI, **options: Any) -> None:
        client = TestClient(app, base_url=LOCAL)
        calls.append({**options, "me": client.get("/v1/me").status_code, "app": app})

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def test_serve_with_tokens_may_listen_beyond_loopback(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    TokenStore.in_home(tmp_path).create("admin", admin=True)
    serve(load_config(overrides={"home": str(tmp_path)}), host="0.0.0.0", audit=True)
    (call,) = served
    assert call["host"] == "0.0.0.0" and call["access_log"] is False
    assert call["me"] == 401
    assert call["app"].state.ehrqa.audit.path == tmp_path / "audit.jsonl"


def test_serve_without_auth_on_loopback_acts_as_admin(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    serve(load_config(overrides={"home": str(tmp_path)}), host="127.0.0.1", no_auth=True)
    assert served[0]["me"] == 200
    assert served[0]["app"].state.ehrqa.audit is None


def test_home_app_opens_the_store_and_an_existing_library(tmp_path: Path) -> None:
    config = load_config(overrides={"home": str(tmp_path), "embedder": "hash"})
    with home_app(config) as app:
        assert TestClient(app, base_url=LOCAL).get("/healthz").json()["library"] is False
    (tmp_path / "p.md").write_text(
        "# Sepsis\n\n## Treatment\n\nGive antibiotics within one hour.\n"
    )
    library = open_library(tmp_path, embedder="hash")
    library.add([tmp_path / "p.md"])
    library.close()
    with home_app(config) as app:
        health = TestClient(app, base_url=LOCAL).get("/healthz").json()
    assert health == {"status": "ok", "store": True, "library": True}


def test_an_unexpected_error_is_a_json_500_and_its_text_stays_out_of_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(overrides={"home": str(tmp_path)})
    app = create_app(config)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("Patient Ada Lovelace asked about her HIV test")

    with caplog.at_level(logging.DEBUG):
        response = TestClient(app, base_url=LOCAL).get("/boom")  # re-raised errors would fail here
    assert response.status_code == 500
    assert response.json()["error"] == "InternalError"
    assert "Lovelace" not in response.text
    assert "RuntimeError" in caplog.text and "Lovelace" not in caplog.text


def test_no_page_needs_a_cdn(tmp_path: Path) -> None:
    client = TestClient(create_app(load_config(overrides={"home": str(tmp_path)})), base_url=LOCAL)
    assert client.get("/openapi.json").status_code == 200
    for path in ("/docs", "/redoc"):  # Swagger UI and ReDoc load scripts from a CDN
        assert client.get(path).status_code == 404
    assert "cdn" not in client.get("/").text.lower()
