"""Tests for ehrqa.fhir.normalize: identity, patient, dates, codes, values and status."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ehrqa.core.errors import FhirValidationError
from ehrqa.fhir.elements import patient_ref_id
from ehrqa.fhir.normalize import normalize
from ehrqa.fhir.record import Coding, Component

SAMPLE = Path(__file__).parent.parent / "fixtures" / "synthea_sample.json"
SUBJECT = {"reference": "urn:uuid:p1"}
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def observation(**fields: Any) -> dict[str, Any]:
    base = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory"}]}],
        "code": concept(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-11-02T09:30:00+00:00",
    }
    return base | fields


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/abc", "abc"),
        ("urn:uuid:abc", "abc"),
        ("http://x/fhir/Patient/abc/_history/2", "abc"),
        ("Patient/abc/_history/7", "abc"),
        ("https://server.example/fhir/Patient/abc", "abc"),
        (" Patient/abc ", "abc"),
        ("Practitioner/abc", None),
        ("http://x/fhir/Group/abc", None),
        ("urn:oid:1.2.3", None),
        ("urn:uuid:", None),
        ("#contained", None),
        ("abc", None),
        ("Patient/", None),
        ("Patient?identifier=123", None),
        ("", None),
        (None, None),
    ],
)
def test_patient_ref_id(reference: str | None, expected: str | None) -> None:
    assert patient_ref_id(reference) == expected


@pytest.mark.parametrize(
    ("resource", "path", "resource_type"),
    [
        ({"id": "x"}, "resourceType", ""),
        ({"resourceType": "", "id": "x"}, "resourceType", ""),
        ({"resourceType": 3, "id": "x"}, "resourceType", ""),
        ({"resourceType": "Observation"}, "id", "Observation"),
        ({"resourceType": "Observation", "id": ""}, "id", "Observation"),
        ({"resourceType": "Observation", "id": 12}, "id", "Observation"),
        ({"resourceType": "Observation", "id": None}, "id", "Observation"),
    ],
)
def test_missing_identity_is_a_validation_error(
    resource: dict[str, Any], path: str, resource_type: str
) -> None:
    with pytest.raises(FhirValidationError) as caught:
        normalize(resource)
    assert caught.value.path == path
    assert caught.value.resource_type == resource_type


def test_a_non_object_is_a_validation_error() -> None:
    with pytest.raises(FhirValidationError, match="JSON object"):
        normalize(["not", "a", "resource"])  # type: ignore[arg-type]


def test_observation_quantity() -> None:
    resource = observation(
        valueQuantity={"value": 7.8, "unit": "%", "system": "http://unitsofmeasure.org"},
        meta={"versionId": "3", "lastUpdated": "2024-11-03T00:00:00Z"},
    )
    record = normalize(resource)
    assert record.ref == "Observation/o1"
    assert (record.resource_type, record.id, record.patient_id) == ("Observation", "o1", "p1")
    assert record.date == "2024-11-02T09:30:00+00:00"
    assert record.day == "2024-11-02"
    assert record.end_date is None
    assert record.codes == (Coding(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),)
    assert record.category == ("laboratory",)
    assert (record.value, record.value_text, record.unit) == (7.8, None, "%")
    assert record.status == "final"
    assert (record.version, record.last_updated) == ("3", "2024-11-03T00:00:00Z")
    assert record.resource is resource
    assert record.text.startswith("[Observation/o1] 2024-11-02 Hemoglobin A1c")


def test_observation_codeable_concept_value() -> None:
    record = normalize(
        observation(
            category=[{"coding": [{"system": OBSERVATION_CATEGORY, "code": "Social-History"}]}],
            valueCodeableConcept=concept(SNOMED, "266919005", "Never smoked tobacco (finding)"),
        )
    )
    assert record.value is None
    assert record.value_text == "Never smoked tobacco (finding)"
    assert record.category == ("social-history",)


def test_observation_components() -> None:
    record = normalize(
        observation(
            code=concept(LOINC, "85354-9", "Blood pressure panel"),
            category=[{"coding": [{"code": "vital-signs"}]}],
            component=[
                {
                    "code": concept(LOINC, "8480-6", "Systolic blood pressure"),
                    "valueQuantity": {"value": 101.0, "unit": "mm[Hg]"},
                },
                {
                    "code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
                    "valueQuantity": {"value": 67.2, "unit": "mm[Hg]"},
                },
                {"code": {"text": "Position"}, "valueString": "sitting"},
            ],
        )
    )
    assert record.value is None
    assert record.components == (
        Component("Systolic blood pressure", 101.0, None, "mm[Hg]", "8480-6"),
        Component("Diastolic blood pressure", 67.2, None, "mm[Hg]", "8462-4"),
        Component("Position", None, "sitting", None, None),
    )
    assert record.category == ("vital-signs",)


@pytest.mark.parametrize(
    ("fields", "value", "value_text", "unit"),
    [
        ({"valueString": "8877 Torp Port"}, None, "8877 Torp Port", None),
        ({"valueBoolean": False}, None, "false", None),
        ({"valueInteger": 3}, 3.0, None, None),
        ({"valueDateTime": "2020-01-01"}, None, "2020-01-01", None),
        ({"valueQuantity": {"value": 5, "comparator": "<", "code": "mg/dL"}}, 5.0, "<5", "mg/dL"),
        (
            {"valueRange": {"low": {"value": 1, "unit": "mg"}, "high": {"value": 2.5}}},
            None,
            "1-2.5",
            "mg",
        ),
        (
            {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}},
            None,
            "1/128",
            None,
        ),
        ({}, None, None, None),
    ],
)
def test_observation_value_kinds(
    fields: dict[str, Any], value: float | None, value_text: str | None, unit: str | None
) -> None:
    record = normalize(observation(**fields))
    assert (record.value, record.value_text, record.unit) == (value, value_text, unit)


def test_patient() -> None:
    record = normalize(
        {
            "resourceType": "Patient",
            "id": "p1",
            "name": [{"family": "Satterfield", "given": ["Verna"]}],
            "gender": "female",
            "birthDate": "1960-05-26",
            "deceasedDateTime": "2020-01-02T10:00:00Z",
        }
    )
    assert record.patient_id == "p1"
    assert (record.date, record.end_date) == ("1960-05-26", "2020-01-02T10:00:00Z")
    assert record.codes == ()
    assert record.status is None


def test_encounter() -> None:
    record = normalize(
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB", "display": "ambulatory"},
            "type": [concept(SNOMED, "162673000", "General examination of patient (procedure)")],
            "subject": SUBJECT,
            "period": {"start": "2020-01-01T08:00:00Z", "end": "2020-01-01T08:30:00Z"},
        }
    )
    assert record.patient_id == "p1"
    assert record.category == ("amb",)
    assert record.codes[0].code == "162673000"
    assert (record.date, record.end_date) == ("2020-01-01T08:00:00Z", "2020-01-01T08:30:00Z")
    assert record.status == "finished"


def condition(**fields: Any) -> dict[str, Any]:
    base = {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "category": [{"coding": [{"code": "encounter-diagnosis"}]}],
        "code": concept(SNOMED, "15777000", "Prediabetes"),
        "subject": SUBJECT,
        "onsetDateTime": "2019-03-01T10:00:00Z",
        "recordedDate": "2019-03-05",
    }
    return base | fields


def test_condition_active_and_resolved() -> None:
    active = normalize(condition())
    assert (active.status, active.date, active.end_date) == ("active", "2019-03-01T10:00:00Z", None)
    assert active.category == ("encounter-diagnosis",)
    resolved = normalize(
        condition(clinicalStatus={"coding": [{"code": "resolved"}]}, abatementDateTime="2020-01-02")
    )
    assert (resolved.status, resolved.end_date) == ("resolved", "2020-01-02")


def test_condition_without_onset_uses_recorded_date() -> None:
    resource = condition(onsetPeriod={"start": "2018-01-01"})
    del resource["onsetDateTime"]
    assert normalize(resource).date == "2018-01-01"
    del resource["onsetPeriod"]
    resource["onsetAge"] = {"value": 40, "unit": "a"}
    assert normalize(resource).date == "2019-03-05"


def test_condition_without_clinical_status_has_no_status() -> None:
    resource = condition()
    del resource["clinicalStatus"]
    assert normalize(resource).status is None


def test_medication_request_codeable_concept() -> None:
    record = normalize(
        {
            "resourceType": "MedicationRequest",
            "id": "457",
            "status": "stopped",
            "medicationCodeableConcept": concept(RXNORM, "562251", "Amoxicillin 250 MG"),
            "subject": SUBJECT,
            "authoredOn": "1956-08-22T14:59:04Z",
        }
    )
    assert record.codes == (Coding(RXNORM, "562251", "Amoxicillin 250 MG"),)
    assert (record.date, record.status, record.patient_id) == (
        "1956-08-22T14:59:04Z",
        "stopped",
        "p1",
    )


MEDICATION = {
    "resourceType": "Medication",
    "id": "m1",
    "code": concept(RXNORM, "861007", "metformin hydrochloride 500 MG Oral Tablet"),
}


def medication_request(reference: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base = {
        "resourceType": "MedicationRequest",
        "id": "mr2",
        "status": "active",
        "medicationReference": reference,
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2021-05-01",
    }
    return base | fields


def test_medication_reference_is_resolved() -> None:
    asked: list[str] = []

    def resolve(reference: str) -> dict[str, Any] | None:
        asked.append(reference)
        return MEDICATION if reference == "Medication/m1" else None

    record = normalize(medication_request({"reference": "Medication/m1"}), resolve=resolve)
    assert asked == ["Medication/m1", "Medication/m1"]  # once for codes, once for the text
    assert record.codes == (Coding(RXNORM, "861007", "metformin hydrochloride 500 MG Oral Tablet"),)
    assert "metformin hydrochloride 500 MG Oral Tablet (RxNorm 861007)" in record.text


def test_medication_reference_to_contained_medication() -> None:
    resource = medication_request({"reference": "#med"}, contained=[MEDICATION | {"id": "med"}])
    assert normalize(resource).codes[0].code == "861007"


def test_unresolved_medication_reference_keeps_its_display() -> None:
    resource = medication_request({"reference": "Medication/gone", "display": "Metformin"})
    record = normalize(resource, resolve=lambda reference: None)
    assert record.codes == (Coding("", "", "Metformin"),)
    assert record.display == "Metformin"


def test_medication_statement_dates() -> None:
    resource = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "active",
        "medicationCodeableConcept": {"text": "Lisinopril 10 mg"},
        "subject": SUBJECT,
        "effectivePeriod": {"start": "2020-02-01", "end": "2020-06-01"},
        "dateAsserted": "2020-07-01",
    }
    record = normalize(resource)
    assert (record.date, record.end_date) == ("2020-02-01", "2020-06-01")
    assert record.codes == (Coding("", "", "Lisinopril 10 mg"),)
    del resource["effectivePeriod"]
    assert normalize(resource).date == "2020-07-01"


def test_immunization_uses_vaccine_code_and_patient() -> None:
    record = normalize(
        {
            "resourceType": "Immunization",
            "id": "i1",
            "status": "completed",
            "vaccineCode": concept("http://hl7.org/fhir/sid/cvx", "140", "Influenza"),
            "patient": {"reference": "urn:uuid:p1"},
            "occurrenceDateTime": "2021-10-01T09:00:00Z",
        }
    )
    assert (record.patient_id, record.date, record.codes[0].system_name) == (
        "p1",
        "2021-10-01T09:00:00Z",
        "CVX",
    )


def test_procedure_period() -> None:
    record = normalize(
        {
            "resourceType": "Procedure",
            "id": "pr1",
            "status": "completed",
            "code": concept(SNOMED, "80146002", "Appendectomy (procedure)"),
            "subject": SUBJECT,
            "performedPeriod": {"start": "2019-04-01T22:00:00Z", "end": "2019-04-02T01:00:00Z"},
        }
    )
    assert (record.date, record.end_date) == ("2019-04-01T22:00:00Z", "2019-04-02T01:00:00Z")


def test_allergy_intolerance() -> None:
    record = normalize(
        {
            "resourceType": "AllergyIntolerance",
            "id": "a1",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "type": "allergy",
            "category": ["medication", "Food"],
            "code": {
                "coding": [
                    {"system": RXNORM, "code": "29046", "display": "Lisinopril"},
                    {"system": RXNORM, "code": "1998"},
                ],
                "text": "ACE inhibitors",
            },
            "patient": SUBJECT,
            "recordedDate": "1997-08-02T18:30:51Z",
        }
    )
    assert record.status == "active"
    assert record.category == ("medication", "food")
    assert record.date == "1997-08-02T18:30:51Z"
    # The concept's text stands in for the second coding's missing display.
    assert record.codes == (
        Coding(RXNORM, "29046", "Lisinopril"),
        Coding(RXNORM, "1998", "ACE inhibitors"),
    )


def test_diagnostic_report() -> None:
    record = normalize(
        {
            "resourceType": "DiagnosticReport",
            "id": "d1",
            "status": "final",
            "category": [{"coding": [{"code": "LAB"}]}],
            "code": concept(LOINC, "57698-3", "Lipid panel"),
            "subject": SUBJECT,
            "issued": "2024-11-03T00:00:00Z",
        }
    )
    assert (record.category, record.date, record.status) == (
        ("lab",),
        "2024-11-03T00:00:00Z",
        "final",
    )


def test_care_plan_codes_come_from_its_categories() -> None:
    record = normalize(
        {
            "resourceType": "CarePlan",
            "id": "cp1",
            "status": "completed",
            "category": [
                {"coding": [{"code": "assess-plan"}]},
                concept(SNOMED, "385691007", "Fracture care (regime/therapy)"),
            ],
            "subject": SUBJECT,
            "period": {"start": "1967-06-15", "end": "1967-08-31"},
        }
    )
    assert record.category == ("assess-plan", "385691007")
    assert record.display == "Fracture care (regime/therapy)"
    assert (record.date, record.end_date) == ("1967-06-15", "1967-08-31")


def test_document_reference() -> None:
    note = base64.b64encode(b"Patient is well.").decode()
    resource = {
        "resourceType": "DocumentReference",
        "id": "doc1",
        "status": "current",
        "type": concept(LOINC, "34117-2", "History and physical note"),
        "category": [{"coding": [{"code": "clinical-note"}]}],
        "subject": SUBJECT,
        "content": [{"attachment": {"contentType": "text/plain", "data": note}}],
        "context": {"period": {"start": "2024-11-02T09:00:00Z", "end": "2024-11-02T10:00:00Z"}},
    }
    record = normalize(resource)
    assert record.codes[0].code == "34117-2"
    assert record.category == ("clinical-note",)
    assert (record.date, record.end_date) == ("2024-11-02T09:00:00Z", "2024-11-02T10:00:00Z")
    assert record.text.endswith("History and physical note (LOINC 34117-2): Patient is well.")
    resource["date"] = "2024-11-05"
    assert normalize(resource).date == "2024-11-05"


@pytest.mark.parametrize(
    ("resource", "date", "status"),
    [
        (
            {"resourceType": "Goal", "lifecycleStatus": "active", "startDate": "1980-02-14"},
            "1980-02-14",
            "active",
        ),
        ({"resourceType": "Device", "manufactureDate": "1974-09-12"}, "1974-09-12", None),
        (
            {
                "resourceType": "SupplyDelivery",
                "occurrenceDateTime": "1969-05-22",
                "status": "completed",
            },
            "1969-05-22",
            "completed",
        ),
        ({"resourceType": "ImagingStudy", "started": "1967-06-15"}, "1967-06-15", None),
        (
            {"resourceType": "MedicationAdministration", "effectiveDateTime": "1986-04-03"},
            "1986-04-03",
            None,
        ),
        ({"resourceType": "CareTeam", "period": {"start": "1967-06-15"}}, "1967-06-15", None),
        ({"resourceType": "Claim", "created": "1960-06-09"}, "1960-06-09", None),
        (
            {"resourceType": "ExplanationOfBenefit", "billablePeriod": {"start": "1960-06-08"}},
            "1960-06-08",
            None,
        ),
        ({"resourceType": "ServiceRequest", "authoredOn": "2024-01-05"}, "2024-01-05", None),
        ({"resourceType": "Specimen", "receivedTime": "2024-01-05"}, None, None),
        (
            {"resourceType": "Provenance", "recorded": "2024-11-08T00:00:00Z"},
            "2024-11-08T00:00:00Z",
            None,
        ),
    ],
    ids=lambda value: value["resourceType"] if isinstance(value, dict) else None,
)
def test_start_dates_of_other_types(
    resource: dict[str, Any], date: str | None, status: str | None
) -> None:
    record = normalize({"id": "x", **resource})
    assert (record.date, record.status) == (date, status)


@pytest.mark.parametrize(
    ("field", "reference", "expected"),
    [
        ("subject", "Patient/p9", "p9"),
        ("patient", "urn:uuid:p9", "p9"),
        ("beneficiary", "http://x/fhir/Patient/p9/_history/1", "p9"),
        ("individual", "Patient/p9", "p9"),
        ("subject", "Group/g1", None),
    ],
)
def test_patient_id_fields(field: str, reference: str, expected: str | None) -> None:
    record = normalize({"resourceType": "Coverage", "id": "x", field: {"reference": reference}})
    assert record.patient_id == expected


def test_patient_id_absent_and_malformed_elements_are_skipped() -> None:
    record = normalize(
        {
            "resourceType": "Observation",
            "id": "odd",
            "subject": "Patient/p1",
            "code": ["not", "a", "concept"],
            "category": "vital-signs",
            "meta": "nonsense",
            "component": ["bad"],
        }
    )
    assert record.patient_id is None
    assert record.codes == ()
    assert record.category == ("vital-signs",)
    assert (record.version, record.components) == (None, ())
    assert record.text == "[Observation/odd] observation"


def test_normalize_does_not_change_the_resource() -> None:
    resource = observation(valueQuantity={"value": 7.8, "unit": "%"})
    before = copy.deepcopy(resource)
    normalize(resource)
    assert resource == before


def test_every_synthea_sample_entry_normalises() -> None:
    bundle = json.loads(SAMPLE.read_text(encoding="utf-8"))
    entries = bundle["entry"]
    assert bundle["type"] == "transaction" and len(entries) <= 60
    by_url = {entry["fullUrl"]: entry["resource"] for entry in entries}
    patient_id = next(
        e["resource"]["id"] for e in entries if e["resource"]["resourceType"] == "Patient"
    )
    types = set()
    for entry in entries:
        record = normalize(entry["resource"], resolve=by_url.get)
        types.add(record.resource_type)
        assert record.text.startswith(f"[{record.ref}]")
        if record.resource_type not in {"Organization", "Practitioner"}:
            assert record.patient_id == patient_id, record.ref
            assert record.date, record.ref
    assert {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "MedicationRequest",
        "Immunization",
        "Procedure",
        "AllergyIntolerance",
        "DiagnosticReport",
        "CarePlan",
        "DocumentReference",
        "Claim",
    } <= types


def test_synthea_sample_has_the_expected_clinical_content() -> None:
    bundle = json.loads(SAMPLE.read_text(encoding="utf-8"))
    records = [normalize(entry["resource"]) for entry in bundle["entry"]]
    conditions = {r.status for r in records if r.resource_type == "Condition"}
    requests = {r.status for r in records if r.resource_type == "MedicationRequest"}
    assert {"active", "resolved"} <= conditions
    assert {"active", "stopped"} <= requests
    blood_pressure = next(r for r in records if r.codes and r.codes[0].code == "85354-9")
    assert [c.name for c in blood_pressure.components] == [
        "Systolic blood pressure",
        "Diastolic blood pressure",
    ]
    a1c = next(r for r in records if r.codes and r.codes[0].code == "4548-4" and r.value)
    assert (a1c.unit, a1c.category) == ("%", ("laboratory",))
