"""The real app on a loopback port in a background thread, for browser tests and screenshots.

:func:`demo_home` fills a data directory with demo patients, the demo hospital documents
(indexed with the ``hash`` embedder, so no model is loaded) and an admin token;
:func:`live_server` serves an app under uvicorn until the context ends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ehrqa.lab.data.demo import DEMO_CDS_PATIENT, DEMO_PATIENT, demo_corpus_dir, demo_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DEMO_PATIENTS = (DEMO_PATIENT, DEMO_CDS_PATIENT)
# What the scripted model says when a test asks for answer mode "model".
FAKE_REPLY = "Your most recent HbA1c was 5.8 % on 2024-05-06."


@dataclass
class DemoHome:
    """A data directory ready to serve: where it is and the admin and scoped tokens."""

    home: Path
    admin_token: str
    scoped_token: str


def demo_home(home: Path) -> DemoHome:
    """Ingest the demo patients and documents into ``home`` and create two tokens."""
    from ehrqa.api.tokens import TokenStore
    from ehrqa.docs import open_library
    from ehrqa.ingest.files import ingest_paths
    from ehrqa.store import open_store

    store = open_store(home)
    try:
        ingest_paths(store, [demo_dir() / f"patient-{pid}.json.gz" for pid in DEMO_PATIENTS])
    finally:
        store.close()
    library = open_library(home, embedder="hash")
    try:
        library.add(sorted(demo_corpus_dir().glob("*.md")))
    finally:
        library.close()
    tokens = TokenStore.in_home(home)
    try:
        admin = tokens.create("browser-test-admin", admin=True)
        scoped = tokens.create("browser-test-patient", patients=[DEMO_PATIENT])
    finally:
        tokens.close()
    return DemoHome(home, admin, scoped)


@contextmanager
def demo_app(home: Path, *, auth: bool = True) -> Iterator[Any]:
    """The app over ``home``: answers composed from the record by default, and a scripted
    model (:data:`FAKE_REPLY`, streamed word by word) when a request asks for mode "model"."""
    from ehrqa.api.app import create_app
    from ehrqa.api.tokens import TokenStore
    from ehrqa.core.config import EhrqaConfig
    from ehrqa.docs import open_library
    from ehrqa.lab.data.demo import DEMO_NOW
    from ehrqa.llm.fake import FakeChatModel
    from ehrqa.store import open_store

    config = EhrqaConfig(home=str(home), answer_mode="extractive", embedder="hash")
    store = open_store(home)
    library = open_library(home, embedder="hash")
    tokens = TokenStore.in_home(home) if auth else None
    model = FakeChatModel(default_reply=FAKE_REPLY)
    try:
        yield create_app(
            config, store=store, library=library, now=DEMO_NOW, auth=tokens, model=model
        )
    finally:
        store.close()
        library.close()
        if tokens is not None:
            tokens.close()


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL (``http://127.0.0.1:N``)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start within 20 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, with nothing that reaches the network."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
    )
