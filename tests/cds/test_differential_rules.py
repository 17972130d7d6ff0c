"""The differential's rules: sex- and age-specific exclusions, one side per fact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cds_fakes import NOW, FakeLibrary
from ehrqa.cds.base import Advice, AdviceItem
from ehrqa.cds.differential import differential
from ehrqa.cds.match import content_words
from ehrqa.fhir.normalize import normalize
from ehrqa.knowledge import KnowledgeError, excluded, load_exclusions
from ehrqa.llm.fake import FakeChatModel
from ehrqa.meds.context import PatientContext, context_from_records

# Written as the demo's dysuria and headache pathways are: a diagnosis per heading.
PATHWAY = """# Dysuria and headache pathway
## Differential diagnosis
### Acute cystitis
- Features for: dysuria (pain or burning on passing urine); urinary frequency; urgency
- Features against: fever; flank pain (loin pain); vaginal discharge
- Risk factors: female sex; diabetes mellitus
### Pyelonephritis
- Features for: fever; loin pain (flank pain); rigors; dysuria may or may not be present
- Features against: no fever and no loin pain; symptoms confined to the genitals
### Prostatitis
- Features for: dysuria; fever; perineal pain; difficulty passing urine
- Features against: female sex; no fever or pelvic pain with simple frequency
- Risk factors: male sex
### Vaginitis
- Features for: vaginal discharge; vulval itch; external dysuria; no frequency or urgency
- Features against: urinary frequency and urgency; fever
### Giant cell arteritis
- Features for: new headache over age 50; scalp tenderness; jaw pain on chewing
- Features against: long-standing headache pattern
### Tension-type headache
- Features for: new headache; band-like pressure; scalp tenderness
- Features against: fever
"""


@pytest.fixture
def pathway() -> FakeLibrary:
    return FakeLibrary({"pathway": ("Dysuria and headache pathway", PATHWAY)})


def patient(gender: str | None, born: str) -> PatientContext:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": "p1", "birthDate": born}
    if gender is not None:
        resource["gender"] = gender
    return context_from_records([normalize(resource)], "p1", NOW)


def titles(advice: Advice, kind: str = "diagnosis") -> list[str]:
    return [i.title for i in advice.items if i.kind == kind]


def item(advice: Advice, title: str) -> AdviceItem:
    return next(i for i in advice.items if i.title == title)


# --- exclusions by sex and age ------------------------------------------------------------


def test_a_woman_is_not_offered_prostatitis_and_is_told_why(pathway: FakeLibrary) -> None:
    woman = patient("female", "1960-05-26")
    advice = differential(pathway, woman, "burning when passing urine, fever")
    assert "Prostatitis" not in titles(advice)
    assert titles(advice, "excluded") == ["Prostatitis"]
    reason = item(advice, "Prostatitis").statements[0]
    assert "prostate" in reason.text and "female" in reason.text
    assert reason.citations == ["Patient/p1", "doc:pathway#1"]
    assert item(advice, "Prostatitis").headings["statements"] == "Why it was excluded"
    assert "Excluded for this patient" in advice.text and "Prostatitis" in advice.text
    assert set(advice.citations()) <= set(advice.sources)


def test_a_man_is_offered_prostatitis_and_not_vaginitis(pathway: FakeLibrary) -> None:
    man = patient("male", "1960-05-26")
    advice = differential(pathway, man, "burning when passing urine, vaginal discharge, fever")
    assert "Prostatitis" in titles(advice)
    assert titles(advice, "excluded") == ["Vaginitis"]


@pytest.mark.parametrize("gender", [None, "other", "unknown"])
def test_an_unknown_sex_excludes_nothing(pathway: FakeLibrary, gender: str | None) -> None:
    advice = differential(pathway, patient(gender, "1960-05-26"), "dysuria, fever")
    assert "Prostatitis" in titles(advice) and not titles(advice, "excluded")


def test_without_a_patient_nothing_is_excluded(pathway: FakeLibrary) -> None:
    advice = differential(pathway, None, "dysuria, fever")
    assert "Prostatitis" in titles(advice) and not titles(advice, "excluded")


@pytest.mark.parametrize(
    ("born", "allowed"), [("1985-03-01", False), ("1974-12-31", True), ("1975-01-02", False)]
)
def test_giant_cell_arteritis_needs_age_50(pathway: FakeLibrary, born: str, allowed: bool) -> None:
    # NOW is 2025-01-01: born 1974-12-31 is 50, born 1975-01-02 is 49.
    advice = differential(pathway, patient("female", born), "new headache, scalp tenderness")
    assert ("Giant cell arteritis" in titles(advice)) is allowed
    assert ("Giant cell arteritis" in titles(advice, "excluded")) is not allowed
    assert "Tension-type headache" in titles(advice)


def test_when_every_candidate_is_excluded_it_abstains_and_says_why() -> None:
    only = FakeLibrary({"p": ("Pathway", PATHWAY.split("### Vaginitis")[0])})
    advice = differential(only, patient("female", "1960-05-26"), "perineal pain")
    assert advice.abstained
    assert advice.abstain_reason is not None and "excluded" in advice.abstain_reason
    assert titles(advice, "excluded") == ["Prostatitis"]
    assert "Prostatitis" in advice.text


def test_a_model_text_naming_an_excluded_diagnosis_is_not_shown(pathway: FakeLibrary) -> None:
    woman = patient("female", "1960-05-26")
    reply = "Acute cystitis, pyelonephritis and vaginitis fit [1]. Prostatitis is possible [1]."
    chat = FakeChatModel([reply])
    advice = differential(pathway, woman, "dysuria, urinary frequency", model=chat, mode="hybrid")
    assert advice.source == "extractive"
    assert advice.fallback_reason is not None and "excluded" in advice.fallback_reason
    assert "Prostatitis is possible" not in advice.text


@pytest.mark.parametrize(
    ("name", "sex", "age", "ruled_out"),
    [
        ("Prostatitis", "female", 30, True),
        ("Testicular torsion", "female", 15, True),
        ("Ovarian cyst", "male", 30, True),
        ("Ectopic pregnancy", "male", 30, True),
        ("Ectopic pregnancy", "female", 30, False),
        ("Cervical spondylosis", "male", 60, False),  # the neck, not the cervix
        ("Bronchiolitis", None, 40, True),
        ("Bronchiolitis", None, 1, False),
        ("Febrile convulsion", "male", 7, True),
        ("Polymyalgia rheumatica", "female", 49, True),
        ("Polymyalgia rheumatica", "female", None, False),
        ("Urinary tract infection", "male", 30, False),
    ],
)
def test_exclusion_rules(name: str, sex: str | None, age: int | None, ruled_out: bool) -> None:
    assert (excluded(name, sex, age) is not None) is ruled_out


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[exclusion]]\nname="x"\nterms=["a"]\nsex="woman"\nreason="r"\nsource="s"', "'sex'"),
        ('[[exclusion]]\nname="x"\nterms=["a"]\nreason="r"\nsource="s"', "exclude someone"),
        (
            '[[exclusion]]\nname="x"\nterms=["a"]\nage_min=9\nage_max=2\nreason="r"\nsource="s"',
            "above",
        ),
        ('[[exclusion]]\nname="x"\nterms=["A"]\nsex="male"\nreason="r"\nsource="s"', "lower"),
        ('[[exclusion]]\nname="x"\nterms=["a"]\nsex="male"\nreason="r"', "source"),
        ('[[exclusion]]\nname="x"\nterm=["a"]\nsex="male"\nreason="r"\nsource="s"', "unknown"),
    ],
)
def test_a_malformed_exclusion_file_names_the_problem(
    tmp_path: Path, body: str, message: str
) -> None:
    (tmp_path / "exclusions.toml").write_text(body, encoding="utf-8")
    with pytest.raises(KnowledgeError, match=message):
        load_exclusions(tmp_path)


# --- a fact is listed on one side only -----------------------------------------------------


def _fact(text: str) -> frozenset[str]:
    """The finding a statement is about: its words before the explanation."""
    head = text.split(":")[0].split(",")[0].split(" (")[0].split(" argues")[0]
    return frozenset(content_words(head.removeprefix("no ")))


@pytest.mark.parametrize(
    "symptoms",
    [
        "dysuria, no fever",
        "dysuria, fever",
        "dysuria, urinary frequency, no urgency, no fever",
        "vaginal discharge, urinary frequency, no fever",
        "new headache, no fever, scalp tenderness",
        "dysuria, perineal pain, no loin pain, no fever",
    ],
)
def test_no_fact_is_listed_both_for_and_against(pathway: FakeLibrary, symptoms: str) -> None:
    advice = differential(pathway, None, symptoms)
    diagnoses = [i for i in advice.items if i.kind == "diagnosis"]
    assert len(diagnoses) >= 2
    for diagnosis in diagnoses:
        pros = [_fact(s.text) for s in diagnosis.evidence_for if "risk factor" not in s.text]
        cons = [_fact(s.text) for s in diagnosis.evidence_against]
        assert not set(pros) & set(cons), diagnosis
        assert len(pros) == len(set(pros)) and len(cons) == len(set(cons)), diagnosis


def test_no_fever_counts_only_against_prostatitis(pathway: FakeLibrary) -> None:
    # "fever" is typical of prostatitis and "no fever …" is listed against it: both say
    # that its absence argues against. Before, "no fever" was listed for it as well.
    advice = differential(pathway, None, "perineal pain, no fever")
    prostatitis = item(advice, "Prostatitis")
    assert not any("fever" in s.text for s in prostatitis.evidence_for)
    against = [s.text for s in prostatitis.evidence_against if "fever" in s.text]
    assert len(against) == 1 and against[0].startswith("no fever")


def test_fever_is_not_held_against_pyelonephritis(pathway: FakeLibrary) -> None:
    # The pathway lists "no fever and no loin pain" against it: a patient with fever has
    # the opposite. Before, the negated item matched "fever" and argued against.
    advice = differential(pathway, None, "fever, loin pain")
    pyelo = item(advice, "Pyelonephritis")
    assert not pyelo.evidence_against
    assert [s.text for s in pyelo.evidence_for] == [
        "fever: a typical feature",
        "loin pain: a typical feature",
    ]


def test_an_absent_finding_typically_absent_counts_for(pathway: FakeLibrary) -> None:
    advice = differential(pathway, None, "vaginal discharge, no urgency")
    vaginitis = item(advice, "Vaginitis")
    assert "no urgency: a typical feature" in [s.text for s in vaginitis.evidence_for]
    assert not any("urgency" in s.text for s in vaginitis.evidence_against)


def test_a_present_finding_listed_both_ways_counts_only_for() -> None:
    # A pathway that lists a finding both for and against: a present finding counts for.
    both = "# P\n## Differential diagnosis\n### Odd disease\n- Features for: fever; cough\n"
    both += "- Features against: fever\n"
    advice = differential(FakeLibrary({"p": ("P", both)}), None, "fever, cough")
    odd = item(advice, "Odd disease")
    assert [s.text for s in odd.evidence_for] == [
        "fever: a typical feature",
        "cough: a typical feature",
    ]
    assert not odd.evidence_against
    assert odd.score == 4.0


def test_the_json_keeps_its_keys_and_adds_the_headings(pathway: FakeLibrary) -> None:
    data = differential(pathway, patient("female", "1960-05-26"), "dysuria, fever").to_dict()
    first = data["items"][0]
    assert {"kind", "title", "statements", "evidence_for", "evidence_against"} <= set(first)
    assert first["headings"]["evidence_for"] == "Findings for"
    assert first["headings"]["evidence_against"] == "Findings against"
    assert "What it is" not in str(data)
