"""Screenshots of the web page for reports/web/: patient and clinician views, desktop and phone.

Serves the app over the two demo patients (answers composed from the record, no model), signs
in with a clinician (admin) token and a patient's token, asks one question, opens a cited
source and the timeline, and saves a PNG of each state at 1366×900 and 390×844. Uses Debian's
Chromium through Playwright (``/usr/bin/chromium``)::

    .venv/bin/python scripts/web_screenshots.py [--out reports/web]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser.live import demo_app, demo_home, launch_chromium, live_server  # noqa: E402

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
QUESTION = "What was my most recent HbA1c?"
TIMEOUT_MS = 60_000


def shoot(browser: object, url: str, token: str, view: str, size: str, out: Path) -> list[Path]:
    """Sign in, ask, open the source, then the timeline; one PNG after each."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=SIZES[size])  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(url + "/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    box = page.get_by_role("combobox", name="Patient")
    if view == "clinician":
        box.fill("Myron")
        page.get_by_role("option", name="Myron Schuster").click()
    expect(page.locator("#patient-summary")).to_contain_text("records", timeout=TIMEOUT_MS)
    page.get_by_label("Question about the record").fill(QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator(".msg.answer").last
    expect(answer.locator(".answer-actions")).to_be_visible(timeout=TIMEOUT_MS)
    shots = [out / f"{view}-{size}-answer.png"]
    page.screenshot(path=str(shots[-1]))
    answer.locator("button.cite").first.click()
    expect(page.locator("#viewer .facts")).to_be_visible(timeout=TIMEOUT_MS)
    shots.append(out / f"{view}-{size}-source.png")
    page.screenshot(path=str(shots[-1]))
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Timeline").click()
    expect(page.locator("#lab-chart svg circle.dot").first).to_be_visible(timeout=TIMEOUT_MS)
    shots.append(out / f"{view}-{size}-timeline.png")
    page.screenshot(path=str(shots[-1]))
    context.close()
    return shots


def main() -> None:
    """Write the screenshots and print their paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "web")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        demo = demo_home(Path(tmp))
        tokens = {"clinician": demo.admin_token, "patient": demo.scoped_token}
        with demo_app(demo.home) as app, live_server(app) as url, sync_playwright() as pw:
            browser = launch_chromium(pw)
            for view, token in tokens.items():
                for size in SIZES:
                    for path in shoot(browser, url, token, view, size, args.out):
                        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
            browser.close()


if __name__ == "__main__":
    main()
