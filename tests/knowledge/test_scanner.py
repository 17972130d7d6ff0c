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


def _named(text: str) -> list[str]:
    return [c.name for m in scan(text) for c in m.concepts]


# Families of everyday words for one concept: lay, clinical shorthand, British and American.
FAMILIES = {
    "intrauterine device": [
        "how many times have I had a coil fitted",
        "when was my IUD removed",
        "did she have an IUCD put in",
        "is it a copper coil",
        "when was her coil changed",
        "date of the IUD insertion",
        "has she had the coil taken out",
    ],
    "contraceptive implant": [
        "when was her birth control implant put in",
        "when was her implant removed",
        "the rod in my arm",
    ],
    "body height": [
        "How long is he now",
        "how long is the baby now",
        "how long was she at birth",
        "what was her length at birth",
        "his length",
        "how tall is she",
        "height",
    ],
    "total cholesterol": ["Chol trend", "total chol last year", "what was my TC", "chol level"],
    "cough and cold medicine": [
        "what was the cough syrup in november for",
        "was he given cough medicine",
        "any cold medicine",
        "a cough mixture",
        "cough linctus",
        "was she prescribed a decongestant",
    ],
    "drug rehabilitation": [
        "how many times was he in rehab for drugs",
        "was she ever in detox",
        "drug rehab",
        "rehab for alcohol",
        "substance abuse treatment",
    ],
    "checkup": [
        "How many well baby visits so far?",
        "well child check",
        "baby check",
        "kids checkup",
        "annual physical",
        "wellness check",
    ],
    "hearing test": [
        "did she have her hearing checked",
        "newborn hearing screen",
        "audiology",
        "has he had a hearing test",
    ],
    "apgar score": ["what was his apgar score", "apgars", "5 minute apgar"],
    "urine drug screen": [
        "what was my last urine drug screen",
        "tox screen",
        "was he drug tested",
        "UDS result",
    ],
    "cause of death": [
        "what did she pass away from",
        "what did he die of",
        "cause of death",
        "what killed him",
        "how did she die",
        "what was on the death certificate",
    ],
    "head ct": ["has he had a head CT", "CT of the head", "cat scan of his head"],
    "brain mri": ["MRI of the brain", "brain MRI", "mri head"],
    "eye exam": ["did he have his eyes checked", "vision screening", "diabetic eye exam"],
    "urea nitrogen": ["bun"],
    "potassium": ["k level", "serum K"],
    "sodium": ["na level", "serum Na"],
    "creatinine": ["cr level", "creat"],
    "triglycerides": ["tg", "trigs"],
    "glucose": ["fbs", "random blood sugar"],
    "alcoholism": ["alcohol addiction", "drinking problem"],
}


@pytest.mark.parametrize(
    ("concept", "text"),
    [(concept, text) for concept, texts in FAMILIES.items() for text in texts],
)
def test_a_family_of_words_names_its_concept(concept: str, text: str) -> None:
    assert concept in _named(text)


@pytest.mark.parametrize(
    ("text", "concepts"),
    [
        ("What did my brain scan show?", ["head ct", "brain mri"]),
        ("scan of his head", ["head ct", "brain mri"]),
        (
            "was he ever in rehab",
            [
                "drug rehabilitation",
                "pulmonary rehabilitation",
                "physical therapy",
                "rehabilitation therapy",
            ],
        ),
        ("is my baby growing well", ["body height", "body weight", "head circumference"]),
        ("lytes", ["sodium", "potassium", "chloride", "carbon dioxide"]),
        ("U&Es", ["urea nitrogen", "creatinine", "sodium", "potassium"]),
    ],
)
def test_a_group_phrase_names_every_concept_of_its_group(text: str, concepts: list[str]) -> None:
    assert _named(text) == concepts


# Near words that must not be read as the new phrases: a duration is not a length, two letters
# of an ordinary word are not a lab, a painkiller with codeine is not a cough medicine.
@pytest.mark.parametrize(
    ("text", "not_named"),
    [
        ("how long have I had diabetes", "body height"),
        ("how long is she on antibiotics for", "body height"),
        ("what was his length of stay", "body height"),
        ("what about the growth on his lung", "body height"),
        ("can I take it with food, are you sure it is ok", "potassium"),
        ("is vitamin K in my record", "potassium"),
        ("N/A", "sodium"),
        ("Na", "sodium"),
        ("K", "potassium"),
        ("Cr", "creatinine"),
        ("what drug treatment did I get for my migraine", "drug rehabilitation"),
        ("knee rehab after the replacement", "drug rehabilitation"),
        ("stroke rehab", "drug rehabilitation"),
        ("has he had a head CT", "brain mri"),
        ("did she get the whooping cough shot", "cough and cold medicine"),
        ("drug screening score", "urine drug screen"),
        ("alcohol addiction", "drug misuse"),
        ("is she on the pill", "intrauterine device"),
    ],
)
def test_a_near_word_does_not_name_the_concept(text: str, not_named: str) -> None:
    assert not_named not in _named(text)


def test_a_two_letter_lab_is_named_only_with_its_word() -> None:
    # "k", "na", "cr" alone are left out of the files; "k level", "serum na" name the lab.
    index = default_index()
    for bare in ("k", "na", "cr"):
        assert bare not in index
    assert "k level" in index and "serum na" in index and "cr level" in index


def test_an_acronym_used_as_a_verb_is_written_out() -> None:
    from ehrqa.knowledge.scanner import words

    # "have I ever OD'd" read "odd" and found nothing over a recorded drug overdose.
    assert words("have I ever OD'd") == ["have", "i", "ever", "oded"]
    assert words("He OD’ed twice") == ["he", "oded", "twice"]
    assert words("anything odd? Alzheimer's") == ["anything", "odd", "alzheimers"]
