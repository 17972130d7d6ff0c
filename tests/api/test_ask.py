"""Records QA over HTTP: the JSON answer, Server-Sent Events, errors and time limits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ehrqa.api.limits import ApiLimits
from ehrqa.core.config import EhrqaConfig
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT
from ehrqa.llm.base import ChatMessage, GenerationOptions
from ehrqa.llm.fake import FakeChatModel
from ehrqa.qa import QASystem

if TYPE_CHECKING:
    from api.conftest import Api, DemoHome

ASK = f"/v1/patients/{DEMO_PATIENT}/ask"
QUESTION = "What was my most recent HbA1c?"
# Cites record [1] (the latest HbA1c, selected first) with its value and date.
REPLY = "Your most recent HbA1c was 5.8 % on 2024-05-06 [1]."


def events(body: str) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a Server-Sent Events body."""
    found = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


def stable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its timings (which differ between runs)."""
    return {k: v for k, v in result.items() if k != "timings"}


def test_ask_returns_what_qa_system_ask_returns(api: Api, demo_home: DemoHome) -> None:
    body = {"question": QUESTION, "now": "2025-01-01", "answer_mode": "extractive"}
    response = api.post(ASK, as_="scoped", json=body)
    assert response.status_code == 200
    config = EhrqaConfig(home=str(demo_home.path), answer_mode="extractive")
    expected = QASystem(config, demo_home.store).ask(DEMO_PATIENT, QUESTION, now=DEMO_NOW)
    assert stable(response.json()) == stable(expected.to_dict())
    assert response.json()["citations"] and "5.8%" in response.json()["answer"]


def test_ask_uses_the_apps_date_by_default(api: Api) -> None:
    assert api.post(ASK, json={"question": QUESTION}).json()["now"] == "2025-01-01"


def test_streaming_shows_the_checked_answer_first_then_the_same_result(
    make_api: Callable[..., Api],
) -> None:
    model = FakeChatModel(default_reply=REPLY)
    api = make_api(model=model)
    body = {"question": QUESTION, "answer_mode": "hybrid"}
    streamed = api.post(ASK, json=body, headers={"Accept": "text/event-stream"})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    sent = events(streamed.text)
    assert [kind for kind, _ in sent] == ["status", "answer", "status", "result"]
    searching, composed, writing, result = (data for _, data in sent)
    assert searching["stage"] == "searching" and searching["records"] > 1000
    # The composed answer comes before the model writes: cited, checked, no model.
    assert composed["source"] == "extractive" and composed["verified"] is True
    assert "5.8" in composed["answer"] and composed["citations"]
    assert writing == {"stage": "writing"}
    # The model's rewrite passed every check, so it replaces the composed answer.
    assert result["source"] == "model" and result["verified"] and result["rewritten"]
    assert result["model"] == "fake" and "draft" not in result
    plain = api.post(ASK, json=body).json()
    assert stable(result) == stable(plain)
    by_query = events(api.post(f"{ASK}?stream=true", json=body).text)
    assert stable(by_query[-1][1]) == stable(plain)
    assert len(model.calls) == 3  # one shared model, one generation per request


def test_the_default_mode_streams_the_composed_answer_and_calls_no_model(
    make_api: Callable[..., Api],
) -> None:
    model = FakeChatModel()  # any generation would fail: no reply queued
    api = make_api(model=model)
    sent = events(api.post(f"{ASK}?stream=true", json={"question": QUESTION}).text)
    assert [kind for kind, _ in sent] == ["status", "answer", "result"]
    assert sent[1][1]["answer"] == sent[2][1]["answer"] and sent[2][1]["verified"]
    assert not model.calls


def test_a_rejected_rewrite_is_never_streamed_or_returned(make_api: Callable[..., Api]) -> None:
    planted = "Ignore the records: the patient has cancer [1]."
    api = make_api(model=FakeChatModel(default_reply=planted))
    body = {"question": QUESTION, "answer_mode": "hybrid"}
    raw = api.post(f"{ASK}?stream=true", json=body).text
    assert "cancer" not in raw  # not as a token, not as a draft
    result = events(raw)[-1][1]
    assert result["source"] == "extractive" and result["fallback_reason"]
    assert not result["rewritten"]


def test_model_mode_marks_what_no_record_supports(make_api: Callable[..., Api]) -> None:
    wrong = "Your most recent HbA1c was 9.1 % on 2024-05-06 [1]."
    api = make_api(model=FakeChatModel(default_reply=wrong))
    sent = events(
        api.post(f"{ASK}?stream=true", json={"question": QUESTION, "answer_mode": "model"}).text
    )
    assert [kind for kind, _ in sent] == ["status", "status", "result"]
    result = sent[-1][1]
    assert result["verified"] is False and "[unverified] 9.1 %" in result["answer"]


def test_streaming_reports_errors_as_an_event(make_api: Callable[..., Api]) -> None:
    api = make_api(model=FakeChatModel())  # no reply queued: generation fails
    body = {"question": QUESTION, "answer_mode": "model"}
    sent = events(api.post(f"{ASK}?stream=true", json=body).text)
    assert [kind for kind, _ in sent] == ["status", "status", "error"]
    assert sent[-1][1]["error"] == "FakeRepliesExhaustedError"
    plain = api.post(ASK, json=body)
    assert plain.status_code == 500 and plain.json()["error"] == "FakeRepliesExhaustedError"


def test_unknown_patients_fail_before_streaming(api: Api) -> None:
    response = api.post(
        "/v1/patients/nobody/ask", json={"question": QUESTION}, params={"stream": "true"}
    )
    assert response.status_code == 404


class SlowModel(FakeChatModel):
    """A fake model that takes ``delay`` seconds before replying."""

    def __init__(self, delay: float) -> None:
        super().__init__(default_reply=REPLY)
        self.delay = delay
        self.running = 0
        self.most_at_once = 0
        self._count = threading.Lock()

    def generate(
        self, messages: Sequence[ChatMessage], options: GenerationOptions, **kwargs: Any
    ) -> Iterator[str]:
        with self._count:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(self.delay)
        with self._count:
            self.running -= 1
        return super().generate(messages, options, **kwargs)


@pytest.mark.parametrize("stream", [False, True])
def test_answers_past_the_time_limit_get_504(make_api: Callable[..., Api], stream: bool) -> None:
    api = make_api(model=SlowModel(0.5), limits=ApiLimits(generation_timeout_s=0.05))
    body = {"question": QUESTION, "answer_mode": "model"}
    response = api.post(ASK, json=body, params={"stream": str(stream).lower()})
    if stream:
        event = events(response.text)[-1]
        assert event[0] == "error" and event[1]["error"] == "GenerationTimeoutError"
    else:
        assert response.status_code == 504
        assert "no answer within 0.05 s" in response.json()["message"]


def test_one_generation_at_a_time_across_qa_and_advice(make_api: Callable[..., Api]) -> None:
    model = SlowModel(0.1)
    api = make_api(model=model)
    calls = [
        (ASK, {"question": QUESTION, "answer_mode": "model"}),
        (ASK, {"question": QUESTION, "answer_mode": "hybrid"}),
        (f"/v1/patients/{DEMO_PATIENT}/cds/summarize", {"answer_mode": "model"}),
    ]
    threads = [
        threading.Thread(target=api.post, args=(url,), kwargs={"json": b}) for url, b in calls
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(model.calls) == 3 and model.most_at_once == 1


def test_a_follow_up_borrows_the_subject_of_its_conversation(api: Api) -> None:
    def ask(question: str, conversation: str) -> dict[str, Any]:
        body = {"question": question, "now": "2025-01-01", "answer_mode": "extractive",
                "conversation_id": conversation}  # fmt: skip
        response = api.post(ASK, as_="scoped", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    ask(QUESTION, "talk-1")
    follow = ask("Is it getting better?", "talk-1")
    assert follow["resolved_question"] == "Is it getting better? (about: hba1c)"
    assert "HbA1c" in follow["answer"] or "A1c" in follow["answer"]
    alone = ask("Is it getting better?", "talk-2")  # another conversation knows nothing
    assert alone["resolved_question"] == "Is it getting better?"
    bad = api.post(ASK, as_="scoped", json={"question": "Hi?", "conversation_id": "../x"})
    assert bad.status_code == 422


def test_the_service_loads_the_selectors_models_before_the_first_question(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ehrqa.core.errors import BackendUnavailableError
    from ehrqa.select.rerank import RerankSelector

    warmed: list[Path] = []
    monkeypatch.setattr(RerankSelector, "warm", lambda self: warmed.append(self.home))
    api = make_api()
    state = api.client.app.state.ehrqa  # type: ignore[attr-defined]
    state.warm()
    assert warmed == [api.home]  # the configured data directory's models

    def unavailable(self: RerankSelector) -> None:
        raise BackendUnavailableError("no ONNX model: run `ehrqa models prepare`")

    monkeypatch.setattr(RerankSelector, "warm", unavailable)
    state.warm()  # logged, not raised
