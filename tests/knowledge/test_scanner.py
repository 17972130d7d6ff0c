"""The phrase scanner's reading of misspelt words."""

from __future__ import annotations

import pytest

from ehrqa.knowledge.scanner import default_index, scan


@pytest.mark.parametrize(
    ("text", "concept"),
    [
        ("is my cholestrol ok", "total cholesterol"),
        ("were his trigylcerides ok in the end", "triglycerides"),
        ("does she have diabetis", "diabetes"),
        ("what did the colonscopy find", "colonoscopy"),
        ("Is my blood presure ok?", "blood pressure"),
    ],
)
def test_a_misspelt_word_is_read_as_the_known_word_it_is_closest_to(
    text: str, concept: str
) -> None:
    assert concept in [c.name for m in scan(text) for c in m.concepts]


def test_english_words_are_never_read_as_misspellings() -> None:
    index = default_index()
    assert index.spelled("should") == "should"  # not "shoulder"
    assert index.spelled("cholestrol") == "cholesterol"
    assert index.spelled("zzzzzzz") == "zzzzzzz"  # nothing close enough
