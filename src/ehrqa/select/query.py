"""Question understanding: a question becomes a structured :class:`QueryPlan`.

The plan says which records can answer the question (resource types, observation
categories, clinical concepts with codes and display terms, a date window, a status) and
how to cut the list (newest first, oldest first or everything, and how many). It is built
from word lists and precompiled regular expressions only, so it costs well under a
millisecond and never calls a model.

How the pieces combine:

* The time expression is parsed first and cut out of the question, so "last year" is a
  window and can no longer read as "the last record".
* Cue words name record kinds ("vaccines", "labs"); concept phrases name clinical things
  ("HbA1c", "blood thinners"). A cue wins over the types a concept implies ("allergic to
  penicillin" asks for allergies, not prescriptions) unless the cue only gives context
  ("my A1c at my last visit" still asks for the A1c).
* A concept that cannot live in the asked-for record type brings its ``related`` concepts
  ("medicine for diabetes" → the diabetes-medicine class).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from ehrqa.select.lexicon import (
    CONCEPTS_BY_NAME,
    MEDICATION_TYPES,
    ORGAN_GROUPS,
    Concept,
    Match,
    phrase_key,
    resolve_categories,
    resolve_types,
    scan,
    words,
)
from ehrqa.select.timeexpr import NUMBER_WORDS, TimeWindow, parse_time

Order = Literal["latest", "earliest", "all"]

# Coarse question kinds, in the order they are tested.
INTENTS = (
    "demographics",  # age, sex, name: the Patient resource only
    "count",  # how many, how often
    "when",  # when was / when did / how long ago
    "exists",  # yes/no: do I have, am I on, have I ever
    "trend",  # how has X changed, history of X
    "other",  # why / explain: needs records, not a list
    "list_active",  # current medications, active conditions
    "latest_value",  # newest value of a measurement
    "latest",  # newest record of another kind ("my last visit")
    "earliest",  # first record ("my first vaccine")
    "list",  # everything that matches
)
# Types whose records have a clinical status worth filtering on.
STATUSABLE = frozenset(
    {"Condition", "AllergyIntolerance", "CarePlan", "MedicationStatement", "MedicationRequest"}
)
# Types whose records are values: a "latest" question about them wants the newest value.
MEASURED_TYPES = frozenset({"Observation", "DiagnosticReport"})
ENDED_STATUSES = {
    "Condition": ("resolved", "inactive", "remission"),
    "AllergyIntolerance": ("resolved", "inactive"),
    "MedicationRequest": ("stopped", "completed"),
    "MedicationStatement": ("stopped", "completed"),
    "CarePlan": ("completed", "revoked"),
}


# Questions about who pays: answered from the insurers that claims name.
INSURANCE_RE = re.compile(
    r"\b(?:insur\w*|coverage|covered|payer|payor|medicare|medicaid|health\s+plan"
    r"|(?:medical|hospital|doctor'?s?)\s+bills?|who\s+(?:pays|paid|was\s+paying|is\s+paying"
    r"|covers|covered|is\s+covering))\b",
    re.IGNORECASE,
)
# "Which insurers have I had?", "has my insurance changed over the years?": every payer of
# the record's claims, not only the current one.
PAYER_HISTORY_RE = re.compile(
    r"\b(?:insurers|insurances|payers|payors|(?:insurance|health)\s+(?:companies|plans|carriers"
    r"|providers|history)|ever|over\s+the\s+years|all\s+(?:my|the|his|her|their)"
    r"|in\s+the\s+past|previous(?:ly)?|before|used\s+to|switch\w*|chang\w*|history)\b",
    re.IGNORECASE,
)
# Questions about whether a vaccine is due.
# A question answered "yes" or "no" ("Am I a smoker?", "Has she had a stroke?").
# A statement with a tag asks it too: "she had gallstones, didn't she?".
YES_NO_RE = re.compile(
    r"^\W*(?:(?:so|and|but|ok|okay|also|then)\W+)?"
    # "At the end was he still on both …?", "right now is she on …?"
    r"(?:(?:at|in|by)\s+the\s+end|at\s+(?:that|the)\s+(?:time|point)|back\s+then|right\s+now"
    r"|currently|today|these\s+days|nowadays|lately|recently)?\W*"
    r"(?:is|are|am|was|were|do|does|did|has|have|had|can|could|should|will)\b"
    r"|^[^?]*\b(?:didn'?t|doesn'?t|don'?t|isn'?t|wasn'?t|hasn'?t|haven'?t|hadn'?t|aren'?t"
    r"|weren'?t)\s+(?:s?he|i|they|you|it|we)\W*$"
    # A clinician's shorthand: "ACE inhibitor intolerance listed?", "hx hip fx?"
    # "PPSV23 given?", "ASA allergy?", "colonoscopy done?"
    r"|^(?![^?]*\b(?:what|which|who|whom|whose|when|where|why|how)\b)[^?]*\b(?:listed|recorded"
    r"|documented|on\s+file|noted|charted|given|done|received|administered|completed"
    r"|allerg(?:y|ies|ic)|intoleran(?:ce|t))\s*\?\s*$"
    # "hx hip fx?", "h/o preeclampsia?", "prior MI?", "any previous DVT?", "known CAD?"
    r"|^\W*(?:any\s+)?(?:hx|h/o|h\.o\.|prior|previous|known|past)\b[^?]*\?\s*$",
    re.IGNORECASE,
)
_EVER_RE = re.compile(r"\bever\b", re.IGNORECASE)
# "When did he pass", never "did he pass his hearing test": the patient's death.
PASSED_ON = (
    r"(?:(?:did|has|had)\s+\w+\s+pass|when\s+(?:s?he|they|i|mom|dad|\w+)\s+passed)"
    r"(?!\s+(?:the|his|her|a|an|my|out|urine|stool|gas|water|\w+\s+test)\b)"
)


# "Is he over 65?", "was she under 18 then?": the patient's age against a number.
AGE_THRESHOLD_RE = re.compile(
    r"^\W*(?:is|was|are|am)\s+(?:he|she|i|they|you|the\s+patient|my\s+\w+|\w+)\s+(?P<op>over|under"
    r"|above|below|older\s+than|younger\s+than|at\s+least)\s+(?P<a>\d{1,3})"
    r"(?:\s*(?:years?|yrs?)(?:\s+old|\s+of\s+age)?)?(?:\s+(?:yet|now|already))?\s*\??\s*$",
    re.IGNORECASE,
)


# "How long has she been treated for …", "how many years in treatment for …".
_HOW_LONG_TREATED_RE = re.compile(
    r"\bhow\s+(?:long|many\s+years)\b.{0,40}\b(?:treat\w*|in\s+treatment|getting\s+help)\b",
    re.IGNORECASE,
)


# "Was it ever high?", "has her potassium ever been low?", "any abnormal A1c at any point?":
# every reading against its range, not the newest.
EVER_OUT_OF_RANGE_RE = re.compile(
    r"\b(?:ever|at\s+any\s+(?:point|time)|any\s+time|anytime)\b.{0,40}?\b(?P<side>high|higher"
    r"|elevated|raised|low|lower|abnormal|out\s+of\s+range|off)\b"
    r"|\b(?:any|ever\s+an?)\s+(?P<side2>high|elevated|low|abnormal)\s+(?:[\w-]+\s+){0,2}"
    r"(?:readings?|results?|values?|levels?|numbers?)\b",
    re.IGNORECASE,
)


# "His cholesterol history", "her weight over the years": a measure's readings over time.
_READINGS_HISTORY_RE = re.compile(r"\bhistory\b(?!\s+of\b)", re.IGNORECASE)


# "… on all these meds?", "… on her current medicines", "… with the treatment": the
# medicines a question is asked under.
_ON_TREATMENT_RE = re.compile(
    r"\b(?:on|with|under)\s+(?:all\s+)?(?:these|those|the|his|her|my|their|current|this)\s+"
    r"(?:current\s+)?(?:meds|medications?|medicines?|pills|drugs|treatments?|regimen)\b",
    re.IGNORECASE,
)


# A condition asked of some pregnancy: "in a pregnancy", "during her pregnancies", "while
# pregnant" ("this pregnancy" is a window of its own: select.default.in_pregnancy).
_IN_A_PREGNANCY_RE = re.compile(
    r"\b(?:in|during|with)\s+(?:a|any|her|my|one\s+of\s+(?:her|my)|either|both)\s+pregnanc(?:y|ies)\b"
    r"|\bwhile\s+(?:she\s+was\s+|i\s+was\s+)?pregnant\b",
    re.IGNORECASE,
)


# Medicines taken at the death: "was he on when he passed", "taking at the time of her death".
_ON_AT_DEATH_RE = re.compile(
    r"\b(?:on|taking|prescribed)\b.{0,30}\b(?:when\s+(?:s?he|they|\w+)\s+(?:died|passed)"
    r"|at\s+(?:the\s+time\s+of\s+)?(?:his|her|their)\s+death|(?:right\s+)?before\s+(?:s?he|they)"
    r"\s+(?:died|passed))\b",
    re.IGNORECASE,
)


# "On the day of his kidney transplant", "at the same visit as her colonoscopy".
_ON_THE_DAY_OF_RE = re.compile(
    r"\b(?:on|at|during)\s+the\s+(?:same\s+)?(?:day|date|visit|time)\s+(?:of|as)\s+"
    r"(?:his|her|my|their|the|your)\b",
    re.IGNORECASE,
)


def asks_yes_no(question: str) -> bool:
    """Whether ``question`` is answered yes or no, whatever else it asks ("Is otitis media
    an active problem?", "ever had a stroke?")."""
    return bool(
        YES_NO_RE.match(question)
        or _EVER_RE.search(question)
        or _CONTEXT_THEN_YES_NO_RE.match(question)
        or _TAG_QUESTION_RE.search(question)
        or (len(clauses := _CLAUSE_RE.split(question)) > 1 and YES_NO_RE.match(clauses[-1]))
    )


# "He broke his arm when he was little, right?", "… correct?", "she had a c-section, didn't
# she?": a statement asked to be confirmed.
_TAG_QUESTION_RE = re.compile(
    r"[,;\u2013\u2014-]\s*(?:right|correct|true|yes|no|yeah|isn'?t\s+(?:it|that)"
    r"|wasn'?t\s+(?:it|that|s?he)"
    r"|didn'?t\s+(?:s?he|i|they|we)|don'?t\s+(?:i|they|we)|doesn'?t\s+s?he|haven'?t\s+(?:i|they|we)"
    r"|hasn'?t\s+s?he)\s*\?\s*$",
    re.IGNORECASE,
)
# The clauses of a question that gives context first: "I lost a pregnancy last year, is that
# in my chart?", "my daughter hit her head - was it a concussion?".
_CLAUSE_RE = re.compile(r"[,;:]\s+|\s+[-–—]+\s+")
# "After my anemia in 2020 did my hemoglobin come back up?": a yes/no question after a
# phrase of time or circumstance, with no question word before its verb.
_CONTEXT_THEN_YES_NO_RE = re.compile(
    r"^\W*(?:after|since|before|during|following|at|on|in|by|with)\b"
    r"(?:(?!\b(?:what|which|who|whom|whose|where|when|why|how)\b)[^?])*?"
    r"\b(?:is|are|was|were|did|does|do|has|have|had|can|could)\s+"
    r"(?:i|he|she|they|we|you|it|that|this|my|his|her|their|the|mom|dad)\b",
    re.IGNORECASE,
)


DUE_RE = re.compile(
    r"\b(?:due|overdue|up\s+to\s+date|booster|need\s+(?:a|an|my|another|the|one)\b"
    # "Has he had his 4 year old shots?", "baby shots", "school vaccinations"
    r"|\d+\s*-?\s*(?:year|month|yr|mo)s?(?:\s*-?\s*old)?\s+(?:shots?|jabs?|vaccin\w*)"
    r"|(?:baby|childhood|kindergarten|school|infant|toddler)\s+(?:shots?|jabs?|vaccin\w*)"
    r"|need\s+\w+\s+(?:shot|jab|vaccine)"
    # "Is her flu shot current?", "Have I had this year's flu jab?"
    r"|(?:shot|jab|vaccine|vaccination|immuni[sz]ation)s?\s+(?:is\s+|are\s+)?current"
    r"|this\s+year'?s|this\s+season'?s"
    # "Did she get her flu shot yet this winter?", "flu vaccine given this season?"
    r"|(?:shots?|jabs?|vaccin\w*|flu)\b[^?]*\b(?:this|current)\s+(?:flu\s+)?(?:season|fall|autumn"
    r"|winter)|(?:this|current)\s+(?:flu\s+)?(?:season|fall|autumn|winter)\b[^?]*\b(?:shots?|jabs?"
    r"|vaccin\w*)"
    # "Has he had all his shots?", "is she missing any vaccines?", "behind on his shots"
    r"|all\s+(?:of\s+)?(?:his|her|my|the|their|your)\s+(?:shots?|jabs?|vaccin\w*|immuni[sz]\w*)"
    r"|(?:missing|missed|behind\s+on)\s+(?:any\s+)?(?:of\s+)?(?:his|her|my|the|their)?\s*"
    r"(?:shots?|jabs?|vaccin\w*|immuni[sz]\w*)"
    r"|(?:shots?|jabs?|vaccin\w*|immuni[sz]\w*)\s+(?:\w+\s+){0,3}(?:missing|missed|behind|lacking)"
    # "Is it time for my flu shot?", "should I get a flu shot this winter?", "am I covered?",
    # "tetanus status - was she current?"
    r"|(?:time|ready)\s+for\s+(?:(?:a|an|my|his|her|their|the|another|the\s+next)\s+)?"
    r"(?:[\w-]+\s+){0,2}(?:shot|jab|vaccine|booster)"
    r"|should\s+(?:i|he|she|they|we)\s+(?:be\s+)?(?:get|getting|have|having)\s+"
    r"(?:(?:a|an|my|his|her|the|another)\s+)?"
    r"(?:[\w-]+\s+){0,2}(?:shot|jab|vaccine|booster)"
    r"|(?:shots?|jabs?|vaccin\w*|boosters?|tetanus|flu)\b.*\b(?:am|is|are|was|were)\s+"
    r"(?:i|he|she|they|we|you)\s+(?:still\s+)?(?:current|covered)\b"
    r"|(?:am|is|are|was|were)\s+(?:i|he|she|they|we|you)\s+(?:still\s+)?(?:current|covered)"
    r"\b.*\b(?:shots?|jabs?|vaccin\w*|boosters?|tetanus|flu)\b"
    r"|(?:vaccine|vaccination|immuni[sz]ation|tetanus|flu|shot)\s+status)",
    re.IGNORECASE,
)
# Questions that ask for a judgement of a value or a condition.
JUDGE_RE = re.compile(
    r"\b(?:normal|okay|ok|healthy|in\s+range|out\s+of\s+range"
    r"|in\s+the\s+(?:[a-z-]+\s+){1,2}range"  # "in the prediabetes range"
    r"|worry\w*|concern\w*|abnormal|elevated|controlled|under\s+control|control|managed"
    r"|high\s+risk|flagged"
    r"|at\s+target|on\s+target|target|goal|too\s+high|too\s+low|how\s+high|how\s+low"
    r"|where\s+(?:it|they)\s+should\s+be|(?:within|in)\s+(?:the\s+)?(?:normal\s+)?limits"
    # "What was the A1c like at the end?", "what's her BP like these days?"
    r"|what(?:'s|s|\s+is|\s+was|\s+were|\s+are)\s+(?:[\w-]+\s+){1,4}like)\b"
    # "Is her A1c under 7?", "BP below 140/90?": against the asker's own number
    r"|\b(?:under|below|over|above|less\s+than|more\s+than|lower\s+than|higher\s+than"
    r"|greater\s+than|at\s+least|at\s+most)\s+\d+(?:\.\d+)?(?:\s*/\s*\d+)?(?![\d.])"
    r"(?!\s*(?:years?|yrs?|months?|weeks?|days?|times?)\b)",
    re.IGNORECASE,
)


def _word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` (keeps long word lists readable)."""
    return frozenset(text.split())


# Words that say nothing a record's text could match: grammar, voice ("the patient",
# "pt", "my mother": who is asking about whom), and words whose meaning other plan fields
# already carry (order, status, intent).
STOP_WORDS = _word_set(
    """
    a about above after again all also am an and any anything are as at be been before being
    between both but by can could did do does doing done down during each either else ever
    every few for from get gets getting got gotten had has have having he her here hers him
    his how i if in into is it its just like many may me might mine more most much must my
    myself need no nor not now of off on once one only or other our ours out over own please
    same she should so some something such than that the their theirs them then there these
    they this those through to too under until up upon us very was we were what whats when
    where whether which while who whom whose why will with within would yes yet you your
    yours im ive id dont didnt doesnt isnt wasnt werent havent hasnt arent cant wont whens
    hows whos wheres thats shes hes theyre youre weve theyve
    patient patients pt pts client person doctor dr physician record records chart file ehr
    info information detail details date dates day days time times year years month months
    week weeks list show tell give find know see want let look check display summarize
    summary last latest recent recently lately newest most first earliest initial initially
    oldest original originally current currently active ongoing still present presently
    previous past prior former old new trend trends changed change changes changing history
    count number total often frequently ago since ago thing things happen happened go went
    lot lots plenty actual actually main major biggest chief key primary principal important
    going gone receive received undergo underwent say said ok okay hi hello hey thanks
    checked gain gained lose losing lost improved worse better
    hx long against resolved inactive cured healed stopped discontinued ended finished
    regular regularly usual usually routine routinely everyday daily right
    moment moments nowadays far due grow grown growing grew recover recovered recovering
    known documented recorded listed noted
    mother mom mum mommy father dad daddy husband wife spouse partner son daughter boy girl
    kid kids child children baby infant toddler grandma grandpa grandmother grandfather
    brother sister aunt uncle friend family member parent parents
    """
) | frozenset(NUMBER_WORDS)

_F = re.IGNORECASE
_SUBJECT = (
    r"(?:i|you|we|he|she|they|(?:the\s+|this\s+|my\s+|our\s+|your\s+)?"
    r"(?:patient|pt|client|child|son|daughter|kid|baby|mom|mum|mother|dad|father|grandma"
    r"|grandpa|grandmother|grandfather|granny|husband|wife|partner|brother|sister))"
)
_LEAD = r"^\W*(?:(?:hi|hey|ok|so|and|also|doctor|doc)\W+)?"
_EXISTS_RE = re.compile(
    rf"{_LEAD}(?:(?:do|does|did)\s+{_SUBJECT}\s+\w+"
    # "did nona have brittle bones": a name (or any one-word subject) before a verb of having
    r"|(?:do|does|did)\s+[a-z']+\s+(?:ever\s+)?(?:have|get|take|need|receive|suffer|break|see"
    r"|go|use|smoke|drink)\b"
    # "did his prediabetes ever turn into diabetes?"
    r"|(?:do|does|did)\s+(?:my|his|her|their|the)\s+\w+\s+(?:ever\s+)?(?:turn|become|progress"
    r"|develop|go)\b"
    rf"|(?:have|has)\s+{_SUBJECT}\s+(?:ever\s+|already\s+|previously\s+|recently\s+)?"
    r"(?:been|had|got|gotten|received|taken|used|smoked|undergone|needed|ever)\b"
    rf"|(?:am|is|are|was|were)\s+{_SUBJECT}\s+(?:\w+\s+)?(?:on|taking|allergic|diabetic"
    r"|vaccinated|immunized|immunised|pregnant|a\s+smoker|smoker|smoking|hypertensive"
    r"|asthmatic|using|prescribed|diagnosed|up\s+to\s+date|overweight|obese|anemic|depressed)\b"
    r"|(?:is|are)\s+there\s+(?:any|a|an)\b|any\b"
    # "Hx of CVA?", "history of heart attack?": asked as a whole question
    r"|(?:any\s+)?(?:hx|history)\s+of\b(?=[^?]*\?\s*$))",
    _F,
)
_WHEN_RE = re.compile(
    rf"{_LEAD}(?:when|what\s+(?:date|day|year|month|time)|on\s+what\s+date|how\s+long\s+ago"
    r"|since\s+when|how\s+long\s+(?:have|has|had|did)|(?:at\s+)?what\s+age|how\s+old\s+was)\b"
    r"|\bwhen\s+(?:was|were|did|is|do|does|have|has|had)\b",
    _F,
)
_COUNT_RE = re.compile(
    r"\b(?:how\s+many|count|number\s+of|how\s+often|how\s+frequently|total\s+number)\b", _F
)
_NUMBER_SIGN_RE = re.compile(r"(?:^|\s)#\s*(?=\w)")  # "# prenatal visits", "# of ER visits"
# A clinician's terse note-style question about visits ("ED visits, lifetime", "Inpatient
# admissions?", "ER visits in the past year") asks how many: no question word, plural visits.
_VISITS_RE = re.compile(
    r"\b(?:visits|admissions|hospitali[sz]ations|stays|encounters|trips|appointments)\b", _F
)
_QUESTION_WORD_RE = re.compile(
    r"\b(?:what|when|where|which|who|whom|whose|why|how|list|show|tell|give|any|did|do|does"
    r"|is|are|was|were|have|has|had|can|could|should|will|would|describe|summari[sz]e)\b",
    _F,
)
# Questions that ask for a direction rather than a list of values.
TREND_RE = re.compile(
    r"\b(?:trend(?:s|ing|ed)?|chang(?:e|ed|es|ing)|over\s+time|over\s+the\s+years"
    r"|history\s+of|hx\s+of|progress(?:ed|ion|ing)?|improv(?:e|ed|es|ing|ement)"
    r"|worse(?:n|ned|ning)?|better|(?:gone|go|going|went|come|came|coming)\s+(?:back\s+)?(?:up|down)"
    r"|compar(?:e|ed|es|ing|ison)|graph|plot|fluctuat\w*|increas\w*|decreas\w*|declin\w*"
    r"|ris(?:en|ing)|dropp?(?:ed|ing)?|trajectory|gain(?:ed)?|evolv\w*"
    # "has he lost weight?", "lost a lot", never "I lost a pregnancy", "losing his job"
    r"|(?:lost|los(?:e|ing))(?!\s+(?:an?\s+(?!lot\b|bit\b|few\b|little\b)|the\b|my\b|his\b|her\b"
    r"|their\b|our\b|your\b|pregnanc|bab|consciousness|job|contact|insurance|coverage))"
    r"|creep(?:s|ing)?\s+(?:up|down)|crept\s+(?:up|down)|climb(?:s|ed|ing)?|slipp(?:ed|ing)"
    r"|up\s+or\s+down|(?:right|wrong)\s+(?:way|direction)|heading|doing"
    r"|recover(?:ed|ing|y)?|bounc(?:ed|ing)\s+back|back\s+to\s+normal|gr[eo]wn?|growing"
    r"|put(?:ting)?\s+on\s+weight|(?:gain|los)\w*\s+weight|weight\s+(?:gain|loss)"
    # "Has my A1c moved at all since …?", "has it budged?", "shifted"
    r"|(?:moved|budged|shifted)(?:\s+at\s+all)?)\b",
    _F,
)
_EXPLAIN_RE = re.compile(
    rf"{_LEAD}(?:why|how\s+come|explain|what\s+(?:is|was)\s+the\s+reason|what\s+does\s+.+\s+mean)\b",
    _F,
)
_SORT_RE = re.compile(
    r"\b(?:from\s+)?(?:oldest|earliest|first)\s+to\s+(?:newest|latest|last|most\s+recent)\b"
    r"|\b(?:from\s+)?(?:newest|latest|most\s+recent)\s+to\s+(?:oldest|earliest|first)\b"
    r"|\bin\s+(?:chronological|date)\s+order\b",
    re.IGNORECASE,
)
_LATEST_RE = re.compile(
    r"\b(?:most\s+recent|latest|last|newest|final|(?:at|in|near|towards?)\s+the\s+end)\b", _F
)
_RECENT_RE = re.compile(r"\b(?:recent(?:ly)?|lately|these\s+days)\b", _F)
_CURRENT_RE = re.compile(
    r"\b(?:current(?:ly)?|now|right\s+now|present(?:ly)?|at\s+the\s+moment|today'?s)\b", _F
)
_PRESENT_VALUE_RE = re.compile(
    rf"{_LEAD}(?:what(?:'s|\s+is|\s+are)|how\s+(?:much|tall|heavy)\s+(?:do|am|is|are)"
    rf"|(?:is|are|am)\s+(?:my|the|his|her|their|{_SUBJECT})|(?:do|does)\s+{_SUBJECT})\b",
    _F,
)
_WHEN_STARTED_RE = re.compile(
    r"\bwhen\s+(?:did|was|were|has|have|had)\s+(?:\w+\s+){0,2}?(?:start(?:ed)?|begin|began"
    r"|put\s+on|first\s+put\s+on)\b",
    _F,
)
_EARLIEST_RE = re.compile(
    r"\b(?:first|earliest|initial(?:ly)?|oldest|original(?:ly)?|since\s+when"
    r"|how\s+long\s+(?:have|has|had)"
    # "What did she weigh when she was born?", "his weight as a newborn", "at birth"
    r"|when\s+(?:i|s?he|they|you)\s+(?:was|were)\s+born|at\s+birth|newborn|birth\s*weight"
    r"|as\s+a\s+(?:baby|newborn|neonate))\b",
    _F,
)
_NUMBER = r"(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_ORDER_WORD = r"(?:last|latest|most\s+recent|recent|past|previous|first|earliest|oldest|newest|top)"
_LIMIT_RE = re.compile(
    rf"\b{_ORDER_WORD}\s+(?P<a>{_NUMBER})\b|\b(?P<b>{_NUMBER})\s+{_ORDER_WORD}\b", _F
)
_ACTIVE_RE = re.compile(
    r"\b(?:active|current(?:ly)?|ongoing|on-going|still|now|present(?:ly)?|existing"
    r"|right\s+now|at\s+the\s+moment|these\s+days|nowadays|unresolved"
    # A problem list is, by definition, of the problems that are still open; so are the
    # long-term ones ("any long term health problems?", "chronic conditions").
    r"|problem\s+list|long[-\s]?(?:term|standing|lasting)|lifelong"
    r"|chronic\s+(?:(?:health|medical)\s+)?(?:problem|condition|illness|issue|disease)s?)\b",
    _F,
)
# "am I on", "is the patient taking", "what do I take": the brief reads these as current.
_TAKING_RE = re.compile(
    r"\b(?:am\s+i|i\s+am|i'm|is\s+(?:the\s+)?(?:patient|pt)|is\s+s?he|are\s+(?:you|they))"
    r"\s+(?:\w+\s+)?(?:on|taking)\b"
    r"|\b(?:do|does)\s+(?:i|you|(?:the\s+)?(?:patient|pt)|s?he)\s+(?:\w+\s+)?take\b",
    _F,
)
_ENDED_RE = re.compile(
    r"\b(?:resolved|inactive|cured|healed|no\s+longer|used\s+to|stopped|discontinued"
    r"|got\s+over|went\s+away|ended|finished)\b"
    r"|\b(?:past|previous|former|old|prior|earlier)\s+(?:\w+\s+)?(?:medications?|medicines?"
    r"|meds|drugs?|prescriptions?|conditions?|problems?|diagnos[ie]s|illness(?:es)?"
    r"|diseases?|allerg(?:y|ies))\b",
    _F,
)


@dataclass(frozen=True)
class QueryPlan:
    """What a question asks for, in terms a record store can filter and rank on."""

    question: str
    now: date
    resource_types: tuple[str, ...]  # empty: no type constraint was found
    categories: tuple[str, ...]  # observation categories, e.g. ("laboratory",)
    concepts: tuple[Concept, ...]
    window: TimeWindow | None
    order: Order  # latest: newest first; earliest: oldest first; all: no preference
    status: tuple[str, ...]  # e.g. ("active",) for current medications
    intent: str  # one of INTENTS
    keywords: tuple[str, ...]  # content words no other field accounts for
    limit: int | None  # records per concept (or type); None: all

    @property
    def target_types(self) -> tuple[str, ...]:
        """The types the question asks for: its cue words, else its concepts' types.

        Empty when neither names a type.
        """
        if self.resource_types:
            return self.resource_types
        types: list[str] = []
        for concept in self.concepts:
            types.extend(t for t in concept.resource_types if t not in types)
        return tuple(types)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, concepts by name; for debugging, logs and the API."""
        window = self.window
        return {
            "question": self.question,
            "now": self.now.isoformat(),
            "resource_types": list(self.resource_types),
            "categories": list(self.categories),
            "concepts": [c.name for c in self.concepts],
            "window": None
            if window is None
            else {
                "start": window.start.isoformat() if window.start else None,
                "end": window.end.isoformat() if window.end else None,
                "phrase": window.phrase,
            },
            "order": self.order,
            "status": list(self.status),
            "intent": self.intent,
            "keywords": list(self.keywords),
            "limit": self.limit,
        }


def analyze(question: str, now: date) -> QueryPlan:
    """Turn ``question`` into a :class:`QueryPlan`; relative dates are relative to ``now``."""
    if isinstance(now, datetime):  # keep windows as plain dates
        now = now.date()
    window = parse_time(question, now)
    # Cut the time phrase out so "last year" cannot read as "the last record".
    rest = question.replace(window.phrase, " ", 1) if window else question
    # "oldest to newest" says how to sort a list; it asks for neither the first nor the last.
    rest = _SORT_RE.sub(" ", rest)
    # "Is that at goal for her cholesterol?": a target, not the Goal records of a care plan.
    rest = _trouble_with(_AT_GOAL_RE.sub(r"\g<how> target", rest))
    rest = _which_cholesterol(rest)
    text = " ".join(rest.replace("’", "'").split())
    rest = _as_screening(_HOW_LONG_IS_RE.sub("how tall is the patient", rest))
    said = words(rest)
    matches = _besides(_context_cues(_organs_as_tests(scan(rest), said), said), said)
    matches = _turned_into(matches, said)
    matches = _started_context(matches, rest)
    types = resolve_types(matches)
    concepts = _related(
        _unique(c for m in _named_within_groups(matches) for c in m.concepts), types
    )
    concepts = _with_treated_conditions(concepts)
    if _DOSE_RE.search(text) and concepts and all(map(_vaccines_of, concepts)):
        # "How many hep b doses has he had?", "is he up to date on hep b?": the vaccine, when
        # only such diseases are named ("a flu shot after my pneumonia", "doses of amoxicillin
        # for his pneumonia" keep the disease as context).
        concepts = _unique(v for c in concepts for v in _vaccines_of(c))
        shots = [t for c in concepts for t in c.resource_types]
        types = _unique_types((*(t for t in types if t != "Condition" or t in shots), *shots))
    if CONTRA_RE.search(text) and any(c.kind in DRUG_KINDS for c in concepts):
        # "Any reason not to use lisinopril?": an allergy to it is the reason the record
        # holds; its orders and what they were for are not reasons against it.
        types = ("AllergyIntolerance",)
    if (
        _CONTROL_RE.search(text)
        and _ON_TREATMENT_RE.search(text)
        and any(c.kind == "condition" for c in concepts)
        and set(types) & set(MEDICATION_TYPES)
    ):
        # "Is her anxiety well controlled on all these meds?": the condition's control; the
        # medicines are what it is asked under, not what is asked for.
        types = tuple(t for t in types if t not in MEDICATION_TYPES) or ("Condition",)
    if _CONTROL_RE.search(text) and (controlled := _controlled_conditions(concepts)) != concepts:
        concepts = controlled
        types = _unique_types((*types, "Condition")) if types else types
    if _asks_course(text) and (measured := _measured_conditions(concepts)) != concepts:
        concepts = measured
        types = _unique_types((*types, "Observation")) if types else types
    if _IN_A_PREGNANCY_RE.search(text) and any(
        c.kind == "condition" and c.name != "pregnancy" for c in concepts
    ):
        # "Did she ever have toxemia in a pregnancy?": the pregnancy says when, the
        # condition is what is asked (every "Normal pregnancy" entry is no answer).
        concepts = tuple(c for c in concepts if c.name != "pregnancy")
    categories = resolve_categories(matches, concepts, types)
    if (
        _DRUG_ALLERGY_RE.search(text)
        and "AllergyIntolerance" in types
        and not any(c.kind in DRUG_KINDS for c in concepts)
    ):
        # "Any allergies to medicine?": the medicine word says which allergies; it asks for
        # no prescriptions (AllergyIntolerance.category "medication").
        types = tuple(t for t in types if t not in MEDICATION_TYPES)
        categories = ("medication",)
    elif (
        _FOOD_ALLERGY_RE.search(text)
        and "AllergyIntolerance" in types
        and not any(c.kind == "allergen" for c in concepts)
    ):
        # "Any allergies to food?", "food allergies?": AllergyIntolerance.category "food".
        types, categories = ("AllergyIntolerance",), ("food",)
    if (
        _HOW_LONG_TREATED_RE.search(text)
        and any(c.kind == "condition" for c in concepts)
        and types
        and set(types) <= {*MEDICATION_TYPES, "Procedure"}
    ):
        # "How long has she been getting treated for substance use?": how long she has had
        # it, not which medicines treat it.
        types = ("Condition",)
    if _ON_THE_DAY_OF_RE.search(text) and any(c.kind == "procedure" for c in concepts):
        # "What else got done or diagnosed on the day of his kidney transplant?": the
        # procedure anchors the day; what its visit recorded is brought in beside it.
        types = ("Procedure",)
    status = _status(text, types)
    medicines_only = tuple(t for t in types if t in MEDICATION_TYPES)
    if (
        _ON_AT_DEATH_RE.search(text)
        and medicines_only
        and set(types) - {"Patient"} <= set(MEDICATION_TYPES)
    ):
        # "What medications was he on when he passed?": those still active at the death
        # (the death dates the question; the Patient record is not asked for).
        types, status = medicines_only, ("active",)
    intent = _intent(text, types, concepts, status, _outside_concepts(rest, matches))
    plural = any(m.plural for m in matches)
    readings_only = bool(concepts) and all(c.is_measurement for c in concepts)
    if readings_only and intent in ("list", "exists") and _READINGS_HISTORY_RE.search(text):
        intent = "trend"  # "what's his cholesterol history?": the course of the readings
    order = _order(text, types, concepts, window, intent, plural)
    if order == "latest" and readings_only and EVER_OUT_OF_RANGE_RE.search(text):
        order = "all"  # "was it ever high?": every reading, not the newest
    return QueryPlan(
        question=question,
        now=now,
        resource_types=types,
        categories=categories,
        concepts=concepts,
        window=window,
        order=order,
        status=status,
        intent=_refine_intent(intent, order, types, concepts),
        keywords=_keywords(rest, matches),
        limit=_limit(text, order, intent, matches),
    )


# "Is his cholesterol under control?": control is a condition's, judged by its measures.
_CONTROL_RE = re.compile(
    r"\b(?:control(?:led)?|uncontrolled|managed|at\s+target|on\s+target"
    r"|where\s+(?:it|they)\s+should\s+be)\b",
    _F,
)


def _controlled_conditions(concepts: tuple[Concept, ...]) -> tuple[Concept, ...]:
    """A measure's related conditions join it when its control is asked: cholesterol
    under control is hyperlipidemia at its targets (LDL, triglycerides)."""
    extra = [
        CONCEPTS_BY_NAME[name]
        for concept in concepts
        if concept.kind in ("lab", "vital")
        for name in concept.related
        if CONCEPTS_BY_NAME[name].kind == "condition"
    ]
    return _unique((*concepts, *extra))


def _asks_course(text: str) -> bool:
    """Whether ``text`` asks how something went ("better", "worse", "trend"), beyond the
    "history of" that only asks whether it was ever there."""
    return any(
        not re.fullmatch(r"(?:history|hx)\s+of", m[0], re.I) for m in TREND_RE.finditer(text)
    )


def names_a_time(text: str) -> bool:
    """Whether ``text`` asks for one point in time: the latest, the current, or the first."""
    return any(p.search(text) for p in (_LATEST_RE, _CURRENT_RE, _EARLIEST_RE))


# "screened for depression", "tested for HIV": the screening or test for it, not the
# disease ("Have I been screened for depression?" is never "No: the record has no depression").
_SCREENED_RE = re.compile(
    r"\b(?P<how>screened|screening|tested|checked)\s+for\s+(?:an?\s+|the\s+)?"
    r"(?P<what>[a-z][a-z'-]*(?:\s+(?!in\b|since\b|at\b|during\b|after\b|before\b|when\b"
    r"|last\b|this\b|ever\b|recently\b|yet\b)[a-z][a-z'-]*){0,2})",
    _F,
)


# "How long is he now?" about a child is his length (height); "how long is she on it for?"
# is a duration, so only the bare question reads as the measure.
_HOW_LONG_IS_RE = re.compile(
    r"^\W*(?:and\s+)?how\s+long\s+(?:is|was)\s+(?:s?he|the\s+baby|(?:my|our|his|her)\s+"
    r"(?:son|daughter|baby|boy|girl|child|kid))(?:\s+(?:now|today|these\s+days))?\s*[?.!]*\s*$",
    _F,
)


_AT_GOAL_RE = re.compile(
    r"\b(?P<how>at|to|reach(?:ed|es|ing)?|meet(?:s|ing)?|met|within|near|above|below|off)"
    r"\s+(?:(?:his|her|my|their|the|your)\s+)?goal\b",
    re.IGNORECASE,
)


def _as_screening(text: str) -> str:
    """``text`` with "screened for X" said as "X screening" ("tested for X": "X test") when
    the knowledge files know that phrase, so the screening is what is looked for."""

    def said(m: re.Match[str]) -> str:
        noun = "screening" if m["how"].lower().startswith("screen") else "test"
        for size in range(len(m["what"].split()), 0, -1):
            what = " ".join(m["what"].split()[:size])
            phrase = f"{what} {noun}"
            if _names_whole(phrase):
                rest = m["what"].split()[size:]
                return " ".join([phrase, *rest])
        return m[0]

    return _SCREENED_RE.sub(said, text)


# "Is anything wrong with her heart?", "problems with his lungs": the organ's problems, said
# the other way round ("heart problem", a phrase of the files) when the files know it.
_TROUBLE_WITH_RE = re.compile(
    r"\b(?:wrong|the\s+matter|problems?|troubles?|issues?)\s+with\s+"
    r"(?:my|his|her|their|your|the|its)\s+(?P<organ>[a-z]+)\b",
    re.IGNORECASE,
)


# "How's his heart doing?", "how are her lungs?": how the organ is, its problems (an organ
# whose tests answer that, "how are her kidneys?", is left to its tests: cues.toml).
_HOW_IS_ORGAN_RE = re.compile(
    r"\bhow(?:'s|s|\s+is|\s+are)\s+(?:my|his|her|their|your|the)\s+(?P<organ>[a-z]+)"
    r"(?:\s+(?:doing|holding\s+up|looking))?(?=\s*[?.!]*\s*$)",
    re.IGNORECASE,
)


# "What heart meds was he on?": the medicines for the organ's problems.
_ORGAN_MEDICINES_RE = re.compile(
    r"\b(?P<organ>[a-z]+)\s+(?P<medicine>meds?|medicines?|medications?|pills?|drugs?|tablets?)\b",
    re.IGNORECASE,
)


def _trouble_with(text: str) -> str:
    """``text`` with "wrong with her heart" (or "how's her heart doing?") said as "heart
    problem" when the files know that."""

    def said(m: re.Match[str], prefix: str = "") -> str:
        organ = m["organ"].lower()
        if prefix and any(match.concepts for match in scan(organ)):
            return m[0]  # "how's my cholesterol?" asks for the cholesterol itself
        for name in (organ, organ[:-1]) if organ.endswith("s") else (organ,):
            if prefix and {phrase_key(name), phrase_key(organ)} & _ORGANS:
                return m[0]
            if _names_whole(phrase := f"{name} problem"):
                return prefix + phrase
        return m[0]

    def medicines(m: re.Match[str]) -> str:
        organ = m["organ"].lower()
        known = _names_whole(phrase := f"{organ} problem")
        return f"{m['medicine']} for {phrase}" if known else m[0]

    text = _HOW_IS_ORGAN_RE.sub(lambda m: said(m, "which "), text)
    text = _ORGAN_MEDICINES_RE.sub(medicines, text)
    return _TROUBLE_WITH_RE.sub(said, text)


# "When did they last check my cholesterol, what was the bad one?": the bad (LDL) or good
# (HDL) cholesterol, said as "one" after the cholesterol was named.
_WHICH_ONE_RE = re.compile(
    r"\b(?:the\s+)?(?P<which>bad|good)\s+(?:one|kind|type|number|part)\b",
    re.IGNORECASE,
)
_CHOLESTEROL_RE = re.compile(r"\bcholesterol\b", re.IGNORECASE)


def _which_cholesterol(text: str) -> str:
    """``text`` with "the bad one" said as "bad cholesterol" when it names cholesterol."""
    if not _CHOLESTEROL_RE.search(text) or not (m := _WHICH_ONE_RE.search(text)):
        return text
    which = f"{m['which'].lower()} cholesterol"
    text = text[: m.start()] + "\0" + text[m.end() :]
    return _CHOLESTEROL_RE.sub("", text).replace("\0", which)


def _names_whole(phrase: str) -> bool:
    """Whether one known phrase spans all of ``phrase``."""
    return any(m.start == 0 and m.end == len(words(phrase)) and m.concepts for m in scan(phrase))


# Words after which a kind of record is the context of what was named before it: "an epi
# shot for a reaction" asks for the shot, not for allergies.
_CONTEXT_WORDS = frozenset(
    {"for", "after", "because", "from", "during", "with", "due", "covers", "cover", "covering"}
)


# The word that sets a thing aside, and the words that must come before it ("other than").
_BESIDES: dict[str, tuple[str, ...]] = {
    "besides": (),
    "except": (),
    "than": ("other",),
    "from": ("apart", "aside"),
}


def _besides(matches: list[Match], said: list[str]) -> list[Match]:
    """``matches`` without the things set aside from a kind asked ("what else am I allergic
    to besides fish?", "any medicines other than the inhaler?"): the question asks for the
    kind (its answer lists them all), not for the thing already known."""
    at = next(
        (
            i
            for i, word in enumerate(said)
            if word in _BESIDES and (not _BESIDES[word] or (i and said[i - 1] in _BESIDES[word]))
        ),
        None,
    )
    if at is None or not any(m.cue for m in matches):
        return matches
    # The words set aside stay read (never searched as keywords), naming nothing.
    start = at - 1 if _BESIDES[said[at]] else at
    kept = [Match(" ".join(said[start : at + 1]), start, at + 1, (), None, False)]
    for m in matches:
        aside = m.concepts and not m.cue and at < m.start <= at + 4
        kept.append(dataclasses.replace(m, concepts=()) if aside else m)
    return kept


_TURN_WORDS = frozenset({"turn", "turns", "turned", "turning", "progress", "progressed",
                         "progressing", "develop", "developed", "evolve", "evolved"})  # fmt: skip
_BECOME_WORDS = frozenset({"become", "became", "becoming"})


def _turned_into(matches: list[Match], said: list[str]) -> list[Match]:
    """``matches`` with what a condition turned from kept as words: "did his prediabetes
    ever turn into actual diabetes?" asks for the diabetes (it said "Yes" over the
    prediabetes)."""
    at = next(
        (
            i
            for i, word in enumerate(said)
            if word in _BECOME_WORDS
            or (word in _TURN_WORDS and i + 1 < len(said) and said[i + 1] in ("into", "to"))
        ),
        None,
    )
    if at is None or not any(m.concepts and m.start > at for m in matches):
        return matches
    # The turning word and what it turned from stay read, naming nothing.
    turned = [Match(said[at], at, at + 1, (), None, False)]
    return turned + [
        dataclasses.replace(m, concepts=()) if m.concepts and m.end <= at else m for m in matches
    ]


_ON_A_LIST_RE = re.compile(
    r"\bon\s+(?:the|a|an|any|his|her|my|their|your)\s+(?:\w+\s+){0,3}(?:list|register|registry)\b"
)
_MEDS = frozenset(MEDICATION_TYPES)
_DETERMINERS = frozenset({"a", "an", "the", "her", "his", "my", "their", "your"})


def _context_cues(matches: list[Match], said: list[str]) -> list[Match]:
    """``matches`` with a kind-of-record cue that only gives the context of a concept named
    before it kept as words, not as the kind asked for: "has she ever needed an epi shot for
    a reaction?" said "No: the record has no allergies" (the reaction's kind) over the shot."""
    kept = []
    named_before = False
    listed = _ON_A_LIST_RE.search(" ".join(said))
    for m in matches:
        before = [w for w in said[max(0, m.start - 3) : m.start] if w not in _DETERMINERS]
        if m.cue and not m.concepts and named_before and before and before[-1] in _CONTEXT_WORDS:
            m = dataclasses.replace(m, cue=None)
        # "Is she on the transplant list?", "how long has it been on her (problem) list?": on
        # a list, not on a medicine.
        if listed and m.cue and said[m.end - 1] == "on" and set(m.cue.resource_types) <= _MEDS:
            m = dataclasses.replace(m, cue=None)
        # "Who pays for her visits?": what the payment is for, after the kind asked.
        named_before = named_before or bool(m.concepts) or bool(m.cue)
        kept.append(m)
    return kept


# Words that make a disease with a vaccine ask for the vaccine: its doses, shots, schedule.
_DOSE_RE = re.compile(
    r"\b(?:doses?|shots?|jabs?|vaccin\w*|immuni[sz]\w*|boosters?|series|up\s+to\s+date"
    r"|due|overdue)\b",
    re.IGNORECASE,
)


_CLASS_SUFFIX_RE = re.compile(r"\s+(?:medicine|medication|drug|pill)s?$")


def _with_treated_conditions(concepts: tuple[Concept, ...]) -> tuple[Concept, ...]:
    """A drug class named for a condition brings that condition: "what migraine medicines is
    he on?" are the class's members and every medicine recorded for migraine (propranolol
    and ibuprofen were left out)."""
    extra = []
    for concept in concepts:
        if concept.kind != "drug_class":
            continue
        base = _CLASS_SUFFIX_RE.sub("", concept.name)
        condition = CONCEPTS_BY_NAME.get(base)
        if base != concept.name and condition is not None and condition.kind == "condition":
            extra.append(condition)
    return _unique((*concepts, *extra)) if extra else concepts


def _vaccines_of(concept: Concept) -> tuple[Concept, ...]:
    """The vaccines that stand in for a disease (its ``related``); none for anything else."""
    if concept.kind != "condition":
        return ()
    related = (CONCEPTS_BY_NAME[n] for n in concept.related)
    return tuple(c for c in related if c.kind == "vaccine")


_ORGANS = frozenset(phrase_key(p) for p in ORGAN_GROUPS.phrases)


def _organs_as_tests(matches: list[Match], said: list[str]) -> list[Match]:
    """``matches`` without an organ said before a word of another thing ("has she had a
    kidney transplant?", "kidney stones"): the organ alone asks for its tests ("how are her
    kidneys?", ``cues.toml [organ_groups]``); before "transplant" it names the transplant,
    whose words are searched as said, never creatinine and eGFR."""
    kept = []
    for m in matches:
        after = said[m.end] if m.end < len(said) else None
        if (
            phrase_key(m.phrase) in _ORGANS
            and after is not None
            and after not in ORGAN_GROUPS.tests_before
        ):
            continue
        kept.append(m)
    return kept


# Words many concept names end or start with: sharing one says nothing of a relation.
_HEAD_WORDS = _word_set(
    """
    disease disorder cancer vaccine test score level count syndrome infection failure
    problem condition chronic acute blood pressure rate type screening panel use
    """
)


def _named_within_groups(matches: list[Match]) -> list[Match]:
    """``matches`` with a group phrase narrowed to the members the question also names on
    their own: "AST liver enzyme tests" asks for AST, not every liver enzyme; or to the
    members that share a word with another concept named ("inpatient rehab stays for her
    opioid use": drug rehabilitation for drug misuse, not pulmonary rehabilitation)."""
    singles = {c.name for m in matches if len(m.concepts) == 1 for c in m.concepts}
    narrowed = []
    for m in matches:
        others = {
            w
            for o in matches
            if o is not m
            for c in o.concepts
            for w in c.name.split()
            if w not in _HEAD_WORDS
        }
        named = [c for c in m.concepts if c.name in singles] or [
            c for c in m.concepts if set(c.name.split()) & others
        ]
        if len(m.concepts) > 1 and named:
            m = dataclasses.replace(m, concepts=tuple(named))
        narrowed.append(m)
    return narrowed


def _measured_conditions(concepts: tuple[Concept, ...]) -> tuple[Concept, ...]:
    """A condition's measures (a test's results) join it when the question asks how it is
    going and names no measure: "has my anemia gotten better?" is its hemoglobin over time,
    "is my diabetes getting worse?" its HbA1c and glucose, "were her breathing tests getting
    worse?" the spirometry's FEV1/FVC."""
    if any(c.is_measurement for c in concepts):
        return concepts
    extra = [
        CONCEPTS_BY_NAME[name]
        for concept in concepts
        if concept.kind in ("condition", "procedure")
        for name in concept.related
        if CONCEPTS_BY_NAME[name].is_measurement
    ]
    return _unique((*concepts, *extra))


# Whether a medicine may be given: "any reason not to use", "safe to take", "contraindicated".
CONTRA_RE = re.compile(
    r"\b(?:reasons?\s+(?:not\s+to|to\s+avoid|against)|contraindicat\w*|safe\s+(?:to|for)"
    r"|ok(?:ay)?\s+to\s+(?:give|take|use|start|prescribe)|can\s+(?:s?he|i|they|we)\s+"
    r"(?:take|have|use|be\s+given)|(?:s?he|i|they|we)\s+(?:can'?t|cannot|shouldn'?t|should\s+not)"
    r"\s+(?:take|have|use|be\s+given)|avoid"
    # "So is enalapril out too?" after her allergies; "is codeine off the table?"
    r"|(?:is|are)\s+\w+(?:\s+\w+)?\s+(?:out|off\s+(?:the\s+table|limits))(?:\s+too|\s+as\s+well)?"
    r"(?=\s*[?.!]*\s*$)|ruled\s+out\s+for)\b",
    _F,
)


def _unique_types(types: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(types))


def _unique(concepts: Iterable[Concept]) -> tuple[Concept, ...]:
    return tuple({c.name: c for c in concepts}.values())


def _related(concepts: tuple[Concept, ...], types: tuple[str, ...]) -> tuple[Concept, ...]:
    """Add stand-ins for concepts that cannot occur in the asked-for types."""
    wanted = set(types)
    extra: list[Concept] = []
    for concept in concepts:
        if not wanted or wanted & set(concept.resource_types):
            continue
        for name in concept.related:
            other = CONCEPTS_BY_NAME[name]
            if wanted & set(other.resource_types):
                extra.append(other)
    return _unique((*concepts, *extra))


# "Am I obese?", "Is he diabetic?", "Is my mum anaemic?": a state asked in the present.
_PRESENT_STATE_RE = re.compile(
    r"\b(?:am\s+i|are\s+(?:you|they|we)"
    r"|is\s+(?:s?he|the\s+(?:patient|pt)|(?:my|his|her)\s+\w+)"
    r"|do\s+(?:i|you|we|they)\s+have|does\s+(?:s?he|the\s+(?:patient|pt))\s+have"
    r"|have\s+i\s+got)\b",
    _F,
)


# "What was my A1c when I was diagnosed with diabetes?", "How low was my hemoglobin back when
# I needed the transfusion?": a measure read at the time of an event.
_ANCHOR_RE = re.compile(
    r"\b(?:back\s+when|when|at\s+the\s+time(?:\s+(?:of|that|when))?"
    r"|around\s+the\s+time(?:\s+(?:of|that|when))?|at\s+(?:my|his|her|the)\s+diagnosis"
    # "her blood pressure on the day they diagnosed the hypertension"
    r"|(?:on|in)\s+the\s+(?:day|week|month|year)\s+(?:that\s+|when\s+)?"
    r"|right\s+(?:before|after))\b",
    _F,
)
MEASURE_KINDS = ("lab", "vital", "survey", "panel")
# A medicine is an event too: its first order ("her blood count when she got the B12 shot").
EVENT_KINDS = ("condition", "procedure", "vaccine", "encounter", "drug")
# "Did my cholesterol go down after I started the statin?", "my A1c since starting metformin":
# a measure's course from a medicine's first order on.
STARTED_RE = re.compile(
    r"\b(?:after|since|following)\s+(?:(?:i|he|she|they|we|the\s+patient)\s+)?"
    r"(?:started|starting|began|beginning|start(?:ed)?\s+taking|went\s+on|going\s+on"
    r"|(?:was|were|got|been)\s+(?:put|started)\s+on)\b",
    _F,
)
DRUG_KINDS = ("drug", "drug_class")
# "allergies to medicine", "drug allergies", "what medicines am I allergic to": allergies of
# the medication category, not a list of prescriptions.
_FOOD_ALLERGY_RE = re.compile(
    r"\ballerg\w*\s+to\s+(?:any\s+|a\s+|some\s+)?foods?\b|\bfood\s+allerg\w*"
    r"|\bfoods?\b[^?.]{0,30}\ballergic\s+to\b|\ballergic\s+to\s+(?:any\s+)?foods?\b",
    _F,
)
_DRUG_ALLERGY_RE = re.compile(
    r"\ballerg\w*\s+to\s+(?:any\s+|a\s+|some\s+)?(?:medic\w*|drugs?|meds?|pills?)\b"
    r"|\b(?:medic\w*|drugs?|meds?)\s+allerg\w*"
    r"|\b(?:medic\w*|drugs?|meds|pills?)\b[^?.]{0,30}\ballergic\s+to\b",
    _F,
)


def started_anchor(question: str) -> EventAnchor | None:
    """The measures asked before a "since I started …" clause and the medicines it names
    ("Did my cholesterol go down after I started the statin?"), or None."""
    found = STARTED_RE.search(question)
    if found is None:
        return None
    before, after = question[: found.start()], question[found.end() :]
    # A follow-up's borrowed subject ("has it come down since she started the HCTZ? (about:
    # blood pressure)") is what "it" was.
    about = _ABOUT_RE.search(after)
    if about is not None:
        after = after[: about.start()]
        before = f"{before} {about[1]}"
    measures = _unique(c for m in scan(before) for c in m.concepts if c.kind in MEASURE_KINDS)
    drugs = _unique(c for m in scan(after) for c in m.concepts if c.kind in DRUG_KINDS)
    if measures and not drugs and _TREATMENT_RE.match(after):
        # "… since she started treatment": the medicines of the conditions the measure
        # follows (the anxiety score follows anxiety: its medicines' first order).
        drugs = _unique(
            c
            for c in CONCEPTS_BY_NAME.values()
            if c.kind == "condition" and {m.name for m in measures} & set(c.related)
        )
    return EventAnchor(measures, drugs, False) if measures and drugs else None


_ABOUT_RE = re.compile(r"\(about:\s*([^)]*)\)\s*$")
_TREATMENT_RE = re.compile(
    r"\W*(?:(?:the|her|his|my|their|any)\s+)?(?:treatment|medication|medicine|meds|therapy"
    r"|drugs?|pills?)s?\b",
    _F,
)


def _started_context(matches: list[Match], text: str) -> list[Match]:
    """``matches`` with the kinds of record named in a "since she started …" clause after a
    measure kept as words: "have her anxiety scores improved since she started treatment?"
    asks for the scores, not for treatments (it said "no information about anxiety score")."""
    found = STARTED_RE.search(text)
    if found is None:
        return matches
    at = len(words(text[: found.start()]))
    if not any(c.kind in MEASURE_KINDS for m in matches if m.end <= at for c in m.concepts):
        return matches
    return [
        dataclasses.replace(m, cue=None) if m.cue and m.start >= at and not m.concepts else m
        for m in matches
    ]


@dataclass(frozen=True)
class EventAnchor:
    """A question about measures at the time of an event: which measures, which event, and
    whether the event's last occurrence is meant ("the last time I …") or its first."""

    measures: tuple[Concept, ...]
    events: tuple[Concept, ...]
    latest: bool


def event_anchor(question: str) -> EventAnchor | None:
    """The measures asked before a "when …" clause and the event the clause names, or None
    when the question is not of that shape ("When was my last A1c?" names no event)."""
    for found in _ANCHOR_RE.finditer(question):
        before, after = question[: found.start()], question[found.end() :]
        if not before.strip(" ,?.") and "," in after:
            # "When she got the B12 shot, what was her blood count?": the clause comes first.
            after, before = after.split(",", 1)
        measures = _unique(c for m in scan(before) for c in m.concepts if c.kind in MEASURE_KINDS)
        events = _unique(c for m in scan(after) for c in m.concepts if c.kind in EVENT_KINDS)
        if measures and events:
            return EventAnchor(measures, events, bool(_LATEST_RE.search(after)))
    return None


# "Once the lung cancer was diagnosed, how often was he admitted?", "since her diabetes
# diagnosis": a window that opens when a condition was first recorded.
_SINCE_EVENT_RE = re.compile(
    r"\b(?:since|after|once|following)\s+(?:(?:his|her|my|their|the|your)\s+)?"
    r"(?P<event>[\w' -]{3,60}?)\s+(?:(?:was|were|got|had\s+been|has\s+been)\s+)?"
    r"(?:diagnos(?:ed|is)|found|detected|discovered)\b",
    re.IGNORECASE,
)


# "Have I gained weight since my last baby?", "has his blood pressure come down since the
# surgery?": a window that opens at an event named at the end of a question about a measure.
_SINCE_THING_RE = re.compile(
    r"\b(?:since|after)\s+(?:(?:his|her|my|their|the|your|that)\s+)?"
    r"(?P<event>(?:(?P<which>last|latest|most\s+recent|first)\s+)?[\w' -]{3,40}?)\s*[?.!]*\s*$",
    re.IGNORECASE,
)


# The same with the event first: "after the transplant did his GFR come up?", "since the
# surgery, has her weight changed?".
_SINCE_THING_FIRST_RE = re.compile(
    r"^\W*(?:since|after|following)\s+(?:(?:his|her|my|their|the|your|that)\s+)?"
    r"(?P<event>(?:(?P<which>last|latest|most\s+recent|first)\s+)?[\w' -]{3,40}?)\s*,?\s+"
    r"(?=(?:did|does|do|has|have|had|was|were|is|are|how|what|whats|what's)\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SinceEvent:
    """A question asked from an event on: a condition's diagnosis (its first entry), or a
    procedure (its last, unless the first is asked), and the question without the clause
    that says so."""

    events: tuple[Concept, ...]
    rest: str
    first: bool = True


def since_event(question: str) -> SinceEvent | None:
    """The condition whose diagnosis opens the question's window, or None."""
    found = _SINCE_EVENT_RE.search(question)
    kinds: tuple[str, ...] = ("condition",)
    if found is None:
        found = _SINCE_THING_RE.search(question)
        kinds = ("condition", "procedure")
        before = question[: found.start()] if found else ""
        if found is None and (found := _SINCE_THING_FIRST_RE.search(question)) is not None:
            # "After the transplant did his kidney function come up?": the event first.
            before = question[found.end() :]
        # Only a measure's course is asked from a thing done or had ("since the surgery").
        if found is None or not any(
            c.kind in MEASURE_KINDS for m in scan(before) for c in m.concepts
        ):
            return None
    events = _unique(c for m in scan(found["event"]) for c in m.concepts if c.kind in kinds)
    if not events:
        return None
    which = (found.groupdict().get("which") or "").lower()
    first = all(c.kind == "condition" for c in events) or which == "first"
    rest = " ".join((question[: found.start()] + " " + question[found.end() :]).split())
    return SinceEvent(events, re.sub(r"\s+([?.!])", r"\1", rest).strip(" ,"), first)


def asks_current_condition(plan: QueryPlan) -> bool:
    """Whether the question asks if a named condition holds now ("Am I still obese?"); not
    what is taken or done for it ("what is he taking for prediabetes?" asks for medicines)."""
    present = "active" in plan.status or _PRESENT_STATE_RE.search(plan.question)
    of_condition = not plan.resource_types or "Condition" in plan.resource_types
    return bool(present) and of_condition and any(c.kind == "condition" for c in plan.concepts)


def _status(text: str, types: tuple[str, ...]) -> tuple[str, ...]:
    """("active",) for current items; ended statuses for past ones; () otherwise."""
    if types and not STATUSABLE & set(types):
        return ()
    if _ENDED_RE.search(text):
        kinds = [t for t in types if t in ENDED_STATUSES] or list(ENDED_STATUSES)
        return tuple(dict.fromkeys(s for t in kinds for s in ENDED_STATUSES[t]))
    # "What meds am I on?", "What care plans am I on?": the current ones.
    taking = _TAKING_RE.search(text) and (
        not types or set(MEDICATION_TYPES) & set(types) or "CarePlan" in types
    )
    # "What health problems do I have?", "what am I being treated for?": the open ones.
    # ("What is she being treated for?": the treatments going on now.)
    having = _HAVING_RE.search(text) and (
        not types or "Condition" in types or bool(set(MEDICATION_TYPES) & set(types))
    )
    if _EVER_ASKED_RE.search(text) and not re.search(r"\bstill\b", text, re.I):
        # "Has she ever had a bladder infection? she thinks she might have one now": ever,
        # whatever the rest says about now ("No, none is current" over a past one).
        return ()
    if _ACTIVE_RE.search(text) or taking or having:
        return ("active",)
    return ()


_EVER_ASKED_RE = re.compile(r"\b(?:ever|at\s+any\s+(?:point|time)|at\s+some\s+point)\b", _F)
_HAVING_RE = re.compile(
    r"\bwhat\b.{0,40}\b(?:do|does)\s+(?:i|you|s?he|they|we|(?:the\s+)?(?:patient|pt))"
    r"\s+(?:still\s+)?have\b|\bbeing\s+treated\s+for\b"
    # "What's wrong with her?", "how is his overall health?": what is open now.
    r"|\bwhat(?:'s|\s+is)\s+(?:wrong|the\s+matter|going\s+on)\s+with\b|\bwhat\s+ails\b"
    r"|\b(?:overall|general)\s+health\b|\bhealth\s+(?:\w+\s+){0,2}overall\b"
    # "What are her main health problems?", "what are his medical issues?": the problem list.
    r"|\bwhat\s+(?:are|were)\s+(?:his|her|my|their|the\s+patient'?s)\s+"
    r"(?:(?:main|major|biggest|chief|key|medical|health)\s+){1,2}"
    r"(?:problems|issues|conditions|diagnoses)\b",
    _F,
)


def _outside_concepts(rest: str, matches: list[Match]) -> str:
    """The question's words outside concept phrases ("white count" names a test, not a count).

    "count" right after a concept belongs to the test's name too: "white blood cell count",
    "platelet count".
    """
    inside = {i for m in matches if m.concepts for i in range(m.start, m.end)}
    tokens = words(rest)
    for i, word in enumerate(tokens):
        if word in ("count", "counts") and i - 1 in inside:
            inside.add(i)
    return " ".join(w for i, w in enumerate(tokens) if i not in inside)


def _intent(
    text: str,
    types: tuple[str, ...],
    concepts: tuple[Concept, ...],
    status: tuple[str, ...],
    outside: str,
) -> str:
    """The coarse intent before ordering refines it (see :data:`INTENTS`).

    A count is read from the words ``outside`` concept names only.
    """
    if types and set(types) <= {"Patient"} and not concepts:
        return "demographics"
    if _COUNT_RE.search(outside) or _NUMBER_SIGN_RE.search(text):
        return "count"
    visits = bool(types) and set(types) <= {"Encounter"}
    if visits and _VISITS_RE.search(text) and not _QUESTION_WORD_RE.search(text):
        return "count"
    if _WHEN_RE.search(text):
        return "when"
    trend = bool(TREND_RE.search(text))
    if _EXISTS_RE.search(text):
        # "Did I gain weight?" asks about a change; "Do I have a history of asthma?" does not.
        return "trend" if trend and any(c.is_measurement for c in concepts) else "exists"
    if trend:
        return "trend"
    if _EXPLAIN_RE.search(text):
        return "other"
    if "active" in status:
        return "list_active"
    return "list" if types or concepts else "other"


def _refine_intent(
    intent: str, order: Order, types: tuple[str, ...], concepts: tuple[Concept, ...]
) -> str:
    """A plain list question that wants the newest or oldest record says so."""
    if intent != "list" or order == "all":
        return intent
    if order == "earliest":
        return "earliest"
    measured = any(c.is_measurement for c in concepts) or bool(
        types and set(types) <= MEASURED_TYPES
    )
    return "latest_value" if measured else "latest"


def _order(
    text: str,
    types: tuple[str, ...],
    concepts: tuple[Concept, ...],
    window: TimeWindow | None,
    intent: str,
    plural: bool = False,
) -> Order:
    """Newest first for last/latest/current values, oldest first for first/initial."""
    if intent in ("trend", "count", "demographics"):
        return "all"
    explicit = bool(_LATEST_RE.search(text) or _RECENT_RE.search(text))
    # "When did he start insulin?": the first order of a medicine.
    started = (
        bool(_WHEN_STARTED_RE.search(text))
        and bool(concepts)
        and all(c.kind in DRUG_KINDS for c in concepts)
    )
    earliest = bool(_EARLIEST_RE.search(text)) or started
    # "What is the earliest weight?": an explicit "earliest" beats the present tense.
    latest = explicit or (not earliest and _is_current_value(text, types, concepts, window))
    if not latest and not earliest and _asks_bare_value(intent, concepts, window, plural):
        return "latest"
    if latest == earliest:  # neither, or "first and last"
        return "all"
    return "latest" if latest else "earliest"


def _asks_bare_value(
    intent: str, concepts: tuple[Concept, ...], window: TimeWindow | None, plural: bool
) -> bool:
    """One measurement, no period, no plural ("Tobacco use status?") asks for its value now."""
    return (
        intent == "list"
        and window is None
        and not plural
        and bool(concepts)
        and all(c.is_measurement for c in concepts)
    )


def _is_current_value(
    text: str, types: tuple[str, ...], concepts: tuple[Concept, ...], window: TimeWindow | None
) -> bool:
    """Whether the question wants a measurement's newest value ("What is my weight?")."""
    if window is not None or not any(c.is_measurement for c in concepts):
        return False
    # "Current medications" is a status, not an order; "do I have a job?" asks the newest
    # social reading even where the files also name a finding ("Full-time employment").
    social = any(c.kind == "social" for c in concepts)
    if types and STATUSABLE & set(types) and not social:
        return False
    return bool(_CURRENT_RE.search(text) or _PRESENT_VALUE_RE.search(text))


def _limit(text: str, order: Order, intent: str, matches: list[Match]) -> int | None:
    """Records wanted per concept: "last 3 readings" → 3, "latest HbA1c" → 1, else None."""
    counted = _LIMIT_RE.search(text)
    asked = None
    if counted:
        number = (counted["a"] or counted["b"]).lower()
        asked = int(number) if number.isdigit() else NUMBER_WORDS[number]
    if intent == "trend" and asked is not None:  # "how has it changed over my last 3 tests?"
        return asked
    if intent in ("count", "trend", "demographics") or order == "all":
        return None
    if asked is not None:
        return asked
    if any(m.plural for m in matches):  # "latest labs", "recent visits": more than one
        return None
    if _RECENT_RE.search(text) and not _LATEST_RE.search(text):
        return None
    return 1


def _keywords(rest: str, matches: list[Match]) -> tuple[str, ...]:
    """Content words that no cue, concept or time phrase accounts for, for lexical search."""
    covered = {i for m in matches for i in range(m.start, m.end)}
    found: dict[str, None] = {}
    for i, word in enumerate(words(rest)):
        if i in covered or word in STOP_WORDS or word.isdigit() or len(word) < 2:
            continue
        found.setdefault(word)
    return tuple(found)
