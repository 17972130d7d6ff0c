"""``GET /v1/patients/{id}/labs``: numeric Quantity results only, readable units, flags."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ehrqa.api.patients_routes import lab_series, quantity_value
from ehrqa.fhir.record import Coding, Record
from ehrqa.lab.data.demo import DEMO_CDS_PATIENT, DEMO_PATIENT

if TYPE_CHECKING:
    from api.conftest import Api


def lab(rid: str, value: object, code: str = "4548-4", unit: str = "%") -> Record:
    resource: dict[str, object] = {"resourceType": "Observation", "id": rid}
    if isinstance(value, str):
        resource["valueString"] = value
    elif value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit}
    return Record(
        ref=f"Observation/{rid}",
        resource_type="Observation",
        id=rid,
        patient_id="p",
        text="",
        date=f"2024-01-0{len(rid)}",
        codes=(Coding("http://loinc.org", code, "Hemoglobin A1c"),),
        value=3937.0 if isinstance(value, str) else None,  # what a loose parse of text gives
        value_text=value if isinstance(value, str) else None,
        unit=unit,
        resource=resource,
    )


def test_only_quantities_with_a_number_are_plotted() -> None:
    address = lab("a", "3937 Smith Esplanade", code="56799-0", unit="")
    assert quantity_value(address) is None
    assert quantity_value(lab("bb", True)) is None
    assert quantity_value(lab("ccc", 5.9)) == 5.9
    series = lab_series([address, lab("bb", None), lab("ccc", 5.9), lab("dddd", 5.2)], "female")
    assert [s["code"] for s in series] == ["4548-4"]
    assert [p["value"] for p in series[0]["points"]] == [5.9, 5.2]
    assert [p["flag"] for p in series[0]["points"]] == ["high", "normal"]
    assert series[0]["range"]["high"] == 5.6


def test_the_labs_route_gives_readable_units_and_checks_scope(api: Api) -> None:
    series = api.get(f"/v1/patients/{DEMO_PATIENT}/labs", as_="scoped").json()
    by_code = {s["code"]: s for s in series}
    assert by_code["4548-4"]["reader_unit"] == "%"
    assert all(isinstance(p["value"], float) for s in series for p in s["points"])
    assert all(not s["unit"].startswith("{") or s["reader_unit"] == "" for s in series)
    assert api.get(f"/v1/patients/{DEMO_CDS_PATIENT}/labs", as_="scoped").status_code == 403
