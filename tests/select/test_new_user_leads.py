"""Phrasings and records a new user met in session 9 of issue 15 (Java-Synthea Dirk
Kuhlman): a medicine whose order names no reason, a list asked twice in one message, a habit
with no reading on file, a long series whose first reading differs from the rest."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from answer.test_judgements import bp, condition, weight
from ehrqa.answer.answerer import AnswerConfig, answer
from ehrqa.answer.judgements import trend
from ehrqa.fhir.record import Coding, Record
from ehrqa.select.default import DefaultSelector
from ehrqa.select.followup import remembered, resolve_followup, split_parts
from ehrqa.store import SqliteStore

NOW = date(2021, 4, 1)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _store(tmp_path: Path, records: list[Record]) -> SqliteStore:
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.upsert(records)
    return store


def _order(ref: str, day: str, name: str, reason: str = "") -> Record:
    """An active medication order; ``reason`` is "Condition/id=Display" when it names one."""
    rtype, rid = ref.split("/")
    target, _, said = reason.partition("=")
    resource = {"reasonReference": [{"reference": target}]} if reason else {}
    text = f"[{ref}] {day} {name}; status active" + (f"; reason {said}" if said else "")
    return Record(ref, rtype, rid, "p", text, date=day, codes=(Coding(RXNORM, "1", name),),
                  status="active", resource=resource)  # fmt: skip


def _ask(store: SqliteStore, question: str) -> tuple[set[str], str]:
    selection = DefaultSelector().select(store, "p", question, NOW)
    said = answer(question, NOW, selection, None, AnswerConfig()).text
    return {item.record.ref for item in selection.items}, said


def test_a_medicine_with_no_recorded_reason_names_the_recorded_conditions_it_is_used_for(
    tmp_path: Path,
) -> None:
    epilepsy = condition("e", "84757009", "Epilepsy")
    store = _store(
        tmp_path,
        [
            epilepsy,
            condition("h", "38341003", "Hypertension"),
            _order("MedicationRequest/c", "1989-04-11", "Carbamazepine[Tegretol]"),
        ],
    )
    chosen, said = _ask(store, "why is he on carbamazepine?")
    # The order's reason is not invented: it is said to be missing, and the lead is a lead.
    assert chosen == {"MedicationRequest/c", "Condition/e"}
    assert said.startswith("The record gives no reason for Carbamazepine")
    assert "commonly used for" in said and "Epilepsy" in said and "Hypertension" not in said


def test_a_medicine_with_no_reason_and_no_known_use_in_the_record_says_only_that(
    tmp_path: Path,
) -> None:
    store = _store(
        tmp_path,
        [
            condition("h", "38341003", "Hypertension"),
            _order("MedicationRequest/c", "1989-04-11", "Carbamazepine[Tegretol]"),
        ],
    )
    chosen, said = _ask(store, "why is he on carbamazepine?")
    assert chosen == {"MedicationRequest/c"}
    assert said.startswith("The record gives no reason for Carbamazepine")
    assert "commonly used" not in said


def test_one_list_asked_twice_in_one_message_is_one_question() -> None:
    question = "what's wrong with dirk? main health problems"
    assert split_parts(question, NOW) == [question]
    # Two lists of different things stay two parts.
    assert len(split_parts("what meds is he on and what are his diagnoses?", NOW)) == 2


def test_a_habit_with_no_reading_on_file_is_not_denied(tmp_path: Path) -> None:
    store = _store(
        tmp_path, [condition("h", "38341003", "Hypertension"), weight("w", "2021-03-02", 94.5)]
    )
    chosen, said = _ask(store, "does he drink alcohol?")
    assert not chosen and said.startswith("The record does not say")
    # Asked whether the screening was done, none on file is a "No".
    _, screened = _ask(store, "has he been screened for alcohol use?")
    assert screened.startswith("No: the record has no alcohol use score")


def test_a_long_series_with_equal_readings_between_says_which_readings_are_equal() -> None:
    readings = [weight("w0", "2013-02-19", 93.4)]
    readings += [weight(f"w{i}", f"{2013 + i}-06-01", 94.52) for i in range(1, 11)]
    verdict = trend(readings)
    assert verdict is not None
    assert "93.4 kg on 2013-02-19" in verdict.sentence
    assert "11 readings in all; those in between were each 94.52 kg" in verdict.sentence


def _treated_hypertension(tmp_path: Path) -> SqliteStore:
    return _store(
        tmp_path,
        [
            condition("h", "38341003", "Hypertension"),
            _order(
                "MedicationRequest/hctz",
                "2019-03-05",
                "Hydrochlorothiazide 25 MG",
                "Condition/h=Hypertension",
            ),
            bp("b1", "2020-10-06", 190, 109),
            bp("b2", "2021-03-02", 166, 113),
        ],
    )


def test_whether_a_medicine_works_is_whether_what_it_is_for_is_at_target(
    tmp_path: Path,
) -> None:
    store = _treated_hypertension(tmp_path)
    for question in (
        "is the hydrochlorothiazide working?",
        "is his blood pressure medicine working?",
    ):
        chosen, said = _ask(store, question)
        # It had answered "Yes, the record shows: Hydrochlorothiazide …" (the order exists).
        assert not said.startswith("Yes"), question
        assert "not controlled" in said.split(". ")[0] and "Hydrochlorothiazide" in said
        assert {"Condition/h", "Observation/b2", "MedicationRequest/hctz"} <= chosen
    # An organ working is not a medicine.
    assert "Hydrochlorothiazide" not in _ask(store, "is his kidney working?")[1]


def test_a_medicine_with_no_recorded_reason_is_listed_not_judged(tmp_path: Path) -> None:
    store = _store(
        tmp_path, [_order("MedicationRequest/c", "1989-04-11", "Carbamazepine[Tegretol]")]
    )
    chosen, said = _ask(store, "is the carbamazepine working?")
    assert chosen == {"MedicationRequest/c"} and not said.startswith("Yes")


def test_a_follow_up_about_starting_it_asks_of_the_medicine_the_answer_named(
    tmp_path: Path,
) -> None:
    store = _treated_hypertension(tmp_path)
    history: list[str] = []
    for question in ("does he have high blood pressure?", "what's he taking for it?"):
        resolved = resolve_followup(question, history, NOW)
        selection = DefaultSelector().select(store, "p", resolved, NOW)
        history.append(remembered(resolved, selection))
    resolved = resolve_followup("when did he start that?", history, NOW)
    assert resolved.endswith("(about: hydrochlorothiazide)")
    assert resolve_followup("since when?", history, NOW).endswith("(about: hydrochlorothiazide)")
    # A question of the condition still asks of the condition.
    assert "hydrochlorothiazide" not in resolve_followup("how long has he had it?", history, NOW)


def test_a_summary_of_the_whole_patient_gives_problems_medicines_and_allergies(
    tmp_path: Path,
) -> None:
    from ehrqa.select.followup import HEALTH_SUMMARY_PARTS, health_summary_parts

    store = _treated_hypertension(tmp_path)
    chosen, said = _ask(store, "give me a quick summary of his health")
    # It had answered with a care-plan goal ("Found: goal: Improve … foot health").
    assert {"Condition/h", "MedicationRequest/hctz"} <= chosen
    assert said.startswith("Current: Hypertension") and "Hydrochlorothiazide" in said
    assert "no allergies" in said
    assert health_summary_parts("tell me about him", NOW) == list(HEALTH_SUMMARY_PARTS)
    # A summary of one thing is not of the whole patient.
    assert health_summary_parts("summarize her medications", NOW) is None


def test_kidney_trouble_is_kidney_disease() -> None:
    from ehrqa.knowledge.scanner import find_concepts

    found = find_concepts("how many years since kidney trouble was first noted in her chart")
    assert "chronic kidney disease" in [c.name for c in found]


def test_any_screening_due_asks_each_screening_that_applies_to_age_and_sex() -> None:
    from ehrqa.select.followup import screening_parts

    man = screening_parts("is he due for any screening?", NOW, 65, "male")
    assert man == ["am i due for a colonoscopy?"]
    woman = screening_parts("what cancer screenings does she need?", NOW, 50, "female")
    assert woman is not None and len(woman) == 3
    assert screening_parts("any screenings due?", NOW, 30, "male") is None  # none applies
    # A screening named is asked as it is.
    assert screening_parts("am I due for a mammogram?", NOW, 50, "female") is None


def test_a_man_with_no_colonoscopy_is_told_one_is_due_and_a_blood_smear_is_no_pap(
    tmp_path: Path,
) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    smear = {"resourceType": "Procedure", "id": "s", "status": "completed",
             "subject": {"reference": "Patient/p1"}, "performedDateTime": "2019-11-01T10:00:00Z",
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "14768001",
                                  "display": "Peripheral blood smear interpretation"}]}}  # fmt: skip
    store = SqliteStore(tmp_path / "s.sqlite3")
    person = patient("p1", birthDate="1956-02-27", gender="male")
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(person, smear))])
    selection = DefaultSelector().select(store, "p1", "is he due for any screening?", NOW)
    said = answer("is he due for any screening?", NOW, selection, None, AnswerConfig())
    assert said.text.startswith("There is no record of colonoscopy") and "USPSTF" in said.text
    woman = DefaultSelector().select(store, "p1", "has she had a pap smear?", NOW)
    assert "Procedure/s" not in woman.refs


def test_how_is_he_doing_is_a_summary_opening_with_a_death(tmp_path: Path) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths
    from ehrqa.select.followup import health_summary_parts

    assert health_summary_parts("how is doing?", NOW) is not None  # "how is Korey doing?"
    assert health_summary_parts("how's he been doing lately?", NOW) is not None
    assert health_summary_parts("how is his cholesterol doing?", NOW) is None
    store = SqliteStore(tmp_path / "s.sqlite3")
    person = patient("p1", birthDate="1913-01-13", deceasedDateTime="1993-12-06T10:00:00Z")
    hld = {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p1"},
           "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "1990-06-18",
           "code": {"coding": [{"system": "http://snomed.info/sct", "code": "55822004",
                                "display": "Hyperlipidemia"}]}}  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(person, hld))])
    selection = DefaultSelector().select(store, "p1", "how is she doing?", NOW)
    said = answer("how is she doing?", NOW, selection, None, AnswerConfig()).text
    assert said.startswith("Died on 1993-12-06 at age 80") and "Hyperlipidemia" in said


def test_can_he_take_a_drug_answers_with_the_medication_safety_checks(tmp_path: Path) -> None:
    ckd = condition("k", "431855005", "Chronic kidney disease stage 1")
    store = _store(
        tmp_path,
        [
            ckd,
            _order("MedicationRequest/hctz", "2019-03-05", "Hydrochlorothiazide 25 MG"),
        ],
    )
    chosen, said = _ask(store, "can he take ibuprofen?")
    # It had said "None recorded: the record has no allergies".
    assert said.startswith("Cautions for ibuprofen in the record:")
    assert "can worsen kidney disease [Condition/k]" in said
    assert {"Condition/k", "MedicationRequest/hctz"} <= chosen
    _, by_class = _ask(store, "any contraindication to NSAIDs?")
    assert by_class.startswith("Cautions for nsaid (checked as ibuprofen)")
    (tmp_path / "x").mkdir()
    _, clear = _ask(_store(tmp_path / "x", [ckd]), "is amoxicillin safe for him?")
    assert clear.startswith("The medication safety checks found no caution for amoxicillin")
