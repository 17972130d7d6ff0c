"""Medication safety: every rule fires when it should and stays quiet when it should not."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ehrqa.core.errors import NotFoundError
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.record import Record
from ehrqa.meds import drugs
from ehrqa.meds.context import PatientContext, context_from_records
from ehrqa.meds.safety import (
    DRUG_CLASSES,
    Drug,
    SafetyWarning,
    check_current_medications,
    check_medication,
    drugs_of,
    find_drugs,
    latest_egfr,
)

NOW = date(2025, 1, 1)
SUBJECT = {"reference": "Patient/p1"}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _concept(display: str, system: str = RXNORM, code: str = "1") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def med(rid: str, display: str, status: str = "active") -> Record:
    return normalize(
        {
            "resourceType": "MedicationRequest",
            "id": rid,
            "status": status,
            "intent": "order",
            "subject": SUBJECT,
            "authoredOn": "2024-06-01",
            "medicationCodeableConcept": _concept(display, code=rid),
        }
    )


def allergy(rid: str, display: str, status: str = "active", verification: str = "") -> Record:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": rid,
        "patient": SUBJECT,
        "clinicalStatus": {"coding": [{"code": status}]},
        "code": _concept(display, code=rid),
    }
    if verification:
        resource["verificationStatus"] = {"coding": [{"code": verification}]}
    return normalize(resource)


def condition(rid: str, display: str, status: str = "active") -> Record:
    return normalize(
        {
            "resourceType": "Condition",
            "id": rid,
            "subject": SUBJECT,
            "clinicalStatus": {"coding": [{"code": status}]},
            "code": _concept(display, "http://snomed.info/sct", rid),
            "onsetDateTime": "2020-01-01",
        }
    )


def egfr(rid: str, value: float, day: str = "2024-11-01", code: str = "33914-3") -> Record:
    return normalize(
        {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "subject": SUBJECT,
            "category": [{"coding": [{"code": "laboratory"}]}],
            "code": _concept(
                "Glomerular filtration rate/1.73 sq M.predicted", "http://loinc.org", code
            ),
            "effectiveDateTime": day,
            "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}"},
        }
    )


def ctx(*records: Record) -> PatientContext:
    return context_from_records(records, "p1", NOW)


def only(warnings: list[SafetyWarning], kind: str) -> list[SafetyWarning]:
    return [w for w in warnings if w.kind == kind]


# --- recognising drugs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("lisinopril 10 MG Oral Tablet", ["lisinopril"]),
        ("Penicillin V Potassium 500 MG Oral Tablet", ["phenoxymethylpenicillin"]),
        ("start Augmentin and ibuprofen, then Advil", ["co-amoxiclav", "ibuprofen"]),
        ("Sulfamethoxazole 800 MG / Trimethoprim 160 MG", ["sulfamethoxazole", "trimethoprim"]),
        ("amLODIPine 2.5 MG Oral Tablet", ["amlodipine"]),
        ("Coumadin, Zocor and Eliquis", ["warfarin", "simvastatin", "apixaban"]),
        ("cephalexin 500 mg", ["cefalexin"]),
        ("Epinephrine auto-injector; no drugs here", []),
        ("", []),
    ],
)
def test_find_drugs_names_generics_and_brands_in_order_each_once(text: str, names: list[str]):
    assert [d.name for d in find_drugs(text)] == names


def test_find_drugs_keeps_the_mention_and_expands_classes():
    (drug,) = find_drugs("Give AUGMENTIN now")
    assert drug.mention == "AUGMENTIN"
    assert drug.classes == ("penicillin", "beta-lactam", "antibiotic")


@pytest.mark.parametrize(
    ("text", "nsaid"),
    [
        ("Aspirin 81 MG Oral Tablet", False),
        ("low dose aspirin", False),
        ("aspirin 300 mg", True),
        ("Aspirin", True),
    ],
)
def test_aspirin_is_an_nsaid_only_above_low_dose(text: str, nsaid: bool):
    (drug,) = find_drugs(text)
    assert "antiplatelet" in drug.classes
    assert ("nsaid" in drug.classes) is nsaid


def test_drugs_of_reads_allergy_classes_and_medication_codes():
    assert [d.name for d in drugs_of(allergy("a", "Allergy to cephalosporins"))] == [
        "cephalosporin"
    ]
    assert [d.name for d in drugs_of(allergy("a", "Animal dander (substance)"))] == []
    assert [d.name for d in drugs_of(med("m", "Naproxen sodium 220 MG Oral Tablet"))] == [
        "naproxen"
    ]


def test_an_unknown_drug_name_says_what_is_close():
    with pytest.raises(NotFoundError, match="did you mean amoxicillin"):
        check_medication("amoxicilin", ctx())


# --- the knowledge tables ------------------------------------------------------------------------

KNOWN_TARGETS = set(DRUG_CLASSES) | {c for classes in DRUG_CLASSES.values() for c in classes}


def _targets() -> list[str]:
    found = [row[0] for row in drugs.RENAL] + [row[0] for row in drugs.CONDITION_RULES]
    found += [t for row in drugs.INTERACTIONS for t in row[:2]]
    found += [row[0] for row in drugs.DUPLICATE_CLASSES] + list(drugs.TRIPLE_WHAMMY[0])
    found += [t for row in drugs.ALLERGY_CROSS for t in row[:2]]
    return [part for target in found for part in target.split("|")]


@pytest.mark.parametrize("target", sorted(set(_targets())))
def test_every_rule_target_is_a_known_drug_or_class(target: str):
    assert target in KNOWN_TARGETS


def test_every_rule_has_a_severity_and_a_one_sentence_basis():
    rows = [
        *((r[2], r[4]) for r in drugs.ALLERGY_CROSS),
        *((r[2], r[4]) for r in drugs.INTERACTIONS),
        *((r[3], r[5]) for r in drugs.RENAL),
        *((r[2], r[4]) for r in drugs.CONDITION_RULES),
        *((r[2], r[3]) for r in drugs.DUPLICATE_CLASSES),
    ]
    for severity, basis in rows:
        assert severity in ("info", "warning", "critical")
        assert basis.endswith(".") and len(basis) < 200, basis


# --- a proposed drug: each rule fires ------------------------------------------------------------

FIRES = [
    # allergies
    (
        "amoxicillin",
        [allergy("a1", "Penicillin V")],
        "allergy",
        "critical",
        "Penicillin V allergy recorded: amoxicillin is a penicillin.",
        ["AllergyIntolerance/a1"],
    ),
    (
        "Augmentin",
        [allergy("a1", "Penicillin V")],
        "allergy",
        "critical",
        "co-amoxiclav is a penicillin",
        ["AllergyIntolerance/a1"],
    ),
    (
        "cefalexin",
        [allergy("a1", "Penicillin V")],
        "allergy",
        "warning",
        "is a cephalosporin",
        ["AllergyIntolerance/a1"],
    ),
    (
        "meropenem",
        [allergy("a1", "Penicillin")],
        "allergy",
        "warning",
        "is a carbapenem",
        ["AllergyIntolerance/a1"],
    ),
    (
        "lisinopril",
        [allergy("a1", "Lisinopril")],
        "allergy",
        "critical",
        "is the recorded allergen",
        ["AllergyIntolerance/a1"],
    ),
    (
        "enalapril",
        [allergy("a1", "Lisinopril")],
        "allergy",
        "critical",
        "is another ACE inhibitor",
        ["AllergyIntolerance/a1"],
    ),
    (
        "losartan",
        [allergy("a1", "Lisinopril")],
        "allergy",
        "warning",
        "angiotensin receptor blocker",
        ["AllergyIntolerance/a1"],
    ),
    (
        "naproxen",
        [allergy("a1", "Ibuprofen")],
        "allergy",
        "warning",
        "another NSAID",
        ["AllergyIntolerance/a1"],
    ),
    (
        "Bactrim",
        [allergy("a1", "Sulfamethoxazole / Trimethoprim")],
        "allergy",
        "critical",
        "sulfonamide",
        ["AllergyIntolerance/a1"],
    ),
    # interactions
    (
        "ibuprofen",
        [med("m1", "Warfarin Sodium 5 MG Oral Tablet")],
        "interaction",
        "critical",
        "Ibuprofen with warfarin: the risk of serious bleeding is increased.",
        ["MedicationRequest/m1"],
    ),
    (
        "apixaban",
        [med("m1", "Clopidogrel 75 MG Oral Tablet")],
        "interaction",
        "warning",
        "risk of bleeding",
        ["MedicationRequest/m1"],
    ),
    (
        "clarithromycin",
        [med("m1", "Simvastatin 20 MG Oral Tablet")],
        "interaction",
        "critical",
        "rhabdomyolysis",
        ["MedicationRequest/m1"],
    ),
    (
        "clarithromycin",
        [med("m1", "Atorvastatin 80 MG Oral Tablet")],
        "interaction",
        "warning",
        "myopathy",
        ["MedicationRequest/m1"],
    ),
    (
        "clarithromycin",
        [med("m1", "Warfarin Sodium 5 MG")],
        "interaction",
        "warning",
        "raise the INR",
        ["MedicationRequest/m1"],
    ),
    (
        "fluconazole",
        [med("m1", "Jantoven 5 MG")],
        "interaction",
        "critical",
        "INR sharply",
        ["MedicationRequest/m1"],
    ),
    (
        "spironolactone",
        [med("m1", "Ramipril 5 MG")],
        "interaction",
        "warning",
        "hyperkalaemia",
        ["MedicationRequest/m1"],
    ),
    (
        "sumatriptan",
        [med("m1", "Sertraline 50 MG")],
        "interaction",
        "warning",
        "serotonin",
        ["MedicationRequest/m1"],
    ),
    (
        "trimethoprim",
        [med("m1", "Methotrexate 2.5 MG Oral Tablet")],
        "interaction",
        "critical",
        "bone-marrow",
        ["MedicationRequest/m1"],
    ),
    (
        "ibuprofen",
        [med("m1", "lisinopril 10 MG")],
        "interaction",
        "warning",
        "acute kidney injury",
        ["MedicationRequest/m1"],
    ),
    (
        "ibuprofen",
        [med("m1", "lisinopril 10 MG"), med("m2", "Furosemide 40 MG")],
        "interaction",
        "critical",
        "Triple whammy: ibuprofen, lisinopril and furosemide together",
        ["MedicationRequest/m1", "MedicationRequest/m2"],
    ),
    (
        "sildenafil",
        [med("m1", "Nitroglycerin 0.4 MG/ACTUAT Mucosal Spray")],
        "interaction",
        "critical",
        "hypotension",
        ["MedicationRequest/m1"],
    ),
    # duplicates
    (
        "naproxen",
        [med("m1", "Ibuprofen 400 MG")],
        "duplicate",
        "warning",
        "naproxen and ibuprofen are both NSAIDs",
        ["MedicationRequest/m1"],
    ),
    (
        "lisinopril",
        [med("m1", "lisinopril 10 MG")],
        "duplicate",
        "warning",
        "lisinopril is already prescribed",
        ["MedicationRequest/m1"],
    ),
    # conditions
    (
        "propranolol",
        [condition("c1", "Asthma (disorder)")],
        "condition",
        "critical",
        "Asthma recorded: propranolol is a non-selective beta blocker",
        ["Condition/c1"],
    ),
    (
        "sumatriptan",
        [condition("c1", "Coronary heart disease (disorder)")],
        "condition",
        "critical",
        "constricts coronary",
        ["Condition/c1"],
    ),
    (
        "rizatriptan",
        [condition("c1", "Essential hypertension (disorder)")],
        "condition",
        "warning",
        "raises blood pressure",
        ["Condition/c1"],
    ),
    (
        "lisinopril",
        [condition("c1", "Normal pregnancy (finding)")],
        "condition",
        "critical",
        "fetotoxic",
        ["Condition/c1"],
    ),
    (
        "ibuprofen",
        [condition("c1", "Chronic kidney disease stage 3 (disorder)")],
        "condition",
        "warning",
        "worsen kidney disease",
        ["Condition/c1"],
    ),
    (
        "naproxen",
        [condition("c1", "Chronic congestive heart failure (disorder)")],
        "condition",
        "warning",
        "worsen heart failure",
        ["Condition/c1"],
    ),
    (
        "topiramate",
        [condition("c1", "Pregnancy")],
        "condition",
        "critical",
        "contraindicated in pregnancy",
        ["Condition/c1"],
    ),
]


@pytest.mark.parametrize(("drug", "records", "kind", "severity", "message", "refs"), FIRES)
def test_each_rule_fires_with_its_records(
    drug: str, records: list[Record], kind: str, severity: str, message: str, refs: list[str]
):
    warnings = only(check_medication(drug, ctx(*records)), kind)
    hits = [w for w in warnings if message in w.message]
    assert hits, [w.message for w in warnings]
    assert hits[0].severity == severity
    assert sorted(hits[0].refs) == sorted(refs)
    assert hits[0].basis


QUIET = [
    ("amoxicillin", [allergy("a1", "Animal dander (substance)")]),
    ("amoxicillin", [allergy("a1", "Penicillin V", status="resolved")]),
    ("amoxicillin", [allergy("a1", "Penicillin V", verification="refuted")]),
    ("azithromycin", [allergy("a1", "Penicillin V")]),
    ("ibuprofen", [med("m1", "Warfarin Sodium 5 MG", status="stopped")]),
    ("paracetamol", [med("m1", "Warfarin Sodium 5 MG")]),
    ("azithromycin", [med("m1", "Simvastatin 20 MG")]),
    ("metoprolol", [condition("c1", "Asthma (disorder)")]),
    ("propranolol", [condition("c1", "Asthma (disorder)", status="resolved")]),
    ("lisinopril", [condition("c1", "Not pregnant (finding)")]),
    ("sumatriptan", [condition("c1", "Migraine (disorder)")]),
    ("clopidogrel", [med("m1", "Aspirin 81 MG Oral Tablet")]),
    ("metformin", [egfr("o1", 45)]),
    ("metformin", [egfr("o1", 20, day="2021-01-01")]),  # older than the two-year window
]


@pytest.mark.parametrize(("drug", "records"), QUIET)
def test_no_warning_when_no_rule_applies(drug: str, records: list[Record]):
    assert check_medication(drug, ctx(*records)) == []


def test_low_dose_aspirin_with_warfarin_is_an_antiplatelet_warning_not_an_nsaid_one():
    warnings = check_medication("warfarin", ctx(med("m1", "Aspirin 81 MG Oral Tablet")))
    assert [(w.kind, w.severity) for w in warnings] == [("interaction", "warning")]


def test_the_triple_whammy_replaces_its_pair_warnings():
    context = ctx(med("m1", "lisinopril 10 MG"), med("m2", "Hydrochlorothiazide 25 MG"))
    messages = [w.message for w in check_medication("ibuprofen", context)]
    assert len(messages) == 1 and messages[0].startswith("Triple whammy")


def test_a_clean_patient_has_no_warnings():
    context = ctx(condition("c1", "Prediabetes (finding)"), egfr("o1", 95))
    for drug in ("amoxicillin", "ibuprofen", "metformin", "lisinopril", "sumatriptan"):
        assert check_medication(drug, context) == []
    assert check_current_medications(ctx()) == []


def test_warnings_come_most_severe_first():
    context = ctx(med("m1", "Warfarin 5 MG"), med("m2", "Clopidogrel 75 MG"), egfr("o1", 40))
    severities = [w.severity for w in check_medication("ibuprofen", context)]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)
    assert severities[0] == "critical"


# --- renal thresholds at the boundaries ------------------------------------------------------------


@pytest.mark.parametrize(
    ("drug", "value", "severity"),
    [
        ("metformin", 29.9, "critical"),
        ("metformin", 30, "warning"),
        ("metformin", 44.9, "warning"),
        ("metformin", 45, None),
        ("nitrofurantoin", 44, "warning"),
        ("nitrofurantoin", 45, None),
        ("ibuprofen", 29, "critical"),
        ("ibuprofen", 30, "warning"),
        ("ibuprofen", 59.9, "warning"),
        ("ibuprofen", 60, None),
        ("apixaban", 14, "critical"),
        ("apixaban", 49, "warning"),
        ("apixaban", 50, None),
        ("dabigatran", 29, "critical"),
        ("spironolactone", 25, "critical"),
        ("amoxicillin", 10, None),
    ],
)
def test_renal_thresholds(drug: str, value: float, severity: str | None):
    reading = egfr("o1", value)
    warnings = only(check_medication(drug, ctx(reading)), "renal")
    assert [w.severity for w in warnings] == ([severity] if severity else [])
    if severity:
        assert warnings[0].refs == ("Observation/o1",)
        assert f"eGFR is {value:g} on 2024-11-01" in warnings[0].message


@pytest.mark.parametrize("code", ["33914-3", "62238-1", "48642-3", "48643-1", "98979-8"])
def test_every_egfr_code_counts_and_the_newest_wins(code: str):
    context = ctx(egfr("old", 20, day="2024-01-01"), egfr("new", 70, day="2024-10-01", code=code))
    reading = latest_egfr(context)
    assert reading is not None and reading.ref == "Observation/new"
    assert only(check_medication("metformin", context), "renal") == []


# --- what the patient already takes ---------------------------------------------------------------


def test_current_interactions_are_reported_once_per_pair_with_both_records():
    context = ctx(med("m1", "Warfarin Sodium 5 MG"), med("m2", "Ibuprofen 400 MG"))
    warnings = check_current_medications(context)
    assert len(warnings) == 1
    assert warnings[0].severity == "critical"
    assert set(warnings[0].refs) == {"MedicationRequest/m1", "MedicationRequest/m2"}


def test_current_triple_whammy_is_critical_and_alone():
    context = ctx(
        med("m1", "lisinopril 10 MG"),
        med("m2", "Hydrochlorothiazide 25 MG"),
        med("m3", "Naproxen 250 MG"),
    )
    warnings = check_current_medications(context)
    assert [(w.kind, w.severity) for w in warnings] == [("interaction", "critical")]
    assert set(warnings[0].refs) == {f"MedicationRequest/m{n}" for n in (1, 2, 3)}


def test_current_medicines_get_allergy_renal_and_condition_warnings_per_drug():
    context = ctx(
        med("m1", "Amoxicillin 500 MG"),
        med("m2", "Metformin 500 MG"),
        med("m3", "Propranolol 40 MG"),
        allergy("a1", "Penicillin V"),
        egfr("o1", 25),
        condition("c1", "Asthma"),
    )
    found = {(w.kind, w.severity, w.refs) for w in check_current_medications(context)}
    assert ("allergy", "critical", ("AllergyIntolerance/a1", "MedicationRequest/m1")) in found
    assert ("renal", "critical", ("Observation/o1", "MedicationRequest/m2")) in found
    assert ("condition", "critical", ("Condition/c1", "MedicationRequest/m3")) in found


def test_a_combination_product_is_not_an_interaction_with_itself():
    context = ctx(med("m1", "Acetaminophen 325 MG / Oxycodone 5 MG Oral Tablet"))
    assert check_current_medications(context) == []


def test_the_same_drug_in_two_prescriptions_is_a_duplicate():
    context = ctx(
        med("m1", "Acetaminophen 500 MG"), med("m2", "Acetaminophen 325 MG / Oxycodone 5 MG")
    )
    (warning,) = check_current_medications(context)
    assert warning.kind == "duplicate"
    assert "acetaminophen appears in two active prescriptions" in warning.message


def test_a_drug_object_is_accepted_as_is():
    drug = Drug("ibuprofen", DRUG_CLASSES["ibuprofen"], "Nurofen")
    assert check_medication(drug, ctx(med("m1", "Warfarin 5 MG")))[0].severity == "critical"
