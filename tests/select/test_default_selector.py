"""The default selector on the 3,172-resource demo patient: right records, right cut-off."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT
from ehrqa.select import get_selector
from ehrqa.store import RecordQuery, SqliteStore

SELECTOR = get_selector("default")


def select(store: SqliteStore, question: str, now: date = DEMO_NOW) -> list:
    return SELECTOR.select(store, DEMO_PATIENT, question, now).items


def codes_of(item) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.code for c in item.record.codes}


def newest_day(store: SqliteStore, code: str, now: date = DEMO_NOW) -> str:
    q = RecordQuery(DEMO_PATIENT, codes=(code,), end=now.isoformat(), limit=1)
    day = store.query(q)[0].day
    assert day is not None
    return day


def test_latest_lab_is_the_newest_matching_observation(demo_store: SqliteStore) -> None:
    items = select(demo_store, "What was my most recent HbA1c?")
    assert len(items) == 1
    assert "4548-4" in codes_of(items[0])
    assert items[0].record.day == newest_day(demo_store, "4548-4")
    assert items[0].score == 1.0 and items[0].reasons


def test_now_moves_the_latest_value_back_in_time(demo_store: SqliteStore) -> None:
    then = date(2015, 1, 1)
    items = select(demo_store, "What was my last HbA1c?", now=then)
    assert [i.record.day for i in items] == [newest_day(demo_store, "4548-4", then)]
    assert items[0].record.day is not None and items[0].record.day <= "2015-01-01"


def test_latest_blood_pressure_keeps_the_whole_reading(demo_store: SqliteStore) -> None:
    items = select(demo_store, "What was my last blood pressure?")
    days = {i.record.day for i in items}
    codes = set().union(*(codes_of(i) for i in items))
    assert len(days) == 1 and "85354-9" in codes


def test_active_conditions_are_all_and_only_active(demo_store: SqliteStore) -> None:
    items = select(demo_store, "What are my active conditions?")
    expected = demo_store.query(
        RecordQuery(DEMO_PATIENT, types=("Condition",), statuses=("active",))
    )
    assert {i.record.ref for i in items} == {r.ref for r in expected}


def test_current_medications(demo_store: SqliteStore) -> None:
    items = select(demo_store, "List the patient's current medications")
    assert [i.record.status for i in items] == ["active"]
    assert items[0].record.resource_type == "MedicationRequest"


def test_vaccines_in_a_year_are_exactly_that_year(demo_store: SqliteStore) -> None:
    items = select(demo_store, "Which vaccines did I get in 2023?")
    expected = demo_store.query(
        RecordQuery(DEMO_PATIENT, types=("Immunization",), start="2023-01-01", end="2023-12-31")
    )
    assert {i.record.ref for i in items} == {r.ref for r in expected} != set()


def test_last_encounter(demo_store: SqliteStore) -> None:
    items = select(demo_store, "When was my last visit?")
    newest = demo_store.query(
        RecordQuery(DEMO_PATIENT, types=("Encounter",), end="2025-01-01", limit=1)
    )
    assert [i.record.ref for i in items] == [newest[0].ref]


def test_lay_synonyms_reach_the_drug_class(demo_store: SqliteStore) -> None:
    selection = SELECTOR.select(
        demo_store, DEMO_PATIENT, "Is the patient on any blood thinners?", DEMO_NOW
    )
    # The demo patient's aspirin ended: none is current, the ended order is shown beside.
    shown = selection.items or selection.nearby
    assert shown and all("aspirin" in i.record.display.lower() for i in shown)
    assert all(i.record.status == "active" for i in selection.items)


@pytest.mark.parametrize(
    "question",
    ["Do I have any allergies?", "What is my blood type?", "What was my cholesterol in 2022?"],
)
def test_nothing_selected_gives_a_reason(demo_store: SqliteStore, question: str) -> None:
    selection = SELECTOR.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert selection.items == []
    assert selection.empty_reason and "record" in selection.empty_reason


def test_nothing_after_now_is_selected(demo_store: SqliteStore) -> None:
    now = date(2010, 6, 1)
    for question in (
        "What procedures did I have?",
        "What was my last visit?",
        "Show my weight over time",
    ):
        for item in select(demo_store, question, now=now):
            assert item.record.day is None or item.record.day <= "2010-06-01"


def test_free_text_falls_back_to_lexical_search(demo_store: SqliteStore) -> None:
    items = select(demo_store, "dental x-ray")
    assert items and len(items) <= 8
    assert any("x-ray" in i.record.text.lower() for i in items)


@pytest.mark.parametrize(
    ("question", "negative", "start"),
    [
        ("Does the patient have asthma?", True, "No: the record has no asthma"),
        ("Do I have any allergies?", True, "None recorded: the record has no allergies"),
        (
            "What is my blood type?",
            False,
            "The record does not contain information about blood type",
        ),
    ],
)
def test_empty_selection_says_whether_it_answers(
    demo_store: SqliteStore, question: str, negative: bool, start: str
) -> None:
    selection = SELECTOR.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert selection.items == [] and selection.negative is negative
    assert selection.empty_reason and selection.empty_reason.startswith(start)


def test_the_patients_own_name_is_the_patient_not_a_search_word(demo_store: SqliteStore) -> None:
    by_name = SELECTOR.select(demo_store, DEMO_PATIENT, "What was Myron's last HbA1c?", DEMO_NOW)
    plain = SELECTOR.select(demo_store, DEMO_PATIENT, "What was his last HbA1c?", DEMO_NOW)
    assert by_name.plan.question == "What was the patient's last HbA1c?"
    assert "myron" not in by_name.plan.keywords
    assert by_name.refs == plain.refs and by_name.refs


def test_names_that_are_words_are_names_only_when_written_as_names() -> None:
    from ehrqa.select.default import without_names

    names = frozenset({"rose", "may", "schuster"})
    assert without_names("May Rose take aspirin?", names) == "May the patient take aspirin?"
    assert without_names("what is schuster's latest a1c", names) == (
        "what is the patient's latest a1c"
    )
    assert without_names("is my rose allergy bad", names) == "is my rose allergy bad"
    # A name the dictionary lists but nobody says as a word is the name however written.
    rare = frozenset({"hilario", "barton"})
    assert without_names("what medical problems does hilario have?", rare) == (
        "what medical problems does the patient have?"
    )
    assert without_names("what's my max bp", frozenset({"max"})) == "what's my max bp"
    # A common word where a person is named is the name: after the opening verb, or owning.
    guy = frozenset({"guy", "legros"})
    assert without_names("has guy ever been in the hospital?", guy) == (
        "has the patient ever been in the hospital?"
    )
    assert (
        without_names("what is guy's blood pressure", guy) == "what is the patient's blood pressure"
    )
    assert without_names("which guy did the surgery", guy) == "which guy did the surgery"


def test_a_family_history_question_never_answers_with_the_patients_own_conditions(
    demo_store: SqliteStore,
) -> None:
    # "Does high blood pressure run in my family?" said "Yes, the record shows: Hypertension",
    # the patient's own; the record holds no FamilyMemberHistory.
    for question in (
        "Does high blood pressure run in my family?",
        "any family history of diabetes?",
        "is my diabetes hereditary",
    ):
        selection = SELECTOR.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
        assert not selection.items and not selection.negative
        assert (selection.empty_reason or "").startswith("The record holds no family history")
        assert all(i.record.resource_type == "Condition" for i in selection.nearby)
    # A question about the patient's own condition is unchanged.
    assert select(demo_store, "What are my active conditions?")


def test_a_booked_test_is_one_dated_after_today(demo_store: SqliteStore) -> None:
    # "When is his next colonoscopy scheduled?" listed the past ones as "Found:".
    question = "When is my next HbA1c test scheduled?"
    selection = SELECTOR.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert not selection.items and not selection.negative
    assert (selection.empty_reason or "").startswith("The record lists no hba1c after")
    assert [i.record.day for i in selection.nearby] == [newest_day(demo_store, "4548-4")]
    # Asked as of a day before the newest test, that test is the booked one.
    then = date.fromisoformat(newest_day(demo_store, "4548-4")) - timedelta(days=1)
    booked = SELECTOR.select(demo_store, DEMO_PATIENT, question, then)
    assert [i.record.day for i in booked.items][:1] == [newest_day(demo_store, "4548-4")]


@pytest.mark.parametrize(
    "question",
    [
        "How old was I at my first colonoscopy?",
        "what was his age at the diagnosis",
        "How old was she when it started?",
    ],
)
def test_an_age_at_an_event_is_recognised(question: str) -> None:
    from ehrqa.select.default import AGE_AT_RE

    assert AGE_AT_RE.search(question)


def test_a_drug_class_named_by_what_it_does_is_said_as_a_medicine() -> None:
    from ehrqa.select.default import _said
    from ehrqa.select.lexicon import CONCEPTS_BY_NAME

    # "No: the record has no lipid lowering." for "is she on anything for cholesterol?"
    assert _said(CONCEPTS_BY_NAME["lipid lowering"]) == "lipid lowering medicine"
    assert _said(CONCEPTS_BY_NAME["antihypertensive"]) == "antihypertensive medicine"
    assert _said(CONCEPTS_BY_NAME["statin"]) == "statin"
    assert _said(CONCEPTS_BY_NAME["asthma"]) == "asthma"


def test_a_measure_judged_brings_the_open_condition_it_is_followed_for(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # "Is her blood pressure ok these days?" over a hypertensive patient was judged against
    # the reference range only, never against her treatment target.
    from ehrqa.fhir.record import Coding, Record

    sct, loinc = "http://snomed.info/sct", "http://loinc.org"
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.upsert(
        [
            Record("Condition/h", "Condition", "h", "p", "[Condition/h] 2010-01-01 Essential "
                   "hypertension", date="2010-01-01", status="active",
                   codes=(Coding(sct, "59621000", "Essential hypertension"),)),
            Record("Condition/p", "Condition", "p", "p", "[Condition/p] 2010-01-01 Prediabetes",
                   date="2010-01-01", status="active", codes=(Coding(sct, "15777000", "Prediabetes"),)),
            Record("Observation/s", "Observation", "s", "p", "[Observation/s] 2024-01-01 Systolic "
                   "blood pressure = 150 mm[Hg]", date="2024-01-01", value=150.0, unit="mm[Hg]",
                   codes=(Coding(loinc, "8480-6", "Systolic blood pressure"),)),
            Record("Observation/a", "Observation", "a", "p", "[Observation/a] 2024-01-01 "
                   "Hemoglobin A1c = 6.1 %", date="2024-01-01", value=6.1, unit="%",
                   codes=(Coding(loinc, "4548-4", "Hemoglobin A1c"),)),
        ]
    )  # fmt: skip

    def conditions(question: str) -> list[str]:
        items = SELECTOR.select(store, "p", question, date(2025, 1, 1)).items
        return [i.record.ref for i in items if i.record.resource_type == "Condition"]

    assert conditions("Is her systolic blood pressure ok these days?") == ["Condition/h"]
    # Asked against the normal range, or of a measure that defines its condition (the A1C
    # range is prediabetes), the reading is read against its range alone.
    assert conditions("Is her systolic blood pressure in the normal range?") == []
    assert conditions("Is her A1c ok?") == []
    assert conditions("What was her last systolic blood pressure?") == []


def test_a_condition_summary_reads_its_onset_control_and_medicines(
    demo_store: SqliteStore,
) -> None:
    selection = SELECTOR.select(demo_store, DEMO_PATIENT, "tell me about her anemia", DEMO_NOW)
    onset, control, medicines = selection.facets
    assert [i.record.resource_type for i in onset.items] == ["Condition"]
    assert "Observation" in {i.record.resource_type for i in control.items}
    assert medicines.plan.resource_types == ("MedicationRequest", "MedicationStatement")
    # A condition the record does not hold: the question as asked, never a summary.
    missing = SELECTOR.select(demo_store, DEMO_PATIENT, "summarize her diabetes", DEMO_NOW)
    assert not missing.facets and not missing.items


def test_what_else_happened_and_a_tests_numbers_read_its_visit() -> None:
    from ehrqa.select.default import _NUMBERS_RE, FINDINGS_RE, _result_measures
    from ehrqa.select.query import analyze

    assert FINDINGS_RE.search("what else happened the day of the episiotomy")
    question = "at the last spirometry, what were the numbers?"
    assert _NUMBERS_RE.search(question)
    # Its results are the measures the files name for it, not every reading of that visit.
    assert [c.name for c in _result_measures(analyze(question, DEMO_NOW))] == ["fev1 fvc ratio"]
    assert _result_measures(analyze("what were the numbers at his last physical?", DEMO_NOW)) == []


def test_whether_prediabetes_turned_into_diabetes_reads_the_latest_a1c(
    demo_store: SqliteStore,
) -> None:
    from ehrqa.answer.answerer import AnswerConfig, answer

    question = "has her a1c crossed into diabetes?"
    selection = SELECTOR.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    assert selection.details["progression"] == "prediabetes"
    kinds = sorted({i.record.resource_type for i in selection.items})
    assert kinds == ["Condition", "Observation"]
    said = answer(question, DEMO_NOW, selection, None, AnswerConfig(mode="extractive"))
    assert said.text.startswith("No: the latest Hemoglobin A1c") and said.verified
    # Not a question of turning: the question as asked.
    plain = SELECTOR.select(demo_store, DEMO_PATIENT, "what was her last a1c?", DEMO_NOW)
    assert "progression" not in plain.details


def test_a_count_since_a_diagnosis_opens_its_window_there(demo_store: SqliteStore) -> None:
    question = "how many flu shots has she had since her prediabetes was diagnosed?"
    selection = SELECTOR.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    window = selection.plan.window
    assert window is not None and window.start == date(2000, 9, 18)
    assert selection.items and all((i.record.day or "") >= "2000-09-18" for i in selection.items)
    assert selection.details["since"].startswith("Condition/")
    every = SELECTOR.select(demo_store, DEMO_PATIENT, "how many flu shots has she had?", DEMO_NOW)
    assert len(every.items) > len(selection.items)


def test_a_vaccine_never_given_is_said_to_be_due_where_the_guideline_applies(
    demo_store: SqliteStore,
) -> None:
    from ehrqa.answer.answerer import AnswerConfig, answer

    # "has she had the shingrix series" said only "No: the record has no zoster vaccine".
    question = "has she had the shingrix series?"
    selection = SELECTOR.select(demo_store, DEMO_PATIENT, question, DEMO_NOW)
    said = answer(question, DEMO_NOW, selection, None, AnswerConfig(mode="extractive")).text
    assert said.startswith("No: there is no record of recombinant zoster vaccine")
    assert "one is due where the guideline applies" in said
    due = SELECTOR.select(demo_store, DEMO_PATIENT, "is she due for shingrix?", DEMO_NOW)
    assert (due.empty_reason or "").startswith("There is no record of")  # never a "No"


def test_as_an_adult_or_as_a_child_is_a_window_from_the_birth_date() -> None:
    from ehrqa.select.default import life_stage
    from ehrqa.select.query import analyze

    patient = {"birth_date": "2003-11-01"}
    now = date(2025, 1, 5)
    # "what vaccines has he had as an adult?" listed his infant doses.
    adult = life_stage(analyze("what vaccines has he had as an adult?", now), patient)
    assert adult.window is not None and (adult.window.start, adult.window.end) == (
        date(2021, 11, 1), now
    )  # fmt: skip
    assert adult.resource_types == ("Immunization",)
    child = life_stage(analyze("did he have pneumonia as a kid?", now), patient)
    assert child.window is not None and child.window.end == date(2021, 10, 31)
    plain = analyze("what vaccines has he had?", now)
    assert life_stage(plain, patient) is plain
    assert life_stage(analyze("shots as an adult?", now), {}).window is None


def test_why_a_medicine_keeps_the_newest_order_per_reason() -> None:
    from ehrqa.fhir.record import Coding, Record
    from ehrqa.select.base import Selected
    from ehrqa.select.default import _latest_per_reason

    # "What are all those eye drops she uses for?" selected 44 refills of three drops, every
    # one naming the same glaucoma.
    rx = "http://www.nlm.nih.gov/research/umls/rxnorm"

    def order(rid: str, day: str, reason: str | None) -> Selected:
        resource = {"reasonReference": [{"reference": reason}]} if reason else {}
        record = Record(
            f"MedicationRequest/{rid}", "MedicationRequest", rid, "p", f"[MedicationRequest/{rid}]",
            date=day, codes=(Coding(rx, "1", "timolol 5 MG/ML Ophthalmic Solution"),),
            resource=resource,
        )  # fmt: skip
        return Selected(record, 1.0, ("eye drops: term",))

    refills = [order(f"r{i}", f"20{10 + i}-01-01", "Condition/g") for i in range(5)]
    other = order("x", "2012-06-01", "Condition/h")
    bare = order("b", "2013-01-01", None)
    kept = _latest_per_reason([*refills, other, bare])
    assert [s.record.ref for s in kept] == [
        "MedicationRequest/r4", "MedicationRequest/x", "MedicationRequest/b"
    ]  # fmt: skip
