"""Treatment options show their safety checks for the patient, problems first, each cited:
allergies, interactions, kidney function and pregnancy, including what was found clear."""

from __future__ import annotations

from typing import Any

import pytest

from cds_fakes import NOW, FakeLibrary
from ehrqa.cds.base import Advice, AdviceItem
from ehrqa.cds.treat import treat
from ehrqa.fhir.normalize import normalize
from ehrqa.meds.context import PatientContext, context_from_records

LIPIDS = """# Lipid management protocol
## Treatment
### First line
- **atorvastatin** 20 mg once daily for primary prevention.
"""


def option(advice: Advice, drug: str) -> AdviceItem:
    return next(i for i in advice.items if i.kind == "treatment" and i.title.endswith(drug))


def checks(item: AdviceItem) -> list[str]:
    return [w.text for w in item.warnings]


def test_each_option_shows_every_check_with_its_heading(
    library: FakeLibrary, ckd_context: PatientContext
) -> None:
    advice = treat(library, ckd_context, "urinary tract infection")
    nitro = option(advice, "nitrofurantoin")
    assert nitro.headings["warnings"] == "Safety checks for this patient"
    found = checks(nitro)
    assert found[0].startswith("WARNING: eGFR is 38")  # the problem comes first
    assert "Allergies checked: no recorded allergy concerns nitrofurantoin" in found
    assert (
        "Interactions checked: none known between nitrofurantoin and the current medicines" in found
    )
    by_text = {w.text: w.citations for w in nitro.warnings}
    assert by_text["Allergies checked: no recorded allergy concerns nitrofurantoin"] == [
        "AllergyIntolerance/pen"
    ]
    assert by_text[
        "Interactions checked: none known between nitrofurantoin and the current medicines"
    ] == ["MedicationRequest/mtx"]
    assert not any(t.startswith("Kidney function checked") for t in found)  # it is a problem
    trimethoprim = checks(option(advice, "trimethoprim"))
    assert trimethoprim[0].startswith("CRITICAL:") and "methotrexate" in trimethoprim[0]
    assert any(t.startswith("Kidney function checked: eGFR 38") for t in trimethoprim)
    assert "Safety checks for this patient:" in advice.text
    for item in advice.items:
        for statement in item.all_statements():
            assert statement.citations and set(statement.citations) <= set(advice.sources)


def _patient(gender: str, born: str, *extra: dict[str, Any]) -> PatientContext:
    person = {"resourceType": "Patient", "id": "p1", "gender": gender, "birthDate": born}
    return context_from_records([normalize(r) for r in (person, *extra)], "p1", NOW)


PREGNANCY = {
    "resourceType": "Condition",
    "id": "preg",
    "subject": {"reference": "Patient/p1"},
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "code": {
        "coding": [
            {"system": "http://snomed.info/sct", "code": "72892002", "display": "Normal pregnancy"}
        ]
    },
    "onsetDateTime": "2024-10-01",
}


@pytest.mark.parametrize(
    ("gender", "born", "prompted"),
    [
        ("female", "1994-01-01", True),
        ("male", "1994-01-01", False),
        ("female", "1950-01-01", False),
    ],
)
def test_a_drug_harmful_in_pregnancy_prompts_a_pregnancy_check(
    gender: str, born: str, prompted: bool
) -> None:
    library = FakeLibrary({"lipids": ("Lipid management protocol", LIPIDS)})
    advice = treat(library, _patient(gender, born), "lipid management")
    found = checks(option(advice, "atorvastatin"))
    prompt = "Pregnancy: no pregnancy recorded, but atorvastatin is contraindicated in pregnancy"
    assert any(t.startswith(prompt) for t in found) is prompted
    assert "Kidney function not checked: no eGFR result in the last 2 years" in found


def test_a_recorded_pregnancy_is_a_critical_warning_not_a_prompt() -> None:
    library = FakeLibrary({"lipids": ("Lipid management protocol", LIPIDS)})
    advice = treat(library, _patient("female", "1994-01-01", PREGNANCY), "lipid management")
    found = checks(option(advice, "atorvastatin"))
    assert found[0].startswith("CRITICAL: Normal pregnancy recorded: atorvastatin")
    assert not any(t.startswith("Pregnancy: no pregnancy recorded") for t in found)
    assert option(advice, "atorvastatin").warnings[0].citations == ["Condition/preg"]


def test_hook_cards_head_their_detail_with_what_it_holds(ckd_context: PatientContext) -> None:
    from ehrqa.cds.hooks import SERVICES, HookRequest, cards

    request = HookRequest(
        SERVICES[0], "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "p1", "Practitioner/1", {}
    )
    found = cards(request, ckd_context)
    assert found
    for card in found:
        detail = card["detail"]
        assert "**Why it matters:**" in detail and "**Records behind this warning:**" in detail
        assert " check.**" in detail.splitlines()[0]
