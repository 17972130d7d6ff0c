"""The page on phones and desktops, the patient and clinician views, progress, stop, retry,
follow-ups, copy/print, the lab chart from the keyboard, axe-core and keyboard-only use.

axe-core comes from npm (``make axe`` installs ``tests/browser/axe/node_modules``); its test
skips, saying so, when it is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.live import DemoHome

pytest.importorskip("playwright", reason="the browser tests need: pip install playwright")
from playwright.sync_api import Page, Route, expect

TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
QUESTION = "What was my most recent HbA1c?"
RESULT = {
    "answer": "Your HbA1c was 7.1 % [Observation/abc].",
    "source": "extractive",
    "verified": True,
    "citations": ["Observation/abc"],
    "selected": [{"ref": "Observation/abc", "score": 0.9, "reasons": ["code match"]}],
}


def sse(events: list[tuple[str, Any]]) -> str:
    """A Server-Sent Events body of ``(event, data)`` pairs."""
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


@pytest.fixture
def phone(browser: Any) -> Iterator[Page]:
    """A fresh tab at phone size (390×844)."""
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    yield context.new_page()
    context.close()


def sign_in(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url + "/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#main")).to_be_visible()


def pick(page: Page, name: str = "Myron Schuster") -> None:
    page.get_by_role("combobox", name="Patient").fill(name.split()[0])
    page.get_by_role("option", name=name).click()
    expect(page.locator("#patient-summary")).to_contain_text("records", timeout=TIMEOUT_MS)


def ask(page: Page, question: str = QUESTION) -> Any:
    page.get_by_label("Question about the record").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator(".msg.answer").last
    return answer


def width(page: Page, selector: str) -> float:
    return float(page.locator(selector).first.evaluate("e => e.getBoundingClientRect().width"))


# --- layout ----------------------------------------------------------------------------------


def test_the_page_fits_a_phone(phone: Page, base_url: str, demo: DemoHome) -> None:
    sign_in(phone, base_url, demo.admin_token)
    pick(phone)
    assert width(phone, "#patient-search") >= 200
    assert width(phone, "#chat-log") >= 300
    assert width(phone, "#question") >= 300
    expect(phone.locator("#viewer")).to_be_hidden()  # no source panel over the chat
    answer = ask(phone)
    expect(answer.locator(".answer-actions")).to_be_visible(timeout=TIMEOUT_MS)
    answer.locator("button.cite").first.click()
    expect(phone.locator("#viewer .facts")).to_be_visible()
    assert width(phone, "#viewer") <= PHONE["width"]
    phone.get_by_role("button", name="Close").click()
    expect(phone.locator("#viewer")).to_be_hidden()
    scroll = phone.evaluate("document.documentElement.scrollWidth")
    assert scroll <= PHONE["width"], "the page scrolls sideways"


# --- the two views ---------------------------------------------------------------------------


def test_a_patients_token_gets_the_patient_view(page: Page, base_url: str, demo: DemoHome) -> None:
    sign_in(page, base_url, demo.scoped_token)
    expect(page.locator("#who-label")).to_contain_text("patient view")
    expect(page.get_by_role("tab", name="Decision support")).to_have_count(0)
    expect(page.locator("#answer-mode")).to_be_hidden()
    expect(page.locator("#tab-cds")).to_be_hidden()
    expect(page.locator("#patient-summary")).to_contain_text("records", timeout=TIMEOUT_MS)
    answer = ask(page)
    expect(answer.locator(".answer-actions")).to_be_visible(timeout=TIMEOUT_MS)
    expect(answer.locator(".badge")).to_have_count(0)
    expect(answer.locator("button.cite").first).to_have_text("source 1")
    page.locator("#selected-panel summary").click()
    expect(page.locator("#selected-body")).not_to_contain_text("Score")
    answer.locator("button.cite").first.click()
    expect(page.locator("#viewer .facts")).to_contain_text("Hemoglobin A1c")
    expect(page.locator("#viewer .facts")).to_contain_text("2024")  # "6 May 2024"
    expect(page.locator("#viewer .raw")).to_have_count(0)
    page.get_by_role("tab", name="Timeline").click()
    expect(page.locator("#events li.event").first).to_be_visible(timeout=TIMEOUT_MS)
    events = page.locator("#events").inner_text()
    assert "(procedure)" not in events, [x for x in events.splitlines() if "(procedure)" in x]
    assert "Visit" in events
    rows = page.locator("#lab-table tbody tr")
    expect(rows.first).to_be_visible()
    assert page.locator("#lab-table").inner_text().count("High") >= 1
    assert "[" not in page.locator("#lab-select").inner_text()


def test_a_clinicians_token_gets_every_tool(page: Page, base_url: str, demo: DemoHome) -> None:
    sign_in(page, base_url, demo.admin_token)
    expect(page.locator("#who-label")).to_contain_text("clinician view")
    expect(page.get_by_role("tab", name="Decision support")).to_be_visible()
    expect(page.get_by_label("Answer mode")).to_be_visible()
    pick(page)
    answer = ask(page)
    expect(answer.locator(".badge").first).to_have_text("extractive", timeout=TIMEOUT_MS)
    page.locator("#selected-panel summary").click()
    expect(page.locator("table.selected th").nth(1)).to_have_text("Score")


# --- asking ----------------------------------------------------------------------------------


def test_the_sign_in_text_names_the_real_command(page: Page, base_url: str) -> None:
    page.goto(base_url + "/")
    expect(page.locator("#login")).to_contain_text("ehrqa tokens create")


def test_asking_before_picking_a_patient_says_so(page: Page, base_url: str, demo: DemoHome):
    sign_in(page, base_url, demo.admin_token)  # two patients: none is chosen
    page.get_by_label("Question about the record").fill(QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#no-patient")).to_contain_text("Choose a patient first")
    expect(page.get_by_role("combobox", name="Patient")).to_be_focused()


WATCH_PROGRESS = """() => {
    window.progress = [];
    new MutationObserver((records) => {
        for (const r of records) {
            if (!r.target.classList || !r.target.classList.contains('progress')) continue;
            for (const n of r.addedNodes) if (n.nodeType === 3) window.progress.push(n.data);
        }
    }).observe(document.getElementById('chat-log'), { subtree: true, childList: true });
}"""


def test_progress_then_the_answer_then_the_result(page: Page, base_url: str, demo: DemoHome):
    shown = {**RESULT, "answer": "First checked answer [Observation/abc]."}
    body = sse(
        [
            ("status", {"stage": "searching", "records": 3149}),
            ("answer", shown),
            ("status", {"stage": "writing"}),
            ("token", {"text": "UNCHECKED DRAFT"}),  # an older server: ignored
            ("result", RESULT),
        ]
    )
    page.route(
        "**/v1/patients/*/ask",
        lambda route: route.fulfill(headers={"Content-Type": "text/event-stream"}, body=body),
    )
    sign_in(page, base_url, demo.admin_token)
    pick(page)
    page.evaluate(WATCH_PROGRESS)
    answer = ask(page)
    expect(answer.locator(".answer-text")).to_have_text("Answer: " + RESULT["answer"])
    progress = page.evaluate("window.progress")
    assert "Searching 3,149 records…" in progress and "Writing…" in progress
    assert "UNCHECKED" not in page.locator("#chat-log").inner_text()


def test_stop_then_retry_keeps_the_question(page: Page, base_url: str, demo: DemoHome) -> None:
    held: list[Route] = []
    page.route(
        "**/v1/patients/*/ask", lambda route: held.append(route)
    )  # never answered: the request hangs
    sign_in(page, base_url, demo.admin_token)
    pick(page)
    answer = ask(page)
    expect(answer.locator(".progress")).to_be_visible()
    page.get_by_role("button", name="Stop").click()
    expect(answer.locator(".error")).to_have_text("Stopped.")
    expect(page.get_by_label("Question about the record")).to_have_value(QUESTION)
    page.unroute("**/v1/patients/*/ask")
    page.route(
        "**/v1/patients/*/ask",
        lambda route: route.fulfill(
            headers={"Content-Type": "text/event-stream"}, body=sse([("result", RESULT)])
        ),
    )
    answer.get_by_role("button", name="Retry").click()
    expect(answer.locator(".answer-text")).to_contain_text("7.1 %")
    expect(page.locator(".msg.question")).to_have_count(1)


def test_a_failed_request_keeps_the_question(page: Page, base_url: str, demo: DemoHome) -> None:
    page.route(
        "**/v1/patients/*/ask",
        lambda route: route.fulfill(status=504, json={"error": "Timeout", "message": "too long"}),
    )
    sign_in(page, base_url, demo.admin_token)
    pick(page)
    answer = ask(page)
    expect(answer.locator(".error")).to_contain_text("too long")
    expect(page.get_by_label("Question about the record")).to_have_value(QUESTION)
    expect(answer.get_by_role("button", name="Retry")).to_be_visible()


def test_follow_ups_share_the_conversation(page: Page, base_url: str, demo: DemoHome) -> None:
    bodies: list[dict[str, Any]] = []

    def fulfil(route: Route) -> None:
        bodies.append(json.loads(route.request.post_data or "{}"))
        result = {**RESULT, "resolved_question": "What was my HbA1c before that?"}
        route.fulfill(headers={"Content-Type": "text/event-stream"}, body=sse([("result", result)]))

    page.route("**/v1/patients/*/ask", fulfil)
    sign_in(page, base_url, demo.admin_token)
    pick(page)
    expect(ask(page).locator(".answer-actions")).to_be_visible()
    second = ask(page, "And before that?")
    expect(second.locator(".resolved")).to_contain_text("What was my HbA1c before that?")
    assert len(bodies) == 2
    assert (
        bodies[0]["conversation_id"]
        and bodies[0]["conversation_id"] == bodies[1]["conversation_id"]
    )


def test_suggested_questions_start_a_conversation(page: Page, base_url: str, demo: DemoHome):
    sign_in(page, base_url, demo.admin_token)
    pick(page)
    first = page.locator("#suggestions button").first
    expect(first).to_be_visible()
    text = first.inner_text()
    first.click()
    expect(page.locator(".msg.question")).to_contain_text(text)
    expect(page.locator("#suggestions")).to_be_hidden()
    expect(page.locator(".msg.answer .answer-text")).to_be_visible(timeout=TIMEOUT_MS)


def test_copy_and_print_an_answer_with_its_sources(browser: Any, base_url: str, demo: DemoHome):
    context = browser.new_context(viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.route(
        "**/v1/patients/*/ask",
        lambda route: route.fulfill(
            headers={"Content-Type": "text/event-stream"}, body=sse([("result", RESULT)])
        ),
    )
    sign_in(page, base_url, demo.admin_token)
    pick(page)
    answer = ask(page)
    answer.get_by_role("button", name="Copy").click()
    expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert QUESTION in copied and "7.1 %" in copied and "1. Observation/abc" in copied
    page.evaluate(
        "window.printed = []; window.print = () => window.printed.push(document.querySelector('.print-me') !== null); 0"
    )
    answer.get_by_role("button", name="Print").click()
    assert page.evaluate("window.printed") == [True]
    context.close()


def test_decision_support_can_be_stopped(page: Page, base_url: str, demo: DemoHome) -> None:
    held: list[Route] = []
    page.route("**/cds/summarize", lambda route: held.append(route))
    sign_in(page, base_url, demo.admin_token)
    pick(page)
    page.get_by_role("tab", name="Decision support").click()
    page.get_by_role("button", name="Summary").click()
    expect(page.locator("#cds-output .progress")).to_be_visible()
    page.locator("#cds-stop").click()
    expect(page.locator("#cds-output .error")).to_have_text("Stopped.")
    expect(page.get_by_role("button", name="Summary")).to_be_enabled()


# --- the lab chart ---------------------------------------------------------------------------


def test_chart_points_and_the_table_work_from_the_keyboard(
    page: Page, base_url: str, demo: DemoHome
) -> None:
    sign_in(page, base_url, demo.admin_token)
    pick(page)
    page.get_by_role("tab", name="Timeline").click()
    dot = page.locator("#lab-chart circle.dot").last
    expect(dot).to_be_visible(timeout=TIMEOUT_MS)
    assert dot.get_attribute("tabindex") == "0"
    assert "High" in (dot.get_attribute("aria-label") or "")
    dot.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#viewer .facts")).to_contain_text("Hemoglobin A1c")
    box = page.locator("#lab-table").bounding_box()
    assert box is not None and box["height"] > 50


# --- accessibility ---------------------------------------------------------------------------


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations on the page, one line each."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join('; ')})`)"
    )
    return list(found)


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("view", ["clinician", "patient"])
def test_axe_finds_no_serious_violation(
    browser: Any, base_url: str, demo: DemoHome, view: str, size: str
) -> None:
    if not AXE.is_file():
        pytest.skip(f"axe-core is missing at {AXE}: run `make axe` (needs npm)")
    context = browser.new_context(viewport=DESKTOP if size == "desktop" else PHONE, bypass_csp=True)
    page = context.new_page()
    sign_in(page, base_url, demo.admin_token if view == "clinician" else demo.scoped_token)
    assert axe_violations(page) == [], "before a patient is chosen"
    if view == "clinician":
        pick(page)
    expect(page.locator("#suggestions button").first).to_be_visible(timeout=TIMEOUT_MS)
    answer = ask(page)
    expect(answer.locator(".answer-actions")).to_be_visible(timeout=TIMEOUT_MS)
    answer.locator("button.cite").first.click()
    expect(page.locator("#viewer .facts")).to_be_visible()
    assert axe_violations(page) == [], "with an answer and its source"
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Timeline").click()
    expect(page.locator("#lab-chart circle.dot").first).to_be_visible(timeout=TIMEOUT_MS)
    assert axe_violations(page) == [], "on the timeline"
    context.close()


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until the element matching ``selector`` has focus."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_keyboard_only_pick_ask_read_and_open_a_source(
    browser: Any, base_url: str, demo: DemoHome, viewport: dict[str, int]
) -> None:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(base_url + "/")
    expect(page.get_by_label("Access token")).to_be_focused()
    page.keyboard.type(demo.admin_token)
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_visible()
    tab_to(page, "#patient-search")
    page.keyboard.type("Myron")
    expect(page.get_by_role("option", name="Myron Schuster")).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#patient-summary")).to_contain_text("records", timeout=TIMEOUT_MS)
    tab_to(page, "#question")
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    answer = page.locator(".msg.answer").last
    expect(answer.locator(".answer-text")).to_contain_text("%", timeout=TIMEOUT_MS)
    tab_to(page, ".msg.answer button.cite")
    page.keyboard.press("Enter")
    expect(page.locator("#viewer")).to_be_focused()
    expect(page.locator("#viewer .facts")).to_contain_text("Hemoglobin A1c")
    page.keyboard.press("Escape")
    expect(page.locator(".msg.answer button.cite").first).to_be_focused()
    context.close()
