"""``ehrqa serve`` and the app over a data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ehrqa.api.app import home_app, serve
from ehrqa.config import load_config
from ehrqa.docs import open_library
from ehrqa.errors import ConfigError


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.org", "::"])
def test_serve_refuses_to_leave_the_machine(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="without access control"):
        serve(load_config(overrides={"home": str(tmp_path)}), host=host)


def test_home_app_opens_the_store_and_an_existing_library(tmp_path: Path) -> None:
    config = load_config(overrides={"home": str(tmp_path), "embedder": "hash"})
    with home_app(config) as app:
        assert TestClient(app).get("/healthz").json()["library"] is False
    (tmp_path / "p.md").write_text(
        "# Sepsis\n\n## Treatment\n\nGive antibiotics within one hour.\n"
    )
    library = open_library(tmp_path, embedder="hash")
    library.add([tmp_path / "p.md"])
    library.close()
    with home_app(config) as app:
        health = TestClient(app).get("/healthz").json()
    assert health == {"status": "ok", "store": True, "library": True}
