"""The HTTP API over one shared demo home: two demo patients and the demo corpus.

The record store and the document library are built once per session and only read; each
test gets its own token store, feedback store and app (cheap), so tokens and audit logs
never leak between tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ehrqa.api.app import create_app
from ehrqa.api.tokens import TokenStore
from ehrqa.core.config import EhrqaConfig
from ehrqa.docs import DocumentLibrary, open_library
from ehrqa.ingest.files import ingest_paths
from ehrqa.lab.data.demo import DEMO_CDS_PATIENT, DEMO_NOW, DEMO_PATIENT, demo_corpus_dir, demo_dir
from ehrqa.store import SqliteStore


@dataclass
class DemoHome:
    """The shared, read-only demo data."""

    path: Path
    store: SqliteStore
    library: DocumentLibrary


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoHome]:
    """A store with two demo patients and a library of the demo corpus (hash embedder)."""
    home = tmp_path_factory.mktemp("api-home")
    store = SqliteStore(home / "store.sqlite3")
    files = [demo_dir() / f"patient-{pid}.json.gz" for pid in (DEMO_PATIENT, DEMO_CDS_PATIENT)]
    assert not ingest_paths(store, files).issues
    library = open_library(home, embedder="hash")
    library.add([demo_corpus_dir()])
    yield DemoHome(home, store, library)
    library.close()
    store.close()


@dataclass
class Api:
    """A test client with tokens: ``admin``, ``scoped`` (the demo patient) and ``revoked``."""

    client: TestClient
    tokens: TokenStore
    home: Path
    secrets: dict[str, str] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        """The Authorization header of the token ``name``."""
        return {"Authorization": f"Bearer {self.secrets[name]}"}

    def get(self, url: str, as_: str = "admin", **kwargs: Any) -> Any:
        """GET with the token ``as_``."""
        return self.client.get(url, headers=self.auth(as_), **kwargs)

    def post(self, url: str, as_: str = "admin", **kwargs: Any) -> Any:
        """POST with the token ``as_`` (extra headers merged)."""
        headers = {**self.auth(as_), **kwargs.pop("headers", {})}
        return self.client.post(url, headers=headers, **kwargs)


@pytest.fixture
def make_api(demo_home: DemoHome, tmp_path: Path) -> Callable[..., Api]:
    """Build an :class:`Api` over the demo home; keyword arguments go to ``create_app``."""

    def make(**kwargs: Any) -> Api:
        tokens = TokenStore.in_home(tmp_path)
        secrets = {
            "admin": tokens.create("admin", admin=True),
            "scoped": tokens.create("scoped", patients=[DEMO_PATIENT]),
            "revoked": tokens.create("revoked", admin=True),
        }
        tokens.revoke("revoked")
        kwargs.setdefault("store", demo_home.store)
        kwargs.setdefault("library", demo_home.library)
        kwargs.setdefault("now", DEMO_NOW)
        kwargs.setdefault("auth", tokens)
        config = EhrqaConfig(home=str(tmp_path), embedder="hash", answer_mode="extractive")
        app = create_app(config, **kwargs)
        # Loopback: without tokens the app refuses other Host names (DNS rebinding).
        return Api(TestClient(app, base_url="http://127.0.0.1"), tokens, tmp_path, secrets)

    return make


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The API with access control, over the demo home, with no model."""
    return make_api()
