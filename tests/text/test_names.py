"""Names as a reader sees them: no SNOMED semantic tags, no invisible characters."""

from __future__ import annotations

import pytest

from ehrqa.text.names import plain_name


@pytest.mark.parametrize(
    ("display", "shown"),
    [
        ("Hypertension (disorder)", "Hypertension"),
        ("Encounter for check up (procedure)", "Encounter for check up"),
        ("History of cardiac arrest (situation)", "History of cardiac arrest"),
        ("Full-time employment (finding)", "Full-time employment"),
        (
            "Glomerular filtration rate/\u200b1.73 sq M.predicted",
            "Glomerular filtration rate/1.73 sq M.predicted",
        ),
        # Parentheses that are part of the name stay.
        ("Dander (animal) allergy", "Dander (animal) allergy"),
        ("Td (adult) preservative free", "Td (adult) preservative free"),
        ("Hypertension", "Hypertension"),
        ("(disorder)", "(disorder)"),
    ],
)
def test_plain_name(display: str, shown: str) -> None:
    assert plain_name(display) == shown
