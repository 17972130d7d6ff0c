"""Follow-up questions and questions of several parts.

A follow-up: "Is it getting better?" after "What was my last HbA1c?".

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

from ehrqa.knowledge import load_knowledge
from ehrqa.select.base import Selection
from ehrqa.select.lexicon import MEDICATION_TYPES, scan, words
from ehrqa.select.query import (
    JUDGE_RE,
    PASSED_ON,
    STARTED_RE,
    QueryPlan,
    analyze,
    names_a_time,
)
from ehrqa.text.names import plain_name

_CONTINUATION_RE = re.compile(r"^\W*(?:and|what\s+about|how\s+about|also|same\s+for)\b", re.I)
# "Over the same period", "at that time": the earlier question's window.
_SAME_TIME_RE = re.compile(
    r"\b(?:(?:the\s+)?same\s+(?:period|time|years?|months?|window|stretch)|that\s+(?:period|time))\b",
    re.I,
)
_ORDER_WORDS = {"latest": "latest", "earliest": "first"}
# Words that name no subject of their own ("how many doses so far?" after "has he had the
# shingles vaccine?"): the question is still about the earlier one.
_GENERIC_WORDS = frozenset(
    {"dose", "doses", "times", "time", "far", "total", "altogether", "session", "sessions"}
)
# Words that point back at an earlier subject.
_PRONOUN_RE = re.compile(r"\b(?:it|its|that|this|these|those|they|them|one|ones)\b", re.I)


def _has_subject(plan: QueryPlan) -> bool:
    return bool(plan.concepts) or bool(plan.resource_types and plan.resource_types != ("Patient",))


def resolve_followup(question: str, previous: Sequence[str], now: date) -> str:
    """``question`` made self-contained with the subject of the latest earlier question.

    Borrowed when the question names no concept and either points back ("it", "that":
    "What am I taking for it?") or names nothing at all ("How about last year?").

    ``previous`` holds the conversation's earlier questions, oldest first (as resolved
    before, so a chain of follow-ups keeps its subject). Returns ``question`` unchanged
    when it has a subject of its own or nothing earlier has one.
    """
    if not previous:
        return question
    bare = re.sub(r"^\W*(?:and|so|also)\s+", "", question, flags=re.I).rstrip(" ?.!")
    if _BARE_AGE_RE.match(bare) and _DEATH_RE.search(previous[-1]):
        # "How did my mother die?" → "And how old was she?": her age at death, the
        # patient's own, not the age of the cause of death's record.
        return question
    plan = analyze(question, now)
    own_words = [w for w in plan.keywords if w not in _GENERIC_WORDS]
    if not _has_subject(plan) and own_words and not _PRONOUN_RE.search(question):
        return question  # words of its own the lexicon does not know ("ejection fraction")
    found = None
    for at in range(len(previous) - 1, -1, -1):
        text, *medicines = _MEDICINES_RE.split(previous[at], maxsplit=1)
        text, *answered = _ANSWER_RE.split(text, maxsplit=1)
        if _has_subject(earlier_plan := analyze(text, now)):
            kept = [a for a in answered if a.strip()] or _answer_borrowed(text, previous[:at], now)
            found = (earlier_plan, kept, [m for m in medicines if m.strip()])
            break
    if found is None:
        return question
    earlier, answered, medicines = found
    if plan.concepts:
        started = STARTED_RE.search(question)
        if (
            started
            and _PRONOUN_RE.search(question[: started.start()])
            and not any(m.concepts for m in scan(question[: started.start()]))
            and (said := _subject_words(earlier))
        ):
            # "has it come down at all since she started the HCTZ?" after her blood pressure:
            # the pronoun is the earlier subject, read since the medicine started.
            return _about(question, said)
        if not (_CONTINUATION_RE.match(question) or _SAME_TIME_RE.search(question)):
            return question
        # "And renal function over the same period?" after "A1c trend, last 5 years": the
        # new subject is asked as the earlier one was (its order, its trend, its window).
        borrowed = []
        order = _ORDER_WORDS.get(earlier.order)
        if plan.order == "all" and order:
            borrowed.append(order)
        # "… and her blood pressure, was that controlled?" asks a judgement of its own.
        if (
            earlier.intent == "trend"
            and plan.intent != "trend"
            and not names_a_time(question)
            and not JUDGE_RE.search(question)
        ):
            borrowed.append("trend")
        if earlier.window is not None and (plan.window is None or _SAME_TIME_RE.search(question)):
            borrowed.append(earlier.window.phrase)
        return f"{question} ({', '.join(borrowed)})" if borrowed else question
    if _has_subject(plan) and not _PRONOUN_RE.search(question):
        return question  # a kind of record of its own ("And my vaccines?")
    # A follow-up that names its kind ("when were they first diagnosed?") borrows what was
    # said, not what stood in for it ("migraine medicine" for "what is she taking for her
    # migraines?").
    said = _subject_words(earlier, stand_ins=not plan.resource_types)
    about = said or [t for t in earlier.resource_types if t != "Patient"]
    if answered and _OF_A_CONDITION_RE.search(question):
        # "What's the topiramate for?" → "how long has he had that?": the migraine.
        about = [a.strip() for a in answered[0].split(" and ")]
    elif medicines and _OF_A_MEDICINE_RE.search(question):
        # "What's he taking for it?" → "when did he start that?": the medicine named.
        about = [m.strip() for m in medicines[0].split(" and ")]
    return _about(question, about)


def _answer_borrowed(text: str, older: Sequence[str], now: date) -> list[str]:
    """The answer kept with the question a follow-up borrowed its subject from: after
    "what did the biopsy show? (answer: lung cancer)" and "how old was he then (about:
    biopsy)", "how many rounds of treatment did he have for it?" is about the lung cancer."""
    borrowed = _BORROWED_RE.search(text)
    if borrowed is None:
        return []
    for question in reversed(older):
        said, *answered = _ANSWER_RE.split(question, maxsplit=1)
        if answered and answered[0].strip() and borrowed[1] in _subject_words(analyze(said, now)):
            return [answered[0]]
    return []


def _about(question: str, subject: Sequence[str]) -> str:
    """``question`` with the subject it borrows: "Is it getting better? (about: hba1c)"."""
    return f"{question} (about: {' and '.join(subject)})"


# What a conversation keeps of a "why" answer: "… (answer: migraine)".
_ANSWER_RE = re.compile(r"\s*\(answer:\s*([^)]*)\)\s*$")
# … and of an answer that named a few medicines: "… (medicines: hydrochlorothiazide)".
_MEDICINES_RE = re.compile(r"\s*\(medicines:\s*([^)]*)\)\s*$")
# A follow-up that asks what one asks of a medicine: when it was started or stopped, its
# dose, whether it is still taken, what it does.
_OF_A_MEDICINE_RE = re.compile(
    r"\b(?:start\w*|stop\w*|began|begin|dose|doses|dosage|mg|refill\w*|prescrib\w*"
    r"|(?:been|still|first)\s+(?:on|taking)|on\s+(?:it|that|them)|side\s+effects?"
    # "since when?" after "what is he taking for it?": since when he has taken it ("how long
    # has he had it?" is still of the condition)
    r"|since\s+when)\b",
    re.IGNORECASE,
)
# A follow-up that asks what one asks of a condition: how long one has had it, whether it
# was diagnosed, is controlled, got better or worse, how it was treated.
_OF_A_CONDITION_RE = re.compile(
    r"\b(?:(?:has|have|had)\s+(?:\w+\s+)?had|diagnos\w*|controll?\w*|better|worse\w*"
    r"|improv\w*|serious|cured|go(?:ne)?\s+away|still\s+have|first\s+(?:get|got|have|had)"
    r"|treat\w*)\b",
    re.IGNORECASE,
)
# A question whose answer is what a test or visit found ("what did the biopsy show?").
_FOUND_RE = re.compile(r"\b(?:show(?:ed|n|s)?|find|found|result\w*|diagnos\w*)\b", re.IGNORECASE)


def remembered(question: str, selection: Selection) -> str:
    """``question`` (as resolved) as a conversation keeps it: with the conditions its answer
    named as a medicine's reason ("What's the topiramate for? (answer: migraine)") or as
    what a test found ("What did the biopsy show? (answer: lung cancer)"), so that "how long
    has he had that?" means the migraine the answer was about, not the medicine
    (:func:`resolve_followup`)."""
    reasons = _answered(question, selection)
    if reasons:
        return f"{question} (answer: {' and '.join(reasons)})"
    medicines = _medicines_named(selection)
    return f"{question} (medicines: {' and '.join(medicines)})" if medicines else question


MAX_REMEMBERED_MEDICINES = 3  # more is a list, which "that" does not point back to


def _medicines_named(selection: Selection) -> list[str]:
    """The medicines an answer about medicines named ("what's he taking for it?" →
    hydrochlorothiazide), by concept name, when there are few of them: "when did he start
    that?" then asks of that medicine, not of the condition it was asked for."""
    names: dict[str, None] = {}
    for item in selection.items:
        if item.record.resource_type in MEDICATION_TYPES:
            said = plain_name(item.record.display)
            named = [c.name for m in scan(said) for c in m.concepts if c.kind == "drug"]
            names.update(dict.fromkeys(named[:1] or [said.lower()]))
    others = any(
        i.record.resource_type not in (*MEDICATION_TYPES, "Condition") for i in selection.items
    )
    if others or len(names) > MAX_REMEMBERED_MEDICINES:
        return []
    return list(names)


def _answered(question: str, selection: Selection) -> list[str]:
    """The conditions ``selection`` names as a medicine's reason, or as what a test asked
    about found (:func:`remembered`), by concept name."""
    reasons: dict[str, None] = {}
    kinds = ("reason for ", "same visit as ") if _FOUND_RE.search(question) else ("reason for ",)
    for item in selection.items:
        if item.record.resource_type != "Condition" or not any(
            r.startswith(kinds) for r in item.reasons
        ):
            continue
        said = plain_name(item.record.display)
        named = [c.name for m in scan(said) for c in m.concepts if c.kind == "condition"]
        reasons.update(dict.fromkeys(named or [said.lower()]))
    return list(reasons)


# A part that asks why a medicine is taken: "why is she on lisinopril", "what's the HCTZ for".
_ASKS_WHY_RE = re.compile(
    r"^\W*(?:why\b|what(?:'s|\s+is|\s+was|\s+are)?\b.{0,40}\bfor\W*$)", re.IGNORECASE
)
# A follow-up's borrowed subject: "how old was he then (about: biopsy)".
_BORROWED_RE = re.compile(r"\s*\(about:\s*([^)]*)\)\s*$")


def about_the_reason(part: str, earlier: str, selection: Selection) -> str:
    """A part that borrowed the earlier part's subject and asks what one asks of a
    condition, about the condition the earlier part's answer named as a medicine's reason:
    "what's the metformin for and how long has he had that?" asks how long he has had the
    diabetes, not the metformin (across turns, :func:`remembered` does this)."""
    borrowed = _BORROWED_RE.search(part)
    if borrowed is None or not _OF_A_CONDITION_RE.search(part[: borrowed.start()]):
        return part
    if not (reasons := _answered(earlier, selection)):
        return part
    return _about(part[: borrowed.start()], reasons)


def _subject_words(plan: QueryPlan, *, stand_ins: bool = True) -> list[str]:
    """The subject of ``plan`` as a follow-up repeats it: each concept by name, except a
    phrase that is more than one name, repeated as said so that it keeps its meaning: a
    group phrase ("kidney function", its lead measure), names said together ("inpatient
    detox", a stay of that kind) or a name with words the files do not know beside it
    ("open heart surgery")."""
    rest = plan.question
    if plan.window is not None:
        rest = rest.replace(plan.window.phrase, " ", 1)
    said = words(rest)
    named = [m for m in scan(rest) if m.concepts]
    covered = {i for m in named for i in range(m.start, m.end)}
    own = set(plan.keywords) - _GENERIC_WORDS
    grown = True
    while grown:  # unknown words next to a named one are part of its phrase
        grown = False
        for i, word in enumerate(said):
            if i not in covered and word in own and {i - 1, i + 1} & covered:
                covered.add(i)
                grown = True
    runs: list[list[int]] = []
    for i in sorted(covered):
        if runs and i - 1 in covered:
            runs[-1].append(i)
        else:
            runs.append([i])
    subject: list[str] = []
    found: set[str] = set()
    for run in runs:
        inside = [m for m in named if run[0] <= m.start and m.end - 1 <= run[-1]]
        alone = len(inside) == 1 and len(inside[0].concepts) == 1
        if alone and (inside[0].start, inside[0].end - 1) == (run[0], run[-1]):
            names = [c.name for c in inside[0].concepts]
        else:
            names = [" ".join(said[i] for i in run)]
        found.update(c.name for m in inside for c in m.concepts)
        subject.extend(n for n in names if n not in subject)
    # Concepts that stand in for what was said (a drug class's condition) by name.
    if not stand_ins and subject:
        return subject
    return [*subject, *(c.name for c in plan.concepts if c.name not in found)]


# Where a question of several parts divides: a new sentence, a semicolon, or "and" before a
# new question ("… diabetes and how well is it controlled?"), never "and" inside one
# subject ("diabetes and high blood pressure" stays one part).
_PART_RE = re.compile(
    r"(?<=[?!.])\s+(?!\((?:about|answer):)|;\s*|\s+[-\u2013\u2014]+\s+"
    r"|,?\s+and\s+(?=(?:what|whats|when|where|which|who|how|hows|is|are"
    r"|was|were|do|does|did|has|have|had|am|can|should|will|my|the|any|whether)\b)",
    re.IGNORECASE,
)
MAX_PARTS = 4
_DASH_RE = re.compile(r"\s[-\u2013\u2014]+\s")
# A time said by pointing back: "that month", "the same day", "at the time", "back then".
_POINTS_BACK_IN_TIME_RE = re.compile(
    r"\b(?:(?:that|the\s+same)\s+(?:day|week|month|year|time|visit|winter|summer|spring|fall)"
    r"|at\s+the\s+time|back\s+then|then)\b",
    re.IGNORECASE,
)
# How a question opens: a question word, or an auxiliary verb ("any …?" asks too).
_ASKS_RE = re.compile(
    r"^\W*(?:what|whats|what's|when|where|which|who|whose|why|how|hows|how's|is|are|was|were"
    r"|do|does|did|has|have|had|am|can|could|should|will|would|any|anything|ever)\b",
    re.IGNORECASE,
)
# A sentence that states rather than asks: it opens with its subject and does not end in "?".
_STATEMENT_RE = re.compile(
    r"^\W*(?:they|he|she|i|we|it|my|the\s+(?:doctor|nurse)|the\s+doctors)\s+(?!\w+\s*\?)"
    r"(?:\w+ed|was|were|had|have|has|said|told|gave|did|got|think|thought)\b[^?]*[.!]?$",
    re.IGNORECASE,
)
# Words that name a measurement without saying which: "what was the last level?"
_GENERIC_MEASURE_RE = re.compile(
    r"\b(?:levels?|values?|readings?|numbers?|results?|scores?)\b", re.IGNORECASE
)
# A closing remark after a question, without a question mark of its own, that says why it is
# asked: "thinking about clot risk", "just curious", "planning her surgery".
_WHY_ASKED_RE = re.compile(
    r"^\W*(?:just\s+|i'?m\s+|we'?re\s+|am\s+)?(?:thinking|wondering|asking|planning|worried"
    r"|concerned|curious|because|cos|cuz|for\s+context|fyi|trying|considering|prepping"
    r"|getting\s+ready)\b[^?]*$",
    re.IGNORECASE,
)
# "… and when did he die?": the death is the patient's, a question of its own.
_DEATH_RE = re.compile(
    r"\b(?:die|died|dying|death|pass(?:ed)?\s+away"
    rf"|{PASSED_ON})\b",
    re.I,
)
# "… and what was the cause?" after a part about the death: the cause of death.
_CAUSE_RE = re.compile(
    r"^\W*(?:and\s+)?(?:what\s+(?:was|is)\s+the\s+cause|what\s+caused\s+it"
    r"|the\s+cause|cause)\W*$",
    re.I,
)
_BARE_AGE_RE = re.compile(r"^\W*how\s+old\s+(?:was|were|is|am)\s+(?:s?he|i|they|you)$", re.I)
_ANOTHER_NUMBER_RE = re.compile(
    r"\W*(?:how\s+(?:long|many|often)\b.*\b(?:it|that|this|them|they)\b"
    r"|how\s+old\s+(?:was|were|is|am)\s+(?:s?he|i|they|you)\W*$|at\s+what\s+age\b)",
    re.IGNORECASE,
)


# "… and is it working?" after a medicine: whether what it treats is under control.
WORKING_RE = re.compile(
    r"^\W*(?:and\s+|but\s+|so\s+)?(?:is|are|has|have)\s+(?:it|they|that|this|these|those)"
    r"\s+(?:been\s+)?(?:working|helping|doing\s+(?:any\s+good|anything|(?:its|their)\s+job)"
    r"|effective|doing\s+what\s+(?:it|they)\s+should)\b",
    re.IGNORECASE,
)


# "Summarize his diabetes", "tell me about her asthma", "an overview of his CKD": one
# condition's story, asked in the parts a clinician reads it by.
_SUMMARY_RE = re.compile(
    r"\b(?:summar(?:y|ies|ise|ize)|overview|run-?down|recap|sum\s+up"
    r"|tell\s+me\s+(?:a\s+(?:bit|little)\s+|more\s+)?about|fill\s+me\s+in\s+on"
    r"|what\s+do\s+(?:we|you)\s+know\s+about|(?:an?\s+)?update\s+on"
    r"|(?:the\s+)?(?:story|deal)\s+(?:with|on))\b",
    re.IGNORECASE,
)


def condition_summary_parts(question: str, now: date) -> list[str] | None:
    """The parts of a summary of one named condition, each a question the selector answers:
    since when it is recorded, whether it is at target (where the knowledge files name the
    measure it is followed by), and the medicines recorded for it. None for any other
    question ("summarize her medications", "tell me about her allergies")."""
    if not _SUMMARY_RE.search(question):
        return None
    plan = analyze(question, now)
    if len(plan.concepts) != 1 or plan.concepts[0].kind != "condition":
        return None
    if plan.resource_types not in ((), ("Condition",)):
        return None
    name = plan.concepts[0].name
    parts = [f"when was the patient first diagnosed with {name}?"]
    if load_knowledge().monitoring(name):
        parts.append(f"is the patient's {name} under control?")
    parts.append(f"what medicines is the patient taking for {name}?")
    return parts


# "Is the hydrochlorothiazide working?", "is her blood pressure medicine doing its job?",
# "does the metformin help?": the medicine named, and whether it works.
_MEDICINE_WORKS_RE = re.compile(
    r"^\W*(?:so\s+|and\s+|but\s+)?(?:(?:is|are|has|have)\s+(?P<a>.{2,60}?)\s+(?:been\s+)?"
    r"(?:working|helping|doing\s+(?:any\s+good|anything|(?:its|their)\s+job)|effective)"
    r"|(?:does|do|did)\s+(?P<b>.{2,60}?)\s+(?:work|help|do\s+anything)(?:ing)?)\b",
    re.IGNORECASE,
)


def medicine_working_parts(question: str, now: date) -> list[str] | None:
    """For "is the hydrochlorothiazide working?" two parts: which of the named medicines the
    patient takes, and "is it working?" (whether what they are for is at target: the
    selector asks that of the first part's answer). None for any other question."""
    match = _MEDICINE_WORKS_RE.match(question)
    if match is None:
        return None
    subject = (match["a"] or match["b"]).strip()
    plan = analyze(subject, now)
    drugs = any(c.kind in ("drug", "drug_class") for c in plan.concepts)
    if not drugs and not set(plan.resource_types) & set(MEDICATION_TYPES):
        return None  # "is his kidney working?": an organ, not a medicine
    return [f"what {subject} is the patient taking?", "is it working?"]


# What a summary of the whole patient is asked about: "a quick summary of his health",
# "give me an overview of her chart", "summarize my medical history".
_WHOLE_PATIENT_RE = re.compile(
    r"\b(?:health|medical\s+history|history|chart|record|records|file|condition|situation"
    r"|status|overall|him|her|me|them|the\s+patient|this\s+patient)\b",
    re.IGNORECASE,
)
# "How is Korey doing?" (the name taken out: "how is doing?"), "how's she doing overall?"
_DOING_OVERALL_RE = re.compile(
    r"^\W*how(?:'s|s|\s+is|\s+are|\s+am|\s+has)\s+(?:(?:he|she|they|you|i|the\s+patient|my\s+\w+"
    r"|\w+)\s+)?(?:been\s+)?doing(?:\s+(?:overall|lately|these\s+days|now|in\s+general|health\s*wise))?"
    r"\W*$",
    re.IGNORECASE,
)
HEALTH_SUMMARY_PARTS = (
    "what are the patient's current medical problems?",
    "what medicines is the patient taking now?",
    "what allergies does the patient have?",
)


def health_summary_parts(question: str, now: date) -> list[str] | None:
    """For a summary of the whole patient ("give me a quick summary of his health"), the
    parts a clinician's summary opens with: current problems, current medicines, allergies.
    None for a summary of one thing ("summarize his diabetes", "her medications")."""
    overall = _DOING_OVERALL_RE.match(question)
    if not overall and (not _SUMMARY_RE.search(question) or not _WHOLE_PATIENT_RE.search(question)):
        return None
    plan = analyze(question, now)
    if plan.concepts or set(plan.resource_types) - {"Patient"}:
        return None
    return list(HEALTH_SUMMARY_PARTS)


# "Am I due for any screenings?", "what cancer screening does she need?", "is he behind on
# his screenings?": every screening test that applies, not one named.
_ANY_SCREENING_RE = re.compile(
    r"\b(?:any|which|what)\s+(?:[\w-]+\s+){0,2}screen(?:ing|ings|s)\b"
    r"|\bscreen(?:ing|ings|s)\b.{0,40}\b(?:due|overdue|need\w*|missing|behind|up\s+to\s+date)\b"
    r"|\b(?:due|overdue|need\w*|missing|behind\s+on)\b.{0,40}\bscreen(?:ing|ings|s)\b",
    re.IGNORECASE,
)


def screening_parts(
    question: str, now: date, age: float | None, sex: str | None
) -> list[str] | None:
    """For "am I due for any screenings?", one due question per screening test the knowledge
    files recommend for this age and sex ("is the patient due for a colonoscopy?"). None for
    any other question, for a screening named ("am I due for a mammogram?"), or when none
    applies."""
    if not _ANY_SCREENING_RE.search(question):
        return None
    if any(c.kind == "procedure" for c in analyze(question, now).concepts):
        return None
    kb = load_knowledge()
    names = [i.screening for i in kb.screening_intervals if i.applies(age, sex)]
    return [f"am i due for a {name}?" for name in names] or None


def _narrowed_by(context: str, question: str, plan: QueryPlan) -> str:
    """``question`` narrowed to the members of a group its context names: "so the prostate
    biopsy - was it cancer?" asks about prostate cancer, not every cancer."""
    if len(plan.concepts) < 2:
        return question
    said = set(words(context)) - _GENERIC_WORDS
    named = [c.name for c in plan.concepts if set(c.name.split()) & said]
    if not named or len(named) == len(plan.concepts):
        return question
    return _about(question, named)


def _same_list(a: QueryPlan, b: QueryPlan) -> bool:
    """Whether two parts ask for the same list: records of the same types and concepts,
    current or all ("what's wrong with him?", "main health problems")."""
    lists = ("list", "list_active")
    return (
        a.intent in lists
        and b.intent in lists
        and a.resource_types == b.resource_types
        and {c.name for c in a.concepts} == {c.name for c in b.concepts}
    )


def split_parts(question: str, now: date) -> list[str]:
    """The parts of a question that asks several things, each made self-contained.

    "Am I anemic? What was my last hemoglobin?" → two parts. A part without a subject of
    its own borrows the earlier parts' (:func:`resolve_followup`). One part (the question
    itself) unless at least two parts name subjects of their own: "Do I have diabetes and
    how well is it controlled?" stays one question about diabetes.
    """
    pieces = [p.strip(" ,") for p in _PART_RE.split(question) if p and p.strip(" ,?.!")]
    # "What's my blood type? They tested it at my first prenatal visit.": a statement after
    # a question tells where to look, it asks nothing of its own (one before it may date
    # what follows: "I had a baby in 2019. What did I weigh after?").
    # "Is she on the pill, and is she a smoker? thinking about clot risk": why it is asked.
    while len(pieces) > 1 and (
        _STATEMENT_RE.match(pieces[-1])
        or ("?" in question.rstrip()[:-1] and _WHY_ASKED_RE.match(pieces[-1]))
        # "Is he a boy or a girl in the chart? The form was filled out wrong once."
        or (
            pieces[-2].rstrip().endswith("?")
            and pieces[-1].rstrip().endswith(".")
            and not _ASKS_RE.match(pieces[-1])
        )
    ):
        pieces.pop()
        if len(pieces) == 1:
            return pieces
    # "He's on topiramate - any seizure history?", "Chart says diabetic kidney disease -
    # what's her A1c?": what is said before a question with a subject of its own is context.
    if (
        len(pieces) == 2
        and _DASH_RE.search(question)
        and not _ASKS_RE.match(pieces[0])
        and not pieces[0].rstrip().endswith("?")
        # "pregnant pt - flu vaccine given this season?": a clinician's terse question
        and (_ASKS_RE.match(pieces[1]) or pieces[1].rstrip().endswith("?"))
        and _has_subject(asked := analyze(pieces[1], now))
    ):
        return [_narrowed_by(pieces[0], pieces[1], asked)]
    # "My daughter hit her head on the ice in jan 2022 - was it a concussion and did we end up
    # in the ER that month?": the context before the dash is no part; its time dates the
    # parts that point back to it ("that month").
    # "She lost a baby in the spring. Was that recorded as a miscarriage, and has she ever
    # given birth?": a sentence that tells, before the questions, is context too.
    dash = _DASH_RE.search(question)
    told = pieces[0].rstrip().endswith(".") or (
        dash is not None and question.startswith(pieces[0]) and len(pieces[0]) <= dash.start()
    )
    if (
        len(pieces) > 2
        and told
        and not _ASKS_RE.match(pieces[0])
        and not pieces[0].rstrip().endswith("?")
    ):
        context = analyze(pieces[0], now).window
        pieces = [
            f"{p} ({context.phrase})"
            if context is not None and _POINTS_BACK_IN_TIME_RE.search(p)
            else p
            for p in pieces[1:]
        ]
    if len(pieces) < 2 or len(pieces) > MAX_PARTS:
        return [question]
    # "When did he pass and what was the cause?": the cause of that death.
    pieces = [
        "what was the cause of death"
        if i and _DEATH_RE.search(pieces[i - 1]) and _CAUSE_RE.match(piece)
        else piece
        for i, piece in enumerate(pieces)
    ]
    # Divided only when two parts name subjects of their own: "When was my LDL first checked,
    # and what was it?" is one question about one thing.
    plans = [analyze(piece, now) for piece in pieces]
    # "What's wrong with him? main health problems": one list asked twice is one question.
    if all(_same_list(plans[0], plan) for plan in plans[1:]):
        return [question]
    subjects = sum(1 for plan in plans if _has_subject(plan))
    # "How old was she when they diagnosed it, and how long did she live with it?", "how
    # tall is he now and has he grown much?": after a part with a subject, parts without
    # one that ask for another number about it, or how it changed, are questions too.
    # "Why is she on lisinopril, and is that under control?": what one asks of the condition
    # the medicine is for (:func:`about_the_reason`).
    borrowing = _has_subject(plans[0]) and all(
        _ANOTHER_NUMBER_RE.match(piece)
        or plan.intent == "trend"
        or _DEATH_RE.search(piece)
        or WORKING_RE.match(piece)
        or (_ASKS_WHY_RE.match(before) and _OF_A_CONDITION_RE.search(piece))
        for before, piece, plan in zip(pieces, pieces[1:], plans[1:], strict=False)
        if not _has_subject(plan)
    )
    # The patient's own death is a part of its own ("when did he pass", "… and when did he die").
    dying = any(_DEATH_RE.search(piece) for piece in pieces)
    if subjects < 2 and not (subjects == 1 and (borrowing or dying)):
        return [question]
    parts: list[str] = []
    for piece, own in zip(pieces, plans, strict=True):
        # "… and how old was she?": her age when the earlier part's event happened.
        if parts and _BARE_AGE_RE.match(piece.rstrip(" ?")) and not _DEATH_RE.search(parts[-1]):
            piece = f"{piece.rstrip(' ?')} when it happened?"
        if _DEATH_RE.search(piece):  # the patient's own death borrows no subject
            parts.append(piece)
            continue
        if (
            parts
            and _GENERIC_MEASURE_RE.search(piece)
            and not own.concepts
            and (said := _subject_words(analyze(parts[-1], now)))
        ):
            # "Is he on anything for his triglycerides, and what was the last level?": the
            # level is the earlier part's measure, not every reading of that day.
            parts.append(_about(piece, said))
            continue
        parts.append(resolve_followup(piece, parts, now))
    return parts
