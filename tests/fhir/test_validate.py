"""Both validators report the same problems with element paths."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import observation, patient
from ehrqa.core.errors import NotFoundError
from ehrqa.fhir.validate import VALIDATORS, get_validator

CASES: list[tuple[dict[str, Any], str]] = [
    (
        {**observation("o", "2024-01-01", 1.0), "valueQuantity": {"value": "abc"}},
        "Observation.valueQuantity.value",
    ),
    (
        {k: v for k, v in observation("o", "2024-01-01", 1.0).items() if k != "status"},
        "Observation.status",
    ),
    ({**patient(), "birthDate": "1970-13-45"}, "Patient.birthDate"),
]


@pytest.mark.parametrize("name", ["fhirkit", "fhir.resources"])
@pytest.mark.parametrize(("resource", "path"), CASES)
def test_validators_name_the_bad_element(name: str, resource: dict[str, Any], path: str) -> None:
    issues = get_validator(name).validate(resource)
    assert path in [i.path for i in issues]


@pytest.mark.parametrize("name", ["fhirkit", "fhir.resources"])
def test_valid_resources_pass(name: str) -> None:
    validator = get_validator(name)
    assert validator.validate(patient()) == []
    assert validator.validate(observation("o", "2024-01-01", 7.5)) == []


def test_unknown_validator_suggests_the_close_name() -> None:
    with pytest.raises(NotFoundError, match="did you mean 'fhirkit'"):
        get_validator("fhirkt")
    assert VALIDATORS.names() == ["fhir.resources", "fhirkit", "none"]
