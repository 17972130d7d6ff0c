"""Citations as answers write them: ``[Observation/abc]``, ``[Observation/abc, Condition/d]``
and prompt aliases ``[3]``.

Shared by the answer checks (:mod:`ehrqa.answer.verify`), decision support and the
evaluation metrics, which strip citations before comparing answers.
"""

from __future__ import annotations

import re

try:
    from fhirkit import RESOURCE_TYPES as _FHIR_TYPES
except ImportError:  # pragma: no cover - fhirkit-rs is a core dependency
    _FHIR_TYPES = []
# Bracketed text is a citation only when it names a FHIR resource type: "[mm/Hg]" is a unit.
FHIR_TYPES = frozenset(_FHIR_TYPES) | {"Observation", "Condition", "Patient", "Encounter"}

REF = r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}"
ALIAS = r"\d{1,3}"
# "[Observation/abc]", "[Observation/abc, Condition/def]", and prompt aliases "[3]" / "[3, 4]".
CITATION_RE = re.compile(rf"\[\s*((?:{REF}|{ALIAS})(?:\s*[,;]\s*(?:{REF}|{ALIAS}))*)\s*\]")


def citation_parts(inside: str) -> list[str]:
    """The references or aliases one citation names: its bracket's inside, a
    ``CITATION_RE`` group ("Observation/a, Condition/b" → two)."""
    return re.split(r"\s*[,;]\s*", inside.strip())
