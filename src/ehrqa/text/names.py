"""How an answer names a coded thing: the record's display, without terminology clutter.

SNOMED CT displays end in a semantic tag ("Hypertension (disorder)", "Encounter for check up
(procedure)") that says which hierarchy the concept sits in, not what it is; LOINC displays
may carry zero-width spaces ("Glomerular filtration rate/\u200b1.73 sq M.predicted"). A
reader sees neither. Parentheses that are part of the name ("Dander (animal) allergy") stay.
"""

from __future__ import annotations

import re

# The SNOMED CT semantic tags (top-level hierarchies and their common subtags).
_SEMANTIC_TAG_RE = re.compile(
    r"\s*\((?:disorder|finding|procedure|situation|morphologic abnormality|regime/therapy"
    r"|observable entity|qualifier value|substance|product|medicinal product|event|person"
    r"|body structure|physical object|record artifact|environment|specimen|organism"
    r"|clinical drug|navigational concept|assessment scale|social concept)\)\s*$",
    re.IGNORECASE,
)
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def plain_name(display: str) -> str:
    """``display`` as a reader should see it: no semantic tag, no invisible characters."""
    return _SEMANTIC_TAG_RE.sub("", _INVISIBLE_RE.sub("", display)).strip() or display.strip()
