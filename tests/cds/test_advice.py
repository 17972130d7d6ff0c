"""Differential diagnosis, treatment suggestions, free questions and checked narration."""

from __future__ import annotations

import pytest

from cds_fakes import FakeLibrary
from ehrqa.cds.ask import ask
from ehrqa.cds.base import Advice, cited_refs
from ehrqa.cds.differential import differential
from ehrqa.cds.narrate import check_narrative, narrate
from ehrqa.cds.treat import treat
from ehrqa.core.errors import ConfigError
from ehrqa.llm.fake import FakeChatModel
from ehrqa.meds.context import PatientContext


def assert_grounded(advice: Advice) -> None:
    """Every statement cites something, and every citation has its source."""
    for item in advice.items:
        for statement in item.all_statements():
            assert statement.citations, statement
    assert set(advice.citations()) <= set(advice.sources)
    assert set(cited_refs(advice.text)) <= set(advice.sources)


def test_differential_ranks_by_symptoms_and_cites_history(
    library: FakeLibrary, ckd_context: PatientContext
) -> None:
    advice = differential(library, ckd_context, "burning when passing urine, frequency, no fever")
    assert [i.title for i in advice.items] == ["Acute cystitis", "Pyelonephritis"]
    cystitis, pyelo = advice.items
    assert cystitis.score is not None and pyelo.score is not None
    assert cystitis.score > pyelo.score
    # The pathway's gloss of "dysuria" lets the lay phrase match pyelonephritis too.
    assert any("burning when passing urine" in s.text for s in pyelo.evidence_for)
    assert any("no fever" in s.text for s in pyelo.evidence_against)
    history = [s for s in cystitis.evidence_for if "Condition/dm" in s.citations]
    assert history and "Diabetes mellitus type 2" in history[0].text
    assert not any("employment" in s.text.lower() for s in cystitis.evidence_for)
    assert cystitis.next_steps
    # The pathway's tests name kidney function: the patient's eGFR is shown, cited.
    assert not any("recent result" in s.text for s in cystitis.statements)
    recent = [s for s in pyelo.statements if s.text.startswith("recent result")]
    assert [s.citations for s in recent] == [["Observation/egfr"]]
    assert "38" in recent[0].text
    assert_grounded(advice)
    assert advice.source == "extractive" and "not a diagnosis" in advice.notice


def test_differential_puts_matching_red_flags_first(library: FakeLibrary) -> None:
    advice = differential(library, None, "fever, flank pain")
    assert advice.items[0].title == "Pyelonephritis"
    assert advice.items[0].warnings[0].text.startswith("Red flag:")
    assert advice.text.splitlines()[1].startswith("Red flag:")
    assert_grounded(advice)


@pytest.mark.parametrize("symptoms", ["itchy rash on both elbows", "hair loss"])
def test_differential_abstains_when_no_pathway_lists_the_symptoms(
    library: FakeLibrary, symptoms: str
) -> None:
    advice = differential(library, None, symptoms, model=FakeChatModel())  # never called
    assert advice.abstained and advice.items == [] and advice.abstain_reason


@pytest.mark.parametrize("symptoms", ["", " , ;", "and"])
def test_differential_needs_symptoms(library: FakeLibrary, symptoms: str) -> None:
    with pytest.raises(ConfigError, match="no symptoms"):
        differential(library, None, symptoms)


def test_treat_lists_protocol_options_with_patient_specific_warnings(
    library: FakeLibrary, ckd_context: PatientContext
) -> None:
    advice = treat(library, ckd_context, "urinary tract infection")
    options = [i for i in advice.items if i.kind == "treatment"]
    assert [i.title for i in options] == ["First line: nitrofurantoin", "First line: trimethoprim"]
    nitro, trim = options
    assert any("Observation/egfr" in w.citations for w in nitro.warnings), nitro.warnings
    assert any("MedicationRequest/mtx" in w.citations for w in trim.warnings), trim.warnings
    assert any(s.text.startswith("Caution: Nitrofurantoin") for s in nitro.statements)
    assert not any("methotrexate" in s.text for s in nitro.statements)
    # A caution is about its lead ("Ciprofloxacin: … other antibiotics …"), not every
    # antibiotic it mentions.
    assert not any("Ciprofloxacin" in s.text for item in options for s in item.statements)
    patient = advice.items[0]
    assert any("Observation/egfr" in s.citations for s in patient.statements)
    assert_grounded(advice)


def test_treat_abstains_without_a_protocol(
    library: FakeLibrary, ckd_context: PatientContext
) -> None:
    advice = treat(library, ckd_context, "gout")
    assert advice.abstained and "gout" in advice.text


def test_ask_answers_from_the_best_sentence_and_abstains_off_corpus(library: FakeLibrary) -> None:
    advice = ask(library, "What eGFR means nitrofurantoin should be avoided?")
    assert "below 45" in advice.text and advice.citations() == ["doc:uti#2"]
    assert_grounded(advice)
    assert ask(library, "colchicine dose for a gout flare").abstained


def test_narrate_keeps_a_checked_model_text(library: FakeLibrary) -> None:
    extractive = ask(library, "What eGFR means nitrofurantoin should be avoided?")
    model = FakeChatModel(replies=["Avoid nitrofurantoin when eGFR is below 45 [1]."])
    advice = narrate(extractive, model, mode="hybrid", instruction="Answer.")
    assert advice.source == "model" and advice.fallback_reason is None
    assert advice.text == "Avoid nitrofurantoin when eGFR is below 45 [doc:uti#2]."
    assert advice.draft is not None and advice.items == extractive.items


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("Avoid nitrofurantoin when eGFR is below 30 [1].", "not in the cited sources: 30"),
        ("Avoid nitrofurantoin [7].", "not given: 7"),
        ("Avoid nitrofurantoin in kidney disease.", "cites no source"),
        ("Avoid it when eGFR is below 45 [1].", "leaves out: nitrofurantoin"),
    ],
)
def test_narrate_falls_back_when_the_model_text_fails_a_check(
    library: FakeLibrary, reply: str, reason: str
) -> None:
    extractive = ask(library, "What eGFR means nitrofurantoin should be avoided?")
    hybrid = narrate(
        extractive,
        FakeChatModel(replies=[reply]),
        mode="hybrid",
        instruction="Answer.",
        required=["nitrofurantoin"],
    )
    assert hybrid.source == "extractive" and hybrid.text == extractive.text
    assert hybrid.fallback_reason is not None and reason in hybrid.fallback_reason
    assert hybrid.draft == reply
    shown = narrate(
        extractive,
        FakeChatModel(replies=[reply]),
        mode="model",
        instruction="Answer.",
        required=["nitrofurantoin"],
    )
    assert shown.source == "model" and shown.fallback_reason == hybrid.fallback_reason


def test_narrate_never_calls_the_model_for_abstentions_or_extractive(library: FakeLibrary) -> None:
    abstained = ask(library, "colchicine dose for a gout flare")
    assert narrate(abstained, FakeChatModel(), mode="hybrid", instruction="x") is abstained
    answered = ask(library, "What eGFR means nitrofurantoin should be avoided?")
    assert narrate(answered, None, mode="extractive", instruction="x") is answered
    with pytest.raises(ConfigError, match="needs a model"):
        narrate(answered, None, mode="hybrid", instruction="x")
    with pytest.raises(ConfigError, match="unknown"):
        narrate(answered, None, mode="fancy", instruction="x")


def test_check_narrative_maps_aliases_to_references(library: FakeLibrary) -> None:
    advice = ask(library, "What eGFR means nitrofurantoin should be avoided?")
    text, failure = check_narrative("Below 45 [1].", {"1": "doc:uti#2"}, advice.sources)
    assert (text, failure) == ("Below 45 [doc:uti#2].", None)


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("Creatinine [Mass/volume] in Serum 1.2 [Observation/abc-1].", ["Observation/abc-1"]),
        ("See [doc:dysuria#3] and [file:note.txt#2].", ["doc:dysuria#3", "file:note.txt#2"]),
        ("Units [Moles/volume], [mm/Hg] and [Foo/bar] cite nothing.", []),
        ("Twice [Condition/dm] [Condition/dm].", ["Condition/dm"]),
    ],
)
def test_cited_refs_are_resources_chunks_and_paragraphs_only(text: str, refs: list[str]) -> None:
    assert cited_refs(text) == refs
