"""Follow-up questions borrow the subject of the conversation's earlier questions."""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path

import pytest

from ehrqa.conversation import FileConversations, MemoryConversations
from ehrqa.core.errors import ConfigError
from ehrqa.select.followup import (
    about_the_reason,
    condition_summary_parts,
    resolve_followup,
    split_parts,
)
from ehrqa.select.query import analyze

NOW = date(2025, 1, 1)


@pytest.mark.parametrize(
    ("question", "previous", "resolved"),
    [
        ("Is it getting better?", ["What was my last HbA1c?"], "Is it getting better? (about: hba1c)"),
        ("When was that?", ["Have I ever broken a bone?"], "When was that? (about: fracture)"),
        # a chain of follow-ups keeps the subject; a question with its own subject keeps it
        ("Is it normal?", ["What was my last HbA1c?", "Is it getting better? (about: hba1c)"],
         "Is it normal? (about: hba1c)"),
        ("What was my last LDL?", ["What was my last HbA1c?"], "What was my last LDL?"),
        ("Is it getting better?", [], "Is it getting better?"),
        # a group phrase is repeated as said, so its lead measure still answers for it
        ("was it getting worse towards the end?", ["what was his kidney function last time"],
         "was it getting worse towards the end? (about: kidney function)"),
        # a new subject asked the earlier way: its trend and window; a time of its own stays
        ("and renal function over the same period?", ["A1c trend, last 5 years"],
         "and renal function over the same period? (trend, last 5 years)"),
        ("and how long is she now?", ["Is she putting on weight ok since she was born?"],
         "and how long is she now?"),
        ("Is it getting better?", ["Hello there"], "Is it getting better?"),
    ],
)  # fmt: skip
def test_follow_ups_are_resolved(question: str, previous: list[str], resolved: str) -> None:
    assert resolve_followup(question, previous, NOW) == resolved


def test_a_resolved_follow_up_is_understood_as_a_trend_of_the_borrowed_concept() -> None:
    plan = analyze(resolve_followup("Is it getting better?", ["My last HbA1c?"], NOW), NOW)
    assert [c.name for c in plan.concepts] == ["hba1c"] and plan.intent == "trend"


def test_file_conversations_are_private_and_bounded(tmp_path: Path) -> None:
    turns = FileConversations(tmp_path / "conversations")
    assert turns.history("p1", "c1") == []
    for i in range(25):
        turns.add("p1", "c1", f"question {i}")
    history = turns.history("p1", "c1")
    assert len(history) == 20 and history[-1] == "question 24"
    assert turns.history("p2", "c1") == []  # per patient
    [path] = (tmp_path / "conversations").iterdir()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "x" * 65, "..", "a b"])
def test_conversation_ids_are_checked(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="conversation id"):
        FileConversations(tmp_path).history("p", bad)
    with pytest.raises(ConfigError, match="conversation id"):
        MemoryConversations().add("p", bad, "q")


def test_a_corrupt_conversation_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "p--c.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="delete it"):
        FileConversations(tmp_path).history("p", "c")


def test_memory_conversations_forget_the_least_recent() -> None:
    turns = MemoryConversations(limit=2)
    for name in ("a", "b", "c"):
        turns.add("p", name, f"q-{name}")
    assert turns.history("p", "a") == [] and turns.history("p", "c") == ["q-c"]


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        # one subject asked two ways stays one question (the control judgement answers it)
        ("Do I have diabetes and how well is it controlled?",
         ["Do I have diabetes and how well is it controlled?"]),
        ("When was my LDL first checked, and what was it?",
         ["When was my LDL first checked, and what was it?"]),
        ("Am I anemic? What was my last hemoglobin?", ["Am I anemic?", "What was my last hemoglobin?"]),
        ("Do I have osteoporosis and what medicines am I taking for it?",
         ["Do I have osteoporosis", "what medicines am I taking for it? (about: osteoporosis)"]),
        # one subject of two concepts, and one question: not divided
        ("Do I have diabetes and high blood pressure?", ["Do I have diabetes and high blood pressure?"]),
        ("What was my last HbA1c?", ["What was my last HbA1c?"]),
        # another number about the same subject is its own part
        ("How old was she when they diagnosed the Alzheimer's, and how long did she live with it?",
         ["How old was she when they diagnosed the Alzheimer's",
          "how long did she live with it? (about: dementia)"]),
        ("am I still on the statin, and whats my LDL now",
         ["am I still on the statin", "whats my LDL now"]),
        # a bare "how old was she" after an event is her age then
        ("when did she have the stroke and how old was she?",
         ["when did she have the stroke", "how old was she when it happened? (about: stroke)"]),
        # the patient's death is a part of its own, borrowing nothing
        ("how old was he when they found the alzheimers, and when did he die",
         ["how old was he when they found the alzheimers", "when did he die"]),
        # how a subject changed is a part of its own
        # ("has he grown" names the height itself: the part needs no borrowed subject)
        ("how tall is he now and has he grown much in the last 2 years?",
         ["how tall is he now", "has he grown much in the last 2 years?"]),
        # a statement after the question says where to look; one before it may date it
        ("what's my blood type? they tested it at my first prenatal visit",
         ["what's my blood type?"]),
        ("I had a baby in 2019. What was my weight after?",
         ["I had a baby in 2019.", "What was my weight after?"]),
    ],
)  # fmt: skip
def test_questions_of_several_parts_are_divided(question: str, parts: list[str]) -> None:
    assert split_parts(question, NOW) == parts


def test_a_bare_age_after_a_question_about_the_death_is_the_age_at_death() -> None:
    # It borrowed "cause of death" and answered with the cause's record instead of the age.
    for earlier in ("what was the cause of my dad's death", "how did my mother die"):
        assert resolve_followup("and how old was he?", [earlier], NOW) == "and how old was he?"
    assert resolve_followup("how old was she", ["when was her stroke"], NOW) != "how old was she"


def test_generic_words_name_no_subject_of_their_own() -> None:
    # "How many doses so far" after the shingles vaccine answered "no information".
    asked = resolve_followup("how many doses so far", ["has pierre had the shingles vaccine"], NOW)
    assert asked.endswith("(about: zoster vaccine)")


def test_a_bare_age_after_a_death_part_is_the_age_at_death() -> None:
    # "what did my brother die of and how old was he" computed his age at the cause-of-death
    # record's date, a week after the death.
    assert split_parts("what did my brother die of and how old was he", NOW)[1] == "how old was he"


def test_the_cause_after_a_death_part_is_the_cause_of_death() -> None:
    # "when did he pass and what was the cause" answered "no information".
    assert split_parts("when did he pass and what was the cause", NOW) == [
        "when did he pass",
        "what was the cause of death",
    ]


@pytest.mark.parametrize(
    "question",
    [
        "what's the blood pressure pill for and is it working?",
        "why does she take famotidine and is it helping?",
    ],
)
def test_is_it_working_after_a_medicine_is_a_part_of_its_own(question: str) -> None:
    # The second facet was ignored: the medicine's reason alone was answered.
    parts = split_parts(question, date(2020, 1, 1))
    assert len(parts) == 2 and parts[1].startswith(("is it working", "is it helping"))


@pytest.mark.parametrize(
    ("question", "previous", "resolved"),
    [
        # names said together, or a name with unknown words beside it, are repeated as said
        ("any of those in the last five years?",
         ["How many times has she been through inpatient detox?"],
         "any of those in the last five years? (about: inpatient detox)"),
        ("how many sessions has she had so far?", ["is my sister on dialysis?"],
         "how many sessions has she had so far? (about: dialysis)"),
        ("how old was she then?", ["When did she have open-heart surgery?"],
         "how old was she then? (about: bypass surgery)"),
        # one that names its kind borrows what was said, not the class that stood in for it
        ("when were they first diagnosed?", ["What is she taking for her migraines?"],
         "when were they first diagnosed? (about: migraine)"),
    ],
)  # fmt: skip
def test_a_follow_up_repeats_a_phrase_as_it_was_said(
    question: str, previous: list[str], resolved: str
) -> None:
    assert resolve_followup(question, previous, NOW) == resolved


def test_a_why_answer_is_remembered_and_a_condition_follow_up_means_it() -> None:
    # "What's the topiramate for?" → "how long has he had that": the migraine the answer
    # named (it answered how long he had had the topiramate).
    from ehrqa.fhir.record import Coding, Record
    from ehrqa.select.base import Selected, Selection
    from ehrqa.select.followup import remembered

    migraine = Record(
        "Condition/m", "Condition", "m", "p", "[Condition/m] 2015-07-06 Migraine (disorder)",
        date="2015-07-06", codes=(Coding("http://snomed.info/sct", "37796009", "Migraine"),),
    )  # fmt: skip
    question = "What's the topiramate for?"
    selection = Selection(
        analyze(question, NOW), [Selected(migraine, 1.0, ("reason for MedicationRequest/t",))]
    )
    kept = remembered(question, selection)
    assert kept == "What's the topiramate for? (answer: migraine)"
    assert remembered(question, Selection(analyze(question, NOW), [])) == question
    assert resolve_followup("how long has he had that", [kept], NOW) == (
        "how long has he had that (about: migraine)"
    )
    assert resolve_followup("is it working?", [kept], NOW) == "is it working? (about: topiramate)"


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        # what is said before a dash is context when the question has a subject of its own
        ("he's on topiramate - any seizure history?", ["any seizure history?"]),
        ("Chart says diabetic kidney disease - what's her A1c?", ["what's her A1c?"]),
        ("My mom has diabetes - is it hereditary?", ["My mom has diabetes - is it hereditary?"]),
        # a resolved follow-up is one question, its borrowed subject with it
        ("has it come down at all since she started the HCTZ? (about: blood pressure)",
         ["has it come down at all since she started the HCTZ? (about: blood pressure)"]),
    ],
)  # fmt: skip
def test_a_statement_before_a_dash_is_context(question: str, parts: list[str]) -> None:
    assert split_parts(question, NOW) == parts


def test_it_since_a_medicine_started_is_the_earlier_subject() -> None:
    from ehrqa.select.query import started_anchor

    resolved = resolve_followup(
        "has it come down at all since she started the HCTZ?",
        ["Is her blood pressure at goal?"],
        NOW,
    )
    assert resolved.startswith("has it come down at all since she started the HCTZ? (about: ")
    anchor = started_anchor(resolved)
    assert anchor is not None and [c.name for c in anchor.measures] == ["blood pressure"]
    assert [c.name for c in anchor.events] == ["hydrochlorothiazide"]


def test_a_summary_of_one_condition_is_asked_in_parts() -> None:
    # "Summarize his diabetes" answered "Found: Diabetes": its onset, control and medicines.
    assert condition_summary_parts("summarize his diabetes", NOW) == [
        "when was the patient first diagnosed with diabetes?",
        "is the patient's diabetes under control?",
        "what medicines is the patient taking for diabetes?",
    ]
    # No measure follows it in the knowledge files: no control part.
    parts = condition_summary_parts("can you tell me a bit about her migraines", NOW)
    assert parts is not None and len(parts) == 2 and "migraine" in parts[0]
    # Not one condition: the question as asked.
    assert condition_summary_parts("summarize her medications", NOW) is None
    assert condition_summary_parts("tell me about her allergies", NOW) is None
    assert condition_summary_parts("does she have diabetes?", NOW) is None


def test_a_part_asked_of_a_condition_after_why_is_about_the_reason() -> None:
    from ehrqa.fhir.record import Coding, Record
    from ehrqa.select.base import Selected, Selection

    question = "why is he on metformin and is it controlled?"
    first, second = split_parts(question, NOW)
    assert first == "why is he on metformin" and second.endswith("(about: metformin)")
    diabetes = Record(
        "Condition/d", "Condition", "d", "p", "[Condition/d] 2019-03-05 Diabetes",
        date="2019-03-05", codes=(Coding("http://snomed.info/sct", "44054006", "Diabetes"),),
    )  # fmt: skip
    why = Selection(analyze(first, NOW), [Selected(diabetes, 1.0, ("reason for order",))])
    assert about_the_reason(second, first, why) == "is it controlled? (about: diabetes)"
    # "how long has he had that?" after it: the diabetes, not the medicine.
    later = "how long has he had that? (about: metformin)"
    assert about_the_reason(later, first, why) == "how long has he had that? (about: diabetes)"
    # No reason in the answer, or a part that asks of the medicine: as borrowed.
    assert about_the_reason(second, first, Selection(why.plan, [])) == second
    dose = "what dose is it? (about: metformin)"
    assert about_the_reason(dose, first, why) == dose
    # Without a "why" before it, a part asked of a condition borrows no reason.
    assert len(split_parts("is he on metformin and is it controlled?", NOW)) == 1


def test_a_dash_context_narrows_a_group_to_what_it_names() -> None:
    # "so the prostate biopsy - was it cancer?" answered "Yes" over his lung cancer.
    assert split_parts("so the prostate biopsy - was it cancer?", NOW) == [
        "was it cancer? (about: prostate cancer)"
    ]
    assert split_parts("he's on topiramate - any seizure history?", NOW) == ["any seizure history?"]


def test_what_a_test_found_is_kept_through_a_chain_of_follow_ups() -> None:
    from ehrqa.fhir.record import Coding, Record
    from ehrqa.select.base import Selected, Selection
    from ehrqa.select.followup import remembered

    asked = "what did the needle biopsy of his lung show?"
    cancer = Record(
        "Condition/c", "Condition", "c", "p", "[Condition/c] 2009-11-10 Non-small cell lung cancer",
        date="2009-11-10", codes=(Coding("http://snomed.info/sct", "254637007", "Non-small cell lung cancer"),),
    )  # fmt: skip
    found = Selection(analyze(asked, NOW), [Selected(cancer, 1.0, ("same visit as Procedure/b",))])
    kept = remembered(asked, found)
    assert kept == f"{asked} (answer: lung cancer)"
    # Not asked what it found: a visit's other records are not its answer.
    assert remembered("when was his biopsy?", found) == "when was his biopsy?"
    then = resolve_followup("how old was he then", [kept], NOW)
    assert then == "how old was he then (about: biopsy)"
    # Two turns on, "it" asked of a condition is still what the biopsy found.
    later = resolve_followup("how many rounds of treatment did he have for it?", [kept, then], NOW)
    assert later.endswith("(about: lung cancer)")
