"""Text matching for decision support: content words, symptom lists, coverage.

Clinical documents and records spell the same thing differently ("anaemia", "Anemia
(disorder)", "pain on passing urine"). These helpers compare texts by their content words,
folded to a singular (:func:`ehrqa.knowledge.scanner.fold`) and to one spelling (British
"ae"/"oe" to American "e"), so that the same rules apply to documents, records and input.
"""

from __future__ import annotations

import re

from ehrqa.knowledge.scanner import fold, words

# Function words plus the filler of clinical prose that carries no clinical meaning.
STOP_WORDS = frozenset(
    """
    a about after all also an and any are as at be been being both but by can could did
    do does during each either for from had has have having he her his how i if in into
    is it its may me might more most much must my no nor not of on or other our over per
    she should so some such than that the their them then there these they this those to
    too under up upon very was we were what when where which while who whom why will
    with within would you your patient patients person people adult adults history new
    recent usually often typical typically especially including include includes e g eg
    ie etc
    """.split()  # noqa: SIM905 - a word list reads best as prose
)
NEGATION_RE = re.compile(r"^\s*(?:no|not|without|denies|denied|absent|negative for)\s+", re.I)
ITEM_SPLIT_RE = re.compile(r"\s*(?:[,;\n]|\band\b|\bplus\b)\s*", re.I)


def normal_word(word: str) -> str:
    """One spelling per word: singular, and British "ae"/"oe" written "e"."""
    return fold(word).replace("ae", "e").replace("oe", "e")


def content_words(text: str) -> set[str]:
    """The normalised content words of ``text`` (no stop words, no single letters)."""
    return {normal_word(w) for w in words(text) if len(w) > 1 and w not in STOP_WORDS}


# A phrase of LONG_PHRASE or more content words is covered by three quarters of them:
# "chest pain radiating to the left arm" is "central chest pain radiating to the arm".
LONG_PHRASE, LONG_SHARE = 4, 0.75


def covers(text: str, phrase: str) -> bool:
    """Whether the content words of ``phrase`` occur in ``text``: all of them, or for a
    long phrase three quarters of them."""
    needed = content_words(phrase)
    if not needed:
        return False
    found = len(needed & content_words(text))
    return found == len(needed) or (
        len(needed) >= LONG_PHRASE and found / len(needed) >= LONG_SHARE
    )


def mentions(item: str, phrase: str) -> bool:
    """Whether ``phrase`` and the document ``item`` name the same thing.

    True when the phrase's content words all occur in the item (the item may say more:
    "dysuria" is covered by "dysuria (pain or burning on passing urine)"), or when the
    item's main term — the text before a parenthesis — is covered by the phrase.
    """
    main = item.split("(", 1)[0]
    return covers(item, phrase) or covers(phrase, main)


def split_items(text: str) -> list[str]:
    """A list typed by a user ("fever, flank pain and dysuria") as separate phrases."""
    return [part.strip(" .") for part in ITEM_SPLIT_RE.split(text) if part.strip(" .")]


def negation(phrase: str) -> tuple[str, bool]:
    """``("fever", True)`` for "no fever"; ``(phrase, False)`` when it is not negated."""
    stripped = NEGATION_RE.sub("", phrase)
    return stripped, stripped != phrase
