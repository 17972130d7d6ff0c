"""Follow-up questions: "Is it getting better?" after "What was my last HbA1c?".

A follow-up names no clinical concept and no kind of record of its own; it borrows them
from the conversation's most recent question that had some. Resolution rewrites the
question with the borrowed concepts in brackets ("Is it getting better? (about: hba1c)"),
so every later stage (selection, judgements, the answer) sees one self-contained question
and the reader can see what was understood. A question with concepts of its own that
opens like a continuation ("And my cholesterol?", "What about the LDL?") keeps its
concepts and borrows the previous question's order ("latest", "first") when it has none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from ehrqa.select.query import QueryPlan, analyze

_CONTINUATION_RE = re.compile(r"^\W*(?:and|what\s+about|how\s+about|also|same\s+for)\b", re.I)
_ORDER_WORDS = {"latest": "latest", "earliest": "first"}


def _has_subject(plan: QueryPlan) -> bool:
    return bool(plan.concepts) or bool(plan.resource_types and plan.resource_types != ("Patient",))


def resolve_followup(question: str, previous: Sequence[str], now: date) -> str:
    """``question`` made self-contained with the subject of the latest earlier question.

    ``previous`` holds the conversation's earlier questions, oldest first (as resolved
    before, so a chain of follow-ups keeps its subject). Returns ``question`` unchanged
    when it has a subject of its own or nothing earlier has one.
    """
    if not previous:
        return question
    plan = analyze(question, now)
    earlier = next(
        (p for p in (analyze(q, now) for q in reversed(previous)) if _has_subject(p)), None
    )
    if earlier is None:
        return question
    if _has_subject(plan):
        order = _ORDER_WORDS.get(earlier.order)
        if _CONTINUATION_RE.match(question) and plan.order == "all" and order:
            return f"{question} ({order})"
        return question
    about = [c.name for c in earlier.concepts] or [
        t for t in earlier.resource_types if t != "Patient"
    ]
    return f"{question} (about: {' and '.join(about)})"
