"""The question vocabulary: concepts, codes, cue words and longest-match lookup."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest

from ehrqa.core.errors import NotFoundError
from ehrqa.select.lexicon import (
    CONCEPTS,
    CONCEPTS_BY_NAME,
    MEDICATION_TYPES,
    Concept,
    find_categories,
    find_concepts,
    find_resource_types,
    fold,
    get_concept,
    scan,
    words,
)
from ehrqa.select.query import analyze

CODE_PATTERNS = {
    "LOINC": re.compile(r"\d{1,7}-\d"),
    "SNOMED": re.compile(r"\d{6,18}"),
    "CVX": re.compile(r"\d{1,3}"),
    "RxNorm": re.compile(r"\d{1,8}"),
}


@pytest.mark.parametrize("concept", CONCEPTS, ids=[c.name for c in CONCEPTS])
def test_concept_is_well_formed(concept: Concept) -> None:
    pattern = CODE_PATTERNS[concept.system]
    bad = [code for code in concept.codes if not pattern.fullmatch(code)]
    assert not bad, f"{concept.name}: {bad} are not {concept.system} codes"
    assert concept.terms, "a concept needs display terms"
    assert all(t == t.lower() and t.strip() == t for t in concept.terms)
    assert concept.name in concept.synonyms
    assert concept.resource_types
    assert all(CONCEPTS_BY_NAME[r] for r in concept.related)


def test_coded_kinds_have_codes() -> None:
    uncoded = [c.name for c in CONCEPTS if c.kind not in ("drug", "drug_class") and not c.codes]
    # "surgery" is told by word-parts of procedure displays ("-ectomy"), not by a code list;
    # "urgent care visit" by the words of a visit's type, which Synthea never codes apart;
    # "bariatric surgery" by its display's words (named so "gastric bypass" is not the heart's).
    assert uncoded == ["surgery", "bariatric surgery", "urgent care visit"]


def test_vocabulary_size() -> None:
    kinds = Counter(c.kind for c in CONCEPTS)
    assert sum(n for k, n in kinds.items() if k not in ("drug",)) >= 60
    assert kinds["lab"] >= 25 and kinds["vital"] >= 10 and kinds["condition"] >= 40
    assert kinds["vaccine"] >= 10 and kinds["drug_class"] >= 15 and kinds["drug"] >= 100
    assert len({c.name for c in CONCEPTS}) == len(CONCEPTS)


# Codes the brief and Synthea data rely on.
REQUIRED_CODES = [
    ("hba1c", "4548-4"),
    ("glucose", "2339-0"),
    ("glucose", "2345-7"),
    ("total cholesterol", "2093-3"),
    ("ldl cholesterol", "18262-6"),
    ("hdl cholesterol", "2085-9"),
    ("triglycerides", "2571-8"),
    ("creatinine", "38483-4"),
    ("creatinine", "2160-0"),
    ("egfr", "33914-3"),
    ("potassium", "6298-4"),
    ("sodium", "2947-0"),
    ("hemoglobin", "718-7"),
    ("white blood cells", "6690-2"),
    ("platelets", "777-3"),
    ("bmi", "39156-5"),
    ("body weight", "29463-7"),
    ("body height", "8302-2"),
    ("body height", "8306-3"),
    ("blood pressure", "85354-9"),
    ("blood pressure", "8480-6"),
    ("blood pressure", "8462-4"),
    ("systolic blood pressure", "8480-6"),
    ("diastolic blood pressure", "8462-4"),
    ("heart rate", "8867-4"),
    ("respiratory rate", "9279-1"),
    ("body temperature", "8310-5"),
    ("oxygen saturation", "2708-6"),
    ("oxygen saturation", "59408-5"),
    ("pain score", "72514-3"),
    ("smoking status", "72166-2"),
    ("diabetes", "44054006"),
    ("prediabetes", "15777000"),
    ("prediabetes", "714628002"),
    ("hypertension", "59621000"),
    ("influenza vaccine", "140"),
    ("influenza vaccine", "141"),
    ("influenza vaccine", "150"),
    ("influenza vaccine", "158"),
    ("mmr vaccine", "03"),
]


@pytest.mark.parametrize(("name", "code"), REQUIRED_CODES)
def test_required_codes(name: str, code: str) -> None:
    assert code in get_concept(name).codes


# Real Synthea displays: the concept must carry the code and a term found in the display.
SYNTHEA_CODED = [
    ("Hemoglobin A1c/Hemoglobin.total in Blood", "4548-4", "hba1c"),
    ("Glucose [Mass/volume] in Blood", "2339-0", "glucose"),
    ("Cholesterol [Mass/volume] in Serum or Plasma", "2093-3", "total cholesterol"),
    ("Low Density Lipoprotein Cholesterol", "18262-6", "ldl cholesterol"),
    ("Cholesterol in HDL [Mass/volume] in Serum or Plasma", "2085-9", "hdl cholesterol"),
    ("Triglycerides", "2571-8", "triglycerides"),
    ("Creatinine [Mass/volume] in Blood", "38483-4", "creatinine"),
    (
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma",
        "33914-3",
        "egfr",
    ),
    ("Urea nitrogen [Mass/volume] in Blood", "6299-2", "urea nitrogen"),
    ("Microalbumin/Creatinine [Mass Ratio] in Urine", "14959-1", "microalbumin"),
    ("Potassium [Moles/volume] in Blood", "6298-4", "potassium"),
    ("Sodium [Moles/volume] in Blood", "2947-0", "sodium"),
    ("Carbon dioxide, total [Moles/volume] in Blood", "20565-8", "carbon dioxide"),
    ("Hemoglobin [Mass/volume] in Blood", "718-7", "hemoglobin"),
    ("Leukocytes [#/volume] in Blood by Automated count", "6690-2", "white blood cells"),
    ("Platelets [#/volume] in Blood by Automated count", "777-3", "platelets"),
    ("Body Weight", "29463-7", "body weight"),
    ("Body Height", "8302-2", "body height"),
    ("Body mass index (BMI) [Ratio]", "39156-5", "bmi"),
    ("Blood pressure panel with all children optional", "85354-9", "blood pressure"),
    ("Systolic blood pressure", "8480-6", "systolic blood pressure"),
    ("Heart rate", "8867-4", "heart rate"),
    ("Respiratory rate", "9279-1", "respiratory rate"),
    ("Body temperature", "8310-5", "body temperature"),
    ("Oxygen saturation in Arterial blood", "2708-6", "oxygen saturation"),
    ("Pain severity - 0-10 verbal numeric rating [Score] - Reported", "72514-3", "pain score"),
    ("Tobacco smoking status", "72166-2", "smoking status"),
    (
        "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]",
        "55758-7",
        "depression score",
    ),
    (
        "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
        "70274-6",
        "anxiety score",
    ),
    ("Lipid panel with direct LDL - Serum or Plasma", "57698-3", "lipid panel"),
    ("Basic metabolic panel - Blood", "51990-0", "metabolic panel"),
    ("CBC panel - Blood by Automated count", "58410-2", "complete blood count"),
    ("Diabetes mellitus type 2 (disorder)", "44054006", "diabetes"),
    ("Prediabetes (finding)", "714628002", "prediabetes"),
    ("Essential hypertension (disorder)", "59621000", "hypertension"),
    ("Hypertriglyceridemia (disorder)", "302870006", "hyperlipidemia"),
    ("Body mass index 30+ - obesity (finding)", "162864005", "obesity"),
    ("Chronic kidney disease stage 2 (disorder)", "431856006", "chronic kidney disease"),
    ("Anemia (disorder)", "271737000", "anemia"),
    ("Viral sinusitis (disorder)", "444814009", "sinusitis"),
    ("Acute bronchitis (disorder)", "10509002", "bronchitis"),
    ("Acute viral pharyngitis (disorder)", "195662009", "pharyngitis"),
    ("Otitis media (disorder)", "65363002", "otitis media"),
    ("Migraine (disorder)", "37796009", "migraine"),
    ("Perennial allergic rhinitis (disorder)", "446096008", "allergic rhinitis"),
    ("Gingivitis (disorder)", "66383009", "gingivitis"),
    ("Severe anxiety (panic) (finding)", "80583007", "anxiety"),
    ("Influenza, seasonal, injectable, preservative free", "140", "influenza vaccine"),
    ("Td (adult), 5 Lf tetanus toxoid, preservative free, adsorbed", "113", "tetanus vaccine"),
    ("Tdap", "115", "tetanus vaccine"),
    ("Pneumococcal conjugate PCV 13", "133", "pneumococcal vaccine"),
    ("zoster vaccine, live", "121", "zoster vaccine"),
    ("Hep B, adult", "43", "hepatitis b vaccine"),
    ("MMR", "03", "mmr vaccine"),
    ("HPV, quadrivalent", "62", "hpv vaccine"),
    ("Latex (substance)", "111088007", "latex allergy"),
    ("Animal dander (substance)", "264287008", "animal dander allergy"),
    ("Tree pollen (substance)", "782576004", "tree pollen allergy"),
    ("Colonoscopy (procedure)", "73761001", "colonoscopy"),
    ("Plain X-ray of chest (procedure)", "399208008", "chest x ray"),
    ("Insertion of intrauterine contraceptive device", "65200003", "intrauterine device"),
    ("Replacement of contraceptive intrauterine device", "46706006", "intrauterine device"),
    ("Removal of intrauterine device", "68254000", "intrauterine device"),
    ("Insertion of subcutaneous contraceptive", "169553002", "contraceptive implant"),
    ("Removal of subcutaneous contraceptive", "301807007", "contraceptive implant"),
    ("Replacement of subcutaneous contraceptive", "755621000000101", "contraceptive implant"),
    ("Drug rehabilitation and detoxification", "56876005", "drug rehabilitation"),
    ("Encounter for 'check-up'", "185349003", "checkup"),
    ("Well child visit (procedure)", "410620009", "checkup"),
    (
        "Magnetic resonance imaging for measurement of brain volume (procedure)",
        "698354004",
        "brain mri",
    ),
    ("Computed tomography of head (procedure)", "303653007", "head ct"),
    ("Hearing examination (procedure)", "398171003", "hearing test"),
    ("Visual acuity testing (procedure)", "16830007", "eye exam"),
    ("Pulmonary rehabilitation (regime/therapy)", "15081005", "pulmonary rehabilitation"),
    ("Drugs of abuse 5 panel - Urine by Screen method", "65750-2", "urine drug screen"),
    ("Cause of Death [US Standard Certificate of Death]", "69453-9", "cause of death"),
    ("1 minute Apgar Score", "9272-6", "apgar score"),
    ("5 minute Apgar Score", "9274-2", "apgar score"),
    ("C reactive protein [Mass/volume] in Serum or Plasma", "1988-5", "c reactive protein"),
    (
        "Troponin I.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method",
        "89579-7",
        "troponin",
    ),
    ("Magnesium [Mass/volume] in Serum or Plasma", "19123-9", "magnesium"),
    ("Dependent drug abuse (disorder)", "6525002", "drug misuse"),
]


@pytest.mark.parametrize(("display", "code", "name"), SYNTHEA_CODED)
def test_synthea_displays(display: str, code: str, name: str) -> None:
    concept = get_concept(name)
    assert code in concept.codes
    assert any(term in display.lower() for term in concept.terms), concept.terms


SYNTHEA_DRUGS = [
    ("Hydrochlorothiazide 25 MG Oral Tablet", "diuretic"),
    ("lisinopril 10 MG Oral Tablet", "antihypertensive"),
    ("lisinopril 10 MG Oral Tablet", "ace inhibitor"),
    ("propranolol hydrochloride 40 MG Oral Tablet", "beta blocker"),
    ("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "diabetes medicine"),
    ("Insulin Lispro 100 UNT/ML Injectable Solution [Humalog]", "diabetes medicine"),
    ("Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", "antibiotic"),
    ("Penicillin V Potassium 250 MG Oral Tablet", "antibiotic"),
    ("Azithromycin 250 MG Oral Tablet", "antibiotic"),
    ("Cefuroxime 250 MG Oral Tablet", "antibiotic"),
    ("Aspirin 81 MG Oral Tablet", "antiplatelet"),
    ("Ibuprofen 400 MG Oral Tablet [Ibu]", "nsaid"),
    ("Acetaminophen 325 MG Oral Tablet", "painkiller"),
    ("Meperidine Hydrochloride 50 MG Oral Tablet", "opioid"),
    ("sumatriptan 50 MG Oral Tablet", "migraine medicine"),
    ("Loratadine 5 MG Chewable Tablet", "antihistamine"),
    ("Camila 28 Day Pack", "contraceptive"),
    ("Mestranol / Norethynodrel", "contraceptive"),
    ("NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector", "epinephrine"),
    ("warfarin sodium 5 MG Oral Tablet", "anticoagulant"),
    ("apixaban 5 MG Oral Tablet", "anticoagulant"),
    ("clopidogrel 75 MG Oral Tablet", "antiplatelet"),
    ("simvastatin 20 MG Oral Tablet", "statin"),
    ("120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "inhaler"),
    ("NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "inhaler"),
    ("sertraline 50 MG Oral Tablet", "antidepressant"),
    (
        "Acetaminophen 21.7 MG/ML / Dextromethorphan Hydrobromide 1 MG/ML / doxylamine succinate "
        "0.417 MG/ML Oral Solution",
        "cough and cold medicine",
    ),
    ("Mirena 52 MG Intrauterine System", "intrauterine system"),
    ("Kyleena 19.5 MG Intrauterine System", "intrauterine system"),
    ("Etonogestrel 68 MG Drug Implant", "etonogestrel implant"),
    ("Etonogestrel 68 MG Drug Implant", "contraceptive"),
]


@pytest.mark.parametrize(("display", "name"), SYNTHEA_DRUGS)
def test_drug_class_terms_match_rxnorm_displays(display: str, name: str) -> None:
    concept = get_concept(name)
    assert concept.kind == "drug_class" and concept.resource_types == MEDICATION_TYPES
    assert any(term in display.lower() for term in concept.terms)


# Displays a class must not take: codeine with acetaminophen is the painkiller, not a cough
# syrup; a pill pack or a vaginal ring is not the coil or the arm implant.
@pytest.mark.parametrize(
    ("display", "name"),
    [
        ("Acetaminophen 300 MG / Codeine Phosphate 15 MG Oral Tablet", "cough and cold medicine"),
        ("Chlorpheniramine Maleate 2 MG/ML Oral Solution", "cough and cold medicine"),
        (
            "{28 (norethindrone 0.35 MG Oral Tablet) } Pack [Jolivette 28 Day]",
            "intrauterine system",
        ),
        (
            "21 DAY ethinyl estradiol 0.000625 MG/HR / etonogestrel 0.005 MG/HR Vaginal System "
            "[NuvaRing]",
            "etonogestrel implant",
        ),
    ],
)
def test_drug_class_terms_leave_other_displays(display: str, name: str) -> None:
    assert not any(term in display.lower() for term in get_concept(name).terms)


def test_cough_medicine_brands_name_their_ingredient() -> None:
    assert {"delsym", "nyquil"} <= set(get_concept("dextromethorphan").synonyms)
    assert {"robitussin", "mucinex"} <= set(get_concept("guaifenesin").synonyms)
    assert "nexplanon" in get_concept("etonogestrel").synonyms


def test_drug_class_members() -> None:
    thinners = set(get_concept("anticoagulant").terms)
    assert {"warfarin", "apixaban", "rivaroxaban", "dabigatran", "edoxaban", "heparin"} <= thinners
    assert "enoxaparin" in thinners and "clopidogrel" not in thinners
    assert {"furosemide", "spironolactone", "bumetanide", "torsemide"} <= set(
        get_concept("diuretic").terms
    )
    assert get_concept("warfarin").kind == "drug"
    assert "coumadin" in get_concept("warfarin").synonyms


FIND_CONCEPTS = [
    ("What was my most recent HbA1c?", ["hba1c"]),
    ("my hemoglobin a1c", ["hba1c"]),
    ("my sugar test", ["hba1c", "glucose"]),
    ("blood sugar", ["glucose", "hba1c"]),
    ("diabetes test results", ["hba1c", "glucose", "diabetes screening test"]),
    ("How is my kidney function?", ["creatinine", "egfr", "urea nitrogen"]),
    ("good cholesterol", ["hdl cholesterol"]),
    ("bad cholesterol", ["ldl cholesterol"]),
    ("cholesterol", ["total cholesterol"]),
    ("high cholesterol", ["hyperlipidemia"]),
    ("Is the patient on blood thinners?", ["anticoagulant", "antiplatelet"]),
    ("any anticoagulants?", ["anticoagulant"]),
    ("water pills", ["diuretic"]),
    ("blood pressure medicine", ["antihypertensive"]),
    ("high blood pressure", ["hypertension"]),
    ("blood pressure", ["blood pressure"]),
    ("flu shot", ["influenza vaccine"]),
    ("covid shot", ["covid vaccine"]),
    ("tetanus", ["tetanus vaccine"]),
    ("pneumonia vaccine", ["pneumococcal vaccine"]),
    ("shingles vaccine", ["zoster vaccine"]),
    ("Do I have diabetes?", ["diabetes"]),
    ("pre-diabetes", ["prediabetes"]),
    ("Is the patient asthmatic or does she have COPD?", ["asthma", "copd"]),
    ("CKD stage 3", ["chronic kidney disease"]),
    ("afib and heart failure", ["atrial fibrillation", "heart failure"]),
    ("Alzheimer's", ["dementia"]),
    ("sinus infections", ["sinusitis"]),
    ("Am I on metformin or Lipitor?", ["metformin", "atorvastatin"]),
    ("allergic to peanuts", ["peanut allergy"]),
    ("smoking", ["smoking status"]),
    ("What's my BMI and weight?", ["bmi", "body weight"]),
    ("SpO2", ["oxygen saturation"]),
    ("How many times have I had a coil fitted?", ["intrauterine device"]),
    ("How long is he now?", ["body height"]),
    ("how long have I had diabetes", ["diabetes"]),
    ("how long is she on antibiotics for", ["antibiotic"]),
    ("Chol trend", ["total cholesterol"]),
    ("what was the cough syrup in november for", ["cough and cold medicine"]),
    ("how many times was he in rehab for drugs", ["drug rehabilitation"]),
    ("How many well baby visits so far?", ["checkup"]),
    ("did she have her hearing checked", ["hearing test"]),
    ("what was his apgar score", ["apgar score"]),
    ("what was my last urine drug screen", ["urine drug screen"]),
    ("what did she pass away from", ["cause of death"]),
    ("is my sugar in the prediabetes range", ["glucose", "hba1c", "prediabetes"]),
    ("has my anemia gotten better", ["anemia"]),
    ("What vaccines did I get?", []),
    ("Tell me a joke", []),
]


@pytest.mark.parametrize(("text", "names"), FIND_CONCEPTS)
def test_find_concepts(text: str, names: list[str]) -> None:
    assert [c.name for c in find_concepts(text)] == names


RESOURCE_TYPES = [
    ("my labs", ("Observation",)),
    ("test results", ("Observation",)),
    ("potassium level", ("Observation",)),
    ("vitals", ("Observation",)),
    ("blood pressure", ("Observation",)),
    ("heart rate", ("Observation",)),
    ("my conditions", ("Condition",)),
    ("what was I diagnosed with", ("Condition",)),
    ("problem list", ("Condition",)),
    ("any chronic disease", ("Condition",)),
    ("current medications", MEDICATION_TYPES),
    ("what pills am I taking", MEDICATION_TYPES),
    ("is the patient on", MEDICATION_TYPES),
    ("prescriptions", MEDICATION_TYPES),
    ("allergies", ("AllergyIntolerance",)),
    ("is she allergic", ("AllergyIntolerance",)),
    ("vaccinations", ("Immunization",)),
    ("shots", ("Immunization",)),
    ("immunization history", ("Immunization",)),
    ("my last visit", ("Encounter",)),
    ("appointments", ("Encounter",)),
    ("hospital admission", ("Encounter",)),
    ("when was I last seen", ("Encounter",)),
    ("surgeries", ("Procedure",)),
    ("operation", ("Procedure",)),
    ("diagnostic reports", ("DiagnosticReport",)),
    ("care plan", ("CarePlan",)),
    ("plan of care", ("CarePlan",)),
    ("clinical notes", ("DocumentReference",)),
    ("smoking", ("Observation",)),
    ("tobacco use", ("Observation",)),
    ("how old am I", ("Patient",)),
    ("when was I born", ("Patient",)),
    ("what is my name", ("Patient",)),
    ("gender", ("Patient",)),
    ("Tell me a joke", ()),
]


@pytest.mark.parametrize(("text", "types"), RESOURCE_TYPES)
def test_find_resource_types(text: str, types: tuple[str, ...]) -> None:
    assert find_resource_types(text) == types


@pytest.mark.parametrize(
    ("text", "types"),
    [
        ("what was his length of stay", ("Encounter",)),
        ("How long is she now?", ("Observation",)),
        ("how many times was he in rehab for drugs", ("Encounter",)),
        ("what was my last urine drug screen", ("Observation",)),
    ],
)
def test_a_longer_phrase_keeps_its_own_record_kind(text: str, types: tuple[str, ...]) -> None:
    # "rehab for drugs" is a visit, "drug screen" a lab: "drug" alone would ask for medicines.
    assert find_resource_types(text) == types


def test_a_procedure_asked_as_a_medicine_is_stood_in_for_by_its_own_drugs() -> None:
    # "Am I on the coil?": the hormonal coil's orders, not every contraceptive (the pill).
    plan = analyze("Am I on the coil?", date(2024, 1, 1))
    names = [c.name for c in plan.concepts]
    assert names == ["intrauterine device", "intrauterine system"]
    implant = analyze("Am I still on the contraceptive implant?", date(2024, 1, 1))
    assert "etonogestrel implant" in [c.name for c in implant.concepts]


def test_cue_overrides_concept_types() -> None:
    assert find_resource_types("allergic to penicillin") == ("AllergyIntolerance",)


def test_context_cue_keeps_concept_types() -> None:
    assert find_resource_types("my A1c at my last visit") == ("Encounter", "Observation")


@pytest.mark.parametrize(
    ("text", "categories"),
    [
        ("my labs", ("laboratory",)),
        ("vital signs", ("vital-signs",)),
        ("my HbA1c", ("laboratory",)),
        ("my weight", ("vital-signs",)),
        ("smoking", ("social-history", "survey")),
        ("my medications", ()),
    ],
)
def test_find_categories(text: str, categories: tuple[str, ...]) -> None:
    assert find_categories(text) == categories


def test_longest_match_consumes_words() -> None:
    matches = scan("my good cholesterol and my high blood pressure")
    assert [(m.phrase, [c.name for c in m.concepts]) for m in matches] == [
        ("good cholesterol", ["hdl cholesterol"]),
        ("high blood pressure", ["hypertension"]),
    ]


def test_scan_positions_and_plurals() -> None:
    matches = scan("Which vaccines and labs does the patient have? Diabetes?")
    assert [(m.phrase, m.start, m.end, m.plural) for m in matches] == [
        ("vaccines", 1, 2, True),
        ("labs", 3, 4, True),
        ("diabetes", 8, 9, False),  # listed as "diabetes": not a plural
    ]


def test_words_and_fold() -> None:
    assert words("Pt's A1c—Alzheimer’s, covid-19!") == ["pts", "a1c", "alzheimers", "covid", "19"]
    assert [fold(w) for w in ("allergies", "labs", "status", "sinus", "bp", "meds")] == [
        "allergy",
        "lab",
        "status",
        "sinus",
        "bp",
        "med",
    ]


def test_word_boundaries() -> None:
    # "ldl" inside a longer word, "hr" inside "three", "flu" inside "fluoride": no matches
    assert find_concepts("ldlx three fluoride") == []


def test_get_concept_suggests_close_names() -> None:
    with pytest.raises(NotFoundError, match=r"did you mean .*hba1c"):
        get_concept("hba1")
