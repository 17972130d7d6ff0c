"""Tests for the one-line renderings and note decoding in ehrqa.fhir.render."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ehrqa.core.errors import FhirValidationError
from ehrqa.fhir.elements import format_number
from ehrqa.fhir.render import (
    MAX_LINE_CHARS,
    NOTE_CHARS,
    decode_attachment_text,
    note_text,
    render,
)

SAMPLE = Path(__file__).parent.parent / "fixtures" / "synthea_sample.json"
SUBJECT = {"reference": "urn:uuid:p1"}
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode("ascii")


def mg_hg(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org"}


NOTE = (
    "2024-11-02\n\n# Chief Complaint\n- prediabetes (finding)\n\n# Plan\nRecheck A1c in 3 months."
)

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "patient": (
        {
            "resourceType": "Patient",
            "id": "p1",
            "name": [
                {"use": "maiden", "family": "Schimmel", "given": ["Verna"]},
                {"use": "official", "family": "Satterfield", "given": ["Verna"], "prefix": ["Ms."]},
            ],
            "gender": "female",
            "birthDate": "1960-05-26",
            "deceasedDateTime": "2020-01-02T10:00:00+00:00",
        },
        "[Patient/p1] 1960-05-26 Verna Satterfield; female; born 1960-05-26; deceased 2020-01-02",
    ),
    "observation quantity": (
        {
            "resourceType": "Observation",
            "id": "7f3",
            "status": "final",
            "code": concept(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
            "subject": SUBJECT,
            "effectiveDateTime": "2024-11-02T09:30:00+00:00",
            "valueQuantity": {"value": 7.8, "unit": "%", "code": "%"},
        },
        "[Observation/7f3] 2024-11-02 Hemoglobin A1c/Hemoglobin.total in Blood (LOINC 4548-4)"
        " = 7.8 %",
    ),
    "observation components": (
        {
            "resourceType": "Observation",
            "id": "c20",
            "status": "final",
            "code": concept(LOINC, "85354-9", "Blood pressure panel"),
            "subject": SUBJECT,
            "effectiveDateTime": "1951-10-08T08:00:00+00:00",
            "component": [
                {
                    "code": concept(LOINC, "8480-6", "Systolic blood pressure"),
                    "valueQuantity": mg_hg(101.0),
                },
                {
                    "code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
                    "valueQuantity": mg_hg(67.2),
                },
            ],
        },
        "[Observation/c20] 1951-10-08 Blood pressure panel (LOINC 85354-9): Systolic blood"
        " pressure 101 mm[Hg]; Diastolic blood pressure 67.2 mm[Hg]",
    ),
    "observation codeable concept": (
        {
            "resourceType": "Observation",
            "id": "s1",
            "status": "final",
            "code": concept(LOINC, "72166-2", "Tobacco smoking status"),
            "subject": SUBJECT,
            "effectiveDateTime": "2020-01-01",
            "valueCodeableConcept": concept(SNOMED, "266919005", "Never smoked tobacco (finding)"),
        },
        "[Observation/s1] 2020-01-01 Tobacco smoking status (LOINC 72166-2) = Never smoked"
        " tobacco (finding)",
    ),
    "observation flagged and preliminary": (
        {
            "resourceType": "Observation",
            "id": "g1",
            "status": "preliminary",
            "code": concept(LOINC, "2339-0", "Glucose [Mass/volume] in Blood"),
            "subject": SUBJECT,
            "effectivePeriod": {"start": "2024-03-01T08:00:00Z"},
            "valueQuantity": {"value": 250, "unit": "mg/dL", "comparator": ">"},
            "interpretation": [
                {"coding": [{"code": "H", "display": "High"}, {"code": "N", "display": "Normal"}]}
            ],
        },
        "[Observation/g1] 2024-03-01 Glucose [Mass/volume] in Blood (LOINC 2339-0) = >250 mg/dL;"
        " interpretation High; status preliminary",
    ),
    "condition active": (
        {
            "resourceType": "Condition",
            "id": "ea8",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "code": concept(SNOMED, "15777000", "Prediabetes"),
            "subject": SUBJECT,
            "onsetDateTime": "2019-03-01T10:00:00+00:00",
        },
        "[Condition/ea8] onset 2019-03-01 Prediabetes (SNOMED 15777000); status active",
    ),
    "condition resolved": (
        {
            "resourceType": "Condition",
            "id": "r1",
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "verificationStatus": {"coding": [{"code": "provisional"}]},
            "code": concept(SNOMED, "10509002", "Acute bronchitis (disorder)"),
            "subject": SUBJECT,
            "recordedDate": "2019-12-20",
            "abatementDateTime": "2020-01-02T10:00:00+00:00",
        },
        "[Condition/r1] recorded 2019-12-20 Acute bronchitis (disorder) (SNOMED 10509002);"
        " status resolved; verification provisional; resolved 2020-01-02",
    ),
    "medication request": (
        {
            "resourceType": "MedicationRequest",
            "id": "457",
            "status": "stopped",
            "intent": "order",
            "medicationCodeableConcept": concept(
                RXNORM, "562251", "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet"
            ),
            "subject": SUBJECT,
            "authoredOn": "1956-08-22T14:59:04+00:00",
            "dosageInstruction": [
                {
                    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 1}}],
                }
            ],
            "dispenseRequest": {"expectedSupplyDuration": {"value": 10, "unit": "days"}},
            "reasonReference": [{"reference": "Condition/r1", "display": "Acute bronchitis"}],
        },
        "[MedicationRequest/457] 1956-08-22 Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet"
        " (RxNorm 562251); status stopped; dosage 1, twice per day; supply 10 days;"
        " reason Acute bronchitis",
    ),
    "medication statement": (
        {
            "resourceType": "MedicationStatement",
            "id": "ms1",
            "status": "completed",
            "medicationCodeableConcept": concept(RXNORM, "314076", "lisinopril 10 MG Oral Tablet"),
            "subject": SUBJECT,
            "effectivePeriod": {"start": "2020-02-01", "end": "2020-06-01"},
            "dosage": [{"text": "10 mg\n once daily"}],
        },
        "[MedicationStatement/ms1] 2020-02-01 lisinopril 10 MG Oral Tablet (RxNorm 314076);"
        " status completed; dosage 10 mg once daily; until 2020-06-01",
    ),
    "medication administration": (
        {
            "resourceType": "MedicationAdministration",
            "id": "ma1",
            "status": "completed",
            "medicationCodeableConcept": concept(
                RXNORM, "1535362", "sodium fluoride 0.0272 MG/MG Oral Gel"
            ),
            "subject": SUBJECT,
            "effectiveDateTime": "1986-04-03T08:03:26+00:00",
            "dosage": {"dose": {"value": 0.5, "unit": "g"}, "route": {"text": "oral"}},
            "reasonCode": [{"text": "Gingivitis"}],
        },
        "[MedicationAdministration/ma1] 1986-04-03 sodium fluoride 0.0272 MG/MG Oral Gel"
        " (RxNorm 1535362); status completed; dosage 0.5 g, oral; reason Gingivitis",
    ),
    "immunization": (
        {
            "resourceType": "Immunization",
            "id": "i1",
            "status": "completed",
            "vaccineCode": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/cvx",
                        "code": "140",
                        "display": "Influenza, seasonal, injectable, preservative free",
                    }
                ]
            },
            "patient": SUBJECT,
            "occurrenceDateTime": "2021-10-01T09:00:00+00:00",
        },
        "[Immunization/i1] 2021-10-01 Influenza, seasonal, injectable, preservative free"
        " (CVX 140); status completed",
    ),
    "procedure": (
        {
            "resourceType": "Procedure",
            "id": "pr1",
            "status": "completed",
            "code": concept(SNOMED, "80146002", "Appendectomy (procedure)"),
            "subject": SUBJECT,
            "performedPeriod": {"start": "2019-04-01T22:00:00Z", "end": "2019-04-02T01:00:00Z"},
            "reasonCode": [concept(SNOMED, "74400008", "Appendicitis (disorder)")],
        },
        "[Procedure/pr1] 2019-04-01 Appendectomy (procedure) (SNOMED 80146002); status completed;"
        " until 2019-04-02; reason Appendicitis (disorder)",
    ),
    "encounter": (
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB", "display": "ambulatory"},
            "type": [concept(SNOMED, "162673000", "General examination of patient (procedure)")],
            "subject": SUBJECT,
            "period": {"start": "2020-01-01T08:00:00Z", "end": "2020-01-01T08:30:00Z"},
            "reasonCode": [{"text": "Medication_Review_Due"}],
        },
        "[Encounter/e1] 2020-01-01 ambulatory encounter: General examination of patient"
        " (procedure) (SNOMED 162673000); reason Medication_Review_Due;"
        " period 2020-01-01 to 2020-01-01; status finished",
    ),
    "encounter inpatient": (
        {
            "resourceType": "Encounter",
            "id": "e2",
            "status": "finished",
            "class": {"code": "IMP", "display": "inpatient encounter"},
            "subject": SUBJECT,
            "period": {"start": "2012-03-31T10:00:00Z", "end": "2012-05-16T10:00:00Z"},
            "hospitalization": {"dischargeDisposition": {"text": "Home"}},
        },
        "[Encounter/e2] 2012-03-31 inpatient encounter; period 2012-03-31 to 2012-05-16;"
        " discharged to Home; status finished",
    ),
    "allergy": (
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "type": "allergy",
            "category": ["food"],
            "criticality": "high",
            "code": concept(SNOMED, "762952008", "Peanut (substance)"),
            "patient": SUBJECT,
            "onsetDateTime": "2010-05-01",
            "reaction": [
                {
                    "manifestation": [concept(SNOMED, "39579001", "Anaphylaxis (disorder)")],
                    "severity": "severe",
                },
                {"manifestation": [concept(SNOMED, "126485001", "Urticaria (disorder)")]},
            ],
        },
        "[AllergyIntolerance/a1] onset 2010-05-01 allergy to Peanut (substance)"
        " (SNOMED 762952008); category food; criticality high; reactions Anaphylaxis (disorder)"
        " (severe), Urticaria (disorder); status active",
    ),
    "diagnostic report": (
        {
            "resourceType": "DiagnosticReport",
            "id": "d1",
            "status": "final",
            "category": [{"coding": [{"code": "LAB"}]}],
            "code": concept(LOINC, "57698-3", "Lipid panel"),
            "subject": SUBJECT,
            "effectiveDateTime": "2024-11-02T09:30:00Z",
            "result": [{"reference": f"Observation/o{i}"} for i in range(4)],
            "conclusion": "Borderline high LDL",
            "presentedForm": [{"contentType": "text/plain", "data": b64("LDL 150 mg/dL.\n")}],
        },
        "[DiagnosticReport/d1] 2024-11-02 Lipid panel (LOINC 57698-3); 4 results;"
        " conclusion Borderline high LDL; status final; report: LDL 150 mg/dL.",
    ),
    "care plan": (
        {
            "resourceType": "CarePlan",
            "id": "cp1",
            "status": "active",
            "intent": "plan",
            "category": [
                {"coding": [{"code": "assess-plan"}]},
                concept(SNOMED, "735985000", "Diabetes self management plan (record artifact)"),
            ],
            "subject": SUBJECT,
            "period": {"start": "2019-03-01T10:00:00Z"},
            "activity": [
                {
                    "detail": {
                        "status": "in-progress",
                        "code": concept(SNOMED, "160670007", "Diabetic diet (finding)"),
                    }
                },
                {"detail": {"description": "Walk 30 minutes a day"}},
            ],
        },
        "[CarePlan/cp1] 2019-03-01 care plan: Diabetes self management plan (record artifact);"
        " activities Diabetic diet (finding) [in-progress], Walk 30 minutes a day;"
        " period from 2019-03-01; status active",
    ),
    "document reference": (
        {
            "resourceType": "DocumentReference",
            "id": "doc1",
            "status": "current",
            "type": concept(LOINC, "34117-2", "History and physical note"),
            "subject": SUBJECT,
            "date": "2024-11-02T09:30:00Z",
            "content": [
                {"attachment": {"contentType": "text/plain; charset=utf-8", "data": b64(NOTE)}}
            ],
        },
        "[DocumentReference/doc1] 2024-11-02 History and physical note (LOINC 34117-2):"
        " 2024-11-02 # Chief Complaint - prediabetes (finding) # Plan Recheck A1c in 3 months.",
    ),
    "goal": (
        {
            "resourceType": "Goal",
            "id": "go1",
            "lifecycleStatus": "active",
            "description": {"text": "Hemoglobin A1c below 7%"},
            "subject": SUBJECT,
            "startDate": "1980-02-14",
            "target": [
                {
                    "measure": concept(LOINC, "4548-4", "Hemoglobin A1c"),
                    "detailQuantity": {"value": 7, "unit": "%", "comparator": "<"},
                    "dueDate": "1981-01-01",
                }
            ],
        },
        "[Goal/go1] 1980-02-14 goal: Hemoglobin A1c below 7%; targets Hemoglobin A1c <7 %"
        " by 1981-01-01; status active",
    ),
    "device": (
        {
            "resourceType": "Device",
            "id": "dv1",
            "status": "active",
            "type": concept(SNOMED, "337414009", "Blood glucose meters (physical object)"),
            "patient": SUBJECT,
            "manufactureDate": "2019-03-01T10:00:00Z",
            "udiCarrier": [{"deviceIdentifier": "ec44", "carrierHRF": "(01)ec44(11)190301"}],
        },
        "[Device/dv1] 2019-03-01 device: Blood glucose meters (physical object)"
        " (SNOMED 337414009); UDI (01)ec44(11)190301; status active",
    ),
    "imaging study": (
        {
            "resourceType": "ImagingStudy",
            "id": "im1",
            "status": "available",
            "subject": SUBJECT,
            "started": "1967-06-15T14:59:04Z",
            "numberOfInstances": 2,
            "procedureCode": [concept(SNOMED, "168594001", "Plain X-ray of clavicle (procedure)")],
            "series": [
                {
                    "modality": {"code": "DX", "display": "Digital Radiography"},
                    "bodySite": {"code": "51299004", "display": "Clavicle"},
                }
            ],
        },
        "[ImagingStudy/im1] 1967-06-15 Plain X-ray of clavicle (procedure) (SNOMED 168594001);"
        " modality Digital Radiography; body site Clavicle; 2 instances; status available",
    ),
    "supply delivery": (
        {
            "resourceType": "SupplyDelivery",
            "id": "sd1",
            "status": "completed",
            "patient": SUBJECT,
            "suppliedItem": {
                "quantity": {"value": 1},
                "itemCodeableConcept": concept(SNOMED, "277183007", "Dental equipment"),
            },
            "occurrenceDateTime": "1969-05-22T08:03:26Z",
        },
        "[SupplyDelivery/sd1] 1969-05-22 supplied Dental equipment (SNOMED 277183007);"
        " quantity 1; status completed",
    ),
    "care team": (
        {
            "resourceType": "CareTeam",
            "id": "ct1",
            "status": "inactive",
            "subject": SUBJECT,
            "period": {"start": "1967-06-15T14:59:04Z", "end": "1967-08-31T08:03:26Z"},
            "participant": [
                {"role": [concept(SNOMED, "116154003", "Patient")], "member": SUBJECT},
                {
                    "role": [concept(SNOMED, "223366009", "Healthcare professional")],
                    "member": {"reference": "Practitioner/d1", "display": "Dr. Rossi"},
                },
            ],
        },
        "[CareTeam/ct1] 1967-06-15 care team; members Patient, Dr. Rossi (Healthcare"
        " professional); period 1967-06-15 to 1967-08-31; status inactive",
    ),
    "claim": (
        {
            "resourceType": "Claim",
            "id": "cl1",
            "status": "active",
            "type": {"coding": [{"code": "institutional"}]},
            "patient": SUBJECT,
            "created": "1960-06-09T08:03:26Z",
            "item": [
                {"sequence": 1, "productOrService": concept(SNOMED, "162673000", "General exam")},
                {"sequence": 2, "productOrService": {"text": "Influenza vaccine"}},
            ],
            "total": {"value": 265.5, "currency": "USD"},
        },
        "[Claim/cl1] 1960-06-09 claim institutional; items General exam, Influenza vaccine;"
        " total 265.5 USD; status active",
    ),
    "explanation of benefit": (
        {
            "resourceType": "ExplanationOfBenefit",
            "id": "eob1",
            "status": "active",
            "type": {"coding": [{"code": "institutional"}]},
            "patient": SUBJECT,
            "billablePeriod": {"start": "1960-06-09T08:00:00Z", "end": "1960-06-09T09:00:00Z"},
            "outcome": "complete",
            "total": [
                {"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 125.0}}
            ],
        },
        "[ExplanationOfBenefit/eob1] 1960-06-09 explanation of benefit institutional;"
        " total submitted 125; outcome complete; status active",
    ),
    "generic": (
        {
            "resourceType": "ServiceRequest",
            "id": "sr1",
            "status": "active",
            "code": concept(SNOMED, "306140004", "Referral to cardiology service (procedure)"),
            "subject": SUBJECT,
            "authoredOn": "2024-01-05",
        },
        "[ServiceRequest/sr1] 2024-01-05 Referral to cardiology service (procedure)"
        " (SNOMED 306140004); status active",
    ),
    "generic without date or code": (
        {"resourceType": "Organization", "id": "org1", "name": "ENLOE MEDICAL CENTER"},
        "[Organization/org1] ENLOE MEDICAL CENTER",
    ),
}


@pytest.mark.parametrize(("resource", "expected"), CASES.values(), ids=CASES.keys())
def test_render_exact_line(resource: dict[str, Any], expected: str) -> None:
    assert render(resource) == expected


def test_render_is_pure_and_deterministic() -> None:
    resource, _ = CASES["medication request"]
    before = copy.deepcopy(resource)
    assert render(resource) == render(resource)
    assert resource == before


def test_render_medication_reference_through_resolver() -> None:
    request = {
        "resourceType": "MedicationRequest",
        "id": "mr2",
        "status": "active",
        "medicationReference": {"reference": "Medication/m1"},
        "authoredOn": "2021-05-01",
        "dosageInstruction": [
            {"timing": {"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}}}
        ],
        "reasonReference": [{"reference": "Condition/c1"}],
    }
    found = {
        "Medication/m1": {
            "resourceType": "Medication",
            "id": "m1",
            "code": concept(RXNORM, "861007", "metformin hydrochloride 500 MG Oral Tablet"),
        },
        "Condition/c1": {
            "resourceType": "Condition",
            "id": "c1",
            "code": concept(SNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"),
        },
    }
    assert render(request, resolve=found.get) == (
        "[MedicationRequest/mr2] 2021-05-01 metformin hydrochloride 500 MG Oral Tablet"
        " (RxNorm 861007); status active; dosage once every 12 hours;"
        " reason Diabetes mellitus type 2 (disorder)"
    )
    assert render(request) == (
        "[MedicationRequest/mr2] 2021-05-01 unknown medication; status active;"
        " dosage once every 12 hours"
    )


def test_long_note_is_collapsed_and_truncated() -> None:
    resource = copy.deepcopy(CASES["document reference"][0])
    long_note = "Patient   reports\n\nfatigue. " * 40
    resource["content"][0]["attachment"]["data"] = b64(long_note)
    line = render(resource)
    prefix = "[DocumentReference/doc1] 2024-11-02 History and physical note (LOINC 34117-2): "
    assert line.startswith(prefix + "Patient reports fatigue. Patient")
    assert line.endswith("…")
    assert len(line) - len(prefix) <= NOTE_CHARS
    assert "\n" not in line


def test_long_line_is_clipped() -> None:
    resource = copy.deepcopy(CASES["observation codeable concept"][0])
    del resource["valueCodeableConcept"]
    resource["valueString"] = "word " * 200
    line = render(resource)
    assert MAX_LINE_CHARS - 5 < len(line) <= MAX_LINE_CHARS
    assert line.endswith("word…")


def test_displays_are_kept_exactly_as_coded() -> None:
    line = render(CASES["condition resolved"][0])
    assert "Acute bronchitis (disorder)" in line


@pytest.mark.parametrize(
    ("value", "expected"),
    [(101.0, "101"), (67.2, "67.2"), (0.0272, "0.0272"), (-3.0, "-3"), (7, "7"), (1e20, "1e+20")],
)
def test_format_number(value: float, expected: str) -> None:
    assert format_number(value) == expected


@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        ({"contentType": "text/plain", "data": b64("héllo")}, "héllo"),
        ({"contentType": "text/plain; charset=ISO-8859-1", "data": b64("café", "latin-1")}, "café"),
        ({"contentType": 'text/plain; charset="utf-8"', "data": b64("\ufeffnote")}, "note"),
        ({"contentType": "text/plain; charset=no-such", "data": b64("ok")}, "ok"),
        ({"contentType": "text/html", "data": b64("<p>x</p>")}, "<p>x</p>"),
        ({"contentType": "application/pdf", "data": b64("%PDF")}, None),
        ({"contentType": "text/plain", "url": "http://example.org/n.txt"}, None),
        ({"data": b64("no content type")}, None),
    ],
    ids=["utf8", "latin1", "bom", "unknown-charset", "html", "pdf", "url-only", "no-type"],
)
def test_decode_attachment_text(attachment: dict[str, Any], expected: str | None) -> None:
    assert decode_attachment_text(attachment) == expected


def test_decode_attachment_text_rejects_bad_base64() -> None:
    with pytest.raises(FhirValidationError, match="base64"):
        decode_attachment_text({"contentType": "text/plain", "data": "abc"})


def test_note_text_prefers_plain_text_and_strips_html() -> None:
    html_only = {"contentType": "text/html", "data": b64("<p>Chest pain &amp; dyspnea</p>")}
    plain = {"contentType": "text/plain", "data": b64("Chest pain and dyspnea")}
    document: dict[str, Any] = {"resourceType": "DocumentReference", "id": "d", "content": []}
    document["content"] = [{"attachment": html_only}, {"attachment": plain}]
    assert note_text(document) == "Chest pain and dyspnea"
    document["content"] = [{"attachment": html_only}]
    assert note_text(document) == " Chest pain & dyspnea "


def test_note_text_of_report_and_other_types() -> None:
    report = CASES["diagnostic report"][0]
    assert note_text(report) == "LDL 150 mg/dL.\n"
    assert note_text(CASES["document reference"][0]) == NOTE
    assert note_text(CASES["condition active"][0]) is None
    assert note_text({"resourceType": "DocumentReference", "id": "x", "content": []}) is None


def test_note_text_names_the_bad_attachment() -> None:
    document = {
        "resourceType": "DocumentReference",
        "id": "d",
        "content": [{"attachment": {"contentType": "text/plain", "data": "abc"}}],
    }
    with pytest.raises(FhirValidationError) as caught:
        note_text(document)
    assert caught.value.resource_type == "DocumentReference"
    assert caught.value.path == "content[0].attachment.data"


@pytest.mark.parametrize(
    "resource",
    [{"id": "x"}, {"resourceType": "Observation"}, {"resourceType": "Observation", "id": 3}],
)
def test_render_rejects_resources_without_identity(resource: dict[str, Any]) -> None:
    with pytest.raises(FhirValidationError):
        render(resource)


def test_every_synthea_sample_entry_renders_one_line() -> None:
    bundle = json.loads(SAMPLE.read_text(encoding="utf-8"))
    by_url = {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        line = render(resource, resolve=by_url.get)
        assert line.startswith(f"[{resource['resourceType']}/{resource['id']}]")
        assert len(line) <= MAX_LINE_CHARS
        assert "\n" not in line and "  " not in line


def test_the_first_displayed_coding_is_rendered() -> None:
    resource = {
        "resourceType": "Observation",
        "id": "o",
        "code": {
            "coding": [
                {"system": "urn:local", "code": "GLU"},
                {"system": LOINC, "code": "2345-7", "display": "Glucose"},
            ]
        },
        "valueBoolean": True,
    }
    assert render(resource) == "[Observation/o] Glucose (LOINC 2345-7) = true"


def test_malformed_elements_do_not_break_the_line() -> None:
    patient = {"resourceType": "Patient", "id": "p", "birthDate": 1960, "name": "Verna"}
    assert render(patient) == "[Patient/p]"


def test_a_claim_names_an_insurer_known_only_by_reference() -> None:
    from ehrqa.fhir.render import insurers, render, stated_insurers

    eob = {
        "resourceType": "ExplanationOfBenefit",
        "id": "e",
        "created": "2024-10-11T10:00:00Z",
        "insurer": {"reference": "Organization/o"},
        "insurance": [{"focal": True, "coverage": {"reference": "Coverage/c"}}],
    }
    known = {
        "Organization/o": {"resourceType": "Organization", "id": "o", "name": "Aetna"},
        "Coverage/c": {"resourceType": "Coverage", "id": "c", "payor": [{"display": "Aetna"}]},
    }
    assert insurers(eob) == []  # nothing to follow without a resolver
    assert insurers(eob, known.get) == ["Aetna"]
    text = render(eob, resolve=known.get)
    assert "; insurer Aetna" in text
    assert stated_insurers(eob, text) == ["Aetna"]  # read back from the stored line
