"""Fixtures for the browser tests: the real app on a loopback port and headless Chromium.

The tests are skipped, with the reason, when the ``playwright`` package or Debian's
Chromium (``/usr/bin/chromium``) is missing. Screenshots of every browser test go to
``$EHRQA_TEST_ARTIFACTS`` (default ``build/test-artifacts/``).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.live import CHROMIUM, DemoHome, demo_app, demo_home, launch_chromium, live_server

REPO = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1366, "height": 768}


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing: pip install playwright"
    if not CHROMIUM.is_file():
        return f"Chromium is missing at {CHROMIUM}: apt-get install chromium"
    return None


def artifacts_dir() -> Path:
    """Where screenshots go: $EHRQA_TEST_ARTIFACTS or build/test-artifacts/."""
    folder = Path(os.environ.get("EHRQA_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoHome:
    """A data directory with two demo patients, the demo documents and two tokens."""
    return demo_home(tmp_path_factory.mktemp("web-home"))


@pytest.fixture(scope="session")
def base_url(demo: DemoHome) -> Iterator[str]:
    """The app with access control on, served on a free loopback port."""
    with demo_app(demo.home) as app, live_server(app) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (the tests skip when it or playwright is missing)."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def js_page(browser: Any, base_url: str) -> Iterator[Any]:
    """One tab on the page, shared by the tests of its pure JavaScript functions."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(base_url + "/")
    yield page
    context.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh tab at 1366×768; its last state is saved as a screenshot artifact."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    page.screenshot(path=str(artifacts_dir() / f"{name}.png"))
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
