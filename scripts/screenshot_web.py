"""Take the README screenshots of the web page: the demo patient, a question, a citation.

Builds a throw-away data directory with the demo patients and documents, serves the app on
a loopback port (answers composed from the record, no language model), drives Debian's
Chromium headless at 1366×768 and writes ``reports/web/screenshot.png`` (ask and cite),
``reports/web/timeline.png`` and ``reports/web/decision-support.png``.

    .venv/bin/python scripts/screenshot_web.py [--out reports/web]

Needs ``pip install playwright`` and ``apt-get install chromium`` (no browser download).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser.live import demo_app, demo_home, launch_chromium, live_server  # noqa: E402
from ehrqa.lab.data.demo import DEMO_CDS_CONDITION, DEMO_QUESTIONS  # noqa: E402

VIEWPORT = {"width": 1366, "height": 768}
TIMEOUT_MS = 60_000


def take(out: Path) -> list[Path]:
    """Serve the demo, drive the page and save the screenshots under ``out``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ehrqa-web-") as tmp:
        demo = demo_home(Path(tmp))
        with demo_app(demo.home) as app, live_server(app) as url, sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            shots = [
                ask_and_cite(page, url, demo.admin_token, out / "screenshot.png"),
                timeline(page, out / "timeline.png"),
                decision_support(page, out / "decision-support.png"),
            ]
            browser.close()
    return shots


def ask_and_cite(page: Page, url: str, token: str, path: Path) -> Path:
    """Sign in, choose Myron Schuster, ask two demo questions and open a citation."""
    page.goto(url + "/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("combobox", name="Patient").fill("Myron")
    page.get_by_role("option", name="Myron Schuster").click()
    for question in (DEMO_QUESTIONS[1], DEMO_QUESTIONS[0]):
        ask(page, question)
    page.locator(".msg.answer").last.locator("button.cite").first.click()
    page.locator("#viewer .facts").wait_for()
    page.locator("#selected-panel summary").click()
    page.screenshot(path=str(path))
    return path


def ask(page: Page, question: str) -> None:
    """Ask one question and wait for its checked answer."""
    count = page.locator(".answer-text").count()
    page.get_by_label("Question about the record").fill(question)
    page.get_by_role("button", name="Ask").click()
    page.locator(".answer-text").nth(count).wait_for()


def timeline(page: Page, path: Path) -> Path:
    """The HbA1c chart and the record over time."""
    page.get_by_role("tab", name="Timeline").click()
    page.locator("#lab-chart svg path.line").wait_for()
    page.locator("#lab-chart circle.dot").last.click()
    page.locator("#viewer .facts").wait_for()
    page.screenshot(path=str(path))
    return path


def decision_support(page: Page, path: Path) -> Path:
    """Treatment advice for the decision-support demo patient, with its safety warnings."""
    page.get_by_role("combobox", name="Patient").fill("Verna")
    page.get_by_role("option", name="Verna Satterfield").click()
    page.get_by_role("tab", name="Decision support").click()
    page.get_by_label("Condition", exact=True).fill(DEMO_CDS_CONDITION)
    page.get_by_role("button", name="Treatment").click()
    page.locator("#cds-output .notice").wait_for()
    page.locator("#cds-output button.cite").first.click()
    page.locator("#viewer-body > div").wait_for()
    page.screenshot(path=str(path))
    return path


def main() -> None:
    """Parse ``--out`` and take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "web")
    for path in take(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
