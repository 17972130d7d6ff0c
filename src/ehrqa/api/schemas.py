"""Request and response models of the ``/v1`` API (they also document it in OpenAPI)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ehrqa.answer.answerer import AnswerMode
from ehrqa.api.limits import MAX_QUESTION_CHARS
from ehrqa.core.config import EARLIEST_DAY, LATEST_DAY
from ehrqa.fhir.record import Record
from ehrqa.store.base import PatientSummary

MAX_TEXT_CHARS = MAX_QUESTION_CHARS

_NOW = Field(
    None,
    ge=EARLIEST_DAY,
    le=LATEST_DAY,
    description="The date taken as today (YYYY-MM-DD, 1900-2200); default: today.",
)
_MODE = Field(
    None,
    description="extractive (composed by code, no model) | hybrid (the composed answer "
    "first; a model rewrite replaces it only when it passes every check) | model (the "
    "model's text, unchecked spans marked); default: the server's configured mode.",
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: date | None = _NOW
    answer_mode: AnswerMode | None = _MODE


class AskRequest(_Request):
    """A question about one patient's record."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, examples=["Latest HbA1c?"])
    conversation_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="A follow-up borrows the subject of this conversation's earlier questions.",
        examples=["c1"],
    )

    _check_question = field_validator("question")(_not_blank)


class DifferentialRequest(_Request):
    """Symptoms to rank diagnoses for, against the patient's record."""

    symptoms: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, examples=["fever, dysuria"])

    _check_symptoms = field_validator("symptoms")(_not_blank)


class TreatRequest(_Request):
    """A condition to find the protocol's treatment options for."""

    condition: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, examples=["type 2 diabetes"])

    _check_condition = field_validator("condition")(_not_blank)


class SummarizeRequest(_Request):
    """Options of a patient summary."""


class CdsAskRequest(_Request):
    """A free question over the hospital's documents, and a patient's record if named."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    patient_id: str | None = Field(None, max_length=200)

    _check_question = field_validator("question")(_not_blank)


class Me(BaseModel):
    """Who the token belongs to and what it may see."""

    admin: bool
    patients: list[str] | None
    name: str
    role: Literal["clinician", "patient"] = Field(
        description="clinician: every tool; patient: the record and questions, no decision support."
    )


class PatientOut(BaseModel):
    """One line of the patient list."""

    id: str
    name: str
    birth_date: str | None
    gender: str | None
    resource_count: int

    @classmethod
    def of(cls, patient: PatientSummary) -> PatientOut:
        """The model of a store's patient summary."""
        return cls(
            id=patient.id,
            name=patient.name,
            birth_date=patient.birth_date,
            gender=patient.gender,
            resource_count=patient.resource_count,
        )


class PatientDetail(PatientOut):
    """One patient, with the number of records of each resource type."""

    type_counts: dict[str, int]


class CodingOut(BaseModel):
    """One code of a resource."""

    system: str
    code: str
    display: str


class ResourceOut(BaseModel):
    """One record as the patient's resource list shows it."""

    ref: str
    resource_type: str = Field(serialization_alias="resourceType")
    date: str | None
    display: str
    status: str | None
    value: float | str | None
    unit: str | None
    text: str
    codes: list[CodingOut]

    @classmethod
    def of(cls, record: Record) -> ResourceOut:
        """The list entry of a stored record (a numeric value when it has one)."""
        return cls(
            ref=record.ref,
            resource_type=record.resource_type,
            date=record.date,
            display=record.display,
            status=record.status,
            value=record.value if record.value is not None else record.value_text,
            unit=record.unit,
            text=record.text,
            codes=[
                CodingOut(system=c.system, code=c.code, display=c.display) for c in record.codes
            ],
        )


class RecordOut(BaseModel):
    """One stored record in full: normalised fields, rendering and the FHIR resource."""

    ref: str
    resource_type: str = Field(serialization_alias="resourceType")
    id: str
    patient_id: str | None = Field(serialization_alias="patientId")
    date: str | None
    status: str | None
    display: str
    text: str
    resource: dict[str, Any]


class ChunkOut(BaseModel):
    """One chunk of the document library."""

    id: str
    ref: str
    title: str
    section: str | None
    text: str


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: str
    message: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (401, "No token, or an unknown or revoked one"),
        (403, "The token's scope does not cover this patient (or the patient does not exist)"),
        (422, "The request is invalid"),
    )
}
