"""An in-memory document library and a patient for the decision-support tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ehrqa.cds.match import content_words
from ehrqa.core.errors import NotFoundError

NOW = date(2025, 1, 1)

DYSURIA = """# Dysuria pathway
## Red flags
- Fever with rigors or flank pain suggests pyelonephritis or sepsis
## Differential diagnosis
### Acute cystitis
- Features for: dysuria (pain or burning on passing urine); urinary frequency; urgency; suprapubic pain
- Features against: fever; flank pain (loin pain); vaginal discharge
- Risk factors: female sex; diabetes mellitus; urinary catheter
- Tests: urine dipstick for nitrite; urine culture if recurrent
### Pyelonephritis
- Features for: fever; flank pain (loin pain); dysuria; vomiting
- Features against: no systemic symptoms
- Risk factors: diabetes mellitus; age over 65; kidney stones
- Tests: urine culture; blood cultures if unwell; kidney function
"""
UTI = """# Urinary tract infection protocol
## Treatment
### First line
- **nitrofurantoin** 100 mg modified-release twice daily for 3 days.
- **trimethoprim** 200 mg twice daily for 3 days if nitrofurantoin is unsuitable.
## Cautions and contraindications
- Nitrofurantoin: avoid if eGFR is below 45 mL/min/1.73 m2.
- Trimethoprim: avoid with methotrexate (bone marrow suppression).
- Ciprofloxacin: tendon rupture; use only when other antibiotics are unsuitable.
"""
DOCS = {"dysuria": ("Dysuria pathway", DYSURIA), "uti": ("Urinary tract infection protocol", UTI)}


@dataclass(frozen=True)
class FakeChunk:
    id: str
    doc_id: str
    title: str
    section: str
    text: str
    doc_type: str = "protocol"
    source: str = "memory"
    date: str | None = None

    @property
    def citation(self) -> str:
        return f"[doc:{self.id}]"


@dataclass(frozen=True)
class FakeHit:
    chunk: FakeChunk
    score: float
    ranks: dict[str, int]
    similarity: float | None = None


@dataclass(frozen=True)
class FakeInfo:
    id: str
    title: str
    chunks: int


class FakeLibrary:
    """Chunks at each '## ' section; search ranks by shared content words."""

    def __init__(self, docs: dict[str, tuple[str, str]] = DOCS) -> None:
        self.chunks: dict[str, FakeChunk] = {}
        self.infos: list[FakeInfo] = []
        for doc_id, (title, text) in docs.items():
            parts = ["## " + p for p in text.split("\n## ")[1:]]
            for n, part in enumerate(parts, 1):
                section = part.splitlines()[0].lstrip("# ").strip()
                self.chunks[f"{doc_id}#{n}"] = FakeChunk(
                    f"{doc_id}#{n}", doc_id, title, section, part
                )
            self.infos.append(FakeInfo(doc_id, title, len(parts)))

    def search(self, query: str, *, k: int = 5, **_: Any) -> list[FakeHit]:
        words = content_words(query)
        scored = sorted(
            ((len(words & content_words(c.text)), c) for c in self.chunks.values()),
            key=lambda pair: -pair[0],
        )
        return [FakeHit(c, float(s), {"bm25": i}) for i, (s, c) in enumerate(scored[:k], 1) if s]

    def chunk(self, chunk_id: str) -> FakeChunk:
        if chunk_id not in self.chunks:
            raise NotFoundError(chunk_id)
        return self.chunks[chunk_id]

    def documents(self) -> Sequence[FakeInfo]:
        return self.infos


def _coded(code: str, display: str, system: str = "http://snomed.info/sct") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def ckd_resources() -> list[dict[str, Any]]:
    """A 60-year-old woman with diabetes and CKD, on methotrexate, allergic to penicillin."""
    subject = {"reference": "Patient/p1"}
    active = {"coding": [{"code": "active"}]}
    return [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1964-06-01"},
        {
            "resourceType": "Condition",
            "id": "dm",
            "subject": subject,
            "clinicalStatus": active,
            "code": _coded("44054006", "Diabetes mellitus type 2 (disorder)"),
            "onsetDateTime": "2010-03-01",
        },
        {
            "resourceType": "Condition",
            "id": "job",
            "subject": subject,
            "clinicalStatus": active,
            "code": _coded("160903007", "Full-time employment (finding)"),
            "onsetDateTime": "2010-03-01",
        },
        {
            "resourceType": "MedicationRequest",
            "id": "mtx",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "authoredOn": "2024-02-01",
            "medicationCodeableConcept": _coded(
                "105586",
                "Methotrexate 2.5 MG Oral Tablet",
                "http://www.nlm.nih.gov/research/umls/rxnorm",
            ),
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "pen",
            "patient": subject,
            "clinicalStatus": active,
            "code": _coded("7980", "Penicillin V", "http://www.nlm.nih.gov/research/umls/rxnorm"),
        },
        {
            "resourceType": "Observation",
            "id": "egfr",
            "status": "final",
            "subject": subject,
            "category": [{"coding": [{"code": "laboratory"}]}],
            "code": _coded(
                "33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "http://loinc.org"
            ),
            "effectiveDateTime": "2024-11-02",
            "valueQuantity": {"value": 38, "unit": "mL/min/{1.73_m2}"},
        },
    ]
