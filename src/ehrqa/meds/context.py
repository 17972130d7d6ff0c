"""What decision support needs to know about a patient, gathered once.

:class:`PatientContext` holds the patient's active problems, current medications,
allergies, and latest laboratory results and vital signs as of a date. It is built from the
record store (:func:`context_from_store`) or from resources handed over by a caller, such
as a CDS Hooks prefetch (:func:`context_from_records`), so both paths reason the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from ehrqa.fhir.record import Record
from ehrqa.store.base import RecordQuery, RecordStore

CONTEXT_TYPES = (
    "Patient",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "Observation",
)
ACTIVE = {
    "Condition": ("active", "recurrence", "relapse"),
    "MedicationRequest": ("active", "on-hold"),
    "MedicationStatement": ("active", "intended"),
}
# Allergies are kept unless resolved or refuted: an unknown status still warrants a warning.
ALLERGY_EXCLUDED = ("resolved", "inactive", "refuted", "entered-in-error")
# Synthea records social circumstances and past history ("Past pregnancy history of
# miscarriage") as active Conditions; they are context, not problems.
SOCIAL_RE = re.compile(
    r"employ|education|labor force|social (isolation|contact)|limited social|violence|abuse"
    r"|stress\b|refugee|military|housing|homeless|income|criminal|transport|unemploy"
    r"|reports of|victim|risk activity|medication review due|misuses drugs"
    r"|\bhistory of\b|\bpast\b",  # past history is not an active problem
    re.IGNORECASE,
)
LAB_LOOKBACK_DAYS = 2 * 365
VITAL_LOOKBACK_DAYS = 365


@dataclass
class PatientContext:
    """A patient's problems, medications, allergies and latest results as of ``now``.

    ``labs`` and ``vitals`` hold the newest result per code within their look-back windows
    (two years, one year), newest first.
    """

    patient_id: str
    now: date
    patient: Record | None = None
    conditions: list[Record] = field(default_factory=list)
    social: list[Record] = field(default_factory=list)
    medications: list[Record] = field(default_factory=list)
    allergies: list[Record] = field(default_factory=list)
    labs: list[Record] = field(default_factory=list)
    vitals: list[Record] = field(default_factory=list)

    @property
    def age(self) -> int | None:
        """Age in whole years at ``now`` (at death, for a patient who died before ``now``),
        when the birth date is known."""
        resource = self.patient.resource if self.patient else {}
        born = resource.get("birthDate") or ""
        died = resource.get("deceasedDateTime")
        try:
            birth = date.fromisoformat(born[:10])
            end = min(self.now, date.fromisoformat(died[:10])) if died else self.now
        except (ValueError, TypeError):
            return None
        before_birthday = (end.month, end.day) < (birth.month, birth.day)
        return end.year - birth.year - before_birthday

    @property
    def gender(self) -> str | None:
        """The administrative gender of the Patient resource."""
        return self.patient.resource.get("gender") if self.patient else None

    def records(self) -> list[Record]:
        """Every record of the context (without the Patient), problems first."""
        return [
            *self.conditions,
            *self.medications,
            *self.allergies,
            *self.labs,
            *self.vitals,
        ]

    def latest(self, *terms: str) -> Record | None:
        """The newest lab or vital whose code display or code contains one of ``terms``."""
        lowered = [t.lower() for t in terms]
        for record in sorted(self.labs + self.vitals, key=lambda r: r.date or "", reverse=True):
            names = [c.display.lower() for c in record.codes] + [c.code for c in record.codes]
            if any(t in name for t in lowered for name in names):
                return record
        return None


def context_from_store(store: RecordStore, patient_id: str, now: date) -> PatientContext:
    """Gather the context of ``patient_id`` from the store (nothing dated after ``now``)."""
    day = now.isoformat()
    lab_start = (now - timedelta(days=LAB_LOOKBACK_DAYS)).isoformat()
    records: list[Record] = []
    records += store.get_many([f"Patient/{patient_id}"])
    # No date filter here: an undated allergy or problem (NULL day) still counts, and
    # context_from_records drops whatever is dated after ``now``.
    records += store.query(
        RecordQuery(
            patient_id,
            types=("Condition", "MedicationRequest", "MedicationStatement", "AllergyIntolerance"),
        )
    )
    records += store.query(
        RecordQuery(
            patient_id,
            types=("Observation",),
            categories=("laboratory", "vital-signs"),
            start=lab_start,
            end=day,
        )
    )
    return context_from_records(records, patient_id, now)


def context_from_records(records: Iterable[Record], patient_id: str, now: date) -> PatientContext:
    """Build the context from any records of the patient (a store query, a CDS prefetch)."""
    context = PatientContext(patient_id, now)
    day = now.isoformat()
    lab_start = (now - timedelta(days=LAB_LOOKBACK_DAYS)).isoformat()
    vital_start = (now - timedelta(days=VITAL_LOOKBACK_DAYS)).isoformat()
    observations: list[Record] = []
    for record in records:
        if record.day and record.day > day:
            continue  # the future is never evidence
        kind = record.resource_type
        if kind == "Patient":
            context.patient = record
        elif kind == "Condition" and record.status in ACTIVE["Condition"]:
            (context.social if SOCIAL_RE.search(record.display) else context.conditions).append(
                record
            )
        elif kind in ("MedicationRequest", "MedicationStatement") and record.status in ACTIVE[kind]:
            context.medications.append(record)
        elif kind == "AllergyIntolerance" and record.status not in ALLERGY_EXCLUDED:
            context.allergies.append(record)
        elif kind == "Observation":
            observations.append(record)
    context.labs = latest_per_code(observations, "laboratory", lab_start)
    context.vitals = latest_per_code(observations, "vital-signs", vital_start)
    for group in (context.conditions, context.medications, context.allergies, context.social):
        group.sort(key=lambda r: r.date or "", reverse=True)
    context.medications = _one_per_code(context.medications)  # repeat prescriptions
    context.conditions = _one_per_code(context.conditions)
    return context


def latest_per_code(observations: list[Record], category: str, start: str) -> list[Record]:
    """The newest observation of each code in ``category`` dated ``start`` or later."""
    newest = sorted(
        (o for o in observations if category in o.category and (o.day or "") >= start),
        key=lambda r: r.date or "",
        reverse=True,
    )
    return _one_per_code(newest)


def _one_per_code(records: list[Record]) -> list[Record]:
    """The first record of each primary code (records come newest first)."""
    seen: set[str] = set()
    kept = []
    for record in records:
        key = record.codes[0].code if record.codes else record.display
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


# What documents call a result → a lower-case part of the record's code display.
# "creatinine [mass" keeps "Albumin/Creatinine [Mass Ratio]" out of plain creatinine.
RESULT_NAMES: dict[str, tuple[str, ...]] = {
    "egfr": ("glomerular filtration",),
    "kidney function": ("glomerular filtration", "creatinine [mass"),
    "renal function": ("glomerular filtration", "creatinine [mass"),
    "creatinine": ("creatinine [mass",),
    "hba1c": ("hemoglobin a1c",),
    "glucose": ("glucose [mass",),
    "potassium": ("potassium",),
    "electrolytes": ("sodium", "potassium"),
    "inr": ("inr",),
    "ldl": ("low density lipoprotein",),
    "lipids": ("low density lipoprotein",),
    "acr": ("albumin/creatinine", "microalbumin"),
    "haemoglobin": ("hemoglobin [mass",),
    "full blood count": ("hemoglobin [mass",),
    "blood pressure": ("blood pressure",),
    "bmi": ("body mass index",),
}


def results_named(context: PatientContext, text: str) -> list[Record]:
    """The patient's newest result for each result that ``text`` names, each once."""
    lowered = text.lower()
    found: dict[str, Record] = {}
    for name, displays in RESULT_NAMES.items():
        if re.search(rf"\b{re.escape(name)}\b", lowered):
            for display in displays:
                record = context.latest(display)
                if record is not None:
                    found.setdefault(record.ref, record)
    return list(found.values())
