"""The result types every decision-support task returns.

An :class:`Advice` is a list of :class:`AdviceItem` (a diagnosis, a treatment, a summary
section, an answer), each made of :class:`Statement` objects that cite their sources by
reference: ``doc:ID#N`` for a document chunk, ``Type/id`` for a patient resource and
``file:NAME#N`` for a paragraph of a file given on the command line. ``sources`` maps every
cited reference to what it says, so a reader (or a test) can check each statement.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ehrqa.text.citations import FHIR_TYPES

NOTICE = (
    "Decision support, not a diagnosis or a prescription: check it against the full record "
    "and your clinical judgement."
)

SourceKind = Literal["document", "record", "file"]
ItemKind = Literal["diagnosis", "excluded", "treatment", "summary", "answer"]
# The heading of each statement list of an item, by the item's kind: what the list holds.
HEADINGS: dict[str, dict[str, str]] = {
    "diagnosis": {
        "statements": "Why it is considered",
        "evidence_for": "Findings for",
        "evidence_against": "Findings against",
        "warnings": "Red flags",
        "next_steps": "Suggested tests",
    },
    "excluded": {"statements": "Why it was excluded"},
    "treatment": {
        "statements": "Protocol option and cautions",
        "warnings": "Safety checks for this patient",
        "next_steps": "Next steps",
    },
    "summary": {"warnings": "Warnings", "next_steps": "Next steps"},
    "answer": {"statements": "Answer", "warnings": "Warnings", "next_steps": "Next steps"},
}
# A citation as it appears in text: [doc:diabetes-type-2#3], [Observation/abc], [file:note.txt#2].
# A bracketed Type/id counts only when Type is a FHIR resource type: LOINC names such as
# "Creatinine [Mass/volume] in Serum" are not citations.
_FHIR_TYPE = "|".join(sorted(FHIR_TYPES))
CITATION_RE = re.compile(
    rf"\[((?:doc|file):[^\]\s]+#\d+|(?:{_FHIR_TYPE})/[A-Za-z0-9\-.]{{1,64}})\]"
)


@dataclass(frozen=True)
class Source:
    """Something a statement cites: a document chunk, a patient resource or a file paragraph."""

    ref: str
    kind: SourceKind
    title: str
    text: str

    @property
    def citation(self) -> str:
        """The reference as cited in text, in square brackets."""
        return f"[{self.ref}]"


@dataclass
class Statement:
    """One sentence and the references it rests on."""

    text: str
    citations: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The sentence followed by its citations, e.g. ``Start metformin [doc:dm#3].``"""
        cited = " ".join(f"[{ref}]" for ref in self.citations if f"[{ref}]" not in self.text)
        text = self.text.rstrip()
        if not cited:
            return text
        if text.endswith("."):
            return f"{text[:-1]} {cited}."
        return f"{text} {cited}"


@dataclass
class AdviceItem:
    """One unit of advice: a diagnosis, a suggested treatment, a summary section, an answer.

    ``statements`` say what the item is; ``evidence_for`` and ``evidence_against`` weigh it
    (differential diagnosis); ``warnings`` flag safety problems for this patient (allergy,
    interaction, renal function); ``next_steps`` are suggested tests or actions. An
    ``excluded`` item is a diagnosis ruled out by the patient's sex or age, and why.
    ``headings`` names what each list holds ("Findings for", "Safety checks for this
    patient"), for every reader of the item.
    """

    kind: ItemKind
    title: str
    statements: list[Statement] = field(default_factory=list)
    evidence_for: list[Statement] = field(default_factory=list)
    evidence_against: list[Statement] = field(default_factory=list)
    warnings: list[Statement] = field(default_factory=list)
    next_steps: list[Statement] = field(default_factory=list)
    score: float | None = None
    headings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # What each list holds, named for a reader (the CLI, the API's JSON, the web page):
        # a summary section's statements are headed by the section's own title.
        defaults = dict(HEADINGS[self.kind])
        if self.kind == "summary":
            defaults["statements"] = self.title
        self.headings = {**defaults, **self.headings}

    def all_statements(self) -> list[Statement]:
        """Every statement of the item, in display order."""
        return [
            *self.statements,
            *self.evidence_for,
            *self.evidence_against,
            *self.warnings,
            *self.next_steps,
        ]


@dataclass
class Advice:
    """The result of one decision-support task.

    ``text`` is the readable answer with citations in square brackets; ``source`` says who
    wrote it (``model`` when the model's text passed the checks, ``extractive`` when it was
    composed from the sources, ``abstain`` when the sources do not support an answer).
    """

    task: Literal["differential", "treat", "summarize", "ask"]
    query: str
    text: str
    items: list[AdviceItem]
    sources: dict[str, Source]
    source: Literal["model", "extractive", "abstain"]
    patient_id: str | None = None
    notice: str = NOTICE
    abstain_reason: str | None = None
    draft: str | None = None
    fallback_reason: str | None = None
    model: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def abstained(self) -> bool:
        """Whether the sources did not support an answer."""
        return self.source == "abstain"

    def citations(self) -> list[str]:
        """Every reference cited by the items' statements, each once, in order."""
        refs = [r for item in self.items for s in item.all_statements() for r in s.citations]
        return list(dict.fromkeys(refs))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``ehrqa cds … --json`` and returned by the API."""
        data = asdict(self)
        data["abstained"] = self.abstained
        data["citations"] = self.citations()
        data["timings"] = {k: round(v * 1000, 2) for k, v in self.timings.items()}
        return data


def cited_refs(text: str) -> list[str]:
    """The references cited in ``text`` (``[doc:x#1]``, ``[Type/id]``), each once, in order."""
    return list(dict.fromkeys(m.group(1) for m in CITATION_RE.finditer(text)))
