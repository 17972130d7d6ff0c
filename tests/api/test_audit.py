"""The opt-in audit log, and application logs that never hold patient text."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ehrqa.api.audit import AuditLog
from ehrqa.lab.data.demo import DEMO_CDS_PATIENT, DEMO_PATIENT
from ehrqa.llm.fake import FakeChatModel

if TYPE_CHECKING:
    from api.conftest import Api

QUESTION = "What was my most recent HbA1c?"
REPLY = "Your most recent HbA1c was 5.8 % on 2024-05-06 [1]."


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_patient_requests_are_audited_without_text(
    make_api: Callable[..., Api], tmp_path: Path
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    api = make_api(audit=log)
    answer = api.post(f"/v1/patients/{DEMO_PATIENT}/ask", as_="scoped", json={"question": QUESTION})
    api.get(f"/v1/patients/{DEMO_CDS_PATIENT}", as_="scoped")
    api.get("/v1/me")
    api.get("/v1/patients")
    api.post(f"/v1/patients/{DEMO_CDS_PATIENT}/cds/summarize", json={})
    first, denied, summary = lines(log.path)
    assert first["token"] == "scoped" and first["status"] == 200
    assert first["route"] == "/v1/patients/{patient_id}/ask" and first["method"] == "POST"
    assert first["patient"] == DEMO_PATIENT
    assert first["refs"] == answer.json()["citations"] and first["refs"]
    assert "question" not in first and "answer" not in first
    assert denied["status"] == 403 and denied["patient"] == DEMO_CDS_PATIENT
    assert summary["token"] == "admin" and summary["refs"]
    raw = log.path.read_text()
    assert QUESTION not in raw and api.secrets["scoped"] not in raw


def test_audit_text_is_written_only_when_asked(
    make_api: Callable[..., Api], tmp_path: Path
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", include_text=True)
    api = make_api(audit=log)
    answer = api.post(f"/v1/patients/{DEMO_PATIENT}/ask?stream=true", json={"question": QUESTION})
    assert answer.status_code == 200
    (line,) = lines(log.path)
    assert line["question"] == QUESTION and "5.8%" in line["answer"] and line["refs"]


def test_no_audit_file_unless_enabled(api: Api) -> None:
    api.post(f"/v1/patients/{DEMO_PATIENT}/ask", json={"question": QUESTION})
    assert not (api.home / "audit.jsonl").exists()


def test_logs_hold_no_question_answer_or_record_text(
    make_api: Callable[..., Api], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = make_api(model=FakeChatModel(default_reply=REPLY))
    ask = api.post(
        f"/v1/patients/{DEMO_PATIENT}/ask?stream=true",
        json={"question": QUESTION, "answer_mode": "hybrid"},
    )
    advice = api.post(
        f"/v1/patients/{DEMO_CDS_PATIENT}/cds/summarize", json={"answer_mode": "hybrid"}
    ).json()
    assert "5.8 %" in ask.text and advice["text"]
    secrets = [QUESTION, "HbA1c", "Hemoglobin A1c", "5.8", advice["text"][:40]]
    secrets += [source["text"][:40] for source in advice["sources"].values()]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "nothing was logged: the test would pass vacuously"
    for secret in secrets:
        assert secret not in logged, secret
