"""Context before the question, clinicians' shorthand and names the lexicon lacked: what
round 14's dev split (val14) showed in session 9 of issue 15."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from answer.test_judgements import condition, obs
from ehrqa.answer.answerer import AnswerConfig, answer
from ehrqa.fhir.record import Coding, Record
from ehrqa.knowledge.scanner import find_concepts
from ehrqa.select.default import DefaultSelector
from ehrqa.select.followup import split_parts
from ehrqa.select.query import analyze, asks_yes_no
from ehrqa.store import SqliteStore

NOW = date(2025, 1, 6)


def _store(tmp_path: Path, records: list[Record]) -> SqliteStore:
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.upsert(records)
    return store


def _said(store: SqliteStore, question: str) -> str:
    selection = DefaultSelector().select(store, "p", question, NOW)
    return answer(question, NOW, selection, None, AnswerConfig()).text


def _hemoglobin(ref: str, day: str, value: float) -> Record:
    return obs(ref, day, "718-7", "Hemoglobin [Mass/volume] in Blood", value, "g/dL")


def test_back_then_and_coming_back_up_name_no_body_site(tmp_path: Path) -> None:
    covid = condition("c", "840539006", "Disease caused by severe acute respiratory syndrome")
    anemia = condition("a", "271737000", "Anemia")
    store = _store(
        tmp_path,
        [
            covid,
            anemia,
            _hemoglobin("h1", "2020-02-06", 11.5),
            _hemoglobin("h2", "2021-01-28", 14.6),
        ],
    )
    said = _said(store, "did i actually test positive for covid back then or was it just suspected")
    # It had said "No covid 19 of the back is named in the record".
    assert "of the back" not in said and "Disease caused by" in said
    # With no test result on file the diagnosis is shown, never a "No" about covid.
    assert said.startswith("No observations about covid 19 are recorded, but the record holds")
    trend = _said(store, "after my anemia in 2020 did my hemoglobin come back up?")
    assert trend.startswith("Yes: Hemoglobin") and "went up" in trend and "14.6 g/dL" in trend


def test_after_an_event_in_a_year_opens_a_window_at_that_year() -> None:
    window = analyze("after my anemia in 2020 did my hemoglobin come back up?", NOW).window
    assert window is not None and window.start == date(2020, 1, 1) and window.end is None
    assert analyze("did my hemoglobin come back up?", NOW).intent == "trend"


@pytest.mark.parametrize(
    ("question", "yes_no"),
    [
        ("I lost a pregnancy last year, is that in my chart?", True),
        ("after my anemia in 2020 did my hemoglobin come back up?", True),
        ("on admission was he on a blood thinner?", True),
        ("PPSV23 given?", True),
        ("ASA allergy?", True),
        ("when was his last a1c?", False),
        ("since when has he had diabetes?", False),
        ("in which year did he have the surgery?", False),
        ("my mom took famotidine for years, what was it prescribed for?", False),
        ("after the surgery how long was he in the hospital?", False),
        ("blood lead level?", False),
    ],
)
def test_a_yes_no_question_after_its_context_is_still_yes_no(question: str, yes_no: bool) -> None:
    assert asks_yes_no(question) is yes_no


def test_losing_a_pregnancy_is_no_trend_and_losing_weight_is() -> None:
    assert analyze("I lost a pregnancy last year, is that in my chart?", NOW).intent != "trend"
    assert analyze("did she lose her job?", NOW).intent != "trend"
    for question in ("has he lost weight?", "has she lost a lot of weight?", "is he losing weight"):
        assert analyze(question, NOW).intent == "trend", question


def test_context_before_a_dash_is_no_part_and_dates_what_points_back_to_it() -> None:
    question = (
        "my daughter hit her head on the ice in jan 2022 - was it a concussion and did we end "
        "up in the ER that month?"
    )
    parts = split_parts(question, NOW)
    assert parts[0] == "was it a concussion"
    assert parts[1].endswith("(in jan 2022)") and len(parts) == 2


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("can mom take bactrim for her UTI", "sulfamethoxazole"),
        ("what's she taking fosamax for", "alendronate"),
        ("ASA allergy?", "aspirin"),
        ("PPSV23 given?", "pneumococcal polysaccharide vaccine"),
        ("did he get prevnar 20?", "pneumococcal conjugate vaccine"),
        ("was there a PE?", "pulmonary embolism"),
        ("blood lead level?", "lead level"),
    ],
)
def test_brands_and_shorthand_name_their_concepts(text: str, name: str) -> None:
    assert name in [c.name for c in find_concepts(text)]


def test_one_kind_of_pneumococcal_vaccine_does_not_answer_for_the_other(tmp_path: Path) -> None:
    cvx = "http://hl7.org/fhir/sid/cvx"

    def shot(ref: str, day: str, code: str, name: str) -> Record:
        text = f"[Immunization/{ref}] {day} {name} (CVX {code}); status completed"
        return Record(f"Immunization/{ref}", "Immunization", ref, "p", text, date=day,
                      codes=(Coding(cvx, code, name),), status="completed")  # fmt: skip

    pcv = [shot(f"p{i}", f"201{i}-08-23", "133", "Pneumococcal conjugate PCV 13") for i in range(4)]
    ppsv = shot("s", "2014-08-23", "33", "pneumococcal polysaccharide vaccine, 23 valent")
    store = _store(tmp_path, [*pcv, ppsv])
    selection = DefaultSelector().select(store, "p", "PPSV23 given?", NOW)
    assert selection.refs == ["Immunization/s"]
    # Asked for the conjugate one, the polysaccharide dose is not among them.
    conjugate = DefaultSelector().select(store, "p", "has she had prevnar?", NOW)
    assert "Immunization/s" not in conjugate.refs and "Immunization/p0" in conjugate.refs


def test_an_allergy_to_a_brand_is_found_by_its_ingredients(tmp_path: Path) -> None:
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    allergy = Record(
        "AllergyIntolerance/a", "AllergyIntolerance", "a", "p",
        "[AllergyIntolerance/a] 1961-09-01 Sulfamethoxazole / Trimethoprim; status active",
        date="1961-09-01", codes=(Coding(rxnorm, "10831", "Sulfamethoxazole / Trimethoprim"),),
        status="active",
    )  # fmt: skip
    store = _store(tmp_path, [allergy, obs("w", "2024-01-01", "29463-7", "Body Weight", 70, "kg")])
    said = _said(store, "can mom take bactrim for her UTI or is she allergic")
    # It had said "The record does not contain information about urinary tract infection".
    assert "Sulfamethoxazole / Trimethoprim" in said and "[AllergyIntolerance/a]" in said


def _encounter(id_: str, day: str, cls: str, code: str, display: str) -> dict[str, object]:
    return {"resourceType": "Encounter", "id": id_, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
            "type": [{"coding": [{"system": "http://snomed.info/sct", "code": code,
                                  "display": display}]}],
            "subject": {"reference": "Patient/p1"},
            "period": {"start": f"{day}T10:00:00Z", "end": f"{day}T12:00:00Z"}}  # fmt: skip


def test_an_emergency_visit_named_an_admission_is_no_inpatient_stay(tmp_path: Path) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    store = SqliteStore(tmp_path / "s.sqlite3")
    visits = [
        _encounter("i1", "2000-05-01", "IMP", "32485007", "Hospital admission (procedure)"),
        _encounter("i2", "2019-02-13", "IMP", "56876005", "Drug rehabilitation and detoxification"),
        _encounter("e1", "2011-01-05", "EMER", "183452005", "Emergency hospital admission"),
        _encounter("e2", "2010-09-12", "EMER", "50849002", "Emergency room admission"),
    ]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient("p1"), *visits))])
    for question in ("# inpatient stays", "total number of hospital admissions?"):
        selection = DefaultSelector().select(store, "p1", question, NOW)
        # The emergency admissions are filed as emergency visits: 2, not 3 or 4.
        assert set(selection.refs) == {"Encounter/i1", "Encounter/i2"}, question


def test_what_age_was_that_is_the_age_at_the_event_told_before() -> None:
    from ehrqa.select.default import AGE_AT_RE

    assert AGE_AT_RE.search("she broke her ankle when she was tiny - what age was that?")
    assert AGE_AT_RE.search("how old was he when that happened?")
    assert not AGE_AT_RE.search("what age is she?")


def _procedure(ref: str, day: str, code: str, name: str, reason: str = "") -> Record:
    text = f"[Procedure/{ref}] {day} {name} (SNOMED {code}); status completed"
    text += f"; reason {reason}" if reason else ""
    return Record(f"Procedure/{ref}", "Procedure", ref, "p", text, date=day,
                  codes=(Coding("http://snomed.info/sct", code, name),),
                  status="completed")  # fmt: skip


def test_a_referral_asked_with_what_it_is_for_is_that_referral(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        [
            condition("h", "59621000", "Essential hypertension"),
            _procedure("r1", "2017-08-02", "183856001", "Referral to hypertension clinic"),
            _procedure("d1", "1982-09-04", "103697008", "Patient referral for dental care"),
        ],
    )
    selection = DefaultSelector().select(
        store, "p", "was she referred to a hypertension specialist", NOW
    )
    assert selection.refs == ["Procedure/r1"]
    # Asked without what for, every referral.
    every = DefaultSelector().select(store, "p", "was she ever referred to a specialist?", NOW)
    assert {"Procedure/r1", "Procedure/d1"} <= set(every.refs)


def test_whether_a_test_was_ever_done_opens_yes(tmp_path: Path) -> None:
    screen = Record(
        "Observation/u", "Observation", "u", "p",
        "[Observation/u] 2014-02-03 Drugs of abuse 5 panel - Urine by Screen method "
        "(LOINC 68524-7) = Positive",
        date="2014-02-03", codes=(Coding("http://loinc.org", "68524-7", "Drugs of abuse 5 panel"),),
        category=("laboratory",), value_text="Positive",
    )  # fmt: skip
    store = _store(tmp_path, [screen])
    assert _said(store, "did they ever drug test me?").startswith("Yes, the record shows:")


def test_what_a_colonoscopy_found_includes_what_was_done_during_it(tmp_path: Path) -> None:
    from ehrqa.select.base import Selected
    from ehrqa.select.default import _findings

    def at_visit(record: Record) -> Record:
        resource = {"encounter": {"reference": "Encounter/v"}}
        return Record(record.ref, record.resource_type, record.id, "p", record.text,
                      date=record.date, codes=record.codes, status=record.status,
                      category=record.category, value=record.value, unit=record.unit,
                      resource=resource)  # fmt: skip

    scope = at_visit(_procedure("c", "2021-09-08", "73761001", "Colonoscopy"))
    polyp = at_visit(condition("p1", "68496003", "Polyp of colon"))
    polyp = Record(polyp.ref, "Condition", "p1", "p", polyp.text.replace("2010-01-01", "2021-09-08"),
                   date="2021-09-08", codes=polyp.codes, status="active",
                   resource=polyp.resource)  # fmt: skip
    biopsy = at_visit(_procedure("b", "2021-09-08", "76164006", "Biopsy of colon"))
    store = _store(tmp_path, [scope, polyp, biopsy])
    plan = analyze("what did they find on her 2021 colonoscopy", NOW)
    found = _findings(store, "p", plan, [Selected(scope, 1.0, ("colonoscopy",))])
    assert {i.record.ref for i in found} == {"Condition/p1", "Procedure/b"}


def test_a_list_asked_yes_or_no_with_none_found_is_a_no(tmp_path: Path) -> None:
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    other = Record(
        "MedicationRequest/m", "MedicationRequest", "m", "p",
        "[MedicationRequest/m] 2020-01-01 Acetaminophen 325 MG Oral Tablet; status stopped",
        date="2020-01-01", codes=(Coding(rxnorm, "313782", "Acetaminophen 325 MG Oral Tablet"),),
        status="stopped",
    )  # fmt: skip
    store = _store(tmp_path, [condition("pe", "706870000", "Acute pulmonary embolism"), other])
    selection = DefaultSelector().select(store, "p", "was he ever put on anticoagulation?", NOW)
    assert not selection.items and selection.negative
    assert (selection.empty_reason or "").startswith("No: the record has no anticoagulant")


def test_how_long_treated_for_a_condition_is_how_long_it_has_been_recorded(
    tmp_path: Path,
) -> None:
    abuse = Record(
        "Condition/d", "Condition", "d", "p",
        "[Condition/d] 2012-03-12 Dependent drug abuse (SNOMED 6525002); status active",
        date="2012-03-12", codes=(Coding("http://snomed.info/sct", "6525002", "Dependent drug abuse"),),
        status="active",
    )  # fmt: skip
    plan = analyze("how long has she been getting treated for substance use", NOW)
    assert plan.resource_types == ("Condition",) and "drug misuse" in [
        c.name for c in plan.concepts
    ]
    said = _said(
        _store(tmp_path, [abuse]), "how long has she been getting treated for substance use"
    )
    assert said.startswith("Dependent drug abuse: 12 years, since 2012-03-12")


def test_circumstances_filed_at_every_visit_never_crowd_a_diagnosis_off_the_problem_list(
    tmp_path: Path,
) -> None:
    snomed = "http://snomed.info/sct"

    def entry(ref: str, day: str, code: str, name: str) -> Record:
        text = f"[Condition/{ref}] {day} {name} (SNOMED {code}); status active"
        return Record(f"Condition/{ref}", "Condition", ref, "p", text, date=day,
                      codes=(Coding(snomed, code, name),), status="active")  # fmt: skip

    hypertension = entry("h", "1995-08-05", "59621000", "Essential hypertension (disorder)")
    refugee = [
        entry(f"r{i}", f"{2000 + i // 12}-{i % 12 + 1:02d}-01", "446654005", "Refugee (person)")
        for i in range(120)
    ]
    selection = DefaultSelector().select(
        _store(tmp_path, [hypertension, *refugee]), "p", "mom's problem list?", NOW
    )
    assert "Condition/h" in selection.refs


def test_the_highest_level_of_school_is_the_screening_answer(tmp_path: Path) -> None:
    answered = Record(
        "Observation/e", "Observation", "e", "p",
        "[Observation/e] 2024-09-07 Highest level of education (LOINC 82589-3) = "
        "More than high school",
        date="2024-09-07",
        codes=(Coding("http://loinc.org", "82589-3", "Highest level of education"),),
        category=("survey",), value_text="More than high school",
    )  # fmt: skip
    said = _said(_store(tmp_path, [answered]), "highest level of school she finished?")
    assert "More than high school" in said and "[Observation/e]" in said
    assert "highest education" in [c.name for c in find_concepts("what's her education?")]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("what's the pepcid for", "famotidine"),
        ("is she still on protonix?", "pantoprazole"),
        ("does he take singulair?", "montelukast"),
        ("why is he on flomax?", "tamsulosin"),
        ("any sleeping pills?", "sleep medicine"),
        ("is she on seroquel?", "quetiapine"),
        ("How many CBT sessions did I end up doing?", "psychotherapy"),
        ("has she ever been through rehab", "rehabilitation therapy"),
        ("Does she have stable housing?", "housing status"),
    ],
)
def test_brands_and_lay_names_of_val15(text: str, name: str) -> None:
    assert name in [c.name for c in find_concepts(text)]


@pytest.mark.parametrize(
    ("question", "yes_no"),
    [
        ("He broke his arm when he was little, right?", True),
        ("she had a c-section, didn't she?", True),
        ("what is his weight right?", False),
    ],
)
def test_a_statement_asked_to_be_confirmed_is_yes_no(question: str, yes_no: bool) -> None:
    assert asks_yes_no(question) is yes_no


def test_control_asked_on_the_medicines_is_the_conditions_control() -> None:
    plan = analyze("Is her anxiety well controlled on all these meds?", NOW)
    assert "MedicationRequest" not in plan.resource_types
    assert "anxiety" in " ".join(c.name for c in plan.concepts)


def test_a_babys_own_measurement_is_not_in_the_parents_record(tmp_path: Path) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    store = SqliteStore(tmp_path / "s.sqlite3")
    mother = patient("p1", birthDate="1996-06-17", gender="female")
    infant_weight = {"resourceType": "Observation", "id": "w", "status": "final",
                     "subject": {"reference": "Patient/p1"},
                     "effectiveDateTime": "1996-06-17T10:00:00Z",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7",
                                          "display": "Body Weight"}]},
                     "valueQuantity": {"value": 4.1, "unit": "kg"}}  # fmt: skip
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(mother, infant_weight))])
    selection = DefaultSelector().select(store, "p1", "How much did my baby weigh at birth?", NOW)
    # It had answered with the mother's own weight as an infant (4.1 kg in 1996).
    assert not selection.items and "baby's record" in (selection.empty_reason or "")


def test_a_count_of_two_kinds_of_visit_is_counted_per_kind(tmp_path: Path) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    store = SqliteStore(tmp_path / "s.sqlite3")
    visits = [
        _encounter("e1", "2020-11-18", "EMER", "50849002", "Emergency room admission"),
        _encounter("e2", "2014-08-18", "EMER", "50849002", "Emergency room admission"),
        _encounter("i1", "2021-04-12", "IMP", "56876005", "Drug rehabilitation and detoxification"),
    ]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient("p1"), *visits))])
    question = "lifetime ED visits and inpatient admits?"
    selection = DefaultSelector().select(store, "p1", question, NOW)
    assert len(selection.facets) == 2
    said = answer(question, NOW, selection, None, AnswerConfig())
    assert said.text.startswith("2 found") and "1 found" in said.text and not said.unverified


def test_a_sentence_that_tells_before_two_questions_is_context() -> None:
    question = (
        "She lost a baby in the spring. Was that recorded as a miscarriage, and has she ever "
        "actually given birth?"
    )
    assert split_parts(question, NOW) == [
        "Was that recorded as a miscarriage",
        "has she ever actually given birth?",
    ]


def test_food_allergies_are_the_allergies_of_category_food(tmp_path: Path) -> None:
    def allergy(ref: str, name: str, category: str) -> Record:
        return Record(f"AllergyIntolerance/{ref}", "AllergyIntolerance", ref, "p",
                      f"[AllergyIntolerance/{ref}] 1968-07-19 {name}; status active",
                      date="1968-07-19", category=(category,), status="active",
                      codes=(Coding("http://snomed.info/sct", "1", name),))  # fmt: skip

    store = _store(
        tmp_path, [allergy("m", "Cow's milk", "food"), allergy("a", "Aspirin", "medication")]
    )
    plan = analyze("any allergies to food?", NOW)
    assert plan.categories == ("food",)
    assert DefaultSelector().select(store, "p", "any food allergies?", NOW).refs == [
        "AllergyIntolerance/m"
    ]


def test_a_condition_asked_in_a_pregnancy_is_the_condition() -> None:
    plan = analyze("did she ever have toxemia in a pregnancy", NOW)
    assert [c.name for c in plan.concepts] == ["preeclampsia"]
    # A pregnancy asked alone stays the pregnancy.
    assert [c.name for c in analyze("is she pregnant?", NOW).concepts] == ["pregnancy"]


def test_medicines_when_he_passed_are_those_still_active_at_the_death() -> None:
    for question in (
        "What medications was he on when he passed?",
        "What medications was he on when he died?",
    ):
        plan = analyze(question, NOW)
        assert plan.status == ("active",) and "Patient" not in plan.resource_types, question
    from ehrqa.answer.judgements import DEATH_RE

    assert DEATH_RE.search("What medications was he on when he passed?")
    assert not DEATH_RE.search("when she passed the hearing test")


def test_a_kind_of_visit_never_had_and_a_judgement_with_nothing_to_judge(tmp_path: Path) -> None:
    checkup = Record(
        "Encounter/v", "Encounter", "v", "p",
        "[Encounter/v] 2020-10-02 AMB encounter: Encounter for check up; status finished",
        date="2020-10-02", category=("amb",),
        codes=(Coding("http://snomed.info/sct", "185349003", "Encounter for check up"),),
    )  # fmt: skip
    store = _store(tmp_path, [condition("h", "38341003", "Hypertension"), checkup])
    last_stay = DefaultSelector().select(store, "p", "when was I last in hospital", NOW)
    # It had said "The record does not contain information about encounters".
    assert last_stay.empty_reason == "No hospital stay is recorded."
    thyroid = DefaultSelector().select(store, "p", "is my thyroid ok", NOW)
    # It had said "No: the record has no tsh, hypothyroidism" (a "No" to "is it ok?").
    assert (thyroid.empty_reason or "").startswith("The record has no ")
    assert (thyroid.empty_reason or "").endswith(" to judge it by.")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("hx of TAB?", "termination of pregnancy"),
        ("How many years has he been living with MS?", "multiple sclerosis"),
        ("Is he still on the Copaxone injections?", "glatiramer"),
        ("What did the MRIs in December 2013 show?", "mri"),
        ("how many exercise therapy sessions did he go to?", "physical therapy"),
    ],
)
def test_names_of_val16(text: str, name: str) -> None:
    assert name in [c.name for c in find_concepts(text)]


def test_therapy_sessions_alone_is_no_psychotherapy() -> None:
    assert "psychotherapy" not in [c.name for c in find_concepts("how many therapy sessions?")]


def test_a_sentence_after_the_question_is_no_part_and_the_sex_is_said_alone(
    tmp_path: Path,
) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    question = "Is he a boy or a girl in the chart? The form was filled out wrong once."
    assert split_parts(question, NOW) == ["Is he a boy or a girl in the chart?"]
    store = SqliteStore(tmp_path / "s.sqlite3")
    person = patient("p1", gender="male", birthDate="2016-06-06")
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(person))])
    selection = DefaultSelector().select(store, "p1", question, NOW)
    said = answer(question, NOW, selection, None, AnswerConfig()).text
    assert said.startswith("Recorded: sex male [Patient/p1]")
    both = DefaultSelector().select(store, "p1", "what gender and DOB are recorded?", NOW)
    said = answer("what gender and DOB are recorded?", NOW, both, None, AnswerConfig()).text
    assert said.startswith("Recorded: sex male, born 2016-06-06")


def test_after_an_event_named_first_a_trend_starts_from_the_last_reading_before_it(
    tmp_path: Path,
) -> None:
    from ehrqa.select.query import since_event

    found = since_event("After the transplant did his kidney function (GFR) actually come up?")
    assert found is not None and [c.name for c in found.events] == ["transplant"]
    assert found.rest.startswith("did his kidney function")
    transplant = Record(
        "Procedure/t", "Procedure", "t", "p",
        "[Procedure/t] 1977-08-25 Transplant of kidney (SNOMED 70536003); status completed",
        date="1977-08-25", codes=(Coding("http://snomed.info/sct", "70536003", "Transplant of kidney"),),
        status="completed",
    )  # fmt: skip

    def gfr(ref: str, day: str, value: float) -> Record:
        return obs(ref, day, "33914-3", "Glomerular filtration rate/1.73 sq M.predicted", value,
                   "mL/min/{1.73_m2}")  # fmt: skip

    store = _store(
        tmp_path,
        [transplant, gfr("g0", "1976-01-27", 4), gfr("g1", "1977-08-25", 9.9),
         gfr("g2", "1978-02-07", 136.7)],
    )  # fmt: skip
    said = _said(store, "After the transplant did his kidney function (GFR) actually come up?")
    # It had read only the reading after the transplant: no course at all.
    assert said.startswith("Yes: ") and "9.9" in said and "136.7" in said and "went up" in said


def test_labs_from_a_condition_workup_are_that_days_named_measures(tmp_path: Path) -> None:
    anemia = Record(
        "Condition/a", "Condition", "a", "p",
        "[Condition/a] 2022-04-07 Anemia (disorder) (SNOMED 271737000); status active",
        date="2022-04-07", codes=(Coding("http://snomed.info/sct", "271737000", "Anemia"),),
        status="active", resource={},
    )  # fmt: skip
    hgb = obs("h1", "2022-04-07", "718-7", "Hemoglobin [Mass/volume] in Blood", 11.8, "g/dL")
    old = obs("h0", "2022-03-31", "718-7", "Hemoglobin [Mass/volume] in Blood", 12.2, "g/dL")
    hct = obs("c1", "2022-04-07", "4544-3", "Hematocrit [Volume Fraction] of Blood", 35.0, "%")
    store = _store(tmp_path, [anemia, hgb, old, hct])
    selection = DefaultSelector().select(store, "p", "Hgb and Hct from the anemia workup?", NOW)
    # The diagnosis names no visit: its day stands for it (it had listed every hemoglobin).
    assert {"Observation/h1", "Observation/c1"} <= set(selection.refs)
    assert "Observation/h0" not in selection.refs


def test_an_event_named_by_two_concepts_is_the_record_naming_both(tmp_path: Path) -> None:
    referrals = [
        _procedure("d", "1990-09-13", "103697008", "Patient referral for dental care"),
        _procedure("t", "2020-10-03", "306316000", "Referral to transplant surgeon"),
    ]

    def gfr(ref: str, day: str, value: float) -> Record:
        return obs(ref, day, "33914-3", "Glomerular filtration rate/1.73 sq M.predicted", value,
                   "mL/min/{1.73_m2}")  # fmt: skip

    store = _store(
        tmp_path, [*referrals, gfr("g0", "2011-12-01", 145.8), gfr("g1", "2020-10-03", 6.5)]
    )
    question = "When she was referred to the transplant surgeon, what was her eGFR at that visit?"
    selection = DefaultSelector().select(store, "p", question, NOW)
    # It had anchored on the first referral of all (a dental one, 1990).
    assert set(selection.refs) == {"Procedure/t", "Observation/g1"}


def test_an_askers_threshold_comes_with_the_reference_range(tmp_path: Path) -> None:
    ldl = obs("l", "2021-02-04", "18262-6", "Low Density Lipoprotein Cholesterol", 104.1, "mg/dL")
    said = _said(_store(tmp_path, [ldl]), "s/p STEMI — is his LDL under 70?")
    assert said.startswith("Not below 70: Low Density Lipoprotein Cholesterol 104.1 mg/dL")
    assert "HIGH" in said


def test_a_telehealth_visit_filed_as_ambulatory_is_still_a_telehealth_visit(
    tmp_path: Path,
) -> None:
    from conftest import bundle, patient, write_json
    from ehrqa.ingest.files import ingest_paths

    store = SqliteStore(tmp_path / "s.sqlite3")
    visits = [
        _encounter(
            "t1", "2020-05-01", "AMB", "448337001", "Telemedicine consultation with patient"
        ),
        _encounter(
            "t2", "2021-05-01", "AMB", "448337001", "Telemedicine consultation with patient"
        ),
        _encounter("c1", "2021-06-01", "AMB", "185349003", "Encounter for check up"),
    ]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(patient("p1"), *visits))])
    selection = DefaultSelector().select(
        store, "p1", "how many telehealth appointments did he have", NOW
    )
    # Counted 0 once an ambulatory class was read as contradicting the telehealth type.
    assert set(selection.refs) == {"Encounter/t1", "Encounter/t2"}
