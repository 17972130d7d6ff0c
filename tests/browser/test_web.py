"""The web page in headless Chromium against the real app (answers composed from the record).

Run with ``pytest tests/browser -q``; the tests skip when playwright or Chromium is missing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from browser.live import DemoHome, demo_app, live_server
from ehrqa.lab.data.demo import DEMO_PATIENT

pytest.importorskip("playwright", reason="the browser tests need: pip install playwright")
from playwright.sync_api import Page, Route, expect

TIMEOUT_MS = 30_000


def sign_in(page: Page, base_url: str, token: str) -> None:
    """Open the page and sign in with ``token``."""
    page.goto(base_url + "/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#main")).to_be_visible()


def pick_patient(page: Page, search: str, name: str) -> None:
    """Search for a patient and choose ``name`` from the list with the mouse."""
    page.get_by_role("combobox", name="Patient").fill(search)
    page.get_by_role("option", name=name).click()
    expect(page.locator("#patient-summary")).to_contain_text("records")


def test_ask_cite_and_read_the_record(page: Page, base_url: str, demo: DemoHome) -> None:
    sign_in(page, base_url, demo.admin_token)
    pick_patient(page, "Myron", "Myron Schuster")
    page.get_by_label("Question about the record").fill("What was my most recent HbA1c?")
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator(".msg.answer").last
    expect(answer.locator(".answer-text")).to_be_visible(timeout=TIMEOUT_MS)
    expect(answer.locator(".badge").first).to_have_text("extractive")
    assert "%" in answer.locator(".answer-text").inner_text()
    cite = answer.locator("button.cite").first
    ref = cite.get_attribute("data-ref") or ""
    assert ref.startswith("Observation/")
    cite.click()
    viewer = page.locator("#viewer")
    expect(viewer.locator("#viewer-title")).to_have_text(ref)
    expect(viewer.locator(".facts")).to_contain_text("Hemoglobin A1c")
    expect(viewer.locator(".facts")).to_contain_text("%")
    expect(viewer.locator(".raw pre")).to_be_hidden()
    viewer.get_by_text("Raw FHIR JSON").click()
    raw = json.loads(viewer.locator(".raw pre").inner_text())
    assert f"{raw['resourceType']}/{raw['id']}" == ref
    page.keyboard.press("Escape")  # closes the panel and returns to the citation
    expect(viewer.locator("#viewer-title")).to_have_text("Source")
    expect(cite).to_be_focused()
    page.locator("#selected-panel summary").click()
    expect(page.locator("table.selected tbody tr").first).to_be_visible()


def test_timeline_draws_the_hba1c_chart(page: Page, base_url: str, demo: DemoHome) -> None:
    sign_in(page, base_url, demo.admin_token)
    pick_patient(page, "Schuster", "Myron Schuster")
    page.get_by_role("tab", name="Timeline").click()
    expect(page.get_by_label("Lab result")).to_have_value("4548-4", timeout=TIMEOUT_MS)
    path = page.locator("#lab-chart svg path.line")
    expect(path).to_have_count(1)
    assert (path.get_attribute("d") or "").count("L") >= 2
    assert page.locator("#lab-chart svg circle.dot").count() >= 3
    expect(page.locator("#events li.event").first).to_be_visible()
    page.get_by_label("Visits").uncheck()
    expect(page.locator("#events li.type-Encounter")).to_have_count(0)


def test_decision_support_shows_the_notice(page: Page, base_url: str, demo: DemoHome) -> None:
    sign_in(page, base_url, demo.admin_token)
    pick_patient(page, "Verna", "Verna Satterfield")
    page.get_by_role("tab", name="Decision support").click()
    page.get_by_label("Symptoms").fill("burning when passing urine, urinary frequency, no fever")
    page.get_by_role("button", name="Differential").click()
    notice = page.locator("#cds-output .notice")
    expect(notice).to_contain_text("not a diagnosis", timeout=TIMEOUT_MS)
    expect(page.locator("#cds-output .item").first).to_be_visible()
    # Each list is headed by what it holds, as the server names it.
    headings = page.locator("#cds-output .item h4").all_inner_texts()
    assert "Findings for" in headings and "What it is" not in headings
    doc_cite = page.locator("#cds-output button.cite[data-ref^='doc:']").first
    doc_cite.click()
    expect(page.locator("#viewer .chunk-text")).not_to_be_empty()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-token", "not accepted"),
        ("   ", ""),  # blank: nothing is sent, the form stays
    ],
)
def test_a_bad_token_is_refused(page: Page, base_url: str, token: str, message: str) -> None:
    page.goto(base_url + "/")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    if message:
        expect(page.locator("#login-error")).to_contain_text(message)
    assert page.evaluate("sessionStorage.getItem('ehrqa.token')") is None
    assert token.strip() not in page.url or not token.strip()


def test_the_token_lives_in_the_tab_until_log_out(
    page: Page, base_url: str, demo: DemoHome
) -> None:
    sign_in(page, base_url, demo.admin_token)
    assert page.evaluate("sessionStorage.getItem('ehrqa.token')") == demo.admin_token
    assert demo.admin_token not in page.url
    page.reload()
    expect(page.locator("#main")).to_be_visible()  # still signed in
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ehrqa.token')") is None


def test_a_scoped_token_sees_only_its_patient(page: Page, base_url: str, demo: DemoHome) -> None:
    sign_in(page, base_url, demo.scoped_token)
    # One patient in scope: chosen at once.
    expect(page.get_by_role("combobox", name="Patient")).to_have_value("Myron Schuster")
    expect(page.locator("#who-label")).to_contain_text("1 patient")
    page.get_by_role("combobox", name="Patient").fill("Verna")
    expect(page.get_by_role("option", name="No patient matches")).to_be_visible()


def test_the_patient_picker_works_from_the_keyboard(
    page: Page, base_url: str, demo: DemoHome
) -> None:
    sign_in(page, base_url, demo.admin_token)
    box = page.get_by_role("combobox", name="Patient")
    box.fill("a")
    expect(page.get_by_role("listbox")).to_be_visible()
    box.press("ArrowDown")
    active = box.get_attribute("aria-activedescendant")
    assert active
    name = page.locator(f"#{active} .opt-name").inner_text()
    box.press("Enter")
    expect(page.get_by_role("listbox")).to_be_hidden()
    expect(box).to_have_value(name)
    expect(page.locator("#no-patient")).to_be_hidden()


def test_without_auth_there_is_no_sign_in(browser: Any, demo: DemoHome) -> None:
    with demo_app(demo.home, auth=False) as app, live_server(app) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/")
        expect(page.locator("#main")).to_be_visible()
        expect(page.locator("#login")).to_be_hidden()
        expect(page.get_by_role("button", name="Log out")).to_be_hidden()
        context.close()


# Keeps every text the streamed draft shows, in order (each token replaces its text node).
WATCH_DRAFTS = """() => {
    window.drafts = [];
    new MutationObserver((records) => {
        for (const r of records) {
            if (!r.target.classList || !r.target.classList.contains('draft')) continue;
            for (const n of r.addedNodes) if (n.nodeType === 3) window.drafts.push(n.data);
        }
    }).observe(document.getElementById('chat-log'), { subtree: true, childList: true });
}"""


def test_model_answers_show_no_unchecked_draft(page: Page, base_url: str, demo: DemoHome) -> None:
    # The stream sends the checked answer, then the kept result: no draft text is ever shown
    # (the page used to type the model's tokens before the checks threw them away).
    sign_in(page, base_url, demo.admin_token)
    pick_patient(page, "Myron", "Myron Schuster")
    page.evaluate(WATCH_DRAFTS)
    page.get_by_label("Answer mode").select_option("model")
    page.get_by_label("Question about the record").fill("What was my most recent HbA1c?")
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator(".msg.answer").last
    expect(answer.locator(".answer-text")).to_be_visible(timeout=TIMEOUT_MS)
    assert page.evaluate("window.drafts") == []
    expect(answer.locator(".badge").first).to_be_visible()
    expect(answer).not_to_have_attribute("aria-busy", "true")


def _sse(events: list[tuple[str, Any]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def test_the_streamed_draft_is_replaced_by_the_checked_answer(
    page: Page, base_url: str, demo: DemoHome
) -> None:
    result = {
        "answer": "Your HbA1c was 7.1 % [Observation/abc].",
        "source": "model",
        "verified": True,
        "citations": ["Observation/abc"],
        "selected": [{"ref": "Observation/abc", "score": 0.9, "reasons": ["code match"]}],
    }
    body = _sse([("token", {"text": "Draft "}), ("token", {"text": "text"}), ("result", result)])

    def fulfil(route: Route) -> None:
        assert route.request.headers["accept"] == "text/event-stream"
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    page.route("**/v1/patients/*/ask", fulfil)
    sign_in(page, base_url, demo.admin_token)
    pick_patient(page, "Myron", "Myron Schuster")
    page.get_by_label("Question about the record").fill("HbA1c?")
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator(".msg.answer").last
    expect(answer.locator(".answer-text")).to_have_text(
        "Answer: Your HbA1c was 7.1 % [Observation/abc]."
    )
    expect(answer.locator(".badge")).to_have_text(["model", "✓ verified"])
    assert "Draft" not in answer.inner_text()
    expect(page.locator("table.selected td").nth(2)).to_have_text("code match")


@pytest.mark.parametrize(
    ("status", "body", "shown"),
    [
        (403, {"error": "PermissionDeniedError", "message": "no"}, "not allowed to see"),
        (504, {"error": "GenerationTimeoutError", "message": "took too long"}, "took too long"),
    ],
)
def test_ask_errors_are_explained(
    page: Page, base_url: str, demo: DemoHome, status: int, body: dict[str, str], shown: str
) -> None:
    page.route(
        "**/v1/patients/*/ask",
        lambda route: route.fulfill(status=status, json=body),
    )
    sign_in(page, base_url, demo.admin_token)
    pick_patient(page, "Myron", "Myron Schuster")
    page.get_by_label("Question about the record").fill("HbA1c?")
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator(".msg.answer .error")).to_contain_text(shown)


def test_record_text_is_shown_as_text_never_as_markup(
    page: Page, base_url: str, demo: DemoHome
) -> None:
    evil = "<img src=x onerror=\"document.title='pwned'\"><b>bold</b>"
    record = {
        "ref": "Observation/evil",
        "resourceType": "Observation",
        "id": "evil",
        "patientId": DEMO_PATIENT,
        "date": "2024-01-01",
        "status": "final",
        "display": evil,
        "text": evil,
        "resource": {"resourceType": "Observation", "id": "evil", "note": evil},
    }
    page.route("**/v1/records/Observation/evil", lambda route: route.fulfill(json=record))
    page.route(
        "**/v1/patients/*/ask",
        lambda route: route.fulfill(
            headers={"Content-Type": "text/event-stream"},
            body=_sse([("result", {"answer": f"{evil} [Observation/evil]", "source": "model"})]),
        ),
    )
    sign_in(page, base_url, demo.admin_token)
    pick_patient(page, "Myron", "Myron Schuster")
    page.get_by_label("Question about the record").fill("anything")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.locator("button.cite[data-ref='Observation/evil']").click()
    expect(page.locator("#viewer .record-text")).to_have_text(evil)
    assert page.locator("img, b").count() == 0
    assert page.title() != "pwned"


CITATION_CASES = [
    ("no citations", [{"text": "no citations"}]),
    ("A [Observation/a1] b", [{"text": "A "}, {"refs": ["Observation/a1"]}, {"text": " b"}]),
    ("[Observation/a, Condition/b]", [{"refs": ["Observation/a", "Condition/b"]}]),
    (
        "see [doc:diabetes-type-2#3].",
        [{"text": "see "}, {"refs": ["doc:diabetes-type-2#3"]}, {"text": "."}],
    ),
    ("120 [mm/Hg] and [3]", [{"text": "120 [mm/Hg] and [3]"}]),
    ("[file:note.txt#2]", [{"refs": ["file:note.txt#2"]}]),
    (
        "Creatinine [Mass/volume] [Observation/c]",
        [{"text": "Creatinine [Mass/volume] "}, {"refs": ["Observation/c"]}],
    ),
    ("[Observation/a, Mass/volume]", [{"text": "[Observation/a, Mass/volume]"}]),
    ("<b>[Condition/x]</b>", [{"text": "<b>"}, {"refs": ["Condition/x"]}, {"text": "</b>"}]),
]


@pytest.mark.parametrize(("text", "segments"), CITATION_CASES)
def test_citations_are_split_from_text(
    js_page: Page, text: str, segments: list[dict[str, Any]]
) -> None:
    got = js_page.evaluate("async (t) => (await import('/static/cite.js')).splitCitations(t)", text)
    assert got == segments


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        ("Observation/a-1", "/v1/records/Observation/a-1"),
        ("doc:chest-pain#2", "/v1/docs/chunks/chest-pain%232"),
        ("file:note.txt#1", None),
    ],
)
def test_references_map_to_api_paths(js_page: Page, ref: str, path: str | None) -> None:
    assert (
        js_page.evaluate("async (r) => (await import('/static/cite.js')).refPath(r)", ref) == path
    )


SSE_STREAM = (
    'event: token\ndata: {"text": "a"}\n\n: keep-alive\n\nevent: result\ndata: {"x":\ndata: 1}\n\n'
)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("piece", [1, 2, 7, 1000])
def test_the_sse_parser_handles_any_split(js_page: Page, newline: str, piece: int) -> None:
    stream = SSE_STREAM.replace("\n", newline)
    events = js_page.evaluate(
        """async ([text, piece]) => {
            const { SseParser } = await import('/static/api.js');
            const parser = new SseParser();
            const events = [];
            for (let i = 0; i < text.length; i += piece) events.push(...parser.push(text.slice(i, i + piece)));
            events.push(...parser.finish());
            return events;
        }""",
        [stream, piece],
    )
    assert events == [
        {"event": "token", "data": '{"text": "a"}'},
        {"event": "result", "data": '{"x":\n1}'},
    ]


@pytest.mark.parametrize(
    ("lo", "hi", "first", "last"),
    [(5.2, 8.9, 5, 9), (0, 100, 0, 100), (7, 7, 6, 8), (-3, 2, -4, 2)],
)
def test_chart_ticks_cover_the_values(
    js_page: Page, lo: float, hi: float, first: float, last: float
) -> None:
    ticks = js_page.evaluate(
        "async ([lo, hi]) => (await import('/static/chart.js')).niceTicks(lo, hi)", [lo, hi]
    )
    assert ticks[0] <= lo and ticks[-1] >= hi
    assert (ticks[0], ticks[-1]) == (first, last)
    assert ticks == sorted(ticks)
