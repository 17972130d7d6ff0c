"""A number the asker names ("is her A1c under 7?", "is he over 65?", "more than 3 ER
visits?") is answered yes or no against it; flu shots asked "this season" are due questions."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from answer.test_judgements import bp, condition, obs, weight
from ehrqa.answer.answerer import AnswerConfig, answer
from ehrqa.answer.judgements import threshold_judgement
from ehrqa.fhir.record import Coding, Record
from ehrqa.select.default import DefaultSelector
from ehrqa.select.followup import split_parts
from ehrqa.select.query import DUE_RE, JUDGE_RE
from ehrqa.store import SqliteStore

NOW = date(2024, 3, 28)


def _said(tmp_path: Path, records: list[Record], question: str) -> str:
    store = SqliteStore(tmp_path / f"s{abs(hash(question))}.sqlite3")
    store.upsert(records)
    selection = DefaultSelector().select(store, "p", question, NOW)
    return answer(question, NOW, selection, None, AnswerConfig()).text


def _a1c(value: float) -> Record:
    return obs("a", "2023-12-11", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", value, "%")


@pytest.mark.parametrize(
    ("question", "opening"),
    [
        ("is her a1c under 7?", "Yes, below 7: "),
        ("is her a1c below 6?", "Not below 6: "),
        ("is her a1c at least 6?", "Yes, at least 6: "),
        ("is her a1c over 6.5?", "Not above 6.5: "),
    ],
)
def test_a_reading_against_the_askers_number(question: str, opening: str) -> None:
    verdict = threshold_judgement(_a1c(6.0), question)
    assert verdict is not None and verdict.sentence.startswith(opening)
    assert "6% on 2023-12-11 [Observation/a]" in verdict.sentence


def test_a_blood_pressure_against_both_numbers() -> None:
    verdict = threshold_judgement(bp("b", "2023-12-11", 146.6, 95.5), "is her BP below 140/90?")
    assert verdict is not None
    assert verdict.sentence.startswith("Not below 140/90: Blood pressure")
    calm = threshold_judgement(bp("b", "2023-12-11", 128, 78), "is her BP below 140/90?")
    assert calm is not None and calm.sentence.startswith("Yes, below 140/90: ")


def test_ages_and_counts_of_time_are_no_reading_thresholds() -> None:
    assert threshold_judgement(_a1c(6.0), "was she under 18 years old then?") is None
    assert not JUDGE_RE.search("has he been on it for over 3 years?")
    assert JUDGE_RE.search("is her a1c under 7?")


def test_a_named_condition_adds_its_target_after_the_askers_number(tmp_path: Path) -> None:
    diabetes = condition("d", "44054006", "Diabetes mellitus type 2")
    said = _said(tmp_path, [diabetes, _a1c(6.0)], "T2DM - is her A1c under 7?")
    assert said.startswith("Yes, below 7: Hemoglobin A1c/Hemoglobin.total in Blood 6%")
    assert "(controlled)" in said
    plain = _said(tmp_path, [weight("w", "2023-12-11", 94.5)], "was his weight over 100 kg?")
    assert plain.startswith("Not above 100: Body Weight 94.5 kg on 2023-12-11")


def test_is_he_over_an_age_answers_by_the_computed_age(tmp_path: Path) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    store = SqliteStore(tmp_path / "s.sqlite3")
    person = patient("p", birthDate="1971-12-07", gender="male")
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(person))])

    def said(question: str) -> str:
        selection = DefaultSelector().select(store, "p", question, NOW)
        return answer(question, NOW, selection, None, AnswerConfig()).text

    assert said("is he over 65?").startswith("No: Age 52 on 2024-03-28 (born 1971-12-07)")
    assert said("is he older than 40 years?").startswith("Yes: Age 52")


def test_more_than_a_number_of_visits_is_answered_by_the_count(tmp_path: Path) -> None:
    er = Record(
        "Encounter/e", "Encounter", "e", "p",
        "[Encounter/e] 1985-12-03 EMER encounter: Emergency Room Admission; status finished",
        date="1985-12-03",
        codes=(Coding("http://snomed.info/sct", "50849002", "Emergency Room Admission"),),
        resource={"class": {"code": "EMER"}},
    )  # fmt: skip
    # It had said "Yes, 1 in the record" to "more than 3".
    assert _said(tmp_path, [er], "has he had more than 3 ER visits?").startswith("No, 1 in")
    assert _said(tmp_path, [er], "has he had at least 1 ER visit?").startswith("Yes, 1 in")


@pytest.mark.parametrize(
    "question",
    [
        "did she get her flu shot yet this winter?",
        "flu shot this fall?",
        "flu vaccine given this season?",
        "this flu season, has he had his shot?",
    ],
)
def test_a_shot_asked_this_season_is_a_due_question(question: str) -> None:
    assert DUE_RE.search(question)


def test_a_terse_question_after_a_dash_keeps_its_context_out() -> None:
    question = "pregnant pt - flu vaccine given this season?"
    assert len(split_parts(question, NOW)) == 1


def _cholesterol(ref: str, day: str, value: float) -> Record:
    return obs(ref, day, "2093-3", "Total Cholesterol", value, "mg/dL")


def test_ever_high_reads_every_reading_against_its_range(tmp_path: Path) -> None:
    from ehrqa.answer.judgements import ever_out_of_range
    from ehrqa.knowledge import load_knowledge

    series = [
        _cholesterol("c1", "1984-05-14", 192.2),
        _cholesterol("c2", "1990-06-18", 207.7),
        _cholesterol("c3", "1993-07-08", 191.4),
    ]
    kb = load_knowledge()
    high = ever_out_of_range(series, kb, "was his cholesterol ever high?", lambda r: 70)
    assert high is not None
    assert high.sentence.startswith("Yes: 1 of the 3 Total Cholesterol readings was high")
    assert "the highest was 207.7 mg/dL on 1990-06-18 [Observation/c2]" in high.sentence
    low = ever_out_of_range(series, kb, "was it ever low?", lambda r: 70)
    assert low is not None and low.sentence.startswith("No: none of the 3 Total Cholesterol")
    assert ever_out_of_range(series, kb, "what is his cholesterol?", lambda r: 70) is None
    # The newest reading is normal: the answer reads them all, not the newest.
    said = _said(tmp_path, series, "was his cholesterol ever high?")
    assert said.startswith("Yes: 1 of the 3") and "within the normal range" not in said


def test_ever_high_reads_a_blood_pressure_by_both_parts() -> None:
    from ehrqa.answer.judgements import ever_out_of_range
    from ehrqa.knowledge import load_knowledge

    series = [bp("b1", "1987-06-01", 109, 78), bp("b2", "1989-06-12", 141, 89)]
    verdict = ever_out_of_range(
        series, load_knowledge(), "has his blood pressure ever been high?", lambda r: 70
    )
    assert verdict is not None and verdict.sentence.startswith("Yes: 1 of the 2")
    assert "141/89 mmHg on 1989-06-12" in verdict.sentence


def test_a_measures_history_is_its_course() -> None:
    from ehrqa.select.query import analyze

    assert analyze("what's his cholesterol history?", NOW).intent == "trend"
    assert analyze("a1c history please", NOW).intent == "trend"
    assert analyze("any history of diabetes?", NOW).intent != "trend"
