"""Whether a screening test is due, from its last time and its average-risk interval."""

from __future__ import annotations

from datetime import date

from answer.test_judgements import bp
from ehrqa.answer.answerer import AnswerConfig, answer
from ehrqa.answer.extractive import focus
from ehrqa.fhir.record import Coding, Record
from ehrqa.select.base import Selected, Selection
from ehrqa.select.query import analyze

NOW = date(2020, 11, 10)


def _procedure(ref: str, day: str, code: str, name: str) -> Record:
    return Record(
        ref=f"Procedure/{ref}", resource_type="Procedure", id=ref, patient_id="p",
        text=f"[Procedure/{ref}] {day} {name} (SNOMED {code}); status completed", date=day,
        codes=(Coding("http://snomed.info/sct", code, name),), status="completed",
    )  # fmt: skip


def _said(question: str, records: list[Record]) -> str:
    selection = focus(Selection(analyze(question, NOW), [Selected(r, 1.0) for r in records]))
    reply = answer(question, NOW, selection, None, AnswerConfig())
    assert reply.verified, reply.unverified
    return reply.text


def test_a_screening_is_due_by_its_interval_from_the_last_one() -> None:
    scopes = [_procedure("c1", "2014-02-13", "73761001", "Colonoscopy"),
              _procedure("c2", "2019-02-12", "73761001", "Colonoscopy")]  # fmt: skip
    said = _said("am I due for a colonoscopy?", scopes)
    assert said.startswith("Not due: last Colonoscopy on 2019-02-12 [Procedure/c2]")
    assert "next due 2029-02-12 at average risk (every 10 years; source: USPSTF" in said
    old = [_procedure("c0", "2009-01-05", "73761001", "Colonoscopy")]
    assert _said("Am I due for a colonoscopy?", old).startswith("Due now: last Colonoscopy")


def test_a_measure_asked_about_alone_is_judged_by_its_own_conditions_target() -> None:
    said = _said("is my blood pressure under control?", [bp("bp", "2020-11-02", 111, 79)])
    assert said.startswith("Latest Blood pressure panel 111/79 mmHg")
    assert "source: ACC/AHA 2017" in said and "ADA" not in said
